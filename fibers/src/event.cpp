// green::event. Protocol: mutex.cpp's design header. set_ is written only
// under mu_ and waiters link only under mu_ after seeing it clear, so set()
// sees every waiter it must wake (Invariant: q_ is empty while set_).
#include "green/event.hpp"

namespace green {

event::~event() { detail::check_no_waiters(mu_, "green::event", this, q_); }

void event::set() noexcept {
  if (set_.load(std::memory_order_acquire)) return;  // acquire: pairs with the store below
  std::lock_guard lk(mu_);
  set_.store(true, std::memory_order_release);  // release: a waiter's lock-free check sees what preceded set()
  detail::wake_all(q_);
}

void event::clear() noexcept {
  std::lock_guard lk(mu_);
  set_.store(false, std::memory_order_relaxed);  // relaxed: mu_ orders it against waiters
}

bool event::wait_until_(sched::time_point deadline) {
  if (set_.load(std::memory_order_acquire)) return true;  // acquire: pairs with set()
  std::unique_lock lk(mu_);
  if (set_.load(std::memory_order_relaxed)) return true;
  sched::waiter w;
  sched::wake_reason r = detail::park_waiter(lk, q_, w, "event", deadline);
  if (r == sched::wake_reason::notified) return true;
  bool s = set_.load(std::memory_order_relaxed);
  lk.unlock();
  if (r != sched::wake_reason::timeout) detail::raise_interrupt(r);
  return s;
}

}  // namespace green
