// green::mutex — a mutual-exclusion lock for fibers and plain threads.
#pragma once

#include <atomic>
#include <cstdint>

#include "green/detail/wait.hpp"
#include "green/sched/scheduler.hpp"
#include "green/sched/spinlock.hpp"

namespace green {

class condition_variable;
class recursive_mutex;

// mutex is a non-recursive lock usable from fibers and plain OS threads at
// once: a fiber that must wait parks (its worker runs other fibers), a plain
// thread blocks on a futex. Meets Lockable, so std::unique_lock,
// std::scoped_lock and std::lock_guard work with it.
//
// Misuse is reported, not undefined: lock() by the owner throws
// std::system_error(resource_deadlock_would_occur); unlock() by anyone but
// the owner throws std::system_error(operation_not_permitted); destroying a
// mutex that fibers or threads wait on prints who/what and std::terminate()s.
class mutex {
 public:
  mutex() noexcept = default;
  ~mutex();
  mutex(const mutex&) = delete;
  mutex& operator=(const mutex&) = delete;

  // lock() acquires the mutex, waiting as long as it takes. Fiber or thread
  // context. Raises fiber_exit if the fiber is killed and timeout_error if a
  // green::timeout scope expires while it waits; std::system_error
  // (resource_deadlock_would_occur) if the caller already owns it.
  void lock() {
    std::uint32_t s = 0;
    // acquire: pairs with the release in unlock(); the section starts here
    if (state_.compare_exchange_strong(s, locked, std::memory_order_acquire, std::memory_order_relaxed)) [[likely]] {
      owner_.store(detail::self_id(), std::memory_order_relaxed);  // relaxed: see owned_by_caller()
      return;
    }
    lock_slow(sched::no_deadline);
  }

  // try_lock() acquires the mutex if it is free, without waiting. False if
  // it is held (by anyone, the caller included). Any context.
  bool try_lock() noexcept;

  // unlock() releases the mutex. Only the owner may call it: anyone else gets
  // std::system_error(operation_not_permitted). Any context.
  void unlock() {
    if (owner_.load(std::memory_order_relaxed) != detail::self_id()) [[unlikely]]
      throw_not_owner("green::mutex::unlock");
    unlock_owned();
  }

  // owned_by_caller() is true iff the calling fiber (or thread) holds the
  // lock. Exact for the caller: owner_ only ever equals the caller's id by
  // the caller's own store, so a relaxed load cannot see a stale "me".
  bool owned_by_caller() const noexcept { return owner_.load(std::memory_order_relaxed) == detail::self_id(); }

 protected:
  // lock_until_() is lock() with a deadline: false once it passes.
  bool lock_until_(sched::time_point deadline) {
    if (try_lock_fast()) return true;
    return lock_slow(deadline);
  }

 private:
  friend class condition_variable;
  friend class recursive_mutex;

  // State bits. Invariants: `waiters` is set iff q_ is non-empty (both change
  // only under qmu_, and `waiters` only while `locked`); `woken` is set while
  // a waiter that an unlock() woke is on its way to retry (so unlockers do
  // not wake a second one); owner_ is non-zero only while `locked` (a
  // hand-off leaves it 0 until the new owner stores its id).
  enum : std::uint32_t { locked = 1, waiters = 2, woken = 4 };

  bool try_lock_fast() noexcept {
    std::uint32_t s = 0;
    // acquire: pairs with the release in unlock()
    if (!state_.compare_exchange_strong(s, locked, std::memory_order_acquire, std::memory_order_relaxed)) return false;
    owner_.store(detail::self_id(), std::memory_order_relaxed);
    return true;
  }
  // unlock_owned() releases a mutex the caller is known to own.
  void unlock_owned() noexcept {
    owner_.store(0, std::memory_order_relaxed);
    std::uint32_t s = locked;
    // release: publishes the critical section to the next owner
    if (state_.compare_exchange_strong(s, 0, std::memory_order_release, std::memory_order_relaxed)) [[likely]]
      return;
    unlock_slow();
  }
  // lock_slow(): spin, then park. Returns false once `deadline` passes.
  bool lock_slow(sched::time_point deadline);
  void unlock_slow() noexcept;
  // throw_not_owner() raises operation_not_permitted for `what` (a name).
  [[noreturn]] void throw_not_owner(const char* what) const;

  std::atomic<std::uint32_t> state_{0};
  std::atomic<std::uint64_t> owner_{0};  // detail::self_id() of the holder
  sched::spinlock qmu_;
  sched::wait_queue q_;  // guarded by qmu_
};

}  // namespace green
