// The scheduler: workers, run queues, parking, spawn, deadlock detection.
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
// wakes another (work may be waiting behind it). So no work waits while a
// worker sleeps, and a burst of wakes does not stampede every worker.
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
#include "green/sched/scheduler.hpp"

#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <time.h>
#include <mutex>
#include <ostream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "green/sched/io.hpp"
#include "green/sched/reactor.hpp"
#include "io_internal.hpp"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define GREEN_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define GREEN_SANITIZED 1
#endif
#endif

namespace green::sched {

namespace {

std::atomic<std::uint64_t> next_fiber_id{1};
std::atomic<unhandled_handler> unhandled{nullptr};

long futex(void* addr, int op, std::uint32_t val, const timespec* ts, std::uint32_t mask) {
  return ::syscall(SYS_futex, addr, op, val, ts, nullptr, mask);
}

// futex_wait() sleeps while *word == expected, until an absolute monotonic
// deadline. Spurious returns are fine: every caller re-checks.
void futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected, time_point deadline) {
  if (deadline == no_deadline) {
    futex(word, FUTEX_WAIT_BITSET_PRIVATE, expected, nullptr, FUTEX_BITSET_MATCH_ANY);
    return;
  }
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch()).count();
  if (ns < 0) ns = 0;
  timespec ts{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
  // steady_clock is CLOCK_MONOTONIC on Linux, which FUTEX_WAIT_BITSET uses.
  futex(word, FUTEX_WAIT_BITSET_PRIVATE, expected, &ts, FUTEX_BITSET_MATCH_ANY);
}

void futex_wake(void* word, int n) { futex(word, FUTEX_WAKE_PRIVATE, static_cast<std::uint32_t>(n), nullptr, 0); }

std::uint32_t* low_word(std::atomic<std::uint64_t>* w) {
  static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "park word futex assumes little endian");
  return reinterpret_cast<std::uint32_t*>(w);
}

std::uint64_t xorshift(std::uint64_t& s) {
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  return s;
}

}  // namespace

// ---------------------------------------------------------------------------
// Per-thread state. Read only through the noinline accessors below: a fiber
// may resume on another OS thread, and the compiler would otherwise keep a
// TLS address computed before a switch.

struct thread_state {
  worker* w = nullptr;
  parker thread_parker;  // parks of a plain OS thread
};
thread_local thread_state tls;

#if defined(__clang__)
#define GREEN_NOINLINE __attribute__((noinline))
#else
#define GREEN_NOINLINE __attribute__((noinline, noipa))
#endif
#define GREEN_NOINLINE_COLD __attribute__((noinline, cold))
// The switch path (park, wake, pick, push): one call each would be ~10% of a
// channel round trip.
#define GREEN_HOT inline __attribute__((always_inline))

GREEN_NOINLINE static worker* this_worker() noexcept {
  asm volatile("" ::: "memory");
  return tls.w;
}
GREEN_NOINLINE static parker* this_thread_parker() noexcept {
  asm volatile("" ::: "memory");
  return &tls.thread_parker;
}

// ---------------------------------------------------------------------------

enum class after : std::uint8_t { none, yield, park, exit };

// Invariants (run queue, after Go's runq): tail is written only by the owner;
// head advances only by CAS (owner and thieves); ring[head..tail) are the
// queued fibers, tail - head <= capacity. runnext holds at most one fiber and
// is taken by exchange/CAS.
struct alignas(64) worker {
  scheduler* s = nullptr;
  scheduler::impl* im = nullptr;
  unsigned index = 0;
  std::thread thread;
  std::atomic<pid_t> tid{0};
  context sched_ctx;
  fiber_base* current = nullptr;  // owner only

  std::atomic<std::uint32_t> head{0};
  std::atomic<std::uint32_t> tail{0};
  std::unique_ptr<std::atomic<fiber_base*>[]> ring;
  // hint[i]: the resume point of the fiber pushed into ring[i] (see
  // prefetch_next()). Owner only; a stale hint (the fiber was stolen) only
  // makes a prefetch useless, prefetches never fault.
  std::unique_ptr<const void*[]> hint;
  std::uint32_t cap = 256;
  std::atomic<fiber_base*> runnext{nullptr};
  std::uint32_t tick = 61;        // counts picks down to the next global-queue/timer check
  bool shuffle = false;           // cfg().shuffle, cached off the switch path
  std::uint32_t runnext_streak = 0;
  bool spinning = false;

  // after_switch() state; owner only
  after pending = after::none;
  fiber_base* prev = nullptr;
  std::uint64_t prev_gen = 0;
  after_switch_fn cb = nullptr;
  void* cb_arg = nullptr;

  timer_heap timers;
  stack_cache stacks;

  // sleeping
  std::atomic<std::uint32_t> token{0};       // 1: a wake is pending
  std::atomic<std::uint32_t> sleep_mode{0};  // 0 awake, 1 futex, 2 reactor
  bool idle_listed = false;                  // guarded by impl::idle_mu
  bool wake_spinning = false;                // guarded by impl::idle_mu

  std::uint64_t rng = 0x9E3779B97F4A7C15ull;
  std::atomic<std::uint64_t> switches{0};   // relaxed: progress counter for dumps and the monitor
  // Fibers in park_io() that entered it here minus those that left it here
  // (a fiber may resume on another worker): summed over the runtime's
  // workers it is how many wait on fds. Owner-only writes, so a plain
  // load+store instead of an RMW on one process-wide line, which every
  // fd wait of every worker used to bounce.
  std::atomic<std::int64_t> io_waits{0};
  std::atomic<fiber_base*> running{nullptr};  // relaxed: what the monitor sees running (identity only)
  std::atomic<std::uint32_t> dormant{0};    // spare workers: 1 while retired (futex word)
  clockid_t cpu_clock{};
  int* errno_addr = nullptr;                // the thread's errno (saved and restored per fiber across switches)                    // the thread's CPU-time clock; set by its creator, read by the monitor
  // count_switch(): owner only, so a plain load+store (no locked RMW on the switch path).
  void count_switch() noexcept { switches.store(switches.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed); }

  void after_switch() noexcept;
  static worker* switch_out(worker* w, after a, after_switch_fn cb = nullptr, void* cb_arg = nullptr) noexcept;
  static wake_reason park_fiber(worker*& w, ticket t, const char* what, time_point deadline, after_switch_fn cb,
                                void* arg) noexcept;
  static void fiber_entry(context* from, void* arg);
  static void check_stack(fiber_base* f) noexcept;
  static const char* stack_lo(const fiber_base* f) noexcept { return f->stack_.lo; }
  fiber_base* pick_local() noexcept;
  fiber_base* pick_startable() noexcept;
  bool start(fiber_base* f) noexcept { return f->stack_ ? true : start_new(f); }
  bool start_new(fiber_base* f) noexcept;
  void push(fiber_base* f, bool lifo) noexcept;
  void push_tail(fiber_base* f) noexcept;
  bool push_overflow(fiber_base* f, std::uint32_t h, std::uint32_t t) noexcept;
  fiber_base* steal_from(worker& v, bool take_runnext) noexcept;
  std::uint32_t queued() const noexcept {
    std::uint32_t n = tail.load(std::memory_order_relaxed) - head.load(std::memory_order_relaxed);
    return n + (runnext.load(std::memory_order_relaxed) ? 1 : 0);
  }
  void prefetch_next() noexcept;
  bool has_work() const noexcept {
    return head.load(std::memory_order_acquire) != tail.load(std::memory_order_acquire) ||
           runnext.load(std::memory_order_acquire) != nullptr;
  }
};

struct registry_shard {
  spinlock mu;
  fiber_base* head = nullptr;
};

struct scheduler::impl {
  scheduler* self;
  std::vector<std::unique_ptr<worker>> workers;
  reactor poller;
  std::atomic<bool> poller_busy{false};

  // global queue
  spinlock gmu;
  fiber_base* ghead = nullptr;
  fiber_base* gtail = nullptr;
  std::atomic<std::size_t> gsize{0};

  // idle workers
  std::mutex idle_mu;
  std::vector<worker*> idle;
  std::atomic<std::uint32_t> npidle{0};
  std::atomic<std::uint32_t> nmspinning{0};

  // registry: one shard per worker plus one for outside spawns
  std::vector<std::unique_ptr<registry_shard>> shards;

  // lifecycle
  std::atomic<bool> stopping{false};
  std::atomic<std::uint32_t> outside{0};  // threads inside push_from_outside()
  std::atomic<bool> stop{false};
  std::mutex drain_mu;
  std::condition_variable drain_cv;
  std::mutex main_mu;  // keeps `main` alive while check_deadlock() looks at it
  std::atomic<fiber_base*> main{nullptr};
  std::atomic<pid_t> main_waiter_tid{0};
  mutable std::mutex report_mu;
  std::string report;

