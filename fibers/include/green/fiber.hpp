// green::fiber<T> — a handle to a fiber that returns T; green::spawn().
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "green/detail/deadline.hpp"
#include "green/detail/fiber_ext.hpp"
#include "green/errors.hpp"
#include "green/sched/scheduler.hpp"

namespace green {

// spawn_options name a fiber and size its stack.
struct spawn_options {
  std::string name;            // shown in dumps, reports and errors
  std::size_t stack_size = 0;  // bytes; 0: the runtime's default
};

template <class T>
class fiber;
class runtime;

namespace detail {

// access is the library's way to a handle's control block and a runtime's
// scheduler (group, waitable; green/testing.hpp for tests). Not for users:
// neither is part of the stable API.
struct access {
  template <class T>
  static sched::fiber_base* native(const fiber<T>& f) noexcept {
    return f.f_;
  }
  template <class Runtime>
  static sched::scheduler& scheduler(Runtime& rt) noexcept {
    return rt.sched_;
  }
};

template <class R>
struct result_slot {
  std::optional<R> value;
  R take() { return std::move(*value); }
};
template <>
struct result_slot<void> {
  void take() {}
};

// apply_into() calls fn with the tuple's elements and stores the result in
// `out` (nothing for void). Exceptions propagate.
template <class R, class Fn, class Tuple>
void apply_into(result_slot<R>& out, Fn& fn, Tuple&& args) {
  if constexpr (std::is_void_v<R>) {
    std::apply(fn, std::forward<Tuple>(args));
  } else {
    out.value.emplace(std::apply(fn, std::forward<Tuple>(args)));
  }
}

// stop_slot is a fiber's std::stop_source (fiber::request_stop and
// friends, like std::jthread's). Made at spawn for a function that takes a
// std::stop_token, else on the first get(): a fiber nobody asks to stop pays
// one null pointer and no allocation.
class stop_slot {
 public:
  stop_slot() noexcept = default;
  ~stop_slot() {
    // relaxed: the last reference's release orders it. Out of line: the
    // common empty slot costs a load and a branch in every fiber's
    // destructor (measured: an inlined delete cost 8 instructions there).
    if (p_.load(std::memory_order_relaxed) != nullptr) [[unlikely]]
      destroy();
  }
  stop_slot(const stop_slot&) = delete;
  stop_slot& operator=(const stop_slot&) = delete;

  // get() is the source, made on first use (a race between two first uses
  // keeps one). Any thread. Throws std::bad_alloc.
  std::stop_source& get();
  // destroy() frees the source. The destructor only.
  void destroy() noexcept;
  // adopt() installs a source made before the fiber was spawned. Spawner
  // only, before spawn.
  void adopt(std::unique_ptr<std::stop_source> s) noexcept {
    p_.store(s.release(), std::memory_order_relaxed);  // relaxed: spawn() publishes the fiber
  }

 private:
  std::atomic<std::stop_source*> p_{nullptr};
};

template <class R>
class fiber_impl_base : public sched::fiber_base {
 public:
  result_slot<R> result;
  stop_slot stop;
};

template <class R, class Fn, class Tuple>
class fiber_impl final : public fiber_impl_base<R> {
 public:
  fiber_impl(Fn fn, Tuple args) { call_.emplace(std::move(fn), std::move(args)); }

