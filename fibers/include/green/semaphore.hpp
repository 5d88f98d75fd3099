// green::semaphore and green::bounded_semaphore (Python's Semaphore and
// BoundedSemaphore; bounded_semaphore is a semaphore with one more check,
// so both live here).
#pragma once

#include <chrono>
#include <cstddef>
#include <limits>

#include "green/detail/wait.hpp"

namespace green {

// semaphore holds a count of permits. acquire() takes one, waiting while
// there are none; release() returns permits, handing them to waiters in
// FIFO order (a permit given to a waiter that is being killed goes to the
// next one). Any mix of fibers and threads. Destroying it while fibers wait
// terminates, with a message.
class semaphore {
 public:
  explicit semaphore(std::size_t initial = 1) noexcept : count_(initial) {}
  ~semaphore();
  semaphore(const semaphore&) = delete;
  semaphore& operator=(const semaphore&) = delete;

  // acquire() takes a permit, waiting for one. Raises fiber_exit if killed,
  // timeout_error if a green::timeout scope expires. Fiber or thread context.
  void acquire() { acquire_until_(sched::no_deadline); }
  // try_acquire() takes a permit if one is free. Any context.
  bool try_acquire() noexcept;
  // try_acquire_for() / try_acquire_until(): false if the time passes first.
  template <class Rep, class Period>
  bool try_acquire_for(std::chrono::duration<Rep, Period> d) {
    return acquire_until_(detail::deadline_after(d));
  }
  template <class Clock, class Duration>
  bool try_acquire_until(std::chrono::time_point<Clock, Duration> tp) {
    return acquire_until_(detail::to_deadline(tp));
  }
  // release() returns n permits. Any thread. Throws std::overflow_error if
  // the count would pass SIZE_MAX; a bounded_semaphore throws
  // std::logic_error if it would pass its initial count (released more
  // than acquired). The count is unchanged then.
  void release(std::size_t n = 1);
  // value() is the number of free permits (a snapshot). Any thread.
  std::size_t value() const noexcept;

  // Lockable spelling, so std::lock_guard / std::unique_lock work.
  void lock() { acquire(); }
  bool try_lock() noexcept { return try_acquire(); }
  void unlock() { release(); }

 protected:
  semaphore(std::size_t initial, std::size_t bound) noexcept : count_(initial), bound_(bound), bounded_(true) {}

 private:
  bool acquire_until_(sched::time_point deadline);
  [[noreturn]] void throw_release_error_(std::size_t n, std::size_t count) const;

  // Invariants: count_ > 0 implies q_ is empty (release hands permits to
  // waiters first); count_ + permits held <= bound_.
  mutable sched::spinlock mu_;
  std::size_t count_;  // guarded by mu_
  std::size_t bound_ = std::numeric_limits<std::size_t>::max();
  bool bounded_ = false;  // a bounded_semaphore: bound_ is its initial count
  sched::wait_queue q_;   // guarded by mu_
};

// bounded_semaphore is a semaphore that may never hold more permits than it
// started with: release() past that throws std::logic_error ("...
// bounded_semaphore released too many times: ..."), catching a release
// without a matching acquire.
class bounded_semaphore : public semaphore {
 public:
  explicit bounded_semaphore(std::size_t initial = 1) noexcept : semaphore(initial, initial) {}
};

}  // namespace green
