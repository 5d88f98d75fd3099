// green::detail::pipe — the engine under channel<T> and the queues.
//
// Roles. A pipe is a store of values (FIFO ring, LIFO stack or heap) of at
// most cap_ values, a queue of waiting putters (each waiter's data points at
// the T it offers, on its own stack) and a queue of waiting getters (data
// points at the std::optional<T> the value goes into), all under one
// spinlock. cap_ == 0 makes a rendezvous (unbuffered channel): a value goes
// from a putter's stack straight into a getter's slot.
//
// Hand-over (mutex.cpp's design header): every transfer to or from a parked
// party happens under mu_ before its wake: a putter moves its value into the
// getter's slot and then wakes it; a getter moves the putter's value out and
// then wakes it. If the wake fails (that party was killed, timed out, or its
// select was won by another case), the value is moved back and the next
// waiter is tried, so a value is never dropped and never delivered twice.
// close() wakes every waiter with wake_reason::closed: getters return
// "closed" (they only wait when the store is empty, so nothing is lost),
// putters raise closed_error and keep their value.
//
// Invariants (Go's chan.go, with select's exception): getq_ non-empty
// implies the store is empty, and putq_ non-empty implies the store is full,
// except while one select waits on both sides of one pipe; once closed_,
// both queues stay empty.
//
// select (select.cpp) drives the same *_locked steps through friend access.
// Rejected: a lock-free ring for buffered channels (Vyukov's bounded MPMC
// queue); every operation here may have to park or wake a party, which needs
// the lock anyway, and a 2-core box measured the spinlock at ~20 ns.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include "green/detail/wait.hpp"
#include "green/errors.hpp"
#include "green/op_status.hpp"

namespace green::detail {

// pipe_access reaches the pipe inside a channel or queue (for select).
template <class T, class Store>
class pipe;
template <class T, class Store>
class pipe_front;
struct pipe_access {
  template <class T, class Store>
  static pipe<T, Store>& of(pipe_front<T, Store>& c) noexcept {
    return c.p_;
  }
};
template <class Pipe, class F>
class recv_case;
template <class Pipe, class F>
class send_case;

inline constexpr std::size_t unbounded = std::numeric_limits<std::size_t>::max();

[[noreturn]] void throw_closed(const char* what);

// pipe_names label a pipe in errors and dumps.
struct pipe_names {
  const char* type;        // "green::channel": destroy and task_done errors
  const char* put_what;    // shown in dumps while a putter waits
  const char* get_what;    // ditto for a getter
  const char* closed_msg;  // closed_error's message
};

template <class T, class Store>
class pipe {
 public:
  using value_type = T;

  pipe(std::size_t cap, const pipe_names& n, Store store) : store_(std::move(store)), cap_(cap), names_(&n) {}
  ~pipe() { check_no_waiters(mu_, names_->type, this, putq_, getq_, joinq_); }
  pipe(const pipe&) = delete;
  pipe& operator=(const pipe&) = delete;

  // put() offers v: success (v moved from), full (only if !block: v
  // untouched) or timeout (v untouched). Throws closed_error.
  op_status put(T& v, time_point deadline, bool block) {
    std::unique_lock lk(mu_);
    if (closed_) throw_closed(names_->closed_msg);
    if (try_put_locked(v)) return op_status::success;
    if (!block) return op_status::full;
    sched::waiter w;
    w.data = &v;
    wake_reason r = park_waiter(lk, putq_, w, names_->put_what, deadline);
    if (r == wake_reason::notified) return op_status::success;
    if (r == wake_reason::closed) throw_closed(names_->closed_msg);
    lk.unlock();
    raise_interrupt(r);
    return op_status::timeout;
  }

  // get() takes a value into out: success, empty (only if !block), timeout
  // or closed (closed and drained).
  op_status get(std::optional<T>& out, time_point deadline, bool block) {
    std::unique_lock lk(mu_);
    if (try_get_locked(out)) return op_status::success;
    if (closed_) return op_status::closed;
    if (!block) return op_status::empty;
    sched::waiter w;
    w.data = &out;
    wake_reason r = park_waiter(lk, getq_, w, names_->get_what, deadline);
    if (r == wake_reason::notified) return op_status::success;
    if (r == wake_reason::closed) return op_status::closed;
    lk.unlock();
    raise_interrupt(r);
    return op_status::timeout;
  }

  // get_into() is get() into a T: moved into out on success.
  op_status get_into(T& out, time_point deadline, bool block) {
    std::optional<T> v;
    op_status s = get(v, deadline, block);
    if (s == op_status::success) out = std::move(*v);
    return s;
  }
  // get_one() is a blocking get(): empty once closed and drained.
  std::optional<T> get_one() {
    std::optional<T> out;
    get(out, no_deadline, true);
    return out;
  }