  // stats
  std::atomic<std::uint64_t> spawned{0}, steals{0}, global_pushes{0}, deadlocks{0};

  // workers[0, nslots) have been started; nactive of them are not dormant
  // spares. Spares live in workers[nworkers, workers.size()).
  unsigned nworkers = 1;
  std::atomic<unsigned> nslots{0};
  std::atomic<unsigned> nactive{0};

  // monitor (see monitor_main())
  std::thread monitor;
  std::atomic<pid_t> monitor_tid{0};
  std::atomic<std::uint32_t> mon_word{0};  // 0 ticking, 1 asleep (all idle), 2 stop
  std::atomic<std::uint32_t> nstuck{0};
  std::atomic<std::uint64_t> stuck_reports{0}, spares_started{0}, monitor_polls{0};

  // schedtrace
  std::thread tracer;
  std::mutex trace_mu;
  std::condition_variable trace_cv;

  explicit impl(scheduler* s) : self(s) {}

  void push_global(fiber_base* first, fiber_base* last, std::size_t n) noexcept;
  fiber_base* take_global(worker& w) noexcept;
  void make_runnable(fiber_base* f, bool lifo = true) noexcept;
  void push_from_outside(fiber_base* f) noexcept;
  void wakep(bool local = false) noexcept;
  void wake_idle() noexcept;
  void notify(worker& w) noexcept;
  int sleep(worker& w, time_point deadline, reactor::ready_event* ready) noexcept;
  void leave_idle(worker& w) noexcept;
  fiber_base* find_runnable(worker& w) noexcept;
  fiber_base* found(worker& w, fiber_base* f) noexcept;
  void check_deadlock(worker& w) noexcept;
  bool all_asleep(fiber_base* m, std::uint64_t* main_word) noexcept;
  void register_fiber(fiber_base* f, unsigned shard) noexcept;
  void unregister_fiber(fiber_base* f) noexcept;
  void worker_main(worker& w) noexcept;
  std::int64_t io_waiting() const noexcept;
  void run_fiber(worker& w, fiber_base* f) noexcept;
  void exit_cleanup(worker& w, fiber_base* f) noexcept;
  std::string build_report();
  void monitor_main() noexcept;
  void wake_monitor() noexcept;
  void activate_spare() noexcept;
  void hand_off(worker& v) noexcept;
  void retire(worker& w) noexcept;
  std::string describe(fiber_base* f);
};

struct sched_access {
  static scheduler::impl* im(scheduler* s) { return s->impl_.get(); }
  // wake_as() is wake() saying where a parked fiber queues: the LIFO slot
  // (`lifo`) or its worker's run-queue tail. Any thread. Internal: only
  // wait_queue::wake_all(r, fifo) chooses.
  static bool wake_as(ticket t, wake_reason r, bool lifo) noexcept;
};

reactor* io_internal::current_reactor() noexcept {
  worker* w = this_worker();
  return (w && w->current) ? &w->im->poller : nullptr;
}

// io_waiting() is how many of this runtime's fibers wait on fds. Exact when
// every worker is idle (each worker's writes precede its seq_cst npidle++,
// which the caller has read); a hint otherwise. Any thread.
std::int64_t scheduler::impl::io_waiting() const noexcept {
  std::int64_t n = 0;
  const unsigned started = nslots.load(std::memory_order_acquire);  // acquire: a started spare's slot
  for (unsigned i = 0; i < started; ++i) n += workers[i]->io_waits.load(std::memory_order_relaxed);
  return n;
}


// ---------------------------------------------------------------------------
// wait_queue

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

const char* to_string(fiber_state s) noexcept {
  switch (s) {
    case fiber_state::created: return "created";
    case fiber_state::runnable: return "runnable";
    case fiber_state::running: return "running";
    case fiber_state::parked: return "parked";
    case fiber_state::done: return "done";
  }
  return "?";
}

// ---------------------------------------------------------------------------
// fiber_base

fiber_base::fiber_base() noexcept : id_(next_fiber_id.fetch_add(1, std::memory_order_relaxed)) {
  parker_.fiber = this;
  park_timer_.owner = this;
  park_timer_.fire = [](timer_node* n) {
    fiber_base* f = static_cast<park_timer*>(n)->owner;
    wake(f->park_ticket_, f->timer_reason_);
  };
}

fiber_base::~fiber_base() {
  if (ext != nullptr && ext_free != nullptr) ext_free(ext);
}

wake_reason fiber_base::wait_done(time_point deadline) {
  for (;;) {
    if (done()) return wake_reason::notified;
    waiter w;
    w.t = prepare_park();
    {
      std::lock_guard lk(done_mu_);
      if (done_.load(std::memory_order_relaxed)) return wake_reason::notified;
      joiners_.push_back(&w);
    }
    wake_reason r = park(w.t, "join", deadline);
    if (r == wake_reason::notified) return r;
    std::lock_guard lk(done_mu_);
    joiners_.erase(&w);
    if (w.chosen) return wake_reason::notified;
    return r;
  }
}

void fiber_base::detach() noexcept {
  bool report;
  {
    std::lock_guard lk(done_mu_);
    detached_ = true;
    report = done_.load(std::memory_order_relaxed) && error_;
  }
  if (report) get_unhandled_handler()(*this, error_);
}

void fiber_base::kill() noexcept {
  kill_requested_.store(true, std::memory_order_release);  // release: pairs with the acquire in park()
  for (;;) {
    std::uint64_t w = parker_.word.load(std::memory_order_acquire);
    auto st = parker::status(w);
    if (st != parker::armed && st != parker::parked) return;  // it will see the flag at its next park
    if (wake(ticket{&parker_, parker::gen(w)}, wake_reason::killed)) return;
  }
}

namespace {
void default_unhandled(fiber_base& f, std::exception_ptr e) {
  std::string what = "unknown exception";
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    what = ex.what();
  } catch (...) {
  }
  std::fprintf(stderr, "green: uncaught exception in detached fiber #%" PRIu64 " '%s': %s\n", f.id(),
               f.name().c_str(), what.c_str());
  std::terminate();
}
}  // namespace

void set_unhandled_handler(unhandled_handler h) noexcept { unhandled.store(h, std::memory_order_release); }
unhandled_handler get_unhandled_handler() noexcept {
  auto h = unhandled.load(std::memory_order_acquire);
  return h ? h : &default_unhandled;
}

// ---------------------------------------------------------------------------
// park / wake

fiber_base* current_fiber() noexcept {
  worker* w = this_worker();
  return w ? w->current : nullptr;
}
scheduler* current_scheduler() noexcept {
  worker* w = this_worker();
  return w ? w->s : nullptr;
}
int current_worker_index() noexcept {
  worker* w = this_worker();
  return w ? static_cast<int>(w->index) : -1;
}

ticket prepare_park() noexcept {
  worker* w = this_worker();
  parker* p = (w && w->current) ? &w->current->parker_ : this_thread_parker();
  std::uint64_t gen = parker::gen(p->word.load(std::memory_order_relaxed)) + 1;
  // relaxed: the ticket reaches wakers through the primitive's lock (release/acquire)
  p->word.store(parker::make(gen, parker::armed), std::memory_order_relaxed);
  return ticket{p, gen};
}

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

namespace {

wake_reason park_thread(parker* p, ticket t, time_point deadline, after_switch_fn cb, void* arg) noexcept {
  if (cb) cb(arg);
  for (;;) {
    std::uint64_t w = p->word.load(std::memory_order_acquire);
    if (parker::status(w) == parker::woken) break;
    if (deadline != no_deadline && clock::now() >= deadline) {
      std::uint64_t expect = parker::make(t.gen, parker::armed);
      p->word.compare_exchange_strong(expect, parker::make(t.gen, parker::woken, wake_reason::timeout),
                                      std::memory_order_acq_rel);
      continue;
    }
    auto* word32 = reinterpret_cast<std::atomic<std::uint32_t>*>(low_word(&p->word));
    futex_wait(word32, static_cast<std::uint32_t>(w), deadline);
  }
  std::uint64_t w = p->word.load(std::memory_order_acquire);
  p->word.store(parker::make(t.gen, parker::idle), std::memory_order_relaxed);
  return parker::reason(w);
}

}  // namespace

