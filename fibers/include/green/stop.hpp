// green/stop.hpp — std::stop_token in green waits (the machinery; the
// stop-aware overloads live with their primitives: this_fiber::sleep_for,
// event::wait, condition_variable(_any)::wait, channel::recv).
//
// Roles. A stop-aware wait owns a stop_wait on its stack: a
// std::stop_callback on the caller's token plus the ticket of the park the
// wait is in. A stop request (any thread: a fiber, a plain thread, the
// waiter itself before it waits) runs the callback, which wakes that ticket
// with wake_reason::stopped through the seam's ordinary wake(). The wait
// then ends as if its deadline had passed: the primitive relocks, unlinks
// its waiter and returns its "not this time" answer (false, nullopt,
// pred()), never an exception.
//
// Protocol. The owner opens a park (prepare_park), links its waiter, then
// arm()s the stop_wait with the park's ticket before parking; if a stop came
// first, arm() wakes that ticket itself, so park() returns at once (the seam
// never loses a wake between prepare_park and park). A stop and a normal
// hand-over race on the park word: exactly one wake wins (the seam's CAS),
// the loser's wake is a no-op, so the waiter sees one outcome. Tickets are
// generation-tagged: a callback that runs after the park ended (or during a
// later one: the relock of a condition wait) wakes nothing.
//
// Deregistration. ~stop_callback waits for a callback running on another
// thread; the callback takes only stop_wait's own spinlock and calls wake(),
// which takes no lock a waiter could hold, so that wait is short and cannot
// deadlock. The stop_wait outlives every use of its ticket's parker (the
// fiber's control block or the thread's parker: both outlive the wait).
//
// The primitives built on park_waiter (event, condition variables, channel
// and queue waits) are reached through a stop_scope: it publishes the
// stop_wait in the caller's fiber_ext (or the plain thread's), and
// park_waiter arms it. Only parks inside the scope's extent are armed, so a
// condition wait ends its scope before relocking the user's mutex.
//
// Rejected: a stop_token parameter on park_waiter and the pipe (the token
// would thread through every primitive's template for one branch); making
// a stop raise fiber_exit (that is kill(); a stop is the quiet request).
#pragma once

#include <stop_token>

#include "green/detail/fiber_ext.hpp"
#include "green/sched/scheduler.hpp"
#include "green/sched/spinlock.hpp"

namespace green::detail {

// stop_wait: one stop-aware wait's link between a stop request and its park.
// Invariants: stopped_ never goes back to false; t_ names the latest park
// the owner armed (empty before the first). Both guarded by mu_.
class stop_wait {
 public:
  // Registers on `stop`; if a stop was already requested the callback runs
  // here and only records it. Owner (the waiting fiber or thread) only.
  explicit stop_wait(const std::stop_token& stop) : cb_(stop, waker{this}) {}
  stop_wait(const stop_wait&) = delete;
  stop_wait& operator=(const stop_wait&) = delete;

  // arm() says the park named by t is about to begin: a stop request ends
  // it with wake_reason::stopped; one that came already ends it now (park()
  // then returns at once). Owner only, between prepare_park() and park().
  void arm(sched::ticket t) noexcept;

 private:
  struct waker {
    stop_wait* self;
    void operator()() const noexcept { self->on_stop(); }
  };
  // on_stop() is the stop callback. Any thread.
  void on_stop() noexcept;

  sched::spinlock mu_;
  sched::ticket t_{};     // guarded by mu_
  bool stopped_ = false;  // guarded by mu_
  // Last: registered once the fields above exist, deregistered (waiting for
  // a callback running elsewhere) before they go.
  std::stop_callback<waker> cb_;
};

// stop_scope is a stop_wait that park_waiter() arms: for its lifetime the
// caller's parks in park_waiter-based primitives end on a stop request.
// Owner only; scopes nest (the inner one wins while it lives).
class stop_scope : public stop_wait {
 public:
  explicit stop_scope(const std::stop_token& stop);
  ~stop_scope();
  stop_scope(const stop_scope&) = delete;
  stop_scope& operator=(const stop_scope&) = delete;

 private:
  sched::fiber_base* fiber_;  // null: a plain thread
  stop_scope* outer_;
};

// thread_stop_scope() is the calling plain thread's innermost stop_scope, or
// null. Out of line: the thread's extension lives in fiber.cpp.
stop_scope* thread_stop_scope() noexcept;

// active_stop_scope() is the innermost stop_scope of f (null: the calling
// plain thread), or null. f's owner only. Inline: park_waiter asks on every
// park, and a fiber without an extension answers with one load.
inline stop_scope* active_stop_scope(const sched::fiber_base* f) noexcept {
  if (f == nullptr) return thread_stop_scope();
  const fiber_ext* e = ext_peek(f);
  return e != nullptr ? e->stop : nullptr;
}

// stoppable() runs `wait` (a blocking call built on park_waiter) so that a
// stop request on `stop` ends it: without a stop state, `wait` alone; with a
// stop already requested, `now` (the non-blocking form: what is ready wins,
// nothing waits); else `wait` inside a stop_scope. Fiber or thread context.
template <class Wait, class Now>
auto stoppable(const std::stop_token& stop, Wait&& wait, Now&& now) {
  if (!stop.stop_possible()) return wait();
  if (stop.stop_requested()) return now();
  stop_scope scope(stop);
  return wait();
}

}  // namespace green::detail
