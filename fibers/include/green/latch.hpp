// green::latch — a single-use countdown (std::latch for fibers and threads).
#pragma once

#include <chrono>
#include <cstddef>

#include "green/detail/wait.hpp"

namespace green {

// latch starts at `count`; wait() blocks until count_down() calls bring it
// to zero, then every wait passes for good. Counting below zero throws
// std::logic_error. Any mix of fibers and threads. Destroying it while
// fibers wait terminates, with a message.
class latch {
 public:
  explicit latch(std::ptrdiff_t count);
  ~latch();
  latch(const latch&) = delete;
  latch& operator=(const latch&) = delete;

  // count_down() subtracts n (>= 0); reaching zero wakes every waiter.
  // Any thread. std::logic_error if the count would go negative.
  void count_down(std::ptrdiff_t n = 1);
  // try_wait() is true once the count is zero. Any thread.
  bool try_wait() const noexcept;
  // wait() returns once the count is zero. Raises fiber_exit if killed,
  // timeout_error if a green::timeout scope expires. Fiber or thread context.
  void wait() { wait_until_(sched::no_deadline); }
  template <class Rep, class Period>
  bool wait_for(std::chrono::duration<Rep, Period> d) {
    return wait_until_(detail::deadline_after(d));
  }
  // arrive_and_wait() is count_down(n) then wait().
  void arrive_and_wait(std::ptrdiff_t n = 1) {
    count_down(n);
    wait();
  }

 private:
  bool wait_until_(sched::time_point deadline);

  mutable sched::spinlock mu_;
  std::ptrdiff_t count_;  // guarded by mu_
  sched::wait_queue q_;   // guarded by mu_; empty once count_ == 0
};

}  // namespace green
