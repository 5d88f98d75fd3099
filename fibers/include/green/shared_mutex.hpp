// green::shared_mutex — a readers-writer lock for fibers and threads.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

#include "green/detail/wait.hpp"

namespace green {

// shared_mutex admits one writer or any number of readers, and among the
// readers at most one upgrader (Boost.Thread's UpgradeLockable): a shared
// owner that may later turn its share into exclusive ownership atomically,
// without letting a writer in between. Writer-preferring: once a writer
// waits (or the upgrader waits to upgrade), new readers and upgraders queue
// behind it, so writers never starve; a writer's unlock() hands the lock to
// the next writer if one waits, else to the upgrader and every waiting
// reader. Works with std::unique_lock / std::shared_lock.
//
// Upgrade protocol (names as in Boost.Thread):
//   lock_upgrade()                    shared, excludes writers and other upgraders
//   unlock_upgrade_and_lock()         wait for the other readers to leave, then
//                                     own it exclusively (no writer can get in first)
//   unlock_and_lock_upgrade()         exclusive -> upgrade, at once
//   unlock_upgrade_and_lock_shared()  upgrade -> plain share, at once
//   unlock_and_lock_shared()          exclusive -> plain share (downgrade), at once
// If the upgrade's wait ends early (try_unlock_upgrade_and_lock_for's
// deadline, kill, green::timeout), the caller still holds upgrade ownership
// and must release it. green::upgrade_lock (upgrade_lock.hpp) is the RAII
// owner: upgrade_lock lk(m); ... auto w = lk.upgrade(); // a std::unique_lock
//
// Misuse: lock(), lock_shared() or lock_upgrade() by the exclusive owner,
// and lock() or lock_upgrade() by the upgrade owner, throw std::system_error
// (resource_deadlock_would_occur); unlock() by anyone but the exclusive
// owner, unlock_upgrade*() by anyone but the upgrade owner, or
// unlock_shared() with no reader inside, throw std::system_error
// (operation_not_permitted) (readers are counted, not named: a reader
// releasing another's share is not detected). Destroying it while fibers
// wait terminates, with a message.
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

  // Upgrade side; same contexts and errors (see the class comment).
  void lock_upgrade() { lock_upgrade_until_(sched::no_deadline); }
  bool try_lock_upgrade() noexcept;
  template <class Rep, class Period>
  bool try_lock_upgrade_for(std::chrono::duration<Rep, Period> d) {
    return lock_upgrade_until_(detail::deadline_after(d));
  }
  template <class Clock, class Duration>
  bool try_lock_upgrade_until(std::chrono::time_point<Clock, Duration> tp) {
    return lock_upgrade_until_(detail::to_deadline(tp));
  }
  void unlock_upgrade();
  // unlock_upgrade_and_lock() waits until the caller is the only reader left
  // and makes it the exclusive owner. The try_ variants give up at once / at
  // the deadline and return false, the caller still holding upgrade.
  void unlock_upgrade_and_lock() { upgrade_until_(sched::no_deadline, true); }
  bool try_unlock_upgrade_and_lock() { return upgrade_until_(sched::no_deadline, false); }
  template <class Rep, class Period>
  bool try_unlock_upgrade_and_lock_for(std::chrono::duration<Rep, Period> d) {
    return upgrade_until_(detail::deadline_after(d), true);
  }
  template <class Clock, class Duration>
  bool try_unlock_upgrade_and_lock_until(std::chrono::time_point<Clock, Duration> tp) {
    return upgrade_until_(detail::to_deadline(tp), true);
  }
  void unlock_and_lock_upgrade();
  void unlock_upgrade_and_lock_shared();
  void unlock_and_lock_shared();

 private:
  friend class detail::timed_lockable<shared_mutex>;
  bool lock_until_(sched::time_point deadline);
  bool lock_shared_until_(sched::time_point deadline);
  bool lock_upgrade_until_(sched::time_point deadline);
  // upgrade_until_() is unlock_upgrade_and_lock with a deadline; !block: no wait.
  bool upgrade_until_(sched::time_point deadline, bool block);
  // wait_grant_() parks on q until a grant_locked() hands the lock over
  // (true, lk unlocked). Otherwise re-runs the grant and returns false (own
  // deadline) or raises (kill, scope timeout), lk unlocked either way.
  bool wait_grant_(std::unique_lock<sched::spinlock>& lk, sched::wait_queue& q, const char* what,
                   sched::time_point deadline);
  // grant_locked() passes the lock on: to the waiting upgrade once no other
  // reader is left; else, if free, to one writer; else, unless a writer
  // waits, to the next upgrader and every waiting reader.
  void grant_locked() noexcept;
  // blocked_locked(): a waiting writer or upgrade holds new readers back.
  bool blocked_locked() const noexcept { return !writers_.empty() || !upgrade_q_.empty(); }
  void check_not_owner(const char* what) const;
  void check_upgrade_owner(const char* what) const;
  void check_exclusive_owner(const char* what) const;

  // Invariants: writer_ implies readers_ == 0 and !upgrader_; the upgrader
  // is counted in readers_; a queued writer or upgrade implies no new reader
  // or upgrader is admitted; upgrade_q_ holds at most the upgrader itself;
  // readers and upgraders wait only behind a writer or an upgrader (holding
  // or queued), so after every change grant_locked() admits whoever may go.
  mutable sched::spinlock mu_;
  bool writer_ = false;                          // guarded by mu_
  bool upgrader_ = false;                        // guarded by mu_
  std::size_t readers_ = 0;                      // guarded by mu_
  std::atomic<std::uint64_t> owner_{0};          // exclusive owner's self_id(); see mutex::owned_by_caller()
  std::atomic<std::uint64_t> upgrade_owner_{0};  // upgrade owner's self_id(); likewise
  sched::wait_queue writers_;                    // guarded by mu_
  sched::wait_queue readers_q_;                  // guarded by mu_
  sched::wait_queue upgraders_q_;                // lock_upgrade() waiters; guarded by mu_
  sched::wait_queue upgrade_q_;                  // the upgrader waiting to become writer; guarded by mu_
};

}  // namespace green
