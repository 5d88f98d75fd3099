// green::mutex — and the shape every green primitive shares.
//
// Roles. A primitive is a small state (an atomic word or a few fields) plus a
// spinlock-guarded sched::wait_queue of waiters that live on the waiting
// fibers' (or threads') stacks. Waiting is the seam's protocol
// (scheduler.hpp): prepare_park(), link a waiter under the spinlock, unlock,
// park(). Waking is detail::try_wake() under the spinlock: write the hand-over
// (a grant, a value, `chosen`) first, then wake(), then never touch the
// waiter again; a failed wake() (the park ended: killed, timed out) takes the
// hand-over back and tries the next waiter. So nothing handed to a waiter
// that is being killed is lost, and the parked side needs the spinlock only
// when its park ends without a hand-over. Destructors take the spinlock
// once, so a waker still inside its critical section finishes first.
//
// mutex protocol. state_ holds locked | waiters | woken (invariants in
// mutex.hpp). lock(): one CAS 0 -> locked. Else spin: re-read the word with
// plain loads and CAS only when `locked` is clear (test-and-test-and-set, so
// spinners do not bounce the line). Then, under qmu_, either the lock came
// free (retry) or set `waiters` and park. unlock(): one CAS locked -> 0; it
// fails only when `waiters` is set, and then the slow path pops one waiter.
// A waiter enqueues only after a CAS that saw `locked`, under qmu_, and the
// unlocker's slow path takes qmu_: a wake-up cannot be lost.
//
// Barging, with hand-off for the starving. The unlocker releases the lock and
// wakes one waiter, which competes with fibers arriving meanwhile (Go's
// "normal mode", sync/mutex.go). Strict FIFO hand-off would make every
// contended lock a full park/wake round trip (two switches and a run-queue
// hand-over, ≥ 1 µs across workers) while the lock sits idle; barging lets a
// running fiber take it in a few ns, which is how 4 fibers × 2 workers get
// below the 20 ns/lock target. The cost is unfairness, bounded as in Go: a
// waiter that has waited more than 1 ms (starve_after) is handed the lock
// directly (it stays `locked`; `waiters` tells the new owner nothing
// changed) — 1 ms is ~10^4 barging acquisitions of a 100 ns critical
// section, so fairness costs < 0.01% of throughput. `woken` keeps unlockers
// from waking a second waiter while one is already on its way (a thundering
// herd of retries would each cost a switch).
//
// Spinning. spin_limit = 40 pauses ≈ 0.9 µs at the 22 ns per PAUSE measured
// on this machine (AMD EPYC; Intel Skylake+ is ~40 ns), about the cost of
// the park/wake it replaces; past that the holder is probably parked inside
// its critical section and spinning only burns the core. A fiber on a
// one-worker runtime never spins: the holder cannot run meanwhile. Nor does
// one whose worker has other fibers queued (Go's canSpin checks its P's run
// queue the same way): parking runs them, and the lock's users gather on
// fewer workers instead of bouncing its line between cores. Measured
// (issue 16, interleaved, 5 rounds, sync_bench BM_mutex_contended/green/
// workers:2): 65-85 -> 35-37 ns per lock; with two CPU hogs beside (cold_bench
// mutex green): median 65 -> 40 ns. A spinner
// sets `woken` (Go's mutexWoken) so that unlock() wakes no parked waiter
// while someone is about to take the lock anyway: without it, sync_bench's
// 4 fibers x 2 workers parked ~57k times per 1M locks and each wake of an
// idle worker (futex/eventfd, ~10 µs here) left the lock idle: 300-600 ns
// per lock; with it, ~3k parks and ~33 ns. Spinners back off exponentially
// (1..8 pauses between reads) so their reads do not steal the line from the
// holder on every unlock/lock pair: median 27 -> 17 ns per lock over 8 runs
// each, interleaved (bench/sync_bench, BM_mutex_contended/green/workers:2).
//
// Rejected: a futex word per mutex for threads (fibers must park on the
// scheduler, and two wait mechanisms double the lost-wake-up proofs); a
// waiter count in the word instead of the `waiters` bit (needs a wider CAS
// on every enqueue for no gain: the queue knows its size under qmu_).
#include "green/mutex.hpp"

#include <string>
#include <system_error>
#include <thread>

