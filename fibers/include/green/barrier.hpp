// green::barrier — a reusable rendezvous of a fixed number of parties
// (std::barrier / threading.Barrier for fibers and threads).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include "green/detail/wait.hpp"

namespace green {

// barrier blocks each of `parties` callers of arrive_and_wait() until all
// have arrived, then releases them together and resets for the next phase.
// The last to arrive runs `completion` (if any) before anyone is released;
// an exception from it propagates from that caller's arrive_and_wait()
// (the others are still released). A waiter killed or timed out (green::
// timeout) before its phase completes withdraws its arrival and raises.
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
  // arrive_and_drop() arrives for this phase and leaves the barrier: later
  // phases expect one party fewer. Any thread.
  void arrive_and_drop();
  std::size_t parties() const noexcept;

 private:
  // arrive_locked() counts one arrival; if it completes the phase it runs the
  // completion and releases the phase's waiters. Returns with lk unlocked if
  // it completed the phase.
  bool arrive_locked(std::unique_lock<sched::spinlock>& lk);

  // Invariants: arrived_ < parties_ between calls; every waiter in q_ has
  // tag == the phase it waits for (phase_, or phase_-1 while a completion
  // runs).
  mutable sched::spinlock mu_;
  std::size_t parties_;   // guarded by mu_
  std::size_t arrived_ = 0;  // guarded by mu_
  std::uint64_t phase_ = 0;  // guarded by mu_
  sched::wait_queue q_;      // guarded by mu_
  std::function<void()> completion_;
};

}  // namespace green
