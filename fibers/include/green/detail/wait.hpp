// green::detail wait helpers: the park/wake protocol of scheduler.hpp,
// written once for every primitive in fibers/ (mutexes, events, channels...).
//
// The hand-over rule every primitive follows (design header of mutex.cpp):
// a waker, holding the primitive's lock, first
// writes what it hands over (a value, a grant, waiter.chosen), then calls
// wake(), and touches the waiter no more; if wake() fails (the park already
// ended: killed, timed out, or a select won elsewhere) it takes back what it
// wrote and moves on to the next waiter. The parked side reads the hand-over
// only after park() returned `notified` (wake's release / park's acquire
// order it), and after any other reason relocks and unlinks itself.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>

#include "green/detail/deadline.hpp"
#include "green/detail/fiber_ext.hpp"
#include "green/errors.hpp"
#include "green/sched/io.hpp"
#include "green/sched/scheduler.hpp"
#include "green/sched/spinlock.hpp"

namespace green::detail {

using sched::clock;
using sched::no_deadline;
using sched::time_point;
using sched::wake_reason;

// self_id() names the caller for owner checks: the fiber's id, or on a plain
// thread a per-thread token with the top bit set (fiber ids never have it).
// Never 0. Any context.
std::uint64_t self_id() noexcept;

// Timeout scopes. The runtime's park and wait_fd know only the deadline
// they are given; green::timeout scopes are the public layer's (the scope
// deadline lives in the fiber's extension, detail/fiber_ext.hpp). Every
// park and fd wait in fibers/ and the patch library goes through
// scoped_park() / scoped_wait_fd(), or with_scope() where the runtime parks
// on its behalf (join's wait_done()).
//
// scoped_deadline is the deadline a park really uses, `when`: the caller's
// own or, if strictly earlier, the fiber's scope deadline (`scope`). reason()
// maps the park's result back: a timeout of the scope's deadline is
// wake_reason::scope_timeout, which raise_interrupt() turns into
// timeout_error; the caller's own timeout stays `timeout` (a status).
struct scoped_deadline {
  time_point when;
  bool scope;
  wake_reason reason(wake_reason r) const noexcept {
    return scope && r == wake_reason::timeout ? wake_reason::scope_timeout : r;
  }
};
// with_scope() folds fiber f's scope deadline into `own`. f null (a plain
// thread, where scopes have no effect) or without an extension: `own`
// unchanged. f's owner fiber (or f null) only.
inline scoped_deadline with_scope(const sched::fiber_base* f, time_point own) noexcept {
  if (f != nullptr)
    if (const fiber_ext* e = ext_peek(f); e != nullptr && e->scope_deadline < own) return {e->scope_deadline, true};
  return {own, false};
}
// scoped_park() is sched::park() with the scope folded in. The ticket names
// its parker's fiber, so this costs no TLS read. Fiber or thread context.
inline wake_reason scoped_park(sched::ticket t, const char* what, time_point deadline = no_deadline,
                               sched::after_switch_fn after = nullptr, void* after_arg = nullptr) noexcept {
  scoped_deadline d = with_scope(t.p->fiber, deadline);
  return d.reason(sched::park(t, what, d.when, after, after_arg));
}
// scoped_wait_fd() is sched::wait_fd() with the scope folded in. Fiber or
// thread context.
inline wake_reason scoped_wait_fd(int fd, sched::io_dir dir, time_point deadline = no_deadline) noexcept {
  scoped_deadline d = with_scope(sched::current_fiber(), deadline);
  return d.reason(sched::wait_fd(fd, dir, d.when));
}

// try_wake() hands `w` over: marks it chosen, wakes it with `r`; if the park
// already ended, unmarks it and returns false. Caller holds the lock that
// guards w's queue; w must already be unlinked.
inline bool try_wake(sched::waiter* w, wake_reason r = wake_reason::notified) noexcept {
  w->chosen = true;
  if (sched::wake(w->t, r)) return true;  // w may be gone now: touch it no more
  w->chosen = false;
  return false;
}
// wake_one() pops waiters until one wakes; returns whether one did. Caller
// holds the lock that guards q.
bool wake_one(sched::wait_queue& q, wake_reason r = wake_reason::notified) noexcept;
// wake_all() pops and wakes every waiter; returns how many woke. Ditto.
std::size_t wake_all(sched::wait_queue& q, wake_reason r = wake_reason::notified) noexcept;

// park_waiter() links `w` (a fresh ticket) at the tail of `q`, unlocks `lk`,
// calls between(arg) if given (a condition wait releases the user's lock
// there: a wake from then on is not lost) and parks. On `notified` or `closed` w was chosen and unlinked by its waker
// and lk is left unlocked. On any other reason it relocks lk and unlinks w,
// and returns with lk locked, so the caller can repair its state under the
// lock before deciding (timeout: a status; else raise_interrupt(), which
// raises nothing for `stopped`: a stop_scope's stop request, green/stop.hpp,
// ends the park like a timeout).
// Precondition: lk owns its lock. Fiber or thread context.
wake_reason park_waiter(std::unique_lock<sched::spinlock>& lk, sched::wait_queue& q, sched::waiter& w, const char* what,
                        time_point deadline, void (*between)(void*) = nullptr, void* arg = nullptr);

// handed_over() is true for the reasons after which the waker did the work.
inline bool handed_over(wake_reason r) noexcept { return r == wake_reason::notified || r == wake_reason::closed; }

// destroyed_with_waiters() reports a primitive destroyed while fibers or
// threads still wait on it, and terminates: those waiters would otherwise
// wake into freed memory. Never returns.
[[noreturn]] void destroyed_with_waiters(const char* type, const void* self, std::size_t n) noexcept;

// check_no_waiters() is the destructor check: it takes `mu` (so a waker still
// inside its critical section finishes before the memory goes away) and
// terminates if any queue still has waiters.
template <class... Queues>
void check_no_waiters(sched::spinlock& mu, const char* type, const void* self, const Queues&... qs) noexcept {
  std::lock_guard lk(mu);
  std::size_t n = (qs.size() + ... + 0);
  if (n != 0) destroyed_with_waiters(type, self, n);
}

// pause_scope_deadline suspends the calling fiber's green::timeout deadlines
// for its lifetime, for waits that must complete (relocking a mutex at the
// end of a condition wait). Fiber or thread context (no-op on a thread).
class pause_scope_deadline {
 public:
  pause_scope_deadline() noexcept;
  ~pause_scope_deadline();
  pause_scope_deadline(const pause_scope_deadline&) = delete;
  pause_scope_deadline& operator=(const pause_scope_deadline&) = delete;

