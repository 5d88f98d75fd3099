// green::shared_mutex — a readers-writer lock for fibers and threads.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

#include "green/detail/wait.hpp"

namespace green {

// shared_mutex admits one writer or any number of readers. Writer-preferring:
// once a writer waits, new readers queue behind it, so writers never starve;
// a writer's unlock() hands the lock to the next writer if one waits, else
// to every waiting reader. Works with std::unique_lock / std::shared_lock.
//
// Misuse: lock() or lock_shared() by the exclusive owner throws
// std::system_error(resource_deadlock_would_occur); unlock() by anyone but
// the exclusive owner, or unlock_shared() with no reader inside, throws
// std::system_error(operation_not_permitted) (readers are counted, not
// named: a reader releasing another's share is not detected). Destroying it
// while fibers wait terminates, with a message.
class shared_mutex : public detail::timed_lockable<shared_mutex> {
 public:
  shared_mutex() noexcept = default;
  ~shared_mutex();
  shared_mutex(const shared_mutex&) = delete;
  shared_mutex& operator=(const shared_mutex&) = delete;

  // Exclusive side. lock() raises fiber_exit if killed and timeout_error if
  // a green::timeout scope expires. Fiber or thread context.
  void lock() { lock_until_(sched::no_deadline); }
  bool try_lock() noexcept;
  // try_lock_for() / try_lock_until(): from timed_lockable.
  void unlock();

  // Shared side; same contexts and errors.
  void lock_shared() { lock_shared_until_(sched::no_deadline); }
  bool try_lock_shared() noexcept;
  template <class Rep, class Period>
  bool try_lock_shared_for(std::chrono::duration<Rep, Period> d) {
    return lock_shared_until_(detail::deadline_after(d));
  }
  template <class Clock, class Duration>
  bool try_lock_shared_until(std::chrono::time_point<Clock, Duration> tp) {
    return lock_shared_until_(detail::to_deadline(tp));
  }
  void unlock_shared();

 private:
  friend class detail::timed_lockable<shared_mutex>;
  bool lock_until_(sched::time_point deadline);
  bool lock_shared_until_(sched::time_point deadline);
  // grant_locked() passes the lock on: if free, to one writer; else, unless
  // a writer waits, to every waiting reader.
  void grant_locked() noexcept;
  void check_not_owner(const char* what) const;

  // Invariants: writer_ implies readers_ == 0; a queued writer implies no
  // new reader is admitted; readers wait only behind a writer (holding or
  // queued), so after every change grant_locked() admits whoever may go.
  mutable sched::spinlock mu_;
  bool writer_ = false;         // guarded by mu_
  std::size_t readers_ = 0;     // guarded by mu_
  std::atomic<std::uint64_t> owner_{0};  // exclusive owner's self_id(); see mutex::owned_by_caller()
  sched::wait_queue writers_;   // guarded by mu_
  sched::wait_queue readers_q_;  // guarded by mu_
};

}  // namespace green