 private:
  void invoke() noexcept override {
    // Killed before it first ran: the body never starts (gevent's kill of
    // a greenlet that has not started), and join() raises
    // fiber_killed_error. Regression test: kill_before_start_keeps_the_body_from_running.
    if (this->take_kill()) {
      this->killed_ = true;
      call_.reset();
      release_ext(this);
      return;
    }
    try {
      apply_into(this->result, call_->first, std::move(call_->second));
    } catch (const fiber_exit&) {
      this->killed_ = true;
    } catch (...) {
      this->error_ = std::current_exception();
    }
    // Release what the function captured now, on the fiber, not when the
    // last handle goes away.
    call_.reset();
    // Then its fiber_local values, here on its own thread, before joiners
    // see done(); also after a kill or an exception (both caught above).
    // Regression test: fiber_local_values_are_destroyed_when_a_killed_fiber_exits.
    release_ext(this);
  }
  std::optional<std::pair<Fn, Tuple>> call_;
};

template <class F, class... Args>
using spawn_result_t = std::invoke_result_t<std::decay_t<F>, std::decay_t<Args>...>;

// takes_stop_token_v: fn(std::stop_token, args...) is callable, so a fiber
// passes fn its stop token first, as std::jthread does.
template <class F, class... Args>
inline constexpr bool takes_stop_token_v = std::is_invocable_v<std::decay_t<F>, std::stop_token, std::decay_t<Args>...>;

// fiber_result_t is what a fiber running fn(args...) returns, the stop
// token counted.
template <class F, class... Args>
using fiber_result_t =
    typename std::conditional_t<takes_stop_token_v<F, Args...>,
                                std::invoke_result<std::decay_t<F>, std::stop_token, std::decay_t<Args>...>,
                                std::invoke_result<std::decay_t<F>, std::decay_t<Args>...>>::type;

template <class F, class... Args>
fiber_impl_base<fiber_result_t<F, Args...>>* make_fiber(F&& fn, Args&&... args) {
  using R = fiber_result_t<F, Args...>;
  if constexpr (takes_stop_token_v<F, Args...>) {
    // The token goes first in the stored arguments; its source is the
    // fiber's, made here so the handle and the fiber share it.
    using Tuple = std::tuple<std::stop_token, std::decay_t<Args>...>;
    auto src = std::make_unique<std::stop_source>();
    auto* f = new fiber_impl<R, std::decay_t<F>, Tuple>(std::forward<F>(fn),
                                                        Tuple(src->get_token(), std::forward<Args>(args)...));
    f->stop.adopt(std::move(src));
    return f;
  } else {
    using Tuple = std::tuple<std::decay_t<Args>...>;
    return new fiber_impl<R, std::decay_t<F>, Tuple>(std::forward<F>(fn), Tuple(std::forward<Args>(args)...));
  }
}

[[noreturn]] void throw_joined_twice();
[[noreturn]] void throw_killed(const sched::fiber_base& f);
[[noreturn]] void throw_no_runtime(const char* what);
void wait_or_raise(sched::fiber_base& f, sched::time_point deadline, bool* timed_out);

}  // namespace detail

// fiber<T> is a handle to a running (or finished) fiber. Move-only.
// Destroying a handle that was neither joined nor detached detaches it (as
// gevent's greenlets, not std::thread's terminate): the fiber runs on, and
// an exception it throws goes to the unhandled-exception handler.
template <class T>
class fiber {
 public:
  fiber() noexcept = default;
  explicit fiber(detail::fiber_impl_base<T>* f) noexcept : f_(f) {
    if (f_) f_->add_ref();
  }
  fiber(fiber&& o) noexcept : f_(std::exchange(o.f_, nullptr)) {}
  fiber& operator=(fiber&& o) noexcept {
    if (this != &o) {
      reset();
      f_ = std::exchange(o.f_, nullptr);
    }
    return *this;
  }
  ~fiber() { reset(); }

  // joinable() is true until join() or detach().
  bool joinable() const noexcept { return f_ != nullptr; }
  std::uint64_t id() const noexcept { return f_ ? f_->id() : 0; }
  std::string name() const { return f_ ? f_->name() : std::string(); }
  // done() is true once the fiber has finished. Any thread.
  bool done() const noexcept { return f_ && f_->done(); }

  // join() waits for the fiber and returns its result, or rethrows its
  // exception; a killed fiber raises green::fiber_killed_error. Fiber or
  // thread context. Throws std::logic_error if not joinable.
  T join() {
    finished f = finish_();
    if (f->was_killed()) detail::throw_killed(*f);
    if (std::exception_ptr e = f->take_error()) std::rethrow_exception(std::move(e));
    return f->result.take();
  }

  // wait_for() / wait_until() wait for the fiber to finish without joining;
  // false on timeout. Fiber or thread context.
  template <class Rep, class Period>
  bool wait_for(std::chrono::duration<Rep, Period> d) {
    return wait_until(detail::deadline_after(d));
  }
  template <class Clock, class Duration>
  bool wait_until(std::chrono::time_point<Clock, Duration> tp) {
    if (!f_) detail::throw_joined_twice();
    bool timed_out = false;
    detail::wait_or_raise(*f_, detail::to_deadline(tp), &timed_out);
    return !timed_out;
  }

  // detach() lets the fiber run on its own.
  void detach() {
    if (!f_) detail::throw_joined_twice();
    f_->detach();
    std::exchange(f_, nullptr)->release();
  }

  // kill() makes the fiber raise green::fiber_exit at its current or next
  // suspension point (any blocking call, sleep, or this_fiber::yield()) and
  // unwind with RAII; a fiber that has not started yet never runs its body.
  // Does not wait. join() afterwards waits and then RAISES
  // green::fiber_killed_error (unlike gevent, whose join after kill is
  // silent); kill_and_join() is the quiet form. A loop that never blocks
  // nor yields cannot be killed (request_stop() is the cooperative way).
  void kill() noexcept {
    if (f_) f_->kill();
  }

