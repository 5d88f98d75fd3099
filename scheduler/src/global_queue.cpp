// The global queue: fibers made runnable from outside the runtime, the
// overflow of full rings, and the queues of stuck workers (Go's
// globrunq / tokio's inject queue).
//
// Roles. Anyone pushes a linked batch (push_global); a worker takes a fair
// share into its ring (take_global): from find_runnable(), every 61st pick,
// and when a yield finds nothing local.
//
// Invariants: ghead..gtail is a list linked by next_ holding gsize fibers,
// guarded by gmu; gsize is also read without the lock, as a hint (relaxed:
// a stale read only delays a take until the next check, at most 61 picks;
// the idle protocol's re-check reads it seq_cst, see idle.cpp).
//
// Rejected: a lock-free MPSC list (the consumer side is many workers; a
// spinlock held for a few pointer writes is cheaper than the ABA care).
#include <algorithm>
#include <mutex>

#include "run_queue-inl.hpp"

namespace green::sched {

// push_global() appends first..last (n fibers, linked by next_). Any thread.
void scheduler::impl::push_global(fiber_base* first, fiber_base* last, std::size_t n) noexcept {
  last->next_ = nullptr;
  for (fiber_base* f = first; f; f = f->next_) f->state_.store(fiber_state::runnable, std::memory_order_relaxed);
  {
    lock_guard_of lk(gmu);
    if (gtail) gtail->next_ = first;
    else ghead = first;
    gtail = last;
    gsize.fetch_add(n, std::memory_order_relaxed);  // relaxed: written under gmu; unlocked readers take it as a hint
  }
  global_pushes.fetch_add(n, std::memory_order_relaxed);
}

// take_global() moves a fair share (size/N + 1), at most what fits in half
// the ring, into w's ring and returns one of them to run, like Go's
// globrunqget; the ring is filled after the lock is dropped. Owner of w only.
fiber_base* scheduler::impl::take_global(worker& w) noexcept {
  if (gsize.load(std::memory_order_relaxed) == 0) return nullptr;
  // acquire on head: pairs with the takers' CAS, so `room` is never more
  // than the ring really has (head only grows, so room only grows after).
  std::uint32_t room = w.cap - (w.tail.load(std::memory_order_relaxed) - w.head.load(std::memory_order_acquire));
  fiber_base* first;
  std::size_t n;
  {
    lock_guard_of lk(gmu);
    std::size_t size = gsize.load(std::memory_order_relaxed);
    if (size == 0) return nullptr;
    n = std::min<std::size_t>(
        {size / nactive.load(std::memory_order_relaxed) + 1, w.cap / 2, std::size_t(room) + 1, size});
    first = ghead;
    fiber_base* last = first;
    for (std::size_t i = 1; i < n; ++i) last = last->next_;
    ghead = last->next_;
    if (!ghead) gtail = nullptr;
    last->next_ = nullptr;
    gsize.fetch_sub(n, std::memory_order_relaxed);
  }
  // n - 1 <= room: every put fits (ring_put, not push_tail, so this room
  // does not call back into the ring's overflow).
  fiber_base* rest = first->next_;
  while (rest) {
    fiber_base* g = rest;
    rest = g->next_;
    w.ring_put(g);
  }
  return first;
}

}  // namespace green::sched