 private:
  sched::fiber_base* f_;
  time_point saved_ = no_deadline;
};

// relock() reacquires `lk` at the end of a condition wait whatever happens
// meanwhile: green::timeout scopes are paused, and a kill that interrupts
// the relock is held back until the lock is held again. Returns true if a
// kill arrived (the caller then raises fiber_exit, lock held).
template <class Lock>
bool relock(Lock& lk) {
  pause_scope_deadline pause;
  bool killed = false;
  for (;;) {
    try {
      lk.lock();
      return killed;
    } catch (const fiber_exit&) {
      killed = true;  // delivered once: the next park waits normally
    }
  }
}

// timed_lockable<D> gives D the TimedLockable pair try_lock_for /
// try_lock_until on top of D's `bool lock_until_(time_point)` (D befriends
// it). Contexts and errors are D's lock().
template <class D>
class timed_lockable {
 public:
  template <class Rep, class Period>
  bool try_lock_for(std::chrono::duration<Rep, Period> d) {
    return static_cast<D&>(*this).lock_until_(deadline_after(d));
  }
  template <class Clock, class Duration>
  bool try_lock_until(std::chrono::time_point<Clock, Duration> tp) {
    return static_cast<D&>(*this).lock_until_(to_deadline(tp));
  }
};

// random_below() is a fast per-thread xorshift in [0, n). For select.
std::uint32_t random_below(std::uint32_t n) noexcept;

}  // namespace green::detail
