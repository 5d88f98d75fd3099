// green::shared_mutex. Protocol: mutex.cpp's design header. All state sits
// under one spinlock: readers-writer locks guard long read sections, where a
// lock-free reader count would save little and cost a second wake-up proof.
// Grants are handed over (writer_ = true or ++readers_ before the wake, taken
// back if the wake fails), so a waiter killed at the wrong moment never holds
// the lock. A writer that leaves the queue (killed, timed out) re-runs the
// grant: the readers it was holding back may go now.
//
// Upgrades (Boost.Thread's UpgradeLockable). The upgrader is a reader
// (counted in readers_) that also excludes other upgraders (upgrader_), so at
// most one share can ever turn exclusive and two upgraders can never wait for
// each other. Its upgrade waits in upgrade_q_ for readers_ == 1 (itself);
// meanwhile it holds back new readers like a queued writer would, and no
// writer can get in (a writer needs readers_ == 0). The grant order is
// therefore: the pending upgrade, a writer, then the next upgrader and every
// reader. An upgrade that ends without the grant (deadline, kill, scope
// timeout) leaves the caller an upgrader, and re-runs the grant for the
// readers it held back.
//
// Rejected: upgrade as "unlock_shared, then lock" (a writer could get in
// between, which is exactly what an upgrade lock exists to prevent); letting
// any reader upgrade (two upgrading readers deadlock on each other).
#include "green/shared_mutex.hpp"

#include <string>
#include <system_error>

