// green::recursive_mutex — a mutex its owner may lock again (Python's RLock).
#pragma once

#include <chrono>
#include <cstddef>

#include "green/detail/wait.hpp"
#include "green/mutex.hpp"

namespace green {

// recursive_mutex may be locked again by the fiber (or thread) that owns it;
// it is released when unlock() has been called as many times as lock().
// Only the owner may unlock: anyone else gets std::system_error
// (operation_not_permitted), and an unlock() past the count is impossible
// for the same reason (the owner is gone once the count reaches 0).
// Fiber or thread context; also TimedLockable.
class recursive_mutex : public detail::timed_lockable<recursive_mutex> {
 public:
  recursive_mutex() noexcept = default;
  recursive_mutex(const recursive_mutex&) = delete;
  recursive_mutex& operator=(const recursive_mutex&) = delete;

  // lock() acquires the mutex or, for its owner, counts once more. Raises
  // like green::mutex::lock() (fiber_exit, timeout_error).
  void lock() {
    if (m_.owned_by_caller()) {
      ++count_;
      return;
    }
    m_.lock();
    count_ = 1;
  }
  bool try_lock() noexcept {
    if (m_.owned_by_caller()) {
      ++count_;
      return true;
    }
    if (!m_.try_lock()) return false;
    count_ = 1;
    return true;
  }
  // try_lock_for() / try_lock_until(): from timed_lockable.
  // unlock() undoes one lock(); the last one releases the mutex. Throws
  // std::system_error(operation_not_permitted) unless the caller owns it.
  void unlock() {
    if (!m_.owned_by_caller()) m_.throw_not_owner("green::recursive_mutex::unlock");
    if (--count_ == 0) m_.unlock_owned();
  }

  bool owned_by_caller() const noexcept { return m_.owned_by_caller(); }
  // depth() is how many times the caller holds it (0 if it does not).
  std::size_t depth() const noexcept { return m_.owned_by_caller() ? count_ : 0; }

 private:
  friend class detail::timed_lockable<recursive_mutex>;
  bool lock_until_(sched::time_point deadline) {
    if (m_.owned_by_caller()) {
      ++count_;
      return true;
    }
    if (!m_.lock_until_(deadline)) return false;
    count_ = 1;
    return true;
  }

  mutex m_;
  std::size_t count_ = 0;  // guarded by m_ (read and written by the owner only)
};

}  // namespace green
