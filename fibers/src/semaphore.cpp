// green::semaphore. Protocol: mutex.cpp's design header. Permits are handed
// over (FIFO, no barging): release() gives a permit to the first waiter
// whose wake succeeds and only the rest go to count_, so a fiber that waits
// cannot be overtaken forever by fresh acquirers, and a permit handed to a
// waiter that was killed meanwhile goes to the next one.
#include "green/semaphore.hpp"

#include <stdexcept>
#include <string>

namespace green {

semaphore::~semaphore() { detail::check_no_waiters(mu_, "green::semaphore", this, q_); }

bool semaphore::try_acquire() noexcept {
  std::lock_guard lk(mu_);
  if (count_ == 0) return false;
  --count_;
  return true;
}

bool semaphore::acquire_until_(sched::time_point deadline) {
  std::unique_lock lk(mu_);
  if (count_ > 0) {
    --count_;
    return true;
  }
  sched::waiter w;
  sched::wake_reason r = detail::park_waiter(lk, q_, w, "semaphore", deadline);
  if (r == sched::wake_reason::notified) return true;  // a permit was handed to us
  lk.unlock();
  detail::raise_interrupt(r);
  return false;  // timeout
}

// Any thread. Nothing changes when it throws.
void semaphore::release(std::size_t n) {
  std::unique_lock lk(mu_);
  if (n > bound_ - count_) {
    std::size_t count = count_;
    lk.unlock();
    throw_release_error_(n, count);
  }
  while (n > 0 && detail::wake_one(q_)) --n;
  count_ += n;
}

void semaphore::throw_release_error_(std::size_t n, std::size_t count) const {
  std::string args = "release(" + std::to_string(n) + ") with " + std::to_string(count) + " free";
  if (bounded_)
    throw std::logic_error("green::bounded_semaphore released too many times: " + args +
                           " would free more than acquired (initial count " + std::to_string(bound_) + ")");
  throw std::overflow_error("green::semaphore: " + args + " would overflow its count (at most " +
                            std::to_string(bound_) + ")");
}

std::size_t semaphore::value() const noexcept {
  std::lock_guard lk(mu_);
  return count_;
}

}  // namespace green
