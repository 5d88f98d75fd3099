// green::shared_mutex. Protocol: mutex.cpp's design header. All state sits
// under one spinlock: readers-writer locks guard long read sections, where a
// lock-free reader count would save little and cost a second wake-up proof.
// Grants are handed over (writer_ = true or ++readers_ before the wake, taken
// back if the wake fails), so a waiter killed at the wrong moment never holds
// the lock. A writer that leaves the queue (killed, timed out) re-runs the
// grant: the readers it was holding back may go now.
#include "green/shared_mutex.hpp"

#include <string>
#include <system_error>

namespace green {

shared_mutex::~shared_mutex() {
  detail::check_no_waiters(mu_, "green::shared_mutex", this, writers_, readers_q_);
}

void shared_mutex::check_not_owner(const char* what) const {
  if (owner_.load(std::memory_order_relaxed) == detail::self_id())
    throw std::system_error(std::make_error_code(std::errc::resource_deadlock_would_occur),
                            std::string(what) + ": the caller already holds this shared_mutex exclusively");
}

bool shared_mutex::try_lock() noexcept {
  std::lock_guard lk(mu_);
  if (writer_ || readers_ > 0) return false;
  writer_ = true;
  owner_.store(detail::self_id(), std::memory_order_relaxed);
  return true;
}

bool shared_mutex::lock_until_(sched::time_point deadline) {
  check_not_owner("green::shared_mutex::lock");
  std::unique_lock lk(mu_);
  if (!writer_ && readers_ == 0) {
    writer_ = true;
  } else {
    sched::waiter w;
    sched::wake_reason r = detail::park_waiter(lk, writers_, w, "shared_mutex (write)", deadline);
    if (r != sched::wake_reason::notified) {
      if (writers_.empty() && !writer_) grant_locked();  // readers held back by us may go
      lk.unlock();
      detail::raise_interrupt(r);
      return false;
    }
  }
  owner_.store(detail::self_id(), std::memory_order_relaxed);
  return true;
}

void shared_mutex::unlock() {
  if (owner_.load(std::memory_order_relaxed) != detail::self_id())
    throw std::system_error(std::make_error_code(std::errc::operation_not_permitted),
                            "green::shared_mutex::unlock: the caller does not hold it exclusively");
  owner_.store(0, std::memory_order_relaxed);
  std::lock_guard lk(mu_);
  writer_ = false;
  grant_locked();
}

bool shared_mutex::try_lock_shared() noexcept {
  std::lock_guard lk(mu_);
  if (writer_ || !writers_.empty()) return false;
  ++readers_;
  return true;
}

bool shared_mutex::lock_shared_until_(sched::time_point deadline) {
  check_not_owner("green::shared_mutex::lock_shared");
  std::unique_lock lk(mu_);
  if (!writer_ && writers_.empty()) {
    ++readers_;
    return true;
  }
  sched::waiter w;
  sched::wake_reason r = detail::park_waiter(lk, readers_q_, w, "shared_mutex (read)", deadline);
  if (r == sched::wake_reason::notified) return true;  // readers_ was counted for us
  lk.unlock();
  detail::raise_interrupt(r);
  return false;
}

void shared_mutex::unlock_shared() {
  std::lock_guard lk(mu_);
  if (readers_ == 0)
    throw std::system_error(std::make_error_code(std::errc::operation_not_permitted),
                            "green::shared_mutex::unlock_shared: no reader holds it");
  if (--readers_ == 0) grant_locked();
}

void shared_mutex::grant_locked() noexcept {
  if (writer_) return;
  if (readers_ == 0) {
    while (sched::waiter* w = writers_.pop_front()) {
      writer_ = true;
      if (detail::try_wake(w)) return;
      writer_ = false;
    }
  }
  if (!writers_.empty()) return;  // a writer waits for the readers inside to leave
  while (sched::waiter* w = readers_q_.pop_front()) {
    ++readers_;
    if (!detail::try_wake(w)) --readers_;
  }
}

}  // namespace green