// park_fiber() is park() for the fiber `w` runs; on return `w` is the
// worker it resumed on (saves the caller a TLS read). Owner worker only.
GREEN_HOT wake_reason worker::park_fiber(worker*& w, ticket t, const char* what, time_point deadline,
                                         after_switch_fn cb, void* arg) noexcept {
  fiber_base* f = w->current;
  parker* p = &f->parker_;

  auto self_wake = [&](wake_reason r) {
    std::uint64_t expect = parker::make(t.gen, parker::armed);
    p->word.compare_exchange_strong(expect, parker::make(t.gen, parker::woken, r), std::memory_order_acq_rel);
  };
  if (f->kill_requested_.load(std::memory_order_acquire)) self_wake(wake_reason::killed);

  time_point eff = deadline;
  bool timed = false;
  if (eff != no_deadline && parker::status(p->word.load(std::memory_order_acquire)) == parker::armed) {
    if (eff <= clock::now()) {
      self_wake(f->timer_reason_);
    } else {
      f->park_ticket_ = t;
      w->timers.arm(&f->park_timer_, eff);
      timed = true;
    }
  }

  if (parker::status(p->word.load(std::memory_order_acquire)) == parker::woken) {
    if (cb) cb(arg);
  } else {
    f->wait_what_.store(what, std::memory_order_relaxed);
    w->prev_gen = t.gen;
    w = switch_out(w, after::park, cb, arg);
    f->wait_what_.store(nullptr, std::memory_order_relaxed);
  }
  if (timed) timer_heap::cancel(&f->park_timer_);
  std::uint64_t word = p->word.load(std::memory_order_acquire);
  p->word.store(parker::make(t.gen, parker::idle), std::memory_order_relaxed);
  wake_reason r = parker::reason(word);
  if (r == wake_reason::killed) f->kill_requested_.store(false, std::memory_order_relaxed);  // delivered once
  return r;
}

// fiber_parker() is the worker running the fiber that `t` parks, or null
// when `t` is a plain thread's (or the caller runs no fiber): park_thread().
static worker* fiber_parker(ticket t) noexcept {
  worker* w = this_worker();
  return (w != nullptr && w->current != nullptr && t.p->fiber != nullptr) ? w : nullptr;
}

wake_reason park(ticket t, const char* what, time_point deadline, after_switch_fn cb, void* arg) noexcept {
  worker* w = fiber_parker(t);
  if (w == nullptr) return park_thread(t.p, t, deadline, cb, arg);
  return worker::park_fiber(w, t, what, deadline, cb, arg);
}

wake_reason io_internal::park_io(ticket t, const char* what, time_point deadline) noexcept {
  worker* w = fiber_parker(t);
  if (w == nullptr) return park_thread(t.p, t, deadline, nullptr, nullptr);
  // Owner-only counters (see worker::io_waits): a plain load+store each.
  w->io_waits.store(w->io_waits.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  wake_reason r = worker::park_fiber(w, t, what, deadline, nullptr, nullptr);
  w->io_waits.store(w->io_waits.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);  // w: where we resumed
  return r;
}

fiber_base* yield() noexcept {
  worker* w = this_worker();
  if (w == nullptr || w->current == nullptr) {
    std::this_thread::yield();
    return nullptr;
  }
  // switch_out() hands back the worker we resumed on: no second TLS read
  // for the caller's kill check (this_fiber::yield()).
  return worker::switch_out(w, after::yield)->current;
}

// ---------------------------------------------------------------------------
// run queues

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

void worker::push_tail(fiber_base* f) noexcept {
  for (;;) {
    std::uint32_t h = head.load(std::memory_order_acquire);  // acquire: pairs with thieves' CAS
    std::uint32_t t = tail.load(std::memory_order_relaxed);   // owner's own variable
    if (t - h < cap) {
      hint[t & (cap - 1)] = f->ctx_.resume_point();
      ring[t & (cap - 1)].store(f, std::memory_order_relaxed);
      tail.store(t + 1, std::memory_order_release);  // release: publishes the slot to thieves
      return;
    }
    if (push_overflow(f, h, t)) return;
  }
}

// push_overflow() moves half of a full ring plus f to the global queue in one
// batch. It claims the slots with the CAS first and links them afterwards:
// once head has moved past them no thief reads them, and only the owner (us)
// could overwrite them. No batch array: this runs on fiber stacks, where a
// 4 KiB local would cost every fiber that wakes another an extra stack page.
// Returns false if a thief raced us (retry the push).
GREEN_NOINLINE_COLD bool worker::push_overflow(fiber_base* f, std::uint32_t h, std::uint32_t t) noexcept {
  std::uint32_t n = (t - h) / 2;
  if (!head.compare_exchange_strong(h, h + n, std::memory_order_acq_rel)) return false;
  fiber_base* first = f;
  fiber_base* last = f;
  if (n > 0) {
    first = ring[h & (cap - 1)].load(std::memory_order_relaxed);
    fiber_base* prevf = first;
    for (std::uint32_t i = 1; i < n; ++i) {
      fiber_base* g = ring[(h + i) & (cap - 1)].load(std::memory_order_relaxed);
      prevf->next_ = g;
      prevf = g;
    }
    prevf->next_ = f;
  }
  im->push_global(first, last, n + 1);
  return true;
}

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
    if (runnext.compare_exchange_strong(f, nullptr, std::memory_order_acquire)) {
      ++runnext_streak;
      return f;
    }
  }
  runnext_streak = 0;
  for (;;) {
    std::uint32_t h = head.load(std::memory_order_acquire);
    std::uint32_t t = tail.load(std::memory_order_relaxed);
    if (h == t) break;
    fiber_base* g = ring[h & (cap - 1)].load(std::memory_order_relaxed);
    if (head.compare_exchange_weak(h, h + 1, std::memory_order_release)) return g;  // release: the slot may be reused
  }
  f = runnext.exchange(nullptr, std::memory_order_acquire);  // skipped above, but it is all we have
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

fiber_base* worker::steal_from(worker& v, bool take_runnext) noexcept {
  fiber_base* batch[512];
  std::uint32_t n;
  for (;;) {
    std::uint32_t h = v.head.load(std::memory_order_acquire);
    std::uint32_t t = v.tail.load(std::memory_order_acquire);  // acquire: pairs with the owner's release of tail
    n = t - h;
    n = n - n / 2;
    if (n == 0) {
      if (!take_runnext) return nullptr;
      fiber_base* f = v.runnext.load(std::memory_order_acquire);
      if (f && v.runnext.compare_exchange_strong(f, nullptr, std::memory_order_acq_rel)) {
        im->steals.fetch_add(1, std::memory_order_relaxed);  // a steal too (stats::steals)
        return f;
      }
      return nullptr;
    }
    if (n > v.cap / 2 + 1 || n > 512) continue;  // inconsistent snapshot
    for (std::uint32_t i = 0; i < n; ++i) batch[i] = v.ring[(h + i) & (v.cap - 1)].load(std::memory_order_relaxed);
    if (v.head.compare_exchange_weak(h, h + n, std::memory_order_acq_rel)) break;
  }
  fiber_base* f = batch[--n];
  if (n) {
    std::uint32_t t = tail.load(std::memory_order_relaxed);
    for (std::uint32_t i = 0; i < n; ++i) {
      hint[(t + i) & (cap - 1)] = batch[i]->ctx_.resume_point();  // ours since the CAS
      ring[(t + i) & (cap - 1)].store(batch[i], std::memory_order_relaxed);
    }
    tail.store(t + n, std::memory_order_release);
  }
  im->steals.fetch_add(n + 1, std::memory_order_relaxed);
  return f;
}

void scheduler::impl::push_global(fiber_base* first, fiber_base* last, std::size_t n) noexcept {
  last->next_ = nullptr;
  for (fiber_base* f = first; f; f = f->next_) f->state_.store(fiber_state::runnable, std::memory_order_relaxed);
  {
    std::lock_guard lk(gmu);
    if (gtail) gtail->next_ = first;
    else ghead = first;
    gtail = last;
    gsize.fetch_add(n, std::memory_order_relaxed);
  }
  global_pushes.fetch_add(n, std::memory_order_relaxed);
}

fiber_base* scheduler::impl::take_global(worker& w) noexcept {
  if (gsize.load(std::memory_order_relaxed) == 0) return nullptr;
  // Take a fair share (size/N + 1), at most what fits in half the ring, like
  // Go's globrunqget; the ring is filled after the lock is dropped.
  std::uint32_t room = w.cap - (w.tail.load(std::memory_order_relaxed) - w.head.load(std::memory_order_acquire));
  fiber_base* first;
  std::size_t n;
  {
    std::lock_guard lk(gmu);
    std::size_t size = gsize.load(std::memory_order_relaxed);
    if (size == 0) return nullptr;
    n = std::min<std::size_t>({size / nactive.load(std::memory_order_relaxed) + 1, w.cap / 2, std::size_t(room) + 1, size});
    first = ghead;
    fiber_base* last = first;
    for (std::size_t i = 1; i < n; ++i) last = last->next_;
    ghead = last->next_;
    if (!ghead) gtail = nullptr;
    last->next_ = nullptr;
    gsize.fetch_sub(n, std::memory_order_relaxed);
  }
  fiber_base* rest = first->next_;
  while (rest) {
    fiber_base* g = rest;
    rest = g->next_;
    w.push_tail(g);
  }
  return first;
}

