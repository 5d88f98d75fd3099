// The run queue: each worker's ring and LIFO slot (Go's runq and runnext).
//
// Roles. The owner pushes at the tail (push/push_tail/ring_put, in
// run_queue-inl.hpp) and picks from the head (pick_local). Three others
// take a batch from a ring's head, all through claim_batch(): a thief
// (steal_from: half, into its own ring), the owner when its ring is full
// (push_overflow: half, to the global queue), and the monitor (hand_off in
// monitor.cpp: everything of a stuck worker, to the global queue).
//
// Invariants: tail is written only by the owner; head advances only by CAS;
// ring[head..tail) are the queued fibers and tail - head <= capacity; a
// slot is read by a taker before its CAS moves head past it (after that the
// owner may reuse it), except by the owner itself, who alone writes slots.
// runnext holds at most one fiber, taken by exchange/CAS.
//
// Orderings: claim_batch()'s acquire load of tail pairs with the release
// store of tail in put_at(), so the slots it reads are written; its acq_rel
// CAS on head pairs with the owner's acquire load of head in push_tail(),
// so the owner reuses a slot only after the taker has read it.
//
// Rejected: Chase-Lev deques (LIFO for the owner hurts fairness; the FIFO
// ring plus one LIFO slot gives locality without it); a lock per ring (the
// owner's push and pick would pay it on every switch).
#include <algorithm>

#include "run_queue-inl.hpp"

namespace green::sched {

// Any thread; see worker.hpp.
std::uint32_t claim_batch(worker& v, fiber_base** out, std::uint32_t max, bool half, std::uint32_t* first) noexcept {
  for (;;) {
    std::uint32_t h = v.head.load(std::memory_order_acquire);  // acquire: pairs with other takers' CAS on head
    std::uint32_t t = v.tail.load(std::memory_order_acquire);  // acquire: pairs with the owner's release of tail
    std::uint32_t n = t - h;
    if (n == 0) return 0;
    if (n > v.cap) continue;  // inconsistent snapshot (head moved between the loads)
    if (half) n = n - n / 2;
    n = std::min(n, max);
    if (out != nullptr)
      for (std::uint32_t i = 0; i < n; ++i) out[i] = v.ring[(h + i) & (v.cap - 1)].load(std::memory_order_relaxed);
    // acq_rel: acquire orders our slot reads (above or, for the owner,
    // after) after the claim; release pairs with the owner's acquire of head
    // in push_tail(), which may then reuse the slots.
    if (v.head.compare_exchange_weak(h, h + n, std::memory_order_acq_rel)) {
      *first = h;
      return n;
    }
  }
}

// push_overflow() moves half of a full ring plus f to the global queue in one
// batch. It claims the slots first and links them afterwards: once head has
// moved past them no thief reads them, and only the owner (us) could
// overwrite them. No batch array: this runs on fiber stacks, where a 4 KiB
// local would cost every fiber that wakes another an extra stack page.
// Returns false if the ring was emptied meanwhile (retry the push). Owner only.
GREEN_NOINLINE_COLD bool worker::push_overflow(fiber_base* f, std::uint32_t h, std::uint32_t t) noexcept {
  (void)t;
  // Head moved since the caller saw the ring full: a thief made room, retry.
  if (head.load(std::memory_order_relaxed) != h) return false;
  std::uint32_t first = 0;
  std::uint32_t n = claim_batch(*this, nullptr, cap / 2, true, &first);
  if (n == 0) return false;
  fiber_base* head_f = ring[first & (cap - 1)].load(std::memory_order_relaxed);
  fiber_base* prevf = head_f;
  for (std::uint32_t i = 1; i < n; ++i) {
    fiber_base* g = ring[(first + i) & (cap - 1)].load(std::memory_order_relaxed);
    prevf->next_ = g;
    prevf = g;
  }
  prevf->next_ = f;
  im->push_global(head_f, f, n + 1);
  return true;
}

// steal_from() takes half of v's ring into ours and returns one fiber of it
// to run; with `take_runnext`, v's LIFO slot when its ring is empty.
// The stealing worker (the owner of *this) only.
fiber_base* worker::steal_from(worker& v, bool take_runnext) noexcept {
  fiber_base* batch[512];  // cap / 2 <= 512 (config allows a ring of 1024 at most)
  std::uint32_t first = 0;
  std::uint32_t n = claim_batch(v, batch, std::min<std::uint32_t>(v.cap / 2, 512), true, &first);
  if (n == 0) {
    if (!take_runnext) return nullptr;
    fiber_base* f = v.runnext.load(std::memory_order_acquire);
    // acq_rel: acquire pairs with the release half of v's push() exchange
    if (f && v.runnext.compare_exchange_strong(f, nullptr, std::memory_order_acq_rel)) {
      im->steals.fetch_add(1, std::memory_order_relaxed);  // a steal too (stats::steals)
      return f;
    }
    return nullptr;
  }
  fiber_base* f = batch[--n];
  // Our ring was empty when we began to steal, so these nearly always fit;
  // push_tail() overflows safely if timers we fired filled it meanwhile.
  for (std::uint32_t i = 0; i < n; ++i) push_tail(batch[i]);
  im->steals.fetch_add(n + 1, std::memory_order_relaxed);
  return f;
}

}  // namespace green::sched
