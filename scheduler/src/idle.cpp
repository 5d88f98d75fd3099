// Idle workers and wakep (Go's "spinning" protocol, proc.go).
//
// Roles. At most half of the busy workers search for work at once
// (nmspinning); a worker that finds nothing registers as idle, stops
// spinning, re-checks every queue (a producer may have pushed just before it
// registered), then sleeps on its futex, or, if it takes the poller role, in
// the reactor, until its next timer (enter_idle(), sleep()). Whoever makes
// work runnable calls wakep(): if nobody spins and somebody sleeps, it wakes
// one sleeper as a spinner (wake_idle(), notify()). A spinner that finds
// work and was the last one wakes another (found()). Before it goes idle, a
// spinner lingers up to 20 us while another worker runs (linger(),
// worker.cpp): a fan-out's spawns then find it searching, and wake nobody.
// So work made runnable while others sleep is found by a spinner or wakes a
// sleeper, without the monitor's help: every wakep() fences (W1; until
// issue 16 a local push did not, and a missed push waited for its own
// worker's next switch, forever if that worker's fiber spun and the monitor
// was off). Not covered: yield() requeues without a wakep() (Go's Gosched
// neither), so a yielded fiber may wait behind a fiber that never switches
// while a neighbour sleeps; the monitor hands such a queue on. A burst of
// wakes does not stampede every worker. The monitor sleeps too when every
// worker is idle; the first worker to leave idle wakes it (leave_idle(),
// wake_monitor()).
//
// Invariants (idle_mu): `idle` holds exactly the workers with idle_listed;
// npidle == idle.size() whenever idle_mu is free; a worker is in `idle` at
// most once; wake_spinning is set only on a worker a waker took off the list.
//
// StoreLoad (Dekker) pairs. Each side stores, then loads what the other
// side stores, with seq_cst (or a seq_cst fence) between; so at least one
// side sees the other:
//   pair  side A (store ; load)                  side B (store ; load)
//   W1    producer: push work ; fence ;          going idle (enter_idle):
//         load npidle (wakep-inl.hpp; every      npidle++ ; nmspinning-- ; fence ;
//         path, local pushes too)                load every queue and gsize
//   W2    last spinner (found): nmspinning-- ;   going idle: npidle++ (W1's store)
//         load npidle (its wakep())
//   W3    notify(): token = 1 ;                  sleep(): sleep_mode = 1|2 ;
//         load sleep_mode                        load token (futex_wait compares
//                                                it in the kernel)
//   W4    leave_idle(): npidle-- ;               monitor: mon_word 0 -> 1 ;
//         load mon_word                          load npidle, nactive (monitor.cpp)
//   W5    wake_idle(): nmspinning 0 -> 1 (CAS) ; another waker: the same CAS
//         (one waker per spinner slot; a plain RMW race, no load pair)
// The deadlock check (deadlock.cpp) reads npidle/nactive seq_cst so that its
// snapshot is ordered after W1's npidle++ of every idle worker.
//
// Rejected: waking every idle worker per wake (a stampede: N futex wakes for
// one fiber); no spinning state (each wake would cost a futex wake even when
// a searching worker is about to find the work); a condition variable per
// worker (a mutex on the wake path).
#include <algorithm>
#include <mutex>

#include "futex.hpp"
#include "run_queue-inl.hpp"
#include "wakep-inl.hpp"