GREEN_HOT void scheduler::impl::make_runnable(fiber_base* f, bool lifo) noexcept {
  worker* w = this_worker();
  if (w && w->s == self) {
    w->push(f, lifo);
    wakep(true);
  } else {
    push_from_outside(f);
  }
}

// push_from_outside() queues f from a thread that is not one of our workers
// (a plain thread, or another runtime's worker). Once f is queued it may run,
// finish, and let ~scheduler() proceed while we are still in wakep(); so the
// call counts itself in `outside` first, and ~scheduler() waits for the count
// to drop to zero before it frees anything.
void scheduler::impl::push_from_outside(fiber_base* f) noexcept {
  outside.fetch_add(1, std::memory_order_seq_cst);  // seq_cst: seen by ~scheduler once f's exit is
  push_global(f, f, 1);
  wakep();
  outside.fetch_sub(1, std::memory_order_release);  // release: our last touch of *this happens before the free
}

// wakep(local): `local` says the work just made runnable sits in the calling
// worker's own queue. Then no fence: if the loads below are reordered before
// that push and an idle worker misses it in its re-check, the work is still
// run, by us, as soon as we switch (only parallelism is lost, briefly; Go's
// wakep() makes the same trade with plain loads). Work put where no running
// worker will look (the global queue from outside) needs the fence.
GREEN_HOT void scheduler::impl::wakep(bool local) noexcept {
  // seq_cst: orders the push that precedes with the loads below, against the
  // idle side's npidle++ / nmspinning-- then re-check (Dekker).
  if (!local) std::atomic_thread_fence(std::memory_order_seq_cst);
  if (npidle.load(std::memory_order_seq_cst) == 0) {
    // Nobody sleeps. The thread that called us may be outside the runtime with
    // every worker busy: they will see the global queue within 61 ticks.
    return;
  }
  wake_idle();
}

// wake_idle() is wakep()'s slow path: somebody sleeps.
void scheduler::impl::wake_idle() noexcept {
  if (nmspinning.load(std::memory_order_seq_cst) != 0) return;
  std::uint32_t zero = 0;
  if (!nmspinning.compare_exchange_strong(zero, 1, std::memory_order_seq_cst)) return;
  worker* target = nullptr;
  {
    std::lock_guard lk(idle_mu);
    if (!idle.empty()) {
      target = idle.back();
      idle.pop_back();
      target->idle_listed = false;
      target->wake_spinning = true;
      npidle.fetch_sub(1, std::memory_order_seq_cst);
    }
  }
  if (!target) {
    nmspinning.fetch_sub(1, std::memory_order_seq_cst);
    return;
  }
  notify(*target);
}

void scheduler::impl::notify(worker& w) noexcept {
  // seq_cst on both sides: either the sleeper sees token == 1 before it
  // blocks, or we see its sleep_mode and interrupt the right wait.
  if (w.token.exchange(1, std::memory_order_seq_cst) != 0) return;
  if (w.sleep_mode.load(std::memory_order_seq_cst) == 2) poller.wake();
  else futex_wake(&w.token, 1);
}

// sleep() returns the fd events the reactor brought (the caller dispatches
// them once it has left the idle list).
int scheduler::impl::sleep(worker& w, time_point deadline, reactor::ready_event* ready) noexcept {
  bool expect = false;
  int n = 0;
  if (poller_busy.compare_exchange_strong(expect, true, std::memory_order_acquire)) {
    w.sleep_mode.store(2, std::memory_order_seq_cst);
    if (w.token.load(std::memory_order_seq_cst) == 0) n = poller.wait(deadline, ready);
    w.sleep_mode.store(0, std::memory_order_relaxed);
    poller_busy.store(false, std::memory_order_release);
  } else {
    w.sleep_mode.store(1, std::memory_order_seq_cst);
    futex_wait(&w.token, 0, deadline);
    w.sleep_mode.store(0, std::memory_order_relaxed);
  }
  return n;
}

