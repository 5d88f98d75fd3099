// green::condition_variable (with std::unique_lock<green::mutex>) and
// green::condition_variable_any (with any lock).
#pragma once

#include <chrono>
#include <condition_variable>  // std::cv_status
#include <mutex>
#include <optional>
#include <stop_token>
#include <system_error>
#include <type_traits>

#include "green/detail/wait.hpp"
#include "green/errors.hpp"
#include "green/mutex.hpp"
#include "green/stop.hpp"

namespace green {

namespace detail {

// cv_core is the waiting half shared by both condition variables.
// Invariants: size_ == q_.size() whenever mu_ is free; waiters are woken in
// FIFO order.
class cv_core {
 public:
  cv_core() noexcept = default;
  ~cv_core();
  cv_core(const cv_core&) = delete;
  cv_core& operator=(const cv_core&) = delete;

  // Any thread.
  void notify_one() noexcept;
  void notify_all() noexcept;
  // wait() links the caller, calls unlock(lock), parks until notified,
  // `deadline`, an interrupt or (given `stop`) a stop request, and unlinks.
  // Does not relock; the stop_scope ends before the caller relocks.
  wake_reason wait(void (*unlock)(void*), void* lock, time_point deadline, const char* what,
                   const std::stop_token* stop = nullptr);

 private:
  sched::spinlock mu_;
  sched::wait_queue q_;               // guarded by mu_
  std::atomic<std::size_t> size_{0};  // q_.size(), for notify's fast path
};

// cv_wait() is the body of every wait: park, relock, then report. A stop
// request on `stop` ends the park and reports no_timeout (the caller's loop
// reads the token).
template <class Lock>
std::cv_status cv_wait(cv_core& core, Lock& lk, time_point deadline, const char* what,
                       const std::stop_token* stop = nullptr) {
  wake_reason r = core.wait([](void* l) { static_cast<Lock*>(l)->unlock(); }, &lk, deadline, what, stop);
  if (relock(lk)) throw fiber_exit{};
  if (r == wake_reason::timeout) return std::cv_status::timeout;
  raise_interrupt(r);  // killed, scope_timeout, deadlock: lock held, as std requires
  return std::cv_status::no_timeout;
}

// cv_wait_stop() is std::condition_variable_any's stop-token wait: until
// pred() holds, `stop` is requested, or `deadline` passes; returns pred()
// (evaluated with the lock held). `wait_once(deadline, stop)` is one
// cv_wait of the caller's condition variable.
template <class Pred, class WaitOnce>
bool cv_wait_stop(const std::stop_token& stop, time_point deadline, Pred& pred, WaitOnce wait_once) {
  while (!stop.stop_requested()) {
    if (pred()) return true;
    if (wait_once(deadline, &stop) == std::cv_status::timeout) return pred();
  }
  return pred();
}

}  // namespace detail

// condition_variable lets fibers and threads wait for a condition guarded by
// a green::mutex (or timed_mutex), held in a std::unique_lock. Waits relock
// the mutex before they return or raise, as std::condition_variable does:
// fiber_exit (killed) and timeout_error (green::timeout scope) are raised
// with the lock held. No spurious wake-ups, but use the predicate forms.
// Destroying it while fibers wait (not yet notified) terminates, with a
// message.
class condition_variable {
 public:
  // notify_one() wakes the longest waiter; notify_all() wakes them all.
  // Any thread; holding the mutex is not required.
  void notify_one() noexcept { core_.notify_one(); }
  void notify_all() noexcept { core_.notify_all(); }

  // wait() releases lk's mutex, waits for a notify and reacquires it.
  // Throws std::system_error(operation_not_permitted) if the caller does not
  // hold lk. Fiber or thread context.
  template <class M>
  void wait(std::unique_lock<M>& lk) {
    wait_until_(lk, sched::no_deadline);
  }
  template <class M, class Pred>
  void wait(std::unique_lock<M>& lk, Pred pred) {
    while (!pred()) wait_until_(lk, sched::no_deadline);
  }
  template <class M, class Rep, class Period>
  std::cv_status wait_for(std::unique_lock<M>& lk, std::chrono::duration<Rep, Period> d) {
    return wait_until_(lk, detail::deadline_after(d));
  }
  template <class M, class Clock, class Duration>
  std::cv_status wait_until(std::unique_lock<M>& lk, std::chrono::time_point<Clock, Duration> tp) {
    return wait_until_(lk, detail::to_deadline(tp));
  }
  // The predicate forms return pred() (false: the time passed first).
  template <class M, class Rep, class Period, class Pred>
  bool wait_for(std::unique_lock<M>& lk, std::chrono::duration<Rep, Period> d, Pred pred) {
    return wait_pred_(lk, detail::deadline_after(d), pred);
  }
  template <class M, class Clock, class Duration, class Pred>
  bool wait_until(std::unique_lock<M>& lk, std::chrono::time_point<Clock, Duration> tp, Pred pred) {
    return wait_pred_(lk, detail::to_deadline(tp), pred);
  }
  // The stop-token forms, as std::condition_variable_any's: wait until
  // pred() holds, a stop is requested on `stop` (any thread) or the time
  // passes, and return pred(). Nothing is raised for the stop; a stop
  // requested before the call returns pred() at once.
  template <class M, class Pred>
  bool wait(std::unique_lock<M>& lk, std::stop_token stop, Pred pred) {
    return wait_stop_(lk, stop, sched::no_deadline, pred);
  }
  template <class M, class Rep, class Period, class Pred>
  bool wait_for(std::unique_lock<M>& lk, std::stop_token stop, std::chrono::duration<Rep, Period> d, Pred pred) {
    return wait_stop_(lk, stop, detail::deadline_after(d), pred);
  }
  template <class M, class Clock, class Duration, class Pred>
  bool wait_until(std::unique_lock<M>& lk, std::stop_token stop, std::chrono::time_point<Clock, Duration> tp,
                  Pred pred) {
    return wait_stop_(lk, stop, detail::to_deadline(tp), pred);
  }