namespace green::sched {

// wake_idle() is wakep()'s slow path: somebody sleeps.
void scheduler::impl::wake_idle() noexcept {
  // seq_cst: a spinner's nmspinning++ (enter_idle, find_runnable) seen here
  // means it will find the work (it re-checks under W1 before it sleeps).
  if (nmspinning.load(std::memory_order_seq_cst) != 0) return;
  std::uint32_t zero = 0;
  // seq_cst: W5, one waker per spinner slot
  if (!nmspinning.compare_exchange_strong(zero, 1, std::memory_order_seq_cst)) return;
  worker* target = nullptr;
  {
    lock_guard_of lk(idle_mu);
    if (!idle.empty()) {
      target = idle.back();
      idle.pop_back();
      target->idle_listed = false;
      target->wake_spinning = true;
      npidle.fetch_sub(1, std::memory_order_seq_cst);  // seq_cst: W4's store, done for the target
      GREEN_DCHECK(npidle.load(std::memory_order_relaxed) == idle.size(), "idle: npidle differs from the idle list");
    }
  }
  if (!target) {
    nmspinning.fetch_sub(1, std::memory_order_seq_cst);  // seq_cst: undoes our W5 CAS in the same order
    return;
  }
  notify(*target);
}

// notify() wakes w from sleep() (or makes its next sleep return at once).
// Any thread.
void scheduler::impl::notify(worker& w) noexcept {
  // seq_cst on both sides (W3): either the sleeper sees token == 1 before
  // it blocks, or we see its sleep_mode and interrupt the right wait.
  if (w.token.exchange(1, std::memory_order_seq_cst) != 0) return;        // W3, side A's store
  if (w.sleep_mode.load(std::memory_order_seq_cst) == 2) poller->wake();  // W3, side A's load
  else futex_wake(&w.token, 1);
}

// sleep() returns the fd events the reactor brought (the caller dispatches
// them once it has left the idle list).
int scheduler::impl::sleep(worker& w, time_point deadline, reactor::ready_event* ready) noexcept {
  bool expect = false;
  int n = 0;
  // acquire: pairs with the release store of false by the previous poller
  if (poller_busy.compare_exchange_strong(expect, true, std::memory_order_acquire)) {
    w.sleep_mode.store(2, std::memory_order_seq_cst);                                     // W3, side B's store
    if (w.token.load(std::memory_order_seq_cst) == 0) n = poller->wait(deadline, ready);  // W3, side B's load
    w.sleep_mode.store(0, std::memory_order_relaxed);
    poller_busy.store(false, std::memory_order_release);
  } else {
    w.sleep_mode.store(1, std::memory_order_seq_cst);  // W3, side B's store
    futex_wait(&w.token, 0, deadline);                 // W3, side B's load (in the kernel)
    w.sleep_mode.store(0, std::memory_order_relaxed);
  }
  return n;
}

// enter_idle() registers w as idle and, if it was spinning, stops spinning
// and re-checks every queue. Returns true if w may sleep; false if work
// appeared (w is then busy again and, after a re-check, spinning).
// Owner worker only.
bool scheduler::impl::enter_idle(worker& w) noexcept {
  {
    lock_guard_of lk(idle_mu);
    if (gsize.load(std::memory_order_relaxed) != 0) return false;  // relaxed: under gmu's writers' hint; re-read below
    GREEN_DCHECK(!w.idle_listed, "idle: a worker registered twice");
    w.idle_listed = true;
    idle.push_back(&w);
    npidle.fetch_add(1, std::memory_order_seq_cst);  // seq_cst: side B's store of W1 and W2
    GREEN_DCHECK(npidle.load(std::memory_order_relaxed) == idle.size(), "idle: npidle differs from the idle list");
  }
  bool recheck = false;
  if (w.spinning) {
    w.spinning = false;
    nmspinning.fetch_sub(1, std::memory_order_seq_cst);   // seq_cst: with the fence, side B of W1
    std::atomic_thread_fence(std::memory_order_seq_cst);  // W1, side B: the stores above before the loads below
    // Started workers only: one not started has no queue to look at.
    const unsigned started = nslots.load(std::memory_order_acquire);  // acquire: pairs with activate_spare()'s release
    for (unsigned i = 0; i < started; ++i)
      if (workers[i]->has_work()) recheck = true;
    if (gsize.load(std::memory_order_seq_cst) != 0) recheck = true;  // seq_cst: W1, side B's load
  }
  if (!recheck) return true;
  leave_idle(w);
  if (!w.spinning) {
    w.spinning = true;
    nmspinning.fetch_add(1, std::memory_order_seq_cst);  // seq_cst: seen by wake_idle()'s load (no extra waker)
  }
  return false;
}

void scheduler::impl::leave_idle(worker& w) noexcept {
  {
    lock_guard_of lk(idle_mu);
    if (w.idle_listed) {
      idle.erase(std::find(idle.begin(), idle.end(), &w));
      w.idle_listed = false;
      npidle.fetch_sub(1, std::memory_order_seq_cst);  // seq_cst: W4, side A's store
      GREEN_DCHECK(npidle.load(std::memory_order_relaxed) == idle.size(), "idle: npidle differs from the idle list");
    } else if (w.wake_spinning) {
      // A waker took us off the list and counted us as spinning.
      w.wake_spinning = false;
      w.spinning = true;
    }
    w.token.store(0, std::memory_order_relaxed);
  }
  // seq_cst: after our npidle-- (above, or the waker's), against the
  // monitor's store of 1 then its npidle check (Dekker): either it sees us
  // busy, or we see it asleep and wake it.
  if (mon_word.load(std::memory_order_seq_cst) == 1) wake_monitor();  // W4, side A's load
}

// found() ends w's search: the fiber it found runs next. Owner worker only.
fiber_base* scheduler::impl::found(worker& w, fiber_base* f) noexcept {
  if (w.spinning) {
    w.spinning = false;
    // The last spinner to find work starts another: more may be waiting.
    // seq_cst: W2, side A's store; wakep() fences and loads npidle
    if (nmspinning.fetch_sub(1, std::memory_order_seq_cst) == 1) wakep();
  }
  return f;
}

// wake_monitor() wakes the monitor from its all-idle sleep. Any thread.
void scheduler::impl::wake_monitor() noexcept {
  std::uint32_t expect = 1;
  // seq_cst: pairs with the monitor's CAS 0 -> 1 before its npidle check (W4)
  if (mon_word.compare_exchange_strong(expect, 0, std::memory_order_seq_cst)) futex_wake(&mon_word, 1);
}

}  // namespace green::sched