  // kill_and_join() kills the fiber, waits for it to end and releases the
  // handle, without raising for the kill (gevent's kill(block=True)): true
  // if the kill ended the fiber (or kept it from starting), false if it
  // had already returned (its result is dropped). If the fiber had already
  // failed with another exception, that is rethrown as join() would: an
  // error is never swallowed. Fiber or thread context; raises like join()
  // if the caller itself is killed or its green::timeout expires (the
  // handle then stays joinable). Throws std::logic_error if not joinable.
  bool kill_and_join() {
    if (!f_) detail::throw_joined_twice();
    f_->kill();
    finished f = finish_();
    if (f->was_killed()) return true;
    if (std::exception_ptr e = f->take_error()) std::rethrow_exception(std::move(e));
    return false;
  }

  // Cooperative stop, as std::jthread: get_stop_source() / get_stop_token()
  // are the fiber's stop state; a function whose first parameter is a
  // std::stop_token received that token at spawn. request_stop() requests
  // a stop (true if this call did): nothing is raised; the fiber sees
  // token.stop_requested(), and its stop-aware waits given the token
  // (this_fiber::sleep_for(d, token), event::wait(token), a condition
  // variable's wait(lock, token, pred), channel::recv(token)) return early.
  // A fiber whose function takes no token gets its state made on first use
  // here. On a handle that is not joinable: a source and token without a
  // stop state, and false. Any thread; these three may race each other on
  // one handle (not a move, join or detach of it).
  // Throws std::bad_alloc (making the state).
  std::stop_source get_stop_source() { return f_ ? f_->stop.get() : std::stop_source(std::nostopstate); }
  std::stop_token get_stop_token() const { return f_ ? f_->stop.get().get_token() : std::stop_token(); }
  bool request_stop() { return f_ && f_->stop.get().request_stop(); }

 private:
  friend struct detail::access;
  // finished: a control block detached from the handle, released at scope end.
  struct release_ref {
    void operator()(detail::fiber_impl_base<T>* f) const noexcept { f->release(); }
  };
  using finished = std::unique_ptr<detail::fiber_impl_base<T>, release_ref>;
  // finish_() waits for the fiber to end, then takes the block out of the
  // handle. Throws std::logic_error if not joinable; what waiting raises
  // leaves the handle joinable.
  finished finish_() {
    if (!f_) detail::throw_joined_twice();
    detail::wait_or_raise(*f_, sched::no_deadline, nullptr);
    return finished(std::exchange(f_, nullptr));
  }
  void reset() noexcept {
    if (f_) {
      f_->detach();
      std::exchange(f_, nullptr)->release();
    }
  }
  detail::fiber_impl_base<T>* f_ = nullptr;
};

namespace detail {
template <class F, class... Args>
auto spawn_on(sched::scheduler& s, spawn_options opts, F&& fn, Args&&... args) {
  using R = fiber_result_t<F, Args...>;
  auto* f = make_fiber(std::forward<F>(fn), std::forward<Args>(args)...);
  if (!opts.name.empty()) f->set_name(std::move(opts.name));
  fiber<R> handle(f);  // the handle's reference
  try {
    s.spawn(f, opts.stack_size);  // takes over the creation reference
  } catch (...) {
    f->release();  // not taken over: drop it; the handle drops its own
    throw;
  }
  return handle;
}
}  // namespace detail

// spawn() starts fn(args...) on a new fiber of the current runtime and
// returns its handle; if fn can be called as fn(std::stop_token, args...)
// it is, with the fiber's stop token (fiber::request_stop). Fiber context only (from a plain thread use
// runtime::spawn); throws std::logic_error outside a runtime and
// std::system_error if no stack can be mapped.
template <class F, class... Args>
auto spawn(F&& fn, Args&&... args) {
  sched::scheduler* s = sched::current_scheduler();
  if (!s) detail::throw_no_runtime("green::spawn");
  return detail::spawn_on(*s, spawn_options{}, std::forward<F>(fn), std::forward<Args>(args)...);
}
template <class F, class... Args>
auto spawn(spawn_options opts, F&& fn, Args&&... args) {
  sched::scheduler* s = sched::current_scheduler();
  if (!s) detail::throw_no_runtime("green::spawn");
  return detail::spawn_on(*s, std::move(opts), std::forward<F>(fn), std::forward<Args>(args)...);
}

// set_unhandled_exception_handler() replaces what happens to an exception
// escaping a detached fiber (default: print it with the fiber's name, then
// std::terminate, as std::thread does).
using unhandled_exception_handler = sched::unhandled_handler;
inline void set_unhandled_exception_handler(unhandled_exception_handler h) noexcept { sched::set_unhandled_handler(h); }

}  // namespace green