  // close() marks the pipe closed and wakes every waiter; false if it was
  // already closed. Any thread.
  bool close() noexcept {
    std::lock_guard lk(mu_);
    if (closed_) return false;
    closed_ = true;
    wake_all(getq_, wake_reason::closed);
    wake_all(putq_, wake_reason::closed);
    return true;
  }
  bool closed() const noexcept {
    std::lock_guard lk(mu_);
    return closed_;
  }
  std::size_t size() const noexcept {
    std::lock_guard lk(mu_);
    return store_.size();
  }
  std::size_t capacity() const noexcept { return cap_; }

  // Joinable-queue support: every value put counts as one unfinished task.
  void task_done() {
    std::lock_guard lk(mu_);
    if (unfinished_ == 0) throw std::logic_error(std::string(names_->type) + "::task_done() called too many times");
    if (--unfinished_ == 0) wake_all(joinq_);
  }
  bool join(time_point deadline) {
    std::unique_lock lk(mu_);
    if (unfinished_ == 0) return true;
    sched::waiter w;
    wake_reason r = park_waiter(lk, joinq_, w, "queue join", deadline);
    if (r == wake_reason::notified) return true;
    bool done = unfinished_ == 0;
    lk.unlock();
    raise_interrupt(r);
    return done;
  }
  std::size_t unfinished() const noexcept {
    std::lock_guard lk(mu_);
    return unfinished_;
  }

 private:
  template <class, class>
  friend class recv_case;
  template <class, class>
  friend class send_case;

  // try_put_locked() delivers v to a waiting getter or into the store;
  // false if neither can take it now (v untouched). Caller holds mu_.
  bool try_put_locked(T& v) {
    while (sched::waiter* w = getq_.pop_front()) {
      auto* slot = static_cast<std::optional<T>*>(w->data);
      slot->emplace(std::move(v));
      if (try_wake(w)) {
        ++unfinished_;
        return true;
      }
      v = std::move(**slot);  // its park ended: take the value back
      slot->reset();
    }
    if (store_.size() >= cap_) return false;
    store_.push(std::move(v));
    ++unfinished_;
    return true;
  }

  // try_get_locked() takes a value from the store (refilling it from a
  // waiting putter) or straight from a waiting putter; false if there is
  // none. Caller holds mu_.
  bool try_get_locked(std::optional<T>& out) {
    if (store_.size() > 0) {
      out.emplace(store_.pop());
      while (sched::waiter* w = putq_.pop_front()) {
        T* src = static_cast<T*>(w->data);
        T v(std::move(*src));
        if (try_wake(w)) {
          store_.push(std::move(v));
          ++unfinished_;
          break;
        }
        *src = std::move(v);
      }
      return true;
    }
    while (sched::waiter* w = putq_.pop_front()) {
      T* src = static_cast<T*>(w->data);
      out.emplace(std::move(*src));
      if (try_wake(w)) {
        ++unfinished_;
        return true;
      }
      *src = std::move(*out);
      out.reset();
    }
    return false;
  }

  mutable sched::spinlock mu_;
  Store store_;  // guarded by mu_
  const std::size_t cap_;
  bool closed_ = false;         // guarded by mu_
  std::size_t unfinished_ = 0;  // values put and not yet task_done(); guarded by mu_
  sched::wait_queue putq_;      // guarded by mu_
  sched::wait_queue getq_;      // guarded by mu_
  sched::wait_queue joinq_;     // guarded by mu_
  const pipe_names* names_;
};

// recv_iterator makes `for (auto& v : ch)` receive until closed and drained.
template <class Pipe>
class recv_iterator {
 public:
  using value_type = typename Pipe::value_type;
  using difference_type = std::ptrdiff_t;
  recv_iterator() = default;
  explicit recv_iterator(Pipe* p) : p_(p), cur_(p->get_one()) {}
  value_type& operator*() { return *cur_; }
  recv_iterator& operator++() {
    cur_ = p_->get_one();
    return *this;
  }
  void operator++(int) { ++*this; }
  friend bool operator==(const recv_iterator& it, std::default_sentinel_t) { return !it.cur_.has_value(); }

 private:
  Pipe* p_ = nullptr;
  std::optional<value_type> cur_;
};

// pipe_front is what channel<T> and the queues share around their pipe:
// closing, sizes, range-for and select's access. The verbs (send/recv,
// put/get) are the front ends' own.
template <class T, class Store>
class pipe_front {
 public:
  pipe_front(const pipe_front&) = delete;
  pipe_front& operator=(const pipe_front&) = delete;

  // close() closes it and wakes every waiter; false if it was already
  // closed (closing twice is allowed). Any thread.
  bool close() noexcept { return p_.close(); }
  bool closed() const noexcept { return p_.closed(); }
  // size() is how many values are buffered or queued (a snapshot).
  std::size_t size() const noexcept { return p_.size(); }

  // Range-for receives until closed and drained: for (auto& v : c) ...
  using iterator = recv_iterator<pipe<T, Store>>;
  iterator begin() { return iterator(&p_); }
  std::default_sentinel_t end() const noexcept { return {}; }

 protected:
  pipe_front(std::size_t cap, const pipe_names& names, Store store) : p_(cap, names, std::move(store)) {}
  ~pipe_front() = default;

  friend struct pipe_access;
  pipe<T, Store> p_;
};

}  // namespace green::detail
