// green::async_result<T> — a value that arrives later (gevent's AsyncResult,
// a shared std::future).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "green/event.hpp"

namespace green {

namespace detail {

class completion_hub;

// result_listener asks a result_core to tell `hub` "source `index` is
// ready" once (completion.cpp). It lives in the hub; the core links it.
struct result_listener {
  completion_hub* hub = nullptr;
  std::size_t index = 0;
  result_listener* next = nullptr;  // guarded by the core's lmu_
  result_listener* prev = nullptr;  // guarded by the core's lmu_
  bool linked = false;              // guarded by the core's lmu_
};

struct group_node;

// result_core is the type-erased shared state of an async_result: who has
// claimed the right to complete it, the exception, a green::event the
// waiters park on, and the listeners of completion hubs. Reference counted.
//
// Invariants: completion happens once: claim() moves claimed_ false -> true
// once, and publish() follows; listeners_ is empty once published_ (publish
// hands each listener to its hub and unlinks it, all under lmu_, so after
// unlisten() returns no completion touches that listener).
//
// No vtable: the last release() deletes through destroy_, which the
// most-derived class supplies (destroy_as below). Rejected: a virtual
// destructor. It makes every call on a result a dynamic-type check under
// UBSan (-fsanitize=vptr), and that check reads a vtable it has not met
// before by writing it into a pipe; with no fd free (a server at EMFILE) it
// took live results for bad ones and aborted: "member call on address ...
// which does not point to an object of type 'result_state' ... invalid
// vptr" in a group task's store_value (issue 13).
class result_core {
 public:
  result_core(const result_core&) = delete;
  result_core& operator=(const result_core&) = delete;

  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }  // relaxed: from an existing ref
  void release() noexcept {
    // acq_rel: the last release sees every write made through other refs
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) destroy_(this);
  }

  // ready() is true once a value or an exception was published. Any thread.
  bool ready() const noexcept { return done_.is_set(); }
  // wait_until() waits for ready(); false at the deadline. Raises
  // fiber_exit / timeout_error like every blocking call. Fiber or thread.
  bool wait_until(sched::time_point deadline) { return done_.wait_until(deadline); }
  // exception() is the published exception (null if a value, or not ready).
  std::exception_ptr exception() const noexcept { return ready() ? error_ : nullptr; }

  // set_exception() completes with `e`. Throws std::logic_error if already
  // completed (or being completed). Any thread.
  void set_exception(std::exception_ptr e) {
    store_exception(std::move(e));
    publish();
  }

  // Two-step completion, for group tasks that must publish under their
  // group's lock: store_*() claims and stores (std::logic_error if claimed
  // before), publish() then makes the outcome visible: wakes waiters, tells
  // hubs. publish() is called once, after a successful store.
  void store_exception(std::exception_ptr e);
  void publish() noexcept;
  // claimed() is true once a store began. Any thread.
  bool claimed() const noexcept { return claimed_.load(std::memory_order_acquire); }

  // listen() links `l`; false (not linked) if already published. Any thread.
  bool listen(result_listener& l) noexcept;
  // unlisten() unlinks `l` if still linked. Any thread.
  void unlisten(result_listener& l) noexcept;

  // The group this result's task belongs to (group.hpp), or null.
  group_node* member = nullptr;

 protected:
  // destroy_fn deletes the complete object that `c` is the core of.
  using destroy_fn = void (*)(result_core* c) noexcept;
  explicit result_core(destroy_fn destroy) noexcept : destroy_(destroy) {}
  ~result_core() = default;  // only through destroy_
  // claim() takes the right to complete; throws std::logic_error if taken.
  void claim();
  // unclaim() gives it back (storing the value threw).
  void unclaim() noexcept { claimed_.store(false, std::memory_order_release); }

 private:
  destroy_fn destroy_;
  std::atomic<std::uint32_t> refs_{1};
  std::atomic<bool> claimed_{false};
  std::exception_ptr error_;  // written before publish(), read after ready()
  sched::spinlock lmu_;
  bool published_ = false;                // guarded by lmu_
  result_listener* listeners_ = nullptr;  // guarded by lmu_
  event done_;
};

// destroy_as<D> is the destroy function of a core whose complete object is a D.
template <class D>
void destroy_as(result_core* c) noexcept {
  delete static_cast<D*>(c);
}

// result_state<T> adds the value. A class derived from it passes its own
// destroy_as to the protected constructor.
template <class T>
class result_state : public result_core {
 public:
  result_state() noexcept : result_core(&destroy_as<result_state>) {}

