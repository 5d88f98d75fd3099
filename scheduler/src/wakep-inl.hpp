// wakep(): the fast path of the idle protocol (idle.cpp's header has the
// protocol and its table of StoreLoad pairs). Inlined into every room that
// makes a fiber runnable.
#pragma once

#include "runtime_impl.hpp"

namespace green::sched {

// wakep() follows every push of runnable work, to the caller's own queue or
// elsewhere, and always fences: a worker going idle re-checks every
// queue after its npidle++ (W1), and without our fence the load of npidle
// below may run before the push is visible (x86's store buffer lets a plain
// store pass a later load). Then the idle worker misses the push, we miss
// its npidle++, it sleeps, and the work waits until we switch. That used to
// be called harmless ("only parallelism is lost"), but if the fiber we run
// never switches (it spins until another worker runs something) and the
// monitor is off, nobody ever runs the work: a hang
// (idle_worker_sees_a_local_push_it_raced_with, runtime_test). The fence
// is a `lock or` on x86, ~8 ns measured here (docs/scheduler.md, "Idle
// workers"). Not skipped even with one active worker: that worker may be
// the caller itself, idle-listed, waking fibers from its idle path (the
// deadlock check's unwinding), and then it must wake its own sleep.
// (Until issue 16 a `local` flag skipped the fence for the caller's own
// queue; with the fence on every path the flag had no use and is gone.)
// Any thread.
GREEN_HOT void scheduler::impl::wakep() noexcept {
  // seq_cst fence [pair W1 in idle.cpp]: orders the push that precedes with
  // the npidle load below, against the idle side's npidle++ / nmspinning--,
  // fence, then re-check of every queue in enter_idle() (Dekker).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  // seq_cst: the load side of pair W1 (with the fence above).
  if (npidle.load(std::memory_order_seq_cst) == 0) {
    // Nobody sleeps. The thread that called us may be outside the runtime with
    // every worker busy: they will see the global queue within 61 ticks.
    return;
  }
  wake_idle();
}

}  // namespace green::sched
