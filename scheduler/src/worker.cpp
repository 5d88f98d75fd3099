// The worker loop: what a worker's own stack does between fibers.
//
// Roles. A runtime has N workers, one OS thread each. A worker owns a ring
// run queue (Go's runq: owner pushes at the tail, owner and thieves take
// from the head with a CAS), a LIFO slot (`runnext`, where a fiber that was
// just woken or spawned goes, for message-passing locality), a timer heap and
// a stack cache. One global queue takes fibers made runnable from outside
// the runtime and the overflow of full rings.
//
// Switching. Fibers switch directly to the next runnable fiber; only when the
// local queue is empty does a fiber switch to its worker's own stack, which
// looks further (global queue, timers, stealing) and sleeps. Whatever must
// happen after a fiber's context is saved (requeue it for yield, publish it
// as parked, free its stack at exit) is recorded as the worker's `pending`
// action and run by whoever lands next (after_switch()).
//
// Parking protocol (per fiber, see parker in scheduler.hpp): the fiber arms
// a new generation, publishes its ticket, switches away; after the switch,
// after_switch() CASes armed -> parked. A waker CASes armed|parked -> woken;
// only the party that observes `parked` (the waker) or fails its CAS
// (after_switch) enqueues the fiber, so it is enqueued exactly once.
//
// Idle workers (Go's "spinning" protocol, proc.go): at most half of the busy
// workers search for work at once (nmspinning); a worker that finds nothing
// registers as idle, stops spinning, re-checks every queue (a producer may
// have pushed just before it registered), then sleeps on its futex, or, if it
// takes the poller role, in the reactor, until its next timer. Whoever makes
// work runnable calls wakep(): if nobody spins and somebody sleeps, it wakes
// one sleeper as a spinner. A spinner that finds work and was the last one
// wakes another (work may be waiting behind it). A spinner lingers a little
// before it sleeps while another worker runs (linger()). So work made
// runnable while a worker sleeps wakes it (idle.cpp says where that holds),
// and a burst of wakes does not stampede every worker.
//
// Fairness: every 61st pick takes from the global queue first (61: prime, so
// it does not resonate with program patterns; Go uses the same); the LIFO
// slot is skipped after 16 consecutive uses (a ping-pong pair then yields to
// the ring; 16 switches ~ 1 µs), and yield() goes to the ring's tail.
//
// Rejected: a dispatcher switch per schedule (two switches per yield instead
// of one); a single shared queue (a cache line every worker fights over);
// Chase-Lev deques (LIFO for the owner hurts fairness; Go's FIFO ring plus
// one LIFO slot gives locality without it).
//
// This file: worker_main() (a worker thread's body), find_runnable() (the
// search: timers, local queue, global queue, stealing, then idle; see
// idle.cpp), run_fiber() (switch from the worker stack into a fiber) and
// retire() (a spare worker's sleep until the monitor needs it).
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#if __has_include(<cxxabi.h>)
#include <cxxabi.h>
#endif

#include "futex.hpp"
#include "io_internal.hpp"
#include "switch-inl.hpp"

