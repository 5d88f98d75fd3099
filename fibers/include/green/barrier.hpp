// green::barrier — a reusable rendezvous of a fixed number of parties
// (std::barrier / threading.Barrier for fibers and threads).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>

#include "green/detail/wait.hpp"

namespace green {

// barrier blocks each of `parties` callers of arrive_and_wait() until all
// have arrived, then releases them together and resets for the next phase.
// The last to arrive runs `completion` (if any) before anyone is released;
// an exception from it propagates from that caller's arrive_and_wait()
// (the others are still released). A waiter killed, timed out by a green::
// timeout scope, or past its own deadline (arrive_and_wait_for) before its
// phase completes withdraws its arrival: the phase then waits for one more.
// Any mix of fibers and threads. Destroying it while fibers wait
// terminates, with a message.
class barrier {
 public:
  explicit barrier(std::size_t parties, std::function<void()> completion = {});
  ~barrier();
  barrier(const barrier&) = delete;
  barrier& operator=(const barrier&) = delete;

  // arrive_and_wait() arrives and waits for the phase to complete. Returns
  // the arrival index, 0 for the first to arrive and parties-1 for the last
  // (which ran the completion), like threading.Barrier.wait(). Raises
  // fiber_exit / timeout_error as above. Fiber or thread context.
  std::size_t arrive_and_wait();
  // arrive_and_wait_for() / arrive_and_wait_until() arrive and wait for the
  // phase to complete until a deadline. They return the arrival index as
  // arrive_and_wait() does, or std::nullopt if the deadline passed first: the
  // arrival is then withdrawn and the phase (generation) stays open, waiting
  // for one more arrival than before, so the others are neither released nor
  // broken (unlike Python's Barrier, which breaks). If the phase completes as
  // the deadline passes, the arrival counted and the index is returned. A
  // withdrawal shifts later arrivals' indices down by one, so two callers of
  // one phase may see the same index below parties-1; the index parties-1
  // still goes to exactly the caller that ran the completion. Raise like
  // arrive_and_wait(). Fiber or thread context.
  template <class Rep, class Period>
  std::optional<std::size_t> arrive_and_wait_for(std::chrono::duration<Rep, Period> d) {
    return arrive_and_wait_until_(detail::deadline_after(d));
  }
  template <class Clock, class Duration>
  std::optional<std::size_t> arrive_and_wait_until(std::chrono::time_point<Clock, Duration> tp) {
    return arrive_and_wait_until_(detail::to_deadline(tp));
  }
  // arrive_and_drop() arrives for this phase and leaves the barrier: later
  // phases expect one party fewer. Any thread.
  void arrive_and_drop();
  std::size_t parties() const noexcept;

 private:
  // arrive_locked() counts one arrival; if it completes the phase it runs the
  // completion and releases the phase's waiters. Returns with lk unlocked if
  // it completed the phase.
  bool arrive_locked(std::unique_lock<sched::spinlock>& lk);
  std::optional<std::size_t> arrive_and_wait_until_(sched::time_point deadline);

  // Invariants: arrived_ < parties_ between calls; every waiter in q_ has
  // tag == the phase it waits for (phase_, or phase_-1 while a completion
  // runs).
  mutable sched::spinlock mu_;
  std::size_t parties_;      // guarded by mu_
  std::size_t arrived_ = 0;  // guarded by mu_
  std::uint64_t phase_ = 0;  // guarded by mu_
  sched::wait_queue q_;      // guarded by mu_
  std::function<void()> completion_;
};

}  // namespace green