void scheduler::impl::leave_idle(worker& w) noexcept {
  {
    std::lock_guard lk(idle_mu);
    if (w.idle_listed) {
      idle.erase(std::find(idle.begin(), idle.end(), &w));
      w.idle_listed = false;
      npidle.fetch_sub(1, std::memory_order_seq_cst);
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
  if (mon_word.load(std::memory_order_seq_cst) == 1) wake_monitor();
}

fiber_base* scheduler::impl::found(worker& w, fiber_base* f) noexcept {
  if (w.spinning) {
    w.spinning = false;
    // The last spinner to find work starts another: more may be waiting.
    if (nmspinning.fetch_sub(1, std::memory_order_seq_cst) == 1) wakep();
  }
  return f;
}

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
      std::uint32_t busy = nactive.load(std::memory_order_seq_cst) - npidle.load(std::memory_order_seq_cst);
      if (2 * nmspinning.load(std::memory_order_seq_cst) < busy) {
        w.spinning = true;
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

    // Go idle: register, stop spinning, re-check, sleep.
    {
      std::lock_guard lk(idle_mu);
      if (gsize.load(std::memory_order_relaxed) != 0) continue;
      w.idle_listed = true;
      idle.push_back(&w);
      npidle.fetch_add(1, std::memory_order_seq_cst);
    }
    bool recheck = false;
    if (w.spinning) {
      w.spinning = false;
      nmspinning.fetch_sub(1, std::memory_order_seq_cst);
      std::atomic_thread_fence(std::memory_order_seq_cst);
      // Started workers only: one not started has no queue to look at.
      const unsigned started = nslots.load(std::memory_order_acquire);
      for (unsigned i = 0; i < started; ++i)
        if (workers[i]->has_work()) recheck = true;
      if (gsize.load(std::memory_order_seq_cst) != 0) recheck = true;
    }
    if (recheck) {
      leave_idle(w);
      if (!w.spinning) {
        w.spinning = true;
        nmspinning.fetch_add(1, std::memory_order_seq_cst);
      }
      continue;
    }
    if (npidle.load(std::memory_order_seq_cst) == nactive.load(std::memory_order_seq_cst)) check_deadlock(w);
    reactor::ready_event ready[reactor::max_events];
    int nready = stop.load(std::memory_order_acquire) ? 0 : sleep(w, w.timers.earliest(), ready);
    leave_idle(w);
    // Busy again before the wakes: a fiber woken here goes to our queue and
    // its wakep() does not pick us, asleep-listed, to wake (an eventfd write
    // and a spurious poll per cycle, measured in the echo benchmark).
    reactor::dispatch(ready, nready);
  }
}

// ---------------------------------------------------------------------------
// switching

namespace {
[[noreturn]] void report_overflow(const fiber_base* f, const char* how) noexcept {
  char buf[256];
  int len = std::snprintf(buf, sizeof buf, "green: stack overflow in fiber #%" PRIu64 " '%s' (%s)\n", f->id(),
                          f->name().c_str(), how);
  if (len > 0) {
    ssize_t r = ::write(2, buf, static_cast<std::size_t>(std::min<int>(len, sizeof buf - 1)));
    (void)r;
  }
  std::abort();
}
}  // namespace

// check_stack() runs at every switch away from a fiber. The stack-pointer
// test is free. The canary read touches the stack's lowest page, which on a
// kernel without the shared zero page makes it resident (measured: +2.7 KiB
// RSS per fiber when read at every exit), so it is made only when the fiber
// is in the lowest quarter of its stack, where those pages are in use anyway.
GREEN_HOT void worker::check_stack(fiber_base* f) noexcept {
  const stack& st = f->stack_;
  char probe;
  // 256 bytes: below that, the next call's frame would already be past the end.
  if (&probe < st.lo + 256) report_overflow(f, "stack pointer below the stack's end");
  if ((&probe < st.lo + st.size / 4) && !st.canary_intact())
    report_overflow(f, "canary at the end of a slab stack overwritten");
}

// switch_out() leaves the current fiber: `a` says what after_switch() does
// with it. Fiber context only. Returns when the fiber is resumed (not for
// exit), with the worker it resumed on.
GREEN_HOT worker* worker::switch_out(worker* w, after a, after_switch_fn cb, void* cb_arg) noexcept {
  fiber_base* prev = w->current;
  check_stack(prev);
  fiber_base* next = w->pick_startable();
  if (next == nullptr && a == after::yield) {
    next = w->im->take_global(*w);
    if (next && !w->start(next)) next = nullptr;
    if (next == nullptr) {
      w->count_switch();  // progress for the monitor: this fiber does yield
      return w;           // nothing else to run: keep running
    }
  }
  w->pending = a;
  w->prev = prev;
  w->cb = cb;
  w->cb_arg = cb_arg;
  prev->saved_errno_ = *w->errno_addr;
  w->count_switch();
  context* to;
  w->running.store(next, std::memory_order_relaxed);
  if (next) {
    w->prefetch_next();
    w->current = next;
    next->state_.store(fiber_state::running, std::memory_order_relaxed);
    next->last_worker_.store(w->index, std::memory_order_relaxed);
    to = &next->ctx_;
  } else {
    w->current = nullptr;
    to = &w->sched_ctx;
  }
  if (a == after::exit) prev->ctx_.exit_to(*to, nullptr);
  prev->ctx_.switch_to(*to, nullptr);
  // Resumed, possibly on another worker: re-read it.
  worker* now = this_worker();
  now->after_switch();
  *now->errno_addr = prev->saved_errno_;
  return now;
}

GREEN_HOT void worker::after_switch() noexcept {
  fiber_base* p = prev;
  after a = pending;
  pending = after::none;
  prev = nullptr;
  switch (a) {
    case after::none:
      return;
    case after::yield:
      push_tail(p);
      return;
    case after::park: {
      if (cb) cb(cb_arg);
      cb = nullptr;
      p->state_.store(fiber_state::parked, std::memory_order_relaxed);
      std::uint64_t expect = parker::make(prev_gen, parker::armed);
      // acq_rel: release publishes the saved context to whoever wakes it;
      // on failure, acquire sees the waker's reason.
      if (!p->parker_.word.compare_exchange_strong(expect, parker::make(prev_gen, parker::parked),
                                                   std::memory_order_acq_rel, std::memory_order_acquire)) {
        push(p, true);  // woken while switching out: run it again
        im->wakep(true);
      }
      return;
    }
    case after::exit:
      im->exit_cleanup(*this, p);
      return;
  }
}

void worker::fiber_entry(context*, void*) {
  worker* now = this_worker();
  now->after_switch();
  fiber_base* f = now->current;
  *now->errno_addr = 0;
  f->invoke();
  bool report = false;
  {
    std::lock_guard lk(f->done_mu_);
    f->done_.store(true, std::memory_order_release);  // release: publishes the result to joiners
    f->joiners_.wake_all();
    report = f->detached_ && f->error_;
  }
  if (report) get_unhandled_handler()(*f, f->error_);
  worker* w = this_worker();
  f->state_.store(fiber_state::done, std::memory_order_relaxed);
  switch_out(w, after::exit);
  __builtin_trap();
}

void scheduler::impl::exit_cleanup(worker& w, fiber_base* f) noexcept {
  f->ctx_.release();
  w.stacks.put(f->stack_);
  f->stack_ = stack{};
  unregister_fiber(f);
  f->release();  // the runtime's reference
  if (self->live_.fetch_sub(1, std::memory_order_acq_rel) == 1 && stopping.load(std::memory_order_acquire)) {
    std::lock_guard lk(drain_mu);
    drain_cv.notify_all();
  }
}

// start_new() gives a fiber that never ran its stack (start() checks). If none can be mapped, the
// fiber finishes at once with the std::system_error, which its joiner sees.
bool worker::start_new(fiber_base* f) noexcept {
  try {
    f->stack_ = stacks.get(f->stack_size_, s->cfg().guard);
  } catch (...) {
    f->error_ = std::current_exception();
    {
      std::lock_guard lk(f->done_mu_);
      f->done_.store(true, std::memory_order_release);
      f->joiners_.wake_all();
    }
    f->state_.store(fiber_state::done, std::memory_order_relaxed);
    im->unregister_fiber(f);
    f->release();
    if (s->live_.fetch_sub(1, std::memory_order_acq_rel) == 1 && im->stopping.load(std::memory_order_acquire)) {
      std::lock_guard lk(im->drain_mu);
      im->drain_cv.notify_all();
    }
    return false;
  }
  f->ctx_.init_fiber(f->stack_.lo, f->stack_.size, &worker::fiber_entry);
  return true;
}

GREEN_HOT fiber_base* worker::pick_startable() noexcept {
  while (fiber_base* f = pick_local())
    if (start(f)) return f;
  return nullptr;
}

void scheduler::impl::run_fiber(worker& w, fiber_base* f) noexcept {
  if (!w.start(f)) return;
  w.prefetch_next();
  w.current = f;
  w.running.store(f, std::memory_order_relaxed);
  f->state_.store(fiber_state::running, std::memory_order_relaxed);
  f->last_worker_.store(w.index, std::memory_order_relaxed);
  w.count_switch();
  w.sched_ctx.switch_to(f->ctx_, nullptr);
  w.after_switch();
}

// ---------------------------------------------------------------------------
// guard-page overflow reports

namespace {
#ifndef GREEN_SANITIZED  // the sanitizers report overflows themselves
std::once_flag segv_once;
struct sigaction old_segv;

void segv_handler(int sig, siginfo_t* info, void* uctx) {
  worker* w = tls.w;
  if (w && w->current) {
    auto addr = reinterpret_cast<std::uintptr_t>(info->si_addr);
    auto lo = reinterpret_cast<std::uintptr_t>(worker::stack_lo(w->current));
    if (addr < lo && addr + 65536 >= lo) report_overflow(w->current, "hit the guard page");
  }
  // Not ours: hand it to whoever was installed before, or die as usual.
  if (old_segv.sa_flags & SA_SIGINFO) {
    if (old_segv.sa_sigaction) return old_segv.sa_sigaction(sig, info, uctx);
  } else if (old_segv.sa_handler != SIG_DFL && old_segv.sa_handler != SIG_IGN && old_segv.sa_handler) {
    return old_segv.sa_handler(sig);
  }
  signal(sig, SIG_DFL);
  raise(sig);
}
#endif

void install_segv_handler() {
#ifndef GREEN_SANITIZED
  std::call_once(segv_once, [] {
    struct sigaction sa{};
    sa.sa_sigaction = segv_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &old_segv);
  });
#endif
}
}  // namespace

// ---------------------------------------------------------------------------
// registry

void scheduler::impl::register_fiber(fiber_base* f, unsigned shard) noexcept {
  registry_shard& r = *shards[shard];
  f->reg_shard_ = shard;
  std::lock_guard lk(r.mu);
  f->reg_prev_ = nullptr;
  f->reg_next_ = r.head;
  if (r.head) r.head->reg_prev_ = f;
  r.head = f;
}

void scheduler::impl::unregister_fiber(fiber_base* f) noexcept {
  registry_shard& r = *shards[f->reg_shard_];
  std::lock_guard lk(r.mu);
  if (f->reg_prev_) f->reg_prev_->reg_next_ = f->reg_next_;
  else r.head = f->reg_next_;
  if (f->reg_next_) f->reg_next_->reg_prev_ = f->reg_prev_;
  f->reg_prev_ = f->reg_next_ = nullptr;
}

// ---------------------------------------------------------------------------
// deadlock detection

namespace {
std::vector<pid_t> list_threads() {
  std::vector<pid_t> tids;
  if (DIR* d = ::opendir("/proc/self/task")) {
    while (dirent* e = ::readdir(d))
      if (e->d_name[0] != '.') tids.push_back(static_cast<pid_t>(std::atoi(e->d_name)));
    ::closedir(d);
  }
  return tids;
}

// Threads of this process that are not `ours` (workers, the thread waiting
// in run_main): any of them might wake a fiber, so while one exists no
// deadlock is reported (never a false report; a missed one in mixed
// programs). Under TSan its helper thread, started at the first
// pthread_create and named like the main thread, is such a thread too.
bool outside_threads_exist(const std::vector<pid_t>& ours) {
  for (pid_t tid : list_threads()) {
    if (std::find(ours.begin(), ours.end(), tid) != ours.end()) continue;
    return true;
  }
  return false;
}
}  // namespace

std::string scheduler::impl::build_report() {
  std::ostringstream out;
  out << "green: deadlock: all " << self->live_fibers() << " fibers are asleep and nothing can wake them:";
  for (auto& sh : shards) {
    std::lock_guard lk(sh->mu);
    for (fiber_base* f = sh->head; f; f = f->reg_next_) {
      const char* why = f->wait_reason();
      out << "\n  fiber #" << f->id() << " '" << f->name() << "': " << to_string(f->state()) << " ("
          << (why ? why : "?") << ")";
    }
  }
  return out.str();
}

// all_asleep() is true when nothing of this runtime can run or be woken from
// inside it: no fd waiter, no timer, empty queues, every worker idle, and
// the main fiber parked (its park word goes to *main_word).
bool scheduler::impl::all_asleep(fiber_base* m, std::uint64_t* main_word) noexcept {
  if (io_waiting() > 0) return false;  // a peer may still write to that fd
  for (auto& v : workers)
    if (v->timers.size() != 0 || v->has_work()) return false;
  if (gsize.load(std::memory_order_acquire) != 0) return false;
  if (npidle.load(std::memory_order_seq_cst) != nactive.load(std::memory_order_seq_cst)) return false;
  *main_word = m->parker_.word.load(std::memory_order_acquire);
  return parker::status(*main_word) == parker::parked;
}