namespace green {

namespace {

constexpr unsigned spin_limit = 40;
// Between two reads of the word a spinner waits 1, 2, 4, then 8 pauses.
constexpr unsigned max_backoff = 8;
constexpr auto starve_after = std::chrono::milliseconds(1);

// What a parked lock() shares with the unlocker that pops it.
struct lock_wait {
  sched::time_point since;  // when it first parked (kept across retries)
  bool handoff = false;     // set by the unlocker: the lock is now ours
};

bool can_spin() noexcept {
  static const bool multicore = std::thread::hardware_concurrency() > 1;
  if (!multicore) return false;
  sched::scheduler* s = sched::current_scheduler();
  if (s == nullptr) return true;
  // Not while fibers wait behind us on this worker (Go's canSpin): parking
  // runs them, and the holder's unlock wakes us onto its own worker.
  return s->worker_count() > 1 && !sched::local_work_queued();
}

std::string describe_owner(std::uint64_t id) {
  if (id == 0) return "nobody (it is not locked)";
  if (id >> 63) return "a plain thread";
  return "fiber #" + std::to_string(id);
}

}  // namespace

mutex::~mutex() { detail::check_no_waiters(qmu_, "green::mutex", this, q_); }

bool mutex::try_lock() noexcept {
  std::uint32_t s = state_.load(std::memory_order_relaxed);
  while (!(s & locked)) {
    // acquire: pairs with the release in unlock()
    if (state_.compare_exchange_weak(s, s | locked, std::memory_order_acquire, std::memory_order_relaxed)) {
      owner_.store(detail::self_id(), std::memory_order_relaxed);
      return true;
    }
  }
  return false;
}

void mutex::throw_not_owner(const char* what) const {
  std::uint64_t owner = owner_.load(std::memory_order_relaxed);
  throw std::system_error(
      std::make_error_code(std::errc::operation_not_permitted),
      std::string(what) + ": the caller does not own this mutex; its owner is " + describe_owner(owner));
}

bool mutex::lock_slow(sched::time_point deadline) {
  const std::uint64_t me = detail::self_id();
  if (owner_.load(std::memory_order_relaxed) == me)
    throw std::system_error(std::make_error_code(std::errc::resource_deadlock_would_occur),
                            "green::mutex::lock: " + describe_owner(me) +
                                " already owns this mutex and would wait for itself forever (not recursive)");
  const bool spin_ok = can_spin();
  unsigned spins = spin_ok ? spin_limit : 0;
  unsigned backoff = 1;
  bool awoke = false;  // we own the `woken` bit (an unlock woke us, or we set it spinning)
  lock_wait lw;
  lw.since = sched::time_point::min();
  for (;;) {
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    if (!(s & locked)) {
      std::uint32_t ns = s | locked;
      if (awoke) ns &= ~woken;
      // acquire: pairs with the release in unlock()
      if (state_.compare_exchange_weak(s, ns, std::memory_order_acquire, std::memory_order_relaxed)) {
        owner_.store(me, std::memory_order_relaxed);
        return true;
      }
      continue;
    }
    if (spins > 0) {
      // Tell unlock() not to wake a parked waiter while we spin: we will take
      // the lock ourselves (Go's mutexWoken, sync/mutex.go).
      if (!awoke && !(s & woken) && (s & waiters) &&
          state_.compare_exchange_weak(s, s | woken, std::memory_order_relaxed, std::memory_order_relaxed))
        awoke = true;
      for (unsigned i = 0; i < backoff && spins > 0; ++i, --spins) sched::cpu_pause();
      if (backoff < max_backoff) backoff *= 2;
      continue;
    }

    std::unique_lock lk(qmu_);
    s = state_.load(std::memory_order_relaxed);
    bool enqueue = false;
    while (s & locked) {
      std::uint32_t ns = s | waiters;
      if (awoke) ns &= ~woken;
      // relaxed: qmu_ orders the queue; the bit only routes unlock() to it
      if (state_.compare_exchange_weak(s, ns, std::memory_order_relaxed)) {
        enqueue = true;
        break;
      }
    }
    if (!enqueue) continue;  // it came free: retry (lk unlocks)
    awoke = false;
    if (lw.since == sched::time_point::min()) lw.since = sched::clock::now();
    lw.handoff = false;
    sched::waiter w;
    w.data = &lw;
    sched::wake_reason r = detail::park_waiter(lk, q_, w, "mutex", deadline);
    if (r == sched::wake_reason::notified) {
      if (lw.handoff) {
        // acquire came with the wake: the unlocker left `locked` set for us
        owner_.store(me, std::memory_order_relaxed);
        return true;
      }
      awoke = true;
      spins = spin_ok ? spin_limit : 0;
      backoff = 1;
      continue;
    }
    // lk is held and w unlinked
    if (q_.empty()) state_.fetch_and(~waiters, std::memory_order_relaxed);
    lk.unlock();
    if (r == sched::wake_reason::timeout) return false;
    detail::raise_interrupt(r);
  }
}

void mutex::unlock_slow() noexcept {
  // We own the lock and `waiters` was set (or `woken`).
  std::uint32_t s = state_.load(std::memory_order_relaxed);
  while ((s & woken) || !(s & waiters)) {
    // A woken waiter is on its way, or nobody waits: just release.
    // release: publishes the critical section to the next owner
    if (state_.compare_exchange_weak(s, s & ~locked, std::memory_order_release, std::memory_order_relaxed)) return;
  }
  std::lock_guard lk(qmu_);
  bool released = false;
  while (sched::waiter* w = q_.pop_front()) {
    const bool last = q_.empty();
    auto* lw = static_cast<lock_wait*>(w->data);
    if (!released && sched::clock::now() - lw->since >= starve_after) {
      // Hand-off: the lock stays `locked` and becomes the waiter's.
      if (last) state_.fetch_and(~waiters, std::memory_order_relaxed);
      lw->handoff = true;
      if (detail::try_wake(w)) return;  // release (in wake): publishes the section
      lw->handoff = false;
      continue;
    }
    // Barging: release, mark `woken`, wake the waiter to compete.
    std::uint32_t cur = state_.load(std::memory_order_relaxed);
    std::uint32_t ns;
    do {
      ns = (released ? cur : cur & ~locked) | woken;
      if (last) ns &= ~waiters;
      // release: publishes the critical section to the next owner
    } while (!state_.compare_exchange_weak(cur, ns, std::memory_order_release, std::memory_order_relaxed));
    released = true;
    if (detail::try_wake(w)) return;
    state_.fetch_and(~woken, std::memory_order_relaxed);
  }
  // Nobody could be woken (each one's park had ended).
  if (!released) state_.fetch_and(~(locked | waiters), std::memory_order_release);  // release: as above
}

}  // namespace green
