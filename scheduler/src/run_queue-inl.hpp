// The run queue's hot half: push, pick and prefetch, inlined into every
// room that runs the switch path (park, wake, yield, fiber exit, the
// worker loop). The cold half (overflow, steal, claim_batch) is in
// run_queue.cpp, whose header says the protocol.
//
// Orderings (both sides named):
//   tail: the owner's release store in ring_put() pairs with the acquire
//         load of tail in claim_batch() (a thief sees the slot it claims).
//   head: every taker advances it by CAS; the owner's acquire load in
//         push_tail() pairs with a taker's acq_rel CAS, so the owner reuses
//         a slot only after the taker has read it.
//   runnext: exchange/CAS, acq_rel/acquire; pairs with steal_from() and
//         hand_off().
#pragma once

#include "runtime_impl.hpp"

namespace green::sched {

// push() queues f: the LIFO slot (`lifo`) or the ring's tail. Owner only.
GREEN_HOT void worker::push(fiber_base* f, bool lifo) noexcept {
  f->state_.store(fiber_state::runnable, std::memory_order_relaxed);
  // Shuffle may demote a LIFO push to the tail, never promote a tail push:
  // FIFO order among tail pushes (yields, expired timers) is a guarantee.
  if (lifo && shuffle && (xorshift(rng) & 1)) lifo = false;
  if (lifo) {
    // acq_rel: release publishes f to a thief that takes runnext; acquire
    // gets the old occupant that we move to the ring.
    f = runnext.exchange(f, std::memory_order_acq_rel);
    if (f == nullptr) return;
  }
  push_tail(f);
}

// put_at() stores f in slot t (the current tail) and publishes it; ring_put()
// appends f to a ring the caller knows has room. Owner only.
GREEN_HOT void worker::put_at(fiber_base* f, std::uint32_t t) noexcept {
  hint[t & (cap - 1)] = fiber_parts::ctx(f).resume_point();
  ring[t & (cap - 1)].store(f, std::memory_order_relaxed);
  tail.store(t + 1, std::memory_order_release);  // release: publishes the slot to claim_batch()'s acquire of tail
}
GREEN_HOT void worker::ring_put(fiber_base* f) noexcept {
  std::uint32_t t = tail.load(std::memory_order_relaxed);  // owner's own variable
  GREEN_DCHECK(t - head.load(std::memory_order_relaxed) < cap, "ring_put() on a full ring");
  put_at(f, t);
}

// push_tail() appends f to the ring, moving half of a full ring to the
// global queue first. Owner only.
inline void worker::push_tail(fiber_base* f) noexcept {
  for (;;) {
    std::uint32_t h = head.load(std::memory_order_acquire);  // acquire: pairs with the takers' CAS on head
    std::uint32_t t = tail.load(std::memory_order_relaxed);  // owner's own variable
    GREEN_DCHECK(t - h <= cap, "run queue: tail - head > capacity");
    if (t - h < cap) return put_at(f, t);
    if (push_overflow(f, h, t)) return;
  }
}

// pick_local() takes the next fiber to run: every 61st pick the timers and
// the global queue first, then the LIFO slot (unless it ran 16 times in a
// row), then the ring's head. Owner only.
GREEN_HOT fiber_base* worker::pick_local() noexcept {
  if (--tick == 0) {
    tick = 61;
    if (timers.size() != 0) timers.fire_expired(clock::now());
    if (im->gsize.load(std::memory_order_relaxed) != 0) {
      if (fiber_base* f = im->take_global(*this)) return f;
    }
  }
  fiber_base* f = runnext.load(std::memory_order_relaxed);
  bool skip = runnext_streak >= 16 || (shuffle && (xorshift(rng) & 3) == 0);
  if (f != nullptr && !skip) {
    // acquire: pairs with the release half of push()'s exchange
    if (runnext.compare_exchange_strong(f, nullptr, std::memory_order_acquire)) {
      ++runnext_streak;
      return f;
    }
  }
  runnext_streak = 0;
  for (;;) {
    std::uint32_t h = head.load(std::memory_order_acquire);  // acquire: pairs with the takers' CAS on head
    std::uint32_t t = tail.load(std::memory_order_relaxed);
    if (h == t) break;
    GREEN_DCHECK(t - h <= cap, "run queue: tail - head > capacity");
    fiber_base* g = ring[h & (cap - 1)].load(std::memory_order_relaxed);
    if (head.compare_exchange_weak(h, h + 1, std::memory_order_release)) return g;  // release: the slot may be reused
  }
  // acquire: pairs with push()'s exchange (skipped above, but it is all we have)
  f = runnext.exchange(nullptr, std::memory_order_acquire);
  return f;
}

// prefetch_next() asks the caches for what the fiber after the one about to
// run will touch first: the top of its stack (its saved registers, then the
// frames it returns through: a fiber parked in a socket read resumes through
// ~10 of them, each in its own line, and callgrind's cache model counted ~10
// stack misses per round trip at 1000 echo connections) and the start of its
// control block. The current fiber runs meanwhile (an echo fiber ~5 us), so
// the lines are in by the switch. Owner only; ring[head] may be taken by a
// thief at any moment, which only wastes the prefetches.
GREEN_HOT void worker::prefetch_next() noexcept {
  std::uint32_t h = head.load(std::memory_order_relaxed);
  if (h == tail.load(std::memory_order_relaxed)) return;
  constexpr int stack_lines = 10;  // 640 bytes: the echo fiber's resume path, above
  constexpr int block_lines = 4;   // fiber_base's switch-path fields
  // No hint: a fiber that never ran, whose block its spawner just wrote
  // (prefetching it anyway cost spawn+join ~5%).
  const char* sp = static_cast<const char*>(hint[h & (cap - 1)]);
  if (sp == nullptr) return;
  for (int i = 0; i < stack_lines; ++i) __builtin_prefetch(sp + 64 * i, 1, 3);
  const char* b = reinterpret_cast<const char*>(ring[h & (cap - 1)].load(std::memory_order_relaxed));
  for (int i = 0; i < block_lines; ++i) __builtin_prefetch(b + 64 * i, 1, 3);
}

// pick_startable() is pick_local() skipping fibers whose stack could not be
// mapped (they finish at once, see start_new()). Owner only.
GREEN_HOT fiber_base* worker::pick_startable() noexcept {
  while (fiber_base* f = pick_local())
    if (start(f)) return f;
  return nullptr;
}

}  // namespace green::sched