 private:
  template <class M, class Pred>
  bool wait_stop_(std::unique_lock<M>& lk, const std::stop_token& stop, sched::time_point deadline, Pred& pred) {
    return detail::cv_wait_stop(stop, deadline, pred,
                                [&](sched::time_point d, const std::stop_token* s) { return wait_until_(lk, d, s); });
  }
  template <class M>
  std::cv_status wait_until_(std::unique_lock<M>& lk, sched::time_point deadline,
                             const std::stop_token* stop = nullptr) {
    static_assert(std::is_base_of_v<mutex, M>,
                  "green::condition_variable works with green::mutex; "
                  "use green::condition_variable_any for other locks");
    if (!lk.owns_lock() || !lk.mutex()->owned_by_caller())
      throw std::system_error(std::make_error_code(std::errc::operation_not_permitted),
                              "green::condition_variable::wait: the caller does not hold the lock");
    return detail::cv_wait(core_, lk, deadline, "condition_variable", stop);
  }
  template <class M, class Pred>
  bool wait_pred_(std::unique_lock<M>& lk, sched::time_point deadline, Pred& pred) {
    while (!pred())
      if (wait_until_(lk, deadline) == std::cv_status::timeout) return pred();
    return true;
  }

  detail::cv_core core_;
};

// condition_variable_any works with any BasicLockable (a green or std lock,
// std::shared_lock<green::shared_mutex>, ...). Same semantics; the relock
// retries through a kill and ignores green::timeout scopes, then raises.
class condition_variable_any {
 public:
  void notify_one() noexcept { core_.notify_one(); }
  void notify_all() noexcept { core_.notify_all(); }

  template <class Lock>
  void wait(Lock& lk) {
    detail::cv_wait(core_, lk, sched::no_deadline, "condition_variable_any");
  }
  template <class Lock, class Pred>
  void wait(Lock& lk, Pred pred) {
    while (!pred()) wait(lk);
  }
  template <class Lock, class Rep, class Period>
  std::cv_status wait_for(Lock& lk, std::chrono::duration<Rep, Period> d) {
    return detail::cv_wait(core_, lk, detail::deadline_after(d), "condition_variable_any");
  }
  template <class Lock, class Clock, class Duration>
  std::cv_status wait_until(Lock& lk, std::chrono::time_point<Clock, Duration> tp) {
    return detail::cv_wait(core_, lk, detail::to_deadline(tp), "condition_variable_any");
  }
  template <class Lock, class Rep, class Period, class Pred>
  bool wait_for(Lock& lk, std::chrono::duration<Rep, Period> d, Pred pred) {
    return wait_until(lk, detail::deadline_after(d), std::move(pred));
  }
  template <class Lock, class Clock, class Duration, class Pred>
  bool wait_until(Lock& lk, std::chrono::time_point<Clock, Duration> tp, Pred pred) {
    sched::time_point deadline = detail::to_deadline(tp);
    while (!pred())
      if (detail::cv_wait(core_, lk, deadline, "condition_variable_any") == std::cv_status::timeout) return pred();
    return true;
  }
  // The stop-token forms: condition_variable's, with any lock.
  template <class Lock, class Pred>
  bool wait(Lock& lk, std::stop_token stop, Pred pred) {
    return wait_stop_(lk, stop, sched::no_deadline, pred);
  }
  template <class Lock, class Rep, class Period, class Pred>
  bool wait_for(Lock& lk, std::stop_token stop, std::chrono::duration<Rep, Period> d, Pred pred) {
    return wait_stop_(lk, stop, detail::deadline_after(d), pred);
  }
  template <class Lock, class Clock, class Duration, class Pred>
  bool wait_until(Lock& lk, std::stop_token stop, std::chrono::time_point<Clock, Duration> tp, Pred pred) {
    return wait_stop_(lk, stop, detail::to_deadline(tp), pred);
  }

 private:
  template <class Lock, class Pred>
  bool wait_stop_(Lock& lk, const std::stop_token& stop, sched::time_point deadline, Pred& pred) {
    return detail::cv_wait_stop(stop, deadline, pred, [&](sched::time_point d, const std::stop_token* s) {
      return detail::cv_wait(core_, lk, d, "condition_variable_any", s);
    });
  }

  detail::cv_core core_;
};

}  // namespace green
