// wake: the waker's half of the seam (park.cpp has the parked half).
//
// Protocol (the park word, see parker in scheduler.hpp). Only the owner
// opens a park (prepare_park: new generation, armed) and closes it (idle).
// A waker CASes armed|parked -> woken, once per generation and only with a
// ticket of that generation. Only the party that observes `parked` (the
// waker) or fails its armed -> parked CAS (after_switch) enqueues the fiber,
// so it is enqueued exactly once.
//
// Orderings: the waker's acq_rel CAS pairs with (a) the owner's acquire
// loads of the word in park_fiber()/park_thread() (the owner sees the
// reason and whatever was handed over before the wake), and (b) the owner's
// acq_rel armed -> parked CAS in after_switch() (whichever wins, the other
// sees it: the waker sees `parked` only after the context was saved).
//
// Where a woken fiber queues: notified -> the LIFO slot (it likely consumes
// what the waker produced); timeouts and fd readiness -> the tail, in order
// (a batch of expired timers runs in deadline order; a poll's batch runs in
// the kernel's order, like Go's netpoll injectglist).
//
// Rejected: a per-fiber mutex + condition (a lock per wake, and a lost wake
// whenever the park is not yet published); waking by fiber pointer without
// a generation (a late wake would hit the fiber's next, unrelated park).
#include <mutex>

#include "futex.hpp"
#include "run_queue-inl.hpp"
#include "wakep-inl.hpp"

namespace green::sched {

// A waiter may be gone the moment wake() succeeds (its owner returns
// without retaking the lock), so `chosen` is set before the wake and undone
// if the wake fails; an owner whose park ended otherwise reads it only after
// taking the lock the waker holds.
waiter* wait_queue::wake_one(wake_reason r) noexcept {
  while (waiter* w = pop_front()) {
    w->chosen = true;
    if (wake(w->t, r)) return w;
    w->chosen = false;
  }
  return nullptr;
}

std::size_t wait_queue::wake_all(wake_reason r, bool fifo) noexcept {
  std::size_t n = 0;
  while (waiter* w = pop_front()) {
    w->chosen = true;
    if (sched_access::wake_as(w->t, r, !fifo && r == wake_reason::notified)) ++n;
    else w->chosen = false;
  }
  return n;
}

// make_runnable() queues a woken fiber: on the calling worker when it is
// one of this runtime's, else through the global queue. Any thread.
GREEN_HOT void scheduler::impl::make_runnable(fiber_base* f, bool lifo) noexcept {
  worker* w = this_worker();
  if (w && w->s == self) {
    w->push(f, lifo);
    wakep();
  } else {
    push_from_outside(f);
  }
}

// wake() is wake_as() with the default queue choice. Any thread.
bool wake(ticket t, wake_reason r) noexcept { return sched_access::wake_as(t, r, r == wake_reason::notified); }

bool sched_access::wake_as(ticket t, wake_reason r, bool lifo) noexcept {
  parker* p = t.p;
  // Read before the CAS: once it succeeds on an armed (still running) fiber,
  // that fiber may return, finish and be freed.
  fiber_base* f = p->fiber;
  std::uint64_t w = p->word.load(std::memory_order_acquire);
  for (;;) {
    if (parker::gen(w) != t.gen) return false;
    auto st = parker::status(w);
    if (st != parker::armed && st != parker::parked) return false;
    // acq_rel: release publishes what the waker handed over (a value, the
    // reason) to the parked side; acquire orders our later enqueue.
    if (p->word.compare_exchange_weak(w, parker::make(t.gen, parker::woken, r), std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
      if (f == nullptr) {
        futex_wake(low_word(&p->word), 1);  // thread parkers live as long as their thread
      } else if (st == parker::parked) {
        // A notified fiber goes to the LIFO slot (it likely consumes what the
        // waker just produced); timeouts go to the tail, so a batch of
        // expired timers runs in deadline order, and so do fd readiness
        // wakes (wake_all(fifo)): a poll's batch runs in the kernel's order,
        // without an exchange of the slot per event (Go's netpoll queues
        // its goroutines the same way, injectglist).
        sched_access::im(f->sched_)->make_runnable(f, lifo);
      }
      return true;
    }
  }
}

// push_from_outside() queues f from a thread that is not one of our workers
// (a plain thread, or another runtime's worker). Once f is queued it may run,
// finish, and let ~scheduler() proceed while we are still in wakep(); so the
// call counts itself in `outside` first, and ~scheduler() waits for the count
// to drop to zero before it frees anything.
void scheduler::impl::push_from_outside(fiber_base* f) noexcept {
  // relaxed: the push below releases gmu, and every path from there to
  // ~scheduler() seeing live_ == 0 is a chain of release/acquire (the
  // taker's lock of gmu, the switches, finish_fiber()'s acq_rel live_--,
  // the destructor's acquire load of live_), so the destructor's later
  // load of `outside` sees this increment.
  outside.fetch_add(1, std::memory_order_relaxed);
  push_global(f, f, 1);
  wakep();
  outside.fetch_sub(1, std::memory_order_release);  // release: our last touch of *this happens before the free
}

// kill(): see scheduler.hpp. Any thread.
void fiber_base::kill() noexcept {
  // release: pairs with the acquire load of kill_requested_ in park_fiber()
  // and the acquire exchange in take_kill()
  kill_requested_.store(true, std::memory_order_release);
  for (;;) {
    std::uint64_t w = parker_.word.load(std::memory_order_acquire);
    auto st = parker::status(w);
    if (st != parker::armed && st != parker::parked) return;  // it will see the flag at its next park
    if (wake(ticket{&parker_, parker::gen(w)}, wake_reason::killed)) return;
  }
}

}  // namespace green::sched