namespace green {

namespace {
[[noreturn]] void throw_errc(std::errc code, const char* what, const char* why) {
  throw std::system_error(std::make_error_code(code), std::string(what) + ": " + why);
}
}  // namespace

shared_mutex::~shared_mutex() {
  detail::check_no_waiters(mu_, "green::shared_mutex", this, writers_, readers_q_, upgraders_q_, upgrade_q_);
}

void shared_mutex::check_not_owner(const char* what) const {
  if (owner_.load(std::memory_order_relaxed) == detail::self_id())
    throw_errc(std::errc::resource_deadlock_would_occur, what,
               "the caller already holds this shared_mutex exclusively");
}

void shared_mutex::check_upgrade_owner(const char* what) const {
  if (upgrade_owner_.load(std::memory_order_relaxed) != detail::self_id())
    throw_errc(std::errc::operation_not_permitted, what,
               "the caller does not hold upgrade ownership of this shared_mutex");
}

void shared_mutex::check_exclusive_owner(const char* what) const {
  if (owner_.load(std::memory_order_relaxed) != detail::self_id())
    throw_errc(std::errc::operation_not_permitted, what, "the caller does not hold this shared_mutex exclusively");
}

// ---------------------------------------------------------------------------
// exclusive

bool shared_mutex::try_lock() noexcept {
  std::lock_guard lk(mu_);
  if (writer_ || readers_ > 0) return false;
  writer_ = true;
  owner_.store(detail::self_id(), std::memory_order_relaxed);
  return true;
}

bool shared_mutex::lock_until_(sched::time_point deadline) {
  check_not_owner("green::shared_mutex::lock");
  if (upgrade_owner_.load(std::memory_order_relaxed) == detail::self_id())
    throw_errc(std::errc::resource_deadlock_would_occur, "green::shared_mutex::lock",
               "the caller holds upgrade ownership and would wait for itself; use unlock_upgrade_and_lock()");
  std::unique_lock lk(mu_);
  if (!writer_ && readers_ == 0) {
    writer_ = true;
  } else if (!wait_grant_(lk, writers_, "shared_mutex (write)", deadline)) {
    return false;
  }
  owner_.store(detail::self_id(), std::memory_order_relaxed);
  return true;
}

void shared_mutex::unlock() {
  check_exclusive_owner("green::shared_mutex::unlock");
  owner_.store(0, std::memory_order_relaxed);
  std::lock_guard lk(mu_);
  writer_ = false;
  grant_locked();
}

// ---------------------------------------------------------------------------
// shared

bool shared_mutex::try_lock_shared() noexcept {
  std::lock_guard lk(mu_);
  if (writer_ || blocked_locked()) return false;
  ++readers_;
  return true;
}

bool shared_mutex::lock_shared_until_(sched::time_point deadline) {
  check_not_owner("green::shared_mutex::lock_shared");
  std::unique_lock lk(mu_);
  if (!writer_ && !blocked_locked()) {
    ++readers_;
    return true;
  }
  return wait_grant_(lk, readers_q_, "shared_mutex (read)", deadline);  // readers_ counted us
}

void shared_mutex::unlock_shared() {
  std::lock_guard lk(mu_);
  if (readers_ == (upgrader_ ? 1u : 0u))
    throw_errc(std::errc::operation_not_permitted, "green::shared_mutex::unlock_shared",
               upgrader_ ? "no reader but the upgrader holds it (use unlock_upgrade())" : "no reader holds it");
  --readers_;
  grant_locked();
}

// ---------------------------------------------------------------------------
// upgrade

bool shared_mutex::try_lock_upgrade() noexcept {
  std::lock_guard lk(mu_);
  if (writer_ || upgrader_ || blocked_locked()) return false;
  upgrader_ = true;
  ++readers_;
  upgrade_owner_.store(detail::self_id(), std::memory_order_relaxed);
  return true;
}

bool shared_mutex::lock_upgrade_until_(sched::time_point deadline) {
  check_not_owner("green::shared_mutex::lock_upgrade");
  if (upgrade_owner_.load(std::memory_order_relaxed) == detail::self_id())
    throw_errc(std::errc::resource_deadlock_would_occur, "green::shared_mutex::lock_upgrade",
               "the caller already holds upgrade ownership of this shared_mutex");
  std::unique_lock lk(mu_);
  if (!writer_ && !upgrader_ && !blocked_locked()) {
    upgrader_ = true;
    ++readers_;
  } else if (!wait_grant_(lk, upgraders_q_, "shared_mutex (upgrade)", deadline)) {
    return false;
  }
  upgrade_owner_.store(detail::self_id(), std::memory_order_relaxed);
  return true;
}

void shared_mutex::unlock_upgrade() {
  check_upgrade_owner("green::shared_mutex::unlock_upgrade");
  upgrade_owner_.store(0, std::memory_order_relaxed);
  std::lock_guard lk(mu_);
  upgrader_ = false;
  --readers_;
  grant_locked();
}

bool shared_mutex::upgrade_until_(sched::time_point deadline, bool block) {
  check_upgrade_owner("green::shared_mutex::unlock_upgrade_and_lock");
  const std::uint64_t me = detail::self_id();
  std::unique_lock lk(mu_);
  if (readers_ != 1) {
    // On failure we are still the upgrader. On success the grant made us the
    // writer (upgrader_ cleared, readers_ 0).
    if (!block || !wait_grant_(lk, upgrade_q_, "shared_mutex (upgrade to write)", deadline)) return false;
  } else {
    upgrader_ = false;
    readers_ = 0;
    writer_ = true;
  }
  upgrade_owner_.store(0, std::memory_order_relaxed);
  owner_.store(me, std::memory_order_relaxed);
  return true;
}

void shared_mutex::unlock_and_lock_upgrade() {
  check_exclusive_owner("green::shared_mutex::unlock_and_lock_upgrade");
  const std::uint64_t me = detail::self_id();
  owner_.store(0, std::memory_order_relaxed);
  upgrade_owner_.store(me, std::memory_order_relaxed);
  std::lock_guard lk(mu_);
  writer_ = false;
  upgrader_ = true;
  readers_ = 1;
  grant_locked();
}

void shared_mutex::unlock_upgrade_and_lock_shared() {
  check_upgrade_owner("green::shared_mutex::unlock_upgrade_and_lock_shared");
  upgrade_owner_.store(0, std::memory_order_relaxed);
  std::lock_guard lk(mu_);
  upgrader_ = false;  // stays counted in readers_
  grant_locked();
}

void shared_mutex::unlock_and_lock_shared() {
  check_exclusive_owner("green::shared_mutex::unlock_and_lock_shared");
  owner_.store(0, std::memory_order_relaxed);
  std::lock_guard lk(mu_);
  writer_ = false;
  readers_ = 1;
  grant_locked();
}

// ---------------------------------------------------------------------------

bool shared_mutex::wait_grant_(std::unique_lock<sched::spinlock>& lk, sched::wait_queue& q, const char* what,
                               sched::time_point deadline) {
  sched::waiter w;
  sched::wake_reason r = detail::park_waiter(lk, q, w, what, deadline);
  if (r == sched::wake_reason::notified) return true;  // the grant was handed over
  grant_locked();                                      // whoever our wait held back (a queued writer or upgrade) may go
  lk.unlock();
  detail::raise_interrupt(r);
  return false;
}

void shared_mutex::grant_locked() noexcept {
  if (writer_) return;
  if (sched::waiter* w = upgrade_q_.front()) {
    if (readers_ != 1) return;  // the upgrade waits for the others; nobody new gets in
    upgrade_q_.pop_front();
    upgrader_ = false;
    readers_ = 0;
    writer_ = true;
    if (detail::try_wake(w)) return;
    writer_ = false;  // its wait ended: it is still the upgrader
    readers_ = 1;
    upgrader_ = true;
  }
  if (readers_ == 0) {
    while (sched::waiter* w = writers_.pop_front()) {
      writer_ = true;
      if (detail::try_wake(w)) return;
      writer_ = false;
    }
  }
  if (!writers_.empty()) return;  // a writer waits for the readers inside to leave
  while (!upgrader_) {
    sched::waiter* w = upgraders_q_.pop_front();
    if (w == nullptr) break;
    upgrader_ = true;
    ++readers_;
    if (detail::try_wake(w)) break;
    upgrader_ = false;
    --readers_;
  }
  while (sched::waiter* w = readers_q_.pop_front()) {
    ++readers_;
    if (!detail::try_wake(w)) --readers_;
  }
}

}  // namespace green