  template <class... A>
  void set_value(A&&... a) {
    store_value(std::forward<A>(a)...);
    publish();
  }
  template <class... A>
  void store_value(A&&... a) {
    claim();
    try {
      value_.emplace(std::forward<A>(a)...);
    } catch (...) {
      unclaim();
      throw;
    }
  }
  T& value() noexcept { return *value_; }  // after ready() without exception

 protected:
  explicit result_state(destroy_fn destroy) noexcept : result_core(destroy) {}

 private:
  std::optional<T> value_;
};
template <>
class result_state<void> : public result_core {
 public:
  result_state() noexcept : result_core(&destroy_as<result_state>) {}

  void set_value() {
    store_value();
    publish();
  }
  void store_value() { claim(); }
  void value() noexcept {}

 protected:
  explicit result_state(destroy_fn destroy) noexcept : result_core(destroy) {}
};

[[noreturn]] void throw_result_timeout();

// uninterruptibly() runs wait(arg) to completion whatever happens: timeout
// scopes are paused, and a kill that arrives meanwhile is re-armed for the
// caller's next suspension point, unless an exception is already unwinding
// the caller (a second fiber_exit thrown from a destructor during unwinding
// would terminate; the fiber is leaving anyway). For destructors. Fiber or
// thread context.
void uninterruptibly(void (*wait)(void*), void* arg) noexcept;
// wait_uninterruptibly() waits until `c` is ready, uninterruptibly.
void wait_uninterruptibly(result_core& c) noexcept;

}  // namespace detail

// async_result<T> is a shared handle to one value of type T (or void) that
// some fiber or thread will set, or an exception in its place. Copies share
// the state; any number of fibers and threads may wait on it. The handles
// pool::spawn and group::spawn return are async_results.
template <class T>
class async_result {
 public:
  // async_result() makes a fresh, unset result.
  async_result() : s_(new detail::result_state<T>()) {}
  async_result(const async_result& o) noexcept : s_(o.s_) { s_->add_ref(); }
  async_result(async_result&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  async_result& operator=(async_result o) noexcept {
    std::swap(s_, o.s_);
    return *this;
  }
  ~async_result() {
    if (s_) s_->release();
  }

  // set() stores the value (constructed from a...) and wakes every waiter.
  // Throws std::logic_error if the result was already set. Any thread.
  template <class... A>
  void set(A&&... a) {
    s_->set_value(std::forward<A>(a)...);
  }
  // set_exception() stores `e` instead; get() will rethrow it. Throws
  // std::logic_error if already set. Any thread.
  void set_exception(std::exception_ptr e) { s_->set_exception(std::move(e)); }

  // ready() is true once set; successful() once set with a value;
  // exception() is the stored exception (null otherwise). Any thread.
  bool ready() const noexcept { return s_->ready(); }
  bool successful() const noexcept { return ready() && !s_->exception(); }
  std::exception_ptr exception() const noexcept { return s_->exception(); }

  // wait() waits until ready(), without rethrowing. wait_for()/wait_until()
  // return ready(): false if the time passed first. Raise fiber_exit if the
  // fiber is killed, timeout_error if a green::timeout scope expires.
  // Fiber or thread context.
  void wait() const { s_->wait_until(sched::no_deadline); }
  template <class Rep, class Period>
  bool wait_for(std::chrono::duration<Rep, Period> d) const {
    return s_->wait_until(detail::deadline_after(d));
  }
  template <class Clock, class Duration>
  bool wait_until(std::chrono::time_point<Clock, Duration> tp) const {
    return s_->wait_until(detail::to_deadline(tp));
  }

  // get() waits, then returns the value (a reference into the shared state;
  // void for T = void) or rethrows the stored exception. Fiber or thread.
  decltype(auto) get() const {
    wait();
    return value_();
  }
  // get_for() is get() that raises green::timeout_error if the value is not
  // there within d.
  template <class Rep, class Period>
  decltype(auto) get_for(std::chrono::duration<Rep, Period> d) const {
    if (!wait_for(d)) detail::throw_result_timeout();
    return value_();
  }
  // take() is get() that moves the value out (for move-only T); the other
  // handles then see a moved-from value.
  T take() const {
    wait();
    if constexpr (std::is_void_v<T>) {
      value_();
    } else {
      return std::move(value_());
    }
  }

  detail::result_core& core() const noexcept { return *s_; }
  // Adopts a state holding one reference (for group and pool).
  explicit async_result(detail::result_state<T>* s) noexcept : s_(s) {}

 private:
  decltype(auto) value_() const {
    if (std::exception_ptr e = s_->exception()) std::rethrow_exception(e);
    if constexpr (std::is_void_v<T>) {
      return;
    } else {
      return static_cast<T&>(s_->value());
    }
  }
  detail::result_state<T>* s_;
};

}  // namespace green
