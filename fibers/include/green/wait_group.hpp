// green::wait_group — wait for a collection of fibers to finish (Go's
// sync.WaitGroup).
#pragma once

#include <chrono>
#include <cstddef>

#include "green/detail/wait.hpp"

namespace green {

// wait_group counts outstanding work: add(n) before starting n tasks, each
// calls done() when finished, wait() blocks until the counter is zero. It
// may be reused once a wait has returned. A negative counter throws
// std::logic_error ("negative counter"), as Go panics. Any mix of fibers
// and threads. Destroying it while fibers wait terminates, with a message.
class wait_group {
 public:
  wait_group() noexcept = default;
  ~wait_group();
  wait_group(const wait_group&) = delete;
  wait_group& operator=(const wait_group&) = delete;

  // add() adds delta (which may be negative) to the counter; reaching zero
  // wakes every waiter. Any thread.
  void add(std::ptrdiff_t delta = 1);
  // done() is add(-1).
  void done() { add(-1); }
  // wait() returns once the counter is zero. Raises fiber_exit if killed,
  // timeout_error if a green::timeout scope expires. Fiber or thread context.
  void wait() { wait_until_(sched::no_deadline); }
  // wait_for(): false if the time passes first.
  template <class Rep, class Period>
  bool wait_for(std::chrono::duration<Rep, Period> d) {
    return wait_until_(detail::deadline_after(d));
  }
  // count() is the counter (a snapshot). Any thread.
  std::ptrdiff_t count() const noexcept;

 private:
  bool wait_until_(sched::time_point deadline);

  mutable sched::spinlock mu_;
  std::ptrdiff_t count_ = 0;  // guarded by mu_
  sched::wait_queue q_;       // guarded by mu_; empty while count_ == 0
};

}  // namespace green
