// green::timeout — a scoped deadline (gevent.Timeout, asyncio.wait_for).
#pragma once

#include <chrono>

#include "green/detail/deadline.hpp"
#include "green/errors.hpp"

namespace green::sched {
class fiber_base;
}

namespace green {

// While a timeout object is alive, every blocking call of the library made
// by this fiber (sleep, lock, channel, queue, event, join, socket I/O) raises
// green::timeout_error once the deadline has passed; e.owner() == &t names
// the scope that expired. Nested scopes work: the earliest deadline wins.
// Leaving the scope cancels it. Fiber context only; on a plain thread it
// has no effect. Code that never blocks is not interrupted (cooperative).
// A duration too long for the clock never expires (it saturates).
class timeout {
 public:
  template <class Rep, class Period>
  explicit timeout(std::chrono::duration<Rep, Period> d) : timeout(detail::deadline_after(d)) {}
  explicit timeout(sched::time_point deadline);
  ~timeout();
  timeout(const timeout&) = delete;
  timeout& operator=(const timeout&) = delete;

  sched::time_point deadline() const noexcept { return deadline_; }
  // expired() is true once the deadline has passed.
  bool expired() const noexcept { return sched::clock::now() >= deadline_; }

 private:
  friend const void* detail::expired_scope() noexcept;
  sched::fiber_base* fiber_;
  sched::time_point deadline_;
  sched::time_point saved_;  // the fiber's scope deadline before this one
  timeout* outer_;
};

}  // namespace green
