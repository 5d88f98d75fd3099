// green::latch, green::wait_group and green::barrier: counters whose waiters
// all wake together. Protocol: mutex.cpp's design header. The counter and
// the queue share one spinlock, and the transition that releases waiters
// (count reaches zero, the last party arrives) wakes them inside it, so a
// waiter that sees the released state on its lock-free path may destroy the
// object at once: the destructor takes the spinlock and so waits for the
// waker to leave.
#include "green/latch.hpp"

#include <stdexcept>

#include "green/barrier.hpp"
#include "green/wait_group.hpp"

namespace green {

namespace {
// wait_for_zero() is the wait of latch and wait_group: park until woken by
// the count reaching zero. lk holds the spinlock guarding `count`.
bool wait_for_zero(std::unique_lock<sched::spinlock>& lk, sched::wait_queue& q, const std::ptrdiff_t& count,
                   const char* what, sched::time_point deadline) {
  if (count == 0) return true;
  sched::waiter w;
  sched::wake_reason r = detail::park_waiter(lk, q, w, what, deadline);
  if (r == sched::wake_reason::notified) return true;
  bool zero = count == 0;
  lk.unlock();
  detail::raise_interrupt(r);
  return zero;
}
}  // namespace

// ---------------------------------------------------------------------------
// latch

latch::latch(std::ptrdiff_t count) : count_(count) {
  if (count < 0) throw std::logic_error("green::latch: negative initial count");
}

latch::~latch() { detail::check_no_waiters(mu_, "green::latch", this, q_); }

void latch::count_down(std::ptrdiff_t n) {
  std::lock_guard lk(mu_);
  if (n < 0 || n > count_) throw std::logic_error("green::latch::count_down: the count would go below zero");
  count_ -= n;
  if (count_ == 0) detail::wake_all(q_);
}

bool latch::try_wait() const noexcept {
  std::lock_guard lk(mu_);
  return count_ == 0;
}

bool latch::wait_until_(sched::time_point deadline) {
  std::unique_lock lk(mu_);
  return wait_for_zero(lk, q_, count_, "latch", deadline);
}

// ---------------------------------------------------------------------------
// wait_group

wait_group::~wait_group() { detail::check_no_waiters(mu_, "green::wait_group", this, q_); }

void wait_group::add(std::ptrdiff_t delta) {
  std::lock_guard lk(mu_);
  if (delta < 0 && -delta > count_)
    throw std::logic_error("green::wait_group: negative counter (done() called more often than add())");
  count_ += delta;
  if (count_ == 0) detail::wake_all(q_);
}

std::ptrdiff_t wait_group::count() const noexcept {
  std::lock_guard lk(mu_);
  return count_;
}

bool wait_group::wait_until_(sched::time_point deadline) {
  std::unique_lock lk(mu_);
  return wait_for_zero(lk, q_, count_, "wait_group", deadline);
}

// ---------------------------------------------------------------------------
// barrier

barrier::barrier(std::size_t parties, std::function<void()> completion)
    : parties_(parties), completion_(std::move(completion)) {
  if (parties == 0) throw std::invalid_argument("green::barrier: zero parties");
}

barrier::~barrier() { detail::check_no_waiters(mu_, "green::barrier", this, q_); }

std::size_t barrier::parties() const noexcept {
  std::lock_guard lk(mu_);
  return parties_;
}

bool barrier::arrive_locked(std::unique_lock<sched::spinlock>& lk) {
  if (++arrived_ < parties_) return false;
  const std::uint64_t done = phase_++;
  arrived_ = 0;
  // Release the phase's waiters even if the completion throws.
  struct release {
    barrier* b;
    std::unique_lock<sched::spinlock>& lk;
    std::uint64_t done;
    ~release() {
      lk.lock();
      // Waiters of the next phase may have linked meanwhile: keep them.
      for (std::size_t n = b->q_.size(); n > 0; --n) {
        sched::waiter* w = b->q_.pop_front();
        if (w->tag == done) detail::try_wake(w);
        else b->q_.push_back(w);
      }
      lk.unlock();
    }
  } rel{this, lk, done};
  lk.unlock();
  if (completion_) completion_();  // outside the spinlock: it may block
  return true;
}

std::size_t barrier::arrive_and_wait() { return *arrive_and_wait_until_(sched::no_deadline); }

std::optional<std::size_t> barrier::arrive_and_wait_until_(sched::time_point deadline) {
  std::unique_lock lk(mu_);
  const std::size_t index = arrived_;
  const std::uint64_t phase = phase_;
  if (arrive_locked(lk)) return index;
  sched::waiter w;
  w.tag = phase;
  sched::wake_reason r = detail::park_waiter(lk, q_, w, "barrier", deadline);
  if (r == sched::wake_reason::notified) return index;
  // lk is held and w unlinked. If the phase completed meanwhile, our arrival
  // counted (and the completion ran for it): report the index, or raise.
  const bool completed = phase_ != phase;
  if (!completed) --arrived_;  // withdraw: the phase waits for one more
  lk.unlock();
  detail::raise_interrupt(r);  // killed, scope timeout; returns for our own deadline
  if (completed) return index;
  return std::nullopt;
}

void barrier::arrive_and_drop() {
  std::unique_lock lk(mu_);
  // Leaving lowers the count this phase (and later ones) waits for.
  --parties_;
  if (parties_ == 0) return;
  if (arrived_ >= parties_) {
    arrived_ = parties_ - 1;
    arrive_locked(lk);
  }
}

}  // namespace green
