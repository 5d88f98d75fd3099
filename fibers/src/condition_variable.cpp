// green::condition_variable's waiting half. The protocol is mutex.cpp's
// (design header there): link under mu_, then release the user's lock, then
// park, so a notify that comes between the unlock and the park finds the
// waiter linked and its wake is not lost (the seam makes park() return at
// once). The user's lock is reacquired by detail::relock(), which neither a
// kill nor a green::timeout can cut short: std semantics say a wait returns
// or throws with the lock held.
#include "green/condition_variable.hpp"

namespace green::detail {

cv_core::~cv_core() { check_no_waiters(mu_, "green::condition_variable", this, q_); }

void cv_core::notify_one() noexcept {
  // acquire: a waiter linked before the notifier's critical section on the
  // user's mutex is visible here (happens-before through that mutex).
  if (size_.load(std::memory_order_acquire) == 0) return;
  std::lock_guard lk(mu_);
  wake_one(q_);
  size_.store(q_.size(), std::memory_order_relaxed);  // relaxed: mu_ orders it
}

void cv_core::notify_all() noexcept {
  if (size_.load(std::memory_order_acquire) == 0) return;  // acquire: as in notify_one()
  std::lock_guard lk(mu_);
  wake_all(q_);
  size_.store(0, std::memory_order_relaxed);
}

wake_reason cv_core::wait(void (*unlock)(void*), void* lock, time_point deadline, const char* what,
                          const std::stop_token* stop) {
  // Before lk: the scope ends after mu_ is free and before the caller
  // relocks the user's lock (whose park a stop must not end).
  std::optional<stop_scope> scope;
  if (stop != nullptr && stop->stop_possible()) scope.emplace(*stop);
  std::unique_lock lk(mu_);
  sched::waiter w;
  size_.store(q_.size() + 1, std::memory_order_release);  // release: pairs with notify's acquire
  wake_reason r = park_waiter(lk, q_, w, what, deadline, unlock, lock);
  if (!handed_over(r)) {
    size_.store(q_.size(), std::memory_order_relaxed);
    lk.unlock();
  }
  return r;
}

}  // namespace green::detail