void scheduler::impl::check_deadlock(worker& w) noexcept {
  // Cheap exits first: this runs each time the last worker goes idle.
  if (io_waiting() > 0) return;
  if (w.timers.size() != 0) return;
  std::lock_guard main_lk(main_mu);
  fiber_base* m = main.load(std::memory_order_acquire);
  if (m == nullptr || self->cfg_.on_deadlock == deadlock_policy::ignore) return;
  if (stopping.load(std::memory_order_acquire)) return;
  std::uint64_t mw = 0;
  if (!all_asleep(m, &mw)) return;
  std::vector<pid_t> ours;
  for (auto& v : workers) ours.push_back(v->tid.load(std::memory_order_relaxed));
  ours.push_back(main_waiter_tid.load(std::memory_order_relaxed));
  ours.push_back(monitor_tid.load(std::memory_order_relaxed));
  if (outside_threads_exist(ours)) return;
  // Then the same checks again. An outside thread may have woken fibers and
  // exited between the first checks and the /proc scan (the scan then sees
  // no outside thread, while the fibers it woke sit in the global queue:
  // regression test a_thread_that_wakes_fibers_and_exits_is_no_deadlock).
  // Once no outside thread exists none can appear (only a running fiber or
  // thread could start one), and what an exited thread did precedes its exit,
  // which precedes our scan (the kernel's exit and readdir order them; the
  // fence orders our loads after the scan), so checks made now see it.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  std::uint64_t mw2 = 0;
  if (!all_asleep(m, &mw2) || mw2 != mw) return;
  std::string text = build_report();
  deadlocks.fetch_add(1, std::memory_order_relaxed);
  if (self->cfg_.on_deadlock == deadlock_policy::abort) {
    std::fprintf(stderr, "%s\n", text.c_str());
    std::abort();
  }
  {
    std::lock_guard lk(report_mu);
    report = std::move(text);
  }
  wake(ticket{&m->parker_, parker::gen(mw)}, wake_reason::deadlock);
}

void scheduler::unwind_deadlocked(fiber_base* self) {
  // Every fiber is asleep and nothing can wake one, so every other fiber is
  // part of the deadlock: kill them all. References keep each control block
  // alive while we wait (unregister_fiber() runs at its exit).
  std::vector<fiber_base*> others;
  for (auto& sh : impl_->shards) {
    std::lock_guard lk(sh->mu);
    for (fiber_base* f = sh->head; f; f = f->reg_next_) {
      if (f == self) continue;
      f->add_ref();
      others.push_back(f);
    }
  }
  for (fiber_base* f : others) f->kill();
  bool waiting = true;
  for (fiber_base* f : others) {
    if (waiting && f->wait_done(no_deadline) != wake_reason::notified) waiting = false;
    f->release();
  }
}

std::string scheduler::deadlock_report() const {
  std::lock_guard lk(impl_->report_mu);
  return impl_->report;
}

// ---------------------------------------------------------------------------
// monitor
//
// One thread per runtime (Go's sysmon). Every limit/2 it samples each
// started worker's `running` fiber and switch count: a worker whose count
// has not moved for `limit` while it runs a fiber is stuck (a blocking call
// the patch layer does not cover, a long computation). The fiber is reported
// once; its queued fibers move to the global queue (hand_off()), where idle
// workers (woken for it) and busy ones (every 61 picks, and at each yield
// that finds nothing local) take them; if every worker is stuck, a spare
// worker is started (or woken from retirement). Spares retire when nothing is stuck
// and they hold no timers. The monitor also polls the reactor when fibers
// wait on fds and no worker has polled for `limit` (every worker busy).
// When every worker is idle it sleeps until a worker wakes up, so an idle
// runtime costs no CPU.
//
// Cost: a relaxed store of `running` per switch (same cache line as the
// switch count); the monitor's own wake-ups, limit/2 apart, only while
// some worker is busy.

void scheduler::impl::wake_monitor() noexcept {
  std::uint32_t expect = 1;
  // seq_cst: pairs with the monitor's store of 1 before its npidle check
  if (mon_word.compare_exchange_strong(expect, 0, std::memory_order_seq_cst)) futex_wake(&mon_word, 1);
}

// describe() names a fiber for a report, if it is still alive (the registry
// lock keeps it so while we read).
std::string scheduler::impl::describe(fiber_base* f) {
  for (auto& sh : shards) {
    std::lock_guard lk(sh->mu);
    for (fiber_base* g = sh->head; g; g = g->reg_next_) {
      if (g != f) continue;
      std::ostringstream out;
      out << "fiber #" << g->id() << " '" << g->name() << "'";
      if (g->parent_id_ != 0) out << " (spawned by fiber #" << g->parent_id_ << ")";
      else out << " (spawned from a thread)";
      return out.str();
    }
  }
  return {};
}

// hand_off() moves the queued fibers of a stuck worker to the global queue,
// where every other worker looks (idle ones when woken, busy ones every 61
// picks and whenever a yield finds nothing local). Claims slots with the same
// CAS on head as a thief. Monitor only.
void scheduler::impl::hand_off(worker& v) noexcept {
  fiber_base* batch[256];  // the monitor's own stack; one claim per 256 fibers
  for (;;) {
    std::uint32_t h = v.head.load(std::memory_order_acquire);
    std::uint32_t t = v.tail.load(std::memory_order_acquire);  // acquire: pairs with the owner's release of tail
    std::uint32_t n = t - h;
    if (n == 0) break;
    if (n > v.cap) continue;  // inconsistent snapshot
    n = std::min<std::uint32_t>(n, 256);
    for (std::uint32_t i = 0; i < n; ++i) batch[i] = v.ring[(h + i) & (v.cap - 1)].load(std::memory_order_relaxed);
    if (!v.head.compare_exchange_weak(h, h + n, std::memory_order_acq_rel)) continue;
    for (std::uint32_t i = 0; i + 1 < n; ++i) batch[i]->next_ = batch[i + 1];
    push_global(batch[0], batch[n - 1], n);
  }
  fiber_base* f = v.runnext.load(std::memory_order_acquire);
  if (f && v.runnext.compare_exchange_strong(f, nullptr, std::memory_order_acq_rel)) push_global(f, f, 1);
  wakep();
}

// activate_spare() wakes a retired spare, or starts a new one. Monitor only.
void scheduler::impl::activate_spare() noexcept {
  unsigned started = nslots.load(std::memory_order_relaxed);  // only the monitor writes it
  for (unsigned i = nworkers; i < started; ++i) {
    worker& v = *workers[i];
    if (v.dormant.load(std::memory_order_seq_cst) == 1) {
      nactive.fetch_add(1, std::memory_order_seq_cst);
      v.dormant.store(0, std::memory_order_seq_cst);
      futex_wake(&v.dormant, 1);
      spares_started.fetch_add(1, std::memory_order_relaxed);
      return;
    }
  }
  if (started >= workers.size()) return;  // every spare is already running
  worker* wp = workers[started].get();
  nactive.fetch_add(1, std::memory_order_seq_cst);
  nslots.store(started + 1, std::memory_order_release);  // release: its slot is ready for thieves
  try {
    wp->thread = std::thread([this, wp] { worker_main(*wp); });
    pthread_getcpuclockid(wp->thread.native_handle(), &wp->cpu_clock);
    spares_started.fetch_add(1, std::memory_order_relaxed);
  } catch (...) {
    nactive.fetch_sub(1, std::memory_order_seq_cst);  // no thread: its slot stays empty
  }
}

// retire() parks a spare worker until the monitor needs it again. Its
// queue goes to the global queue first. The spare itself only.
void scheduler::impl::retire(worker& w) noexcept {
  if (w.spinning) {
    w.spinning = false;
    nmspinning.fetch_sub(1, std::memory_order_seq_cst);
  }
  while (fiber_base* f = w.pick_local()) push_global(f, f, 1);
  w.dormant.store(1, std::memory_order_seq_cst);
  nactive.fetch_sub(1, std::memory_order_seq_cst);
  wakep();  // the work we handed on, or the spinner role we gave up
  while (w.dormant.load(std::memory_order_seq_cst) == 1 && !stop.load(std::memory_order_acquire))
    futex_wait(&w.dormant, 1, no_deadline);
}