namespace green::sched {

// thread_eh_globals() is the calling thread's C++ exception state, or `w`'s
// stand-in where the C++ runtime gives none: an ABI without cxxabi.h, or
// ARM EHABI, whose eh globals carry a third field (propagating exceptions)
// eh_globals does not mirror. The worker's own thread only.
static eh_globals* thread_eh_globals([[maybe_unused]] worker& w) noexcept {
#if __has_include(<cxxabi.h>) && !defined(__arm__)
  // The Itanium ABI's __cxa_eh_globals is incomplete in <cxxabi.h>; its
  // first two fields are eh_globals' (worker.hpp).
  return reinterpret_cast<eh_globals*>(abi::__cxa_get_globals());
#else
  return &w.eh_none;
#endif
}

// A worker's own thread: its body. Started by lifecycle (and the monitor, for spares).
void scheduler::impl::worker_main(worker& w) noexcept {
  set_this_worker(&w);
  w.errno_addr = &errno;
  w.eh_addr = thread_eh_globals(w);
  w.tid.store(static_cast<pid_t>(::syscall(SYS_gettid)), std::memory_order_release);
  char name[16];
  std::snprintf(name, sizeof name, "%.9s-w%u", self->cfg_.name.c_str(), w.index);
  pthread_setname_np(pthread_self(), name);
  install_altstack();
  w.sched_ctx.init_thread();
  while (fiber_base* f = find_runnable(w)) run_fiber(w, f);
  w.stacks.clear();
  set_this_worker(nullptr);
}

// How long a spinning worker lingers, searching, before it sleeps: about
// one sleep/wake cycle of an idle worker (eventfd write + epoll_wait return
// + the two context switches), measured at ~25 us on this VM (perf of a
// cold fan-out: 30% of 0.3 s over 3,400 wake cycles). Lingering L and then
// sleeping anyway costs at most L + wake = 2x the wake alone; lingering
// saves the whole wake when work comes within L (the ski-rental bound).
constexpr auto linger_for = std::chrono::microseconds(20);
// Pauses between two looks at the queues, at most: 32 x ~22 ns ~ 0.7 us, so
// a lingering worker reads a busy victim's ring line ~1.4 M times/s at most,
// and still finds a fan-out's next fiber (one per ~200 ns spawn) in < 1 us.
constexpr unsigned linger_max_backoff = 32;

// linger() is a spinning worker's last search before enter_idle(): while
// some other worker runs (and so may make work at any moment: a fan-out's
// spawns, a producer's wakes), look at the global queue and steal from
// every ring again, backing off, for up to linger_for. A lingering worker
// still counts in nmspinning, so wakep() wakes nobody meanwhile: a burst of
// work made by one busy worker costs its neighbour no futex or eventfd wake
// per fiber. The last busy worker never lingers (nobody else can make work
// without a wake; an idle program stays at ~0 CPU). Runnext is left alone
// (as in Go's first steal rounds: it is the victim's next fiber, for
// locality). Returns a fiber (w still spinning; the caller calls found()) or
// null. Owner worker only.
fiber_base* scheduler::impl::linger(worker& w, std::size_t n) noexcept {
  const time_point until = clock::now() + linger_for;
  const time_point timer = w.timers.earliest();
  unsigned backoff = 1;
  for (;;) {
    // relaxed: a heuristic bound; the W1 re-check in enter_idle() covers work
    // made after we stop.
    if (nactive.load(std::memory_order_relaxed) - npidle.load(std::memory_order_relaxed) < 2) return nullptr;
    if (stop.load(std::memory_order_relaxed)) return nullptr;  // relaxed: find_runnable() re-reads it, acquire
    for (unsigned i = 0; i < backoff; ++i) cpu_pause();
    if (backoff < linger_max_backoff) backoff *= 2;
    if (fiber_base* f = take_global(w)) return f;
    const std::size_t start = xorshift(w.rng) % n;
    for (std::size_t i = 0; i < n; ++i) {
      worker& v = *workers[(start + i) % n];
      if (&v == &w) continue;
      if (fiber_base* f = w.steal_from(v, false)) return f;
    }
    const time_point now = clock::now();
    if (now >= until || now >= timer) return nullptr;
  }
}

// find_runnable() returns the next fiber to run, or null when the runtime
// stops. Owner worker only, on its own stack.
fiber_base* scheduler::impl::find_runnable(worker& w) noexcept {
  for (;;) {
    if (stop.load(std::memory_order_acquire)) return nullptr;
    if (w.index >= nworkers && nstuck.load(std::memory_order_relaxed) == 0 && w.timers.size() == 0) {
      retire(w);
      continue;
    }
    const std::size_t n = nslots.load(std::memory_order_acquire);  // acquire: a started spare's slot
    time_point now = clock::now();
    w.timers.fire_expired(now);
    if (fiber_base* f = w.pick_local()) return found(w, f);
    if (fiber_base* f = take_global(w)) return found(w, f);

    // Steal, unless enough workers already search (no thundering herd).
    if (!w.spinning) {
      // relaxed: a bound on searchers, a heuristic; a stale count lets one
      // worker more or fewer search, which the idle re-check (W1) covers.
      std::uint32_t busy = nactive.load(std::memory_order_relaxed) - npidle.load(std::memory_order_relaxed);
      if (2 * nmspinning.load(std::memory_order_relaxed) < busy) {
        w.spinning = true;
        // seq_cst: seen by wake_idle()'s load (a waker then leaves the work
        // to us); our own W1 re-check covers a waker that missed it.
        nmspinning.fetch_add(1, std::memory_order_seq_cst);
      }
    }
    if (w.spinning && n > 1) {
      for (int round = 0; round < 4; ++round) {
        std::size_t start = xorshift(w.rng) % n;
        for (std::size_t i = 0; i < n; ++i) {
          worker& v = *workers[(start + i) % n];
          if (&v == &w) continue;
          if (fiber_base* f = w.steal_from(v, round == 3)) return found(w, f);
          if (v.timers.earliest() <= now && v.timers.fire_expired(now) != 0) {
            if (fiber_base* f = w.pick_local()) return found(w, f);
          }
        }
      }
    }

    // Linger before sleeping while another worker runs (below).
    if (w.spinning && n > 1) {
      if (fiber_base* f = linger(w, n)) return found(w, f);
    }

    // Go idle: register, stop spinning, re-check (idle.cpp), sleep.
    if (!enter_idle(w)) continue;
    // seq_cst: the deadlock check's snapshot (deadlock.cpp's header)
    if (npidle.load(std::memory_order_seq_cst) == nactive.load(std::memory_order_seq_cst)) check_deadlock(w);
    reactor::ready_event ready[reactor::max_events];
    int nready = stop.load(std::memory_order_acquire) ? 0 : sleep(w, w.timers.earliest(), ready);
    leave_idle(w);
    // Busy again before the wakes: a fiber woken here goes to our queue and
    // its wakep() does not pick us, asleep-listed, to wake (an eventfd write
    // and a spurious poll per cycle, measured in the echo benchmark).
    io_internal::dispatch(ready, nready);
  }
}

// run_fiber() switches from the worker stack into f. Owner worker only.
void scheduler::impl::run_fiber(worker& w, fiber_base* f) noexcept {
  if (!w.start(f)) return;
  w.prefetch_next();
  w.current = f;
  w.running.store(f, std::memory_order_relaxed);
  GREEN_DCHECK(f->state_.load(std::memory_order_relaxed) == fiber_state::runnable,
               "bad fiber state: run of a fiber not runnable");
  f->state_.store(fiber_state::running, std::memory_order_relaxed);
  f->last_worker_.store(w.index, std::memory_order_relaxed);
  w.count_switch();
  w.sched_ctx.switch_to(fiber_parts::ctx(f), nullptr);
  // The fiber that switched here saved its exceptions; the worker loop runs
  // outside any catch, with none (its own code's try/catch stays balanced).
  *w.eh_addr = eh_globals{};
  w.after_switch();
}

// retire() parks a spare worker until the monitor needs it again. Its
// queue goes to the global queue first. The spare itself only.
void scheduler::impl::retire(worker& w) noexcept {
  if (w.spinning) {
    w.spinning = false;
    nmspinning.fetch_sub(1, std::memory_order_seq_cst);  // seq_cst: as enter_idle()'s, before our wakep() below (W2)
  }
  while (fiber_base* f = w.pick_local()) push_global(f, f, 1);
  // seq_cst: pairs with activate_spare()'s dormant load then nactive++
  // (monitor.cpp), and orders nactive-- with the W1/W4 npidle updates the
  // deadlock check compares it with.
  w.dormant.store(1, std::memory_order_seq_cst);
  nactive.fetch_sub(1, std::memory_order_seq_cst);
  wakep();  // the work we handed on, or the spinner role we gave up
  // seq_cst: pairs with activate_spare()'s and the destructor's store of 0
  while (w.dormant.load(std::memory_order_seq_cst) == 1 && !stop.load(std::memory_order_acquire))
    futex_wait(&w.dormant, 1, no_deadline);
}

}  // namespace green::sched
