// wakep(): the fast path of the idle protocol (idle.cpp's header has the
// protocol and its table of StoreLoad pairs). Inlined into every room that
// makes a fiber runnable.
#pragma once

#include "runtime_impl.hpp"

namespace green::sched {

// wakep(local): `local` says the work just made runnable sits in the calling
// worker's own queue. Then no fence: if the loads below are reordered before
// that push and an idle worker misses it in its re-check, the work is still
// run, by us, as soon as we switch (only parallelism is lost, briefly; Go's
// wakep() makes the same trade with plain loads). Work put where no running
// worker will look (the global queue from outside) needs the fence.
// Any thread.
GREEN_HOT void scheduler::impl::wakep(bool local) noexcept {
  // seq_cst fence [pair W1 in idle.cpp]: orders the push that precedes with
  // the npidle load below, against the idle side's npidle++ / nmspinning--,
  // fence, then re-check of every queue in enter_idle() (Dekker).
  if (!local) std::atomic_thread_fence(std::memory_order_seq_cst);
  // seq_cst: the load side of pair W1 (with the fence above).
  if (npidle.load(std::memory_order_seq_cst) == 0) {
    // Nobody sleeps. The thread that called us may be outside the runtime with
    // every worker busy: they will see the global queue within 61 ticks.
    return;
  }
  wake_idle();
}

}  // namespace green::sched