namespace {
clock::duration thread_cpu(const worker& v) noexcept {
  timespec ts{};
  if (clock_gettime(v.cpu_clock, &ts) != 0) return {};
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

// thread_blocked() is true when the worker's thread sleeps in the kernel
// (state S or D in /proc: a blocking call).
bool thread_blocked(const worker& v) noexcept {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/task/%d/stat", static_cast<int>(v.tid.load(std::memory_order_relaxed)));
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[256];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return false;
  buf[n] = 0;
  const char* paren = std::strrchr(buf, ')');  // the name may hold spaces and parens
  if (paren == nullptr || paren[1] == 0 || paren[2] == 0) return false;
  return paren[2] == 'S' || paren[2] == 'D';
}
}  // namespace

void scheduler::impl::monitor_main() noexcept {
  monitor_tid.store(static_cast<pid_t>(::syscall(SYS_gettid)), std::memory_order_release);
  char name[16];
  std::snprintf(name, sizeof name, "%.9s-mon", self->cfg_.name.c_str());
  pthread_setname_np(pthread_self(), name);
  const clock::duration limit = self->cfg_.monitor_limit;
  struct seen {
    std::uint64_t switches = 0;
    time_point since{};      // when `switches` last moved
    time_point cpu_at{};     // when `cpu` was read (the first tick without a switch)
    clock::duration cpu{};   // the thread's CPU time then (a syscall: read only when suspect)
    bool reported = false;
  };
  std::vector<seen> last(workers.size());
  unsigned idle_ticks = 0;
  for (;;) {
    std::uint32_t word = mon_word.load(std::memory_order_seq_cst);
    if (word == 2) return;
    futex_wait(&mon_word, 0, clock::now() + limit / 2);
    if (mon_word.load(std::memory_order_seq_cst) == 2) return;
    time_point now = clock::now();
    unsigned started = nslots.load(std::memory_order_relaxed);
    std::uint32_t stuck = 0;
    bool stuck_work = false;
    for (unsigned i = 0; i < started; ++i) {
      worker& v = *workers[i];
      fiber_base* f = v.running.load(std::memory_order_relaxed);
      std::uint64_t sw = v.switches.load(std::memory_order_relaxed);
      seen& e = last[i];
      if (f == nullptr || sw != e.switches) {
        e = seen{sw, now, {}, {}, false};
        continue;
      }
      if (e.cpu_at == time_point{}) {
        e.cpu_at = now;
        e.cpu = thread_cpu(v);
      }
      if (now - e.since < limit) continue;
      // No switch for `limit`. Stuck if the thread sleeps in the kernel, or
      // has computed for limit/2 of CPU time since we started watching; a
      // runnable thread the OS simply did not run (a loaded machine) is not
      // stuck yet, and a spare would only add to the load.
      if (!e.reported && !thread_blocked(v) && thread_cpu(v) - e.cpu < limit / 2) continue;
      ++stuck;
      if (v.has_work()) {
        hand_off(v);
        stuck_work = true;
      }
      if (!e.reported) {
        e.reported = true;
        std::string who = describe(f);
        if (!who.empty()) {
          stuck_reports.fetch_add(1, std::memory_order_relaxed);
          auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - e.since).count();
          std::fprintf(stderr,
                       "green: monitor: %s has held worker %u for %lld ms without switching (a blocking call "
                       "or a long computation); other fibers move to other workers. Use green::to_thread for "
                       "blocking calls, or the patch library.\n",
                       who.c_str(), v.index, static_cast<long long>(ms));
        }
      }
    }
    nstuck.store(stuck, std::memory_order_relaxed);
    // The stuck workers' queues are in the global queue now. Idle workers
    // were woken for it, busy ones look there; if every worker is stuck,
    // nobody will: start a spare.
    if (stuck != 0 && (stuck_work || gsize.load(std::memory_order_relaxed) != 0) &&
        npidle.load(std::memory_order_seq_cst) == 0 && stuck >= nactive.load(std::memory_order_seq_cst))
      activate_spare();
    // Fibers wait on fds but every worker is busy, so nobody polls: poll here.
    if (io_waiting() > 0 && now - poller.last_poll() >= limit) {
      bool expect = false;
      if (poller_busy.compare_exchange_strong(expect, true, std::memory_order_acquire)) {
        reactor::ready_event ready[reactor::max_events];
        int n = poller.poll_now(ready);
        poller_busy.store(false, std::memory_order_release);
        if (n > 0) monitor_polls.fetch_add(1, std::memory_order_relaxed);
        reactor::dispatch(ready, n);
      }
    }
    // Everything idle for 4 ticks in a row: sleep until a worker wakes (see
    // leave_idle()). Not at the first idle tick: a server that idles between
    // bursts would then pay a futex wake of the monitor (2-5 us) on every
    // burst; 4 ticks (20 ms at the default limit) bound that to 50 a second.
    // Each tick costs ~40 us of CPU here (BM_idle: +0.8 ms per idle period
    // with 20 ticks), so an idle runtime pays ~0.2 ms once, then nothing.
    bool all_idle = stuck == 0 && npidle.load(std::memory_order_seq_cst) == nactive.load(std::memory_order_seq_cst);
    idle_ticks = all_idle ? idle_ticks + 1 : 0;
    if (idle_ticks >= 4) {
      idle_ticks = 0;
      std::uint32_t zero = 0;
      if (!mon_word.compare_exchange_strong(zero, 1, std::memory_order_seq_cst)) continue;  // stop
      if (npidle.load(std::memory_order_seq_cst) == nactive.load(std::memory_order_seq_cst)) {
        while (mon_word.load(std::memory_order_seq_cst) == 1) futex_wait(&mon_word, 1, no_deadline);
      } else {
        std::uint32_t one = 1;
        mon_word.compare_exchange_strong(one, 0, std::memory_order_seq_cst);
      }
    }
  }
}

// ---------------------------------------------------------------------------
// lifecycle

void scheduler::impl::worker_main(worker& w) noexcept {
  tls.w = &w;
  w.errno_addr = &errno;
  w.tid.store(static_cast<pid_t>(::syscall(SYS_gettid)), std::memory_order_release);
  char name[16];
  std::snprintf(name, sizeof name, "%.9s-w%u", self->cfg_.name.c_str(), w.index);
  pthread_setname_np(pthread_self(), name);
#ifndef GREEN_SANITIZED
  // An alternate signal stack, so a guard-page fault can still be reported.
  static thread_local std::unique_ptr<char[]> altstack(new char[64 * 1024]);
  stack_t ss{};
  ss.ss_sp = altstack.get();
  ss.ss_size = 64 * 1024;
  sigaltstack(&ss, nullptr);
#endif
  w.sched_ctx.init_thread();
  while (fiber_base* f = find_runnable(w)) run_fiber(w, f);
  w.stacks.clear();
  tls.w = nullptr;
}

namespace {
unsigned env_unsigned(const char* name, unsigned fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  unsigned long x = std::strtoul(v, &end, 10);
  return (end && *end == 0) ? static_cast<unsigned>(x) : fallback;
}

std::mutex all_mu;
std::vector<scheduler*>& all_schedulers() {
  static auto* v = new std::vector<scheduler*>();
  return *v;
}
}  // namespace

scheduler::scheduler(config cfg) : cfg_(std::move(cfg)), impl_(std::make_unique<impl>(this)) {
  if (cfg_.workers == 0) cfg_.workers = env_unsigned("GREEN_WORKERS", 0);
  if (cfg_.workers == 0) cfg_.workers = std::max(1u, std::thread::hardware_concurrency());
  if (cfg_.run_queue_capacity < 2 || (cfg_.run_queue_capacity & (cfg_.run_queue_capacity - 1)) != 0 ||
      cfg_.run_queue_capacity > 1024)
    throw std::invalid_argument("green: run_queue_capacity must be a power of two in [2, 1024], got " +
                                std::to_string(cfg_.run_queue_capacity));
  if (cfg_.stack_size < 16 * 1024)
    throw std::invalid_argument("green: stack_size must be at least 16384 bytes, got " +
                                std::to_string(cfg_.stack_size));
  if (const char* sh = std::getenv("GREEN_SHUFFLE"); sh && *sh) {
    cfg_.shuffle = true;
    cfg_.shuffle_seed = std::strtoull(sh, nullptr, 10);
    if (cfg_.shuffle_seed <= 1) cfg_.shuffle_seed = 0;
  }
  if (cfg_.shuffle && cfg_.shuffle_seed == 0) {
    cfg_.shuffle_seed = std::random_device{}() | 2;
  }
  if (cfg_.shuffle) std::fprintf(stderr, "green: shuffle seed %" PRIu64 " (GREEN_SHUFFLE=%" PRIu64 " replays)\n",
                                 cfg_.shuffle_seed, cfg_.shuffle_seed);
  if (unsigned ms = env_unsigned("GREEN_SCHEDTRACE", 0)) cfg_.schedtrace = std::chrono::milliseconds(ms);
  nworkers_ = cfg_.workers;
  if (unsigned ms = env_unsigned("GREEN_MONITOR_MS", ~0u); ms != ~0u) cfg_.monitor_limit = std::chrono::milliseconds(ms);
  if (cfg_.monitor_limit.count() < 0)
    throw std::invalid_argument("green: monitor_limit must not be negative, got " +
                                std::to_string(cfg_.monitor_limit.count()) + " ms");
  install_segv_handler();

  impl& m = *impl_;
  const unsigned spares = cfg_.monitor_limit.count() > 0 ? cfg_.max_spare_workers : 0;
  m.nworkers = nworkers_;
  // One registry shard per worker slot, plus the last for outside spawns.
  for (unsigned i = 0; i <= nworkers_ + spares; ++i) m.shards.push_back(std::make_unique<registry_shard>());
  for (unsigned i = 0; i < nworkers_ + spares; ++i) {
    auto w = std::make_unique<worker>();
    w->s = this;
    w->im = &m;
    w->index = i;
    w->cap = cfg_.run_queue_capacity;
    w->shuffle = cfg_.shuffle;
    w->ring.reset(new std::atomic<fiber_base*>[w->cap]);
    w->hint.reset(new const void*[w->cap]());
    for (std::uint32_t k = 0; k < w->cap; ++k) w->ring[k].store(nullptr, std::memory_order_relaxed);
    w->rng = (cfg_.shuffle ? cfg_.shuffle_seed : 0x9E3779B97F4A7C15ull) + 0x632BE59BD9B4E019ull * (i + 1);
    m.workers.push_back(std::move(w));
  }
  m.nslots.store(nworkers_, std::memory_order_relaxed);
  m.nactive.store(nworkers_, std::memory_order_relaxed);
  for (unsigned i = 0; i < nworkers_; ++i) {
    worker* wp = m.workers[i].get();
    wp->thread = std::thread([&m, wp] { m.worker_main(*wp); });
    pthread_getcpuclockid(wp->thread.native_handle(), &wp->cpu_clock);
  }
  // Wait until every worker has published its tid (deadlock detection uses them).
  for (unsigned i = 0; i < nworkers_; ++i)
    while (m.workers[i]->tid.load(std::memory_order_acquire) == 0) std::this_thread::yield();
  if (cfg_.monitor_limit.count() > 0) {
    m.monitor = std::thread([&m] { m.monitor_main(); });
    while (m.monitor_tid.load(std::memory_order_acquire) == 0) std::this_thread::yield();
  }
  if (cfg_.schedtrace.count() > 0) {
    m.tracer = std::thread([this, &m] {
      std::unique_lock lk(m.trace_mu);
      while (!m.stop.load(std::memory_order_acquire)) {
        m.trace_cv.wait_for(lk, cfg_.schedtrace);
        if (m.stop.load(std::memory_order_acquire)) break;
        std::ostringstream out;
        dump(out);
        std::fputs(out.str().c_str(), stderr);
      }
    });
  }
  std::lock_guard lk(all_mu);
  all_schedulers().push_back(this);
}

