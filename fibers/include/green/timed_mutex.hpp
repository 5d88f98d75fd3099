// green::timed_mutex — a green::mutex with try_lock_for / try_lock_until.
#pragma once

#include <chrono>

#include "green/detail/wait.hpp"
#include "green/mutex.hpp"

namespace green {

// timed_mutex is a mutex whose acquisition can give up at a deadline. Same
// contexts, errors and misuse checks as green::mutex (the deadline costs
// nothing when unused, so it is the same lock). Meets TimedLockable.
class timed_mutex : public mutex, public detail::timed_lockable<timed_mutex> {
  // try_lock_for() / try_lock_until() (from timed_lockable) acquire the
  // mutex, or give up and return false once the time passes. Fiber or
  // thread context. Raise like lock() (fiber_exit, timeout_error,
  // resource_deadlock_would_occur).
  friend class detail::timed_lockable<timed_mutex>;
};

}  // namespace green