scheduler::~scheduler() {
  {
    std::lock_guard lk(all_mu);
    auto& v = all_schedulers();
    v.erase(std::remove(v.begin(), v.end(), this), v.end());
  }
  impl& m = *impl_;
  if (current_scheduler() == this) {
    std::fprintf(stderr, "green: a runtime cannot be destroyed from one of its own fibers\n");
    std::terminate();
  }
  m.stopping.store(true, std::memory_order_release);
  // Kill what is left and wait for it to unwind; killed fibers may spawn or
  // park again, so repeat until none is alive.
  while (live_.load(std::memory_order_acquire) != 0) {
    for (auto& sh : m.shards) {
      std::lock_guard lk(sh->mu);
      for (fiber_base* f = sh->head; f; f = f->reg_next_) f->kill();
    }
    std::unique_lock lk(m.drain_mu);
    m.drain_cv.wait_for(lk, std::chrono::milliseconds(10),
                        [&] { return live_.load(std::memory_order_acquire) == 0; });
  }
  // A thread that woke our last fiber may still be finishing that wake.
  while (m.outside.load(std::memory_order_acquire) != 0) std::this_thread::yield();  // acquire: pairs with its release
  if (m.monitor.joinable()) {
    m.mon_word.store(2, std::memory_order_seq_cst);
    futex_wake(&m.mon_word, 1);
    m.monitor.join();
  }
  m.stop.store(true, std::memory_order_release);
  for (auto& w : m.workers) {
    if (!w->thread.joinable()) continue;
    w->token.store(0, std::memory_order_relaxed);
    m.notify(*w);
    m.poller.wake();
    w->dormant.store(0, std::memory_order_seq_cst);
    futex_wake(&w->dormant, 1);
  }
  for (auto& w : m.workers)
    if (w->thread.joinable()) w->thread.join();
  io_internal::forget(&m.poller);
  stack_allocator::instance().trim();
  if (m.tracer.joinable()) {
    {
      std::lock_guard lk(m.trace_mu);
    }
    m.trace_cv.notify_all();
    m.tracer.join();
  }
}

void scheduler::spawn(fiber_base* f, std::size_t stack_size) {
  impl& m = *impl_;
  if (m.stop.load(std::memory_order_acquire))
    throw std::logic_error("green: spawn on a runtime that is shutting down");
  worker* w = this_worker();
  bool local = w && w->s == this;
  // The stack is taken when the fiber first runs (worker::start()): a fiber
  // that waits in a queue costs only its control block, and it gets a stack
  // that a fiber which just exited left warm in the worker's cache.
  f->stack_size_ = stack_size ? stack_size : cfg_.stack_size;
  f->sched_ = this;
  f->spawned_on_ = local ? w->index : ~0u;
  f->parent_id_ = (local && w->current) ? w->current->id_ : 0;
  live_.fetch_add(1, std::memory_order_relaxed);
  m.spawned.fetch_add(1, std::memory_order_relaxed);
  m.register_fiber(f, local ? w->index : static_cast<unsigned>(m.shards.size() - 1));
  f->state_.store(fiber_state::runnable, std::memory_order_relaxed);
  if (local) {
    w->push(f, true);
    m.wakep(true);
  } else {
    // From outside with every worker busy and none idle, the global queue is
    // still polled every 61 ticks; if all sleep, wakep() woke one.
    m.push_from_outside(f);
  }
}

void scheduler::run_main(fiber_base* f) {
  if (current_scheduler() == this)
    throw std::logic_error("green: runtime::run() called from one of its own fibers; use spawn()");
  impl& m = *impl_;
  f->add_ref();
  fiber_base* expected = nullptr;
  if (!m.main.compare_exchange_strong(expected, f)) {
    f->release();
    throw std::logic_error("green: runtime::run() is already running a main fiber");
  }
  m.main_waiter_tid.store(static_cast<pid_t>(::syscall(SYS_gettid)), std::memory_order_relaxed);
  try {
    spawn(f);
  } catch (...) {
    {
      std::lock_guard lk(m.main_mu);
      m.main.store(nullptr);
    }
    f->release();
    throw;
  }
  f->wait_done(no_deadline);
  {
    std::lock_guard lk(m.main_mu);
    m.main.store(nullptr, std::memory_order_release);
  }
  f->release();
}

scheduler::stats scheduler::get_stats() const noexcept {
  stats s;
  s.spawned = impl_->spawned.load(std::memory_order_relaxed);
  s.steals = impl_->steals.load(std::memory_order_relaxed);
  s.global_pushes = impl_->global_pushes.load(std::memory_order_relaxed);
  s.deadlocks = impl_->deadlocks.load(std::memory_order_relaxed);
  s.stuck_reports = impl_->stuck_reports.load(std::memory_order_relaxed);
  s.spares_started = impl_->spares_started.load(std::memory_order_relaxed);
  s.monitor_polls = impl_->monitor_polls.load(std::memory_order_relaxed);
  return s;
}

void scheduler::dump(std::ostream& out) {
  impl& m = *impl_;
  out << "green runtime '" << cfg_.name << "': " << nworkers_ << " workers, " << live_fibers() << " fibers, "
      << m.npidle.load() << " idle, " << m.nmspinning.load() << " spinning, global queue " << m.gsize.load() << "\n";
  for (auto& w : m.workers) {
    if (w->index >= m.nslots.load(std::memory_order_acquire)) break;
    out << "  worker " << w->index << ": queue " << w->queued() << ", timers " << w->timers.size()
        << ", switches " << w->switches.load(std::memory_order_relaxed) << "\n";
  }
  for (auto& sh : m.shards) {
    std::lock_guard lk(sh->mu);
    for (fiber_base* f = sh->head; f; f = f->reg_next_) {
      const char* why = f->wait_reason();
      out << "  fiber #" << f->id() << " '" << f->name() << "': " << to_string(f->state());
      if (f->state() == fiber_state::parked && why) out << " (" << why << ")";
      unsigned lw = f->last_worker_.load(std::memory_order_relaxed);
      if (lw != ~0u) out << " on worker " << lw;
      out << "\n";
    }
  }
}

void scheduler::dump_all(std::ostream& out) {
  std::lock_guard lk(all_mu);
  for (scheduler* s : all_schedulers()) s->dump(out);
}

std::size_t io_waiters() noexcept {
  std::lock_guard lk(all_mu);
  std::int64_t n = 0;
  for (scheduler* s : all_schedulers()) n += sched_access::im(s)->io_waiting();
  return n > 0 ? static_cast<std::size_t>(n) : 0;
}

}  // namespace green::sched
