// green::sched — the runtime's seam for fibers/ (see docs/scheduler.md).
//
// Everything in fibers/ is built on four operations:
//   prepare_park()  open a park of the calling fiber or thread, get a ticket
//   park()          suspend until the ticket is woken, a deadline passes, or
//                   the fiber is killed; runs a callback after the switch
//   wake()          wake a ticket from ANY thread; a wake that races the park
//                   is never lost, a stale wake (old ticket) is a no-op
//   current_fiber() / current_scheduler()
// plus timers (through park's deadline) and spawn.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <iosfwd>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "green/sched/clock.hpp"
#include "green/sched/spinlock.hpp"
#include "green/sched/wake_reason.hpp"

namespace green::sched {

class scheduler;
class fiber_base;
struct worker;

// How fiber stacks are protected against overflow (docs/stacks.md).
enum class guard_policy : std::uint8_t {
  automatic,  // guard page per stack while under the map budget, then slab + canary
  always,     // guard page per stack; allocation fails past vm.max_map_count
  never,      // slab + canary only (cheapest, one mapping per 64 stacks)
};

// What the runtime does when every fiber is asleep and nothing can wake one.
enum class deadlock_policy : std::uint8_t {
  throw_in_main,  // the main fiber's blocking call throws green::deadlock_error
  abort,          // print the report to stderr and abort()
  ignore,         // do nothing (the program hangs)
};

// What the monitor reports about a fiber that holds its worker (it rescues
// the worker's other fibers in every mode; docs/scheduler.md, "The monitor").
enum class monitor_report : std::uint8_t {
  off,       // report nothing
  blocking,  // a fiber blocked in a system call nobody patched (the default)
  all,       // that, and a fiber that computes without switching
};

// Runtime configuration. Environment variables override the defaults:
// GREEN_WORKERS, GREEN_SHUFFLE (seed), GREEN_SCHEDTRACE (period in ms),
// GREEN_MONITOR_MS (monitor limit; 0 disables), GREEN_MONITOR
// (off|blocking|all), GREEN_MAX_SPARE_WORKERS.
struct config {
  unsigned workers = 0;                // 0: one per core (or GREEN_WORKERS)
  std::size_t stack_size = 64 * 1024;  // default fiber stack, bytes
  guard_policy guard = guard_policy::automatic;
  deadlock_policy on_deadlock = deadlock_policy::throw_in_main;
  std::uint32_t run_queue_capacity = 256;   // per-worker ring; power of two >= 2
  bool shuffle = false;                     // randomize run order (tests)
  std::uint64_t shuffle_seed = 0;           // 0: pick one and print it
  std::chrono::milliseconds schedtrace{0};  // >0: dump every period to stderr
  std::string name = "green";               // prefix of worker thread names
  // The monitor: when a fiber keeps its worker from switching for longer
  // than this, the worker's queued fibers are handed to other workers (a
  // spare worker is started if none is idle). 0: no monitor at all (no
  // rescue, no reports, no spares). GREEN_MONITOR_MS overrides.
  std::chrono::milliseconds monitor_limit{10};
  // Which held workers the monitor reports, once per fiber and call site;
  // the rescue above happens whatever this says. GREEN_MONITOR overrides.
  monitor_report monitor_reports = monitor_report::blocking;
  // Where reports go (one line each, no trailing newline); empty: stderr.
  // Called on the monitor thread: it must not block on the runtime's fibers.
  std::function<void(const std::string&)> monitor_sink;
  // Extra worker threads the monitor may start, only while every worker is
  // held by one fiber; they retire when none is. 0: `workers` threads run
  // fibers, and nothing else ever does. GREEN_MAX_SPARE_WORKERS overrides.
  unsigned max_spare_workers = 8;
};

// The park word of a fiber or an OS thread.
// Layout: bits 0-1 status, bits 2-5 wake_reason, bits 8-63 generation.
// Invariants: only the owner opens a park (new generation, status armed) and
// closes it (status idle); wakers only move armed|parked -> woken, once per
// generation, and only when their ticket's generation matches.
class parker {
 public:
  enum : std::uint64_t { idle = 0, armed = 1, parked = 2, woken = 3 };
  static std::uint64_t status(std::uint64_t w) noexcept { return w & 3; }
  static wake_reason reason(std::uint64_t w) noexcept { return static_cast<wake_reason>((w >> 2) & 15); }
  static std::uint64_t gen(std::uint64_t w) noexcept { return w >> 8; }
  static std::uint64_t make(std::uint64_t gen, std::uint64_t st, wake_reason r = wake_reason::none) noexcept {
    return gen << 8 | static_cast<std::uint64_t>(r) << 2 | st;
  }

  std::atomic<std::uint64_t> word{0};
  fiber_base* fiber = nullptr;  // null: the owner is a plain OS thread
};

// ticket names one park of one parker.
struct ticket {
  parker* p = nullptr;
  std::uint64_t gen = 0;
};

// waiter: a node of a wait list, on the parked side's stack. One park may
// have several (select); they share its ticket.
struct waiter {
  ticket t{};
  waiter* prev = nullptr;
  waiter* next = nullptr;
  void* data = nullptr;    // primitive-specific: e.g. a channel value slot
  std::uintptr_t tag = 0;  // primitive-specific: e.g. which select case
  bool linked = false;     // in a wait_queue; guarded by its owner's lock
  bool chosen = false;     // set by the waker that won; guarded likewise
};

// wait_queue: an intrusive FIFO of waiters. Not synchronized: the primitive
// that owns it guards it with its own lock.
// Invariants: a waiter is linked iff it is in exactly this list.
class wait_queue {
 public:
  bool empty() const noexcept { return head_ == nullptr; }
  std::size_t size() const noexcept { return size_; }
  waiter* front() const noexcept { return head_; }
  // Inline: every channel send/recv and lock hand-over runs them.
  void push_back(waiter* w) noexcept {
    w->next = nullptr;
    w->prev = tail_;
    if (tail_) tail_->next = w;
    else head_ = w;
    tail_ = w;
    w->linked = true;
    ++size_;
  }
  void erase(waiter* w) noexcept {  // no-op if w is not linked
    if (!w->linked) return;
    if (w->prev) w->prev->next = w->next;
    else head_ = w->next;
    if (w->next) w->next->prev = w->prev;
    else tail_ = w->prev;
    w->prev = w->next = nullptr;
    w->linked = false;
    --size_;
  }
  waiter* pop_front() noexcept {
    waiter* w = head_;
    if (w) erase(w);
    return w;
  }
  // wake_one() pops waiters until one wake succeeds; marks it chosen and
  // returns it, or null if none could be woken.
  waiter* wake_one(wake_reason r = wake_reason::notified) noexcept;
  // wake_all() wakes and unlinks every waiter; returns how many woke.
  // `fifo`: the woken fibers queue at the run queue's tail in list order
  // (the reactor's readiness wakes) instead of the LIFO slot.
  std::size_t wake_all(wake_reason r = wake_reason::notified, bool fifo = false) noexcept;

 private:
  waiter* head_ = nullptr;
  waiter* tail_ = nullptr;
  std::size_t size_ = 0;
};

// What state a fiber is in; for dumps and tests.
enum class fiber_state : std::uint8_t {
  created,   // allocated, not yet given to a scheduler
  runnable,  // in a run queue (a local ring, a LIFO slot or the global queue)
  running,   // a worker executes it on its own stack
  parked,    // suspended in park(); only a wake makes it runnable
  done,      // returned, threw or was killed; its stack is released
};
const char* to_string(fiber_state s) noexcept;

using after_switch_fn = void (*)(void*);
ticket prepare_park() noexcept;
wake_reason park(ticket t, const char* what, time_point deadline = no_deadline, after_switch_fn after = nullptr,
                 void* after_arg = nullptr) noexcept;
bool wake(ticket t, wake_reason r = wake_reason::notified) noexcept;

// fiber_base: the fiber control block. fibers/ derives the typed part
// (function and result). Reference counted: one reference for the runtime
// while it is alive, one per handle.
class fiber_base {
 public:
  fiber_base() noexcept;
  fiber_base(const fiber_base&) = delete;
  fiber_base& operator=(const fiber_base&) = delete;

  // Control blocks come from the runtime's block allocator (size classes,
  // per-thread caches, memory mapped in batches: scheduler/src/fiber_alloc.cpp),
  // not from malloc, whose worker-thread arenas grow a page per fault. Any
  // thread may free a block. Throw std::bad_alloc.
  static void* operator new(std::size_t size);
  static void* operator new(std::size_t size, std::align_val_t al);
  static void operator delete(void* p, std::size_t size) noexcept;
  static void operator delete(void* p, std::size_t size, std::align_val_t al) noexcept;

  void add_ref() noexcept {
    refs_.fetch_add(1, std::memory_order_relaxed);
  }  // relaxed: a new ref comes from an existing one
  void release() noexcept {
    // acq_rel: the last release must see every write made through other refs
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  std::uint64_t id() const noexcept { return id_; }
  const std::string& name() const noexcept { return name_; }
  void set_name(std::string n) { name_ = std::move(n); }
  fiber_state state() const noexcept { return state_.load(std::memory_order_relaxed); }
  const char* wait_reason() const noexcept { return wait_what_.load(std::memory_order_relaxed); }
  scheduler* owner() const noexcept { return sched_; }

  // done() is true once the fiber's function has finished. Any thread.
  bool done() const noexcept { return done_.load(std::memory_order_acquire); }  // acquire: pairs with finish()
  // wait_done() blocks (parks a fiber, blocks a thread) until done() or the
  // deadline; returns the park's reason (notified = done). Any context.
  wake_reason wait_done(time_point deadline = no_deadline);
  // detach() gives up the right to join: an exception it threw (or will
  // throw) goes to the unhandled-exception handler. Any thread.
  void detach() noexcept;
  // kill() asks the fiber to exit: its current or next park returns
  // wake_reason::killed (fibers/ turns that into green::fiber_exit). Any thread.
  void kill() noexcept;
  bool kill_requested() const noexcept { return kill_requested_.load(std::memory_order_acquire); }
  // take_kill() consumes a pending kill (one that no park has delivered
  // yet): true if there was one. For cancellation points that do not park
  // (yield, a fiber's start). Owner fiber only.
  bool take_kill() noexcept {
    // relaxed load first: the common case (no kill) is one plain read.
    // acquire on the exchange: pairs with the release store in kill().
    return kill_requested_.load(std::memory_order_relaxed) &&
           kill_requested_.exchange(false, std::memory_order_acquire);
  }

  // Outcome, valid once done().
  std::exception_ptr error() const noexcept { return error_; }
  // take_error() moves the exception out (join does, so the exception is
  // released on the joiner's thread, not wherever the block is freed).
  std::exception_ptr take_error() noexcept { return std::move(error_); }
  bool was_killed() const noexcept { return killed_; }

  // The public layer's hook: fibers/ attaches its per-fiber state here
  // (green::timeout scopes, fiber_local values, the patch library's count
  // of held pthread locks; green/detail/fiber_ext.hpp). The runtime never
  // interprets `ext`: when the control block is destroyed it calls
  // ext_free(ext) if both are set. Owner fiber only (the destructor runs
  // after the last release, which orders it after every owner access).
  // Near the top: the public layer reads `ext` on every park.
  using ext_free_fn = void (*)(void*) noexcept;
  void* ext = nullptr;
  ext_free_fn ext_free = nullptr;

 protected:
  virtual ~fiber_base();
  // invoke() runs the fiber's function on its own stack. It stores the
  // result, or the exception in error_, or sets killed_; it must not throw.
  virtual void invoke() noexcept = 0;

  std::exception_ptr error_;
  bool killed_ = false;

 private:
  friend class scheduler;
  friend struct worker;
  friend struct sched_access;
  friend struct fiber_parts;
  friend ticket prepare_park() noexcept;
  friend wake_reason park(ticket, const char*, time_point, after_switch_fn, void*) noexcept;
  friend bool wake(ticket, wake_reason) noexcept;

  std::atomic<std::uint32_t> refs_{1};
  std::uint64_t id_ = 0;
  std::string name_;
  scheduler* sched_ = nullptr;
  // The runtime's machine state of the fiber, its context and stack
  // (scheduler/src/context.hpp, stack.hpp). Opaque here, so the installed
  // headers carry none of the runtime's internals; fiber_parts.hpp in
  // scheduler/src defines the layout, constructs it, and checks it fits.
  static constexpr std::size_t machine_bytes = 72;
  alignas(8) unsigned char machine_[machine_bytes];
  std::size_t stack_size_ = 0;  // requested; 0 = the runtime's default
  parker parker_;
  // Hot fields of the switch path sit in bytes 0-255 (four lines, which
  // worker::prefetch_next() fetches ahead): the context and stack bounds,
  // the park word, state, wait reason, kill flag, last worker, and the
  // thread state saved across switches. Colder ones (timer node, run-queue
  // and registry links) follow.
  std::atomic<fiber_state> state_{fiber_state::created};
  std::atomic<const char*> wait_what_{nullptr};
  std::atomic<bool> kill_requested_{false};
  std::atomic<bool> done_{false};
  bool detached_ = false;  // guarded by done_mu_
  spinlock done_mu_;
  std::atomic<unsigned> last_worker_{~0u};  // worker it last ran on (dumps); relaxed
  wait_queue joiners_;                      // guarded by done_mu_
  // While switched away: its errno and its C++ exception state (caught
  // exceptions, uncaught count: worker.hpp's eh_globals). Own fiber only.
  int saved_errno_ = 0;
  unsigned saved_uncaught_ = 0;
  void* saved_caught_ = nullptr;
  // park deadline: a timer node (scheduler/src/timer.hpp), opaque like machine_
  static constexpr std::size_t park_timer_bytes = 40;
  alignas(8) unsigned char park_timer_[park_timer_bytes];
  ticket park_ticket_{};
  // run queues and registry (scheduler-owned)
  fiber_base* next_ = nullptr;  // global queue link
  fiber_base* reg_prev_ = nullptr;
  fiber_base* reg_next_ = nullptr;
  unsigned reg_shard_ = 0;
  std::uint64_t parent_id_ = 0;  // the fiber that spawned it, 0: a plain thread (reports)
};

// The per-call deadline/kill/timeout protocol (fiber or thread context):
//
//   ticket t = prepare_park();      // before publishing a waiter
//   ... link waiter{t} into a wait list under the primitive's lock, unlock
//   wake_reason r = park(t, "mutex", deadline);
//   ... if r != notified: relock, unlink the waiter if still linked
//
// A wake that happens between prepare_park() and park() makes park() return
// at once. After park() returns no waker touches the ticket again: wakers
// hold the primitive's lock while they wake, and the parked side takes that
// lock to unlink itself.
// (declared above fiber_base)
// park() suspends the caller until woken, `deadline`, or kill (green::timeout
// scopes belong to the public layer, which folds them into `deadline`).
// `what` is shown in dumps and deadlock reports. If `after` is given it runs once, after the fiber has switched away
// (on a thread: before it blocks), e.g. to release a lock. Fiber or thread context. wake() ends the park named by `t`
// with reason `r`. Returns false if that park already ended or was woken (a stale ticket). Any thread.

// current_fiber() is the fiber running on the calling thread, or null.
fiber_base* current_fiber() noexcept;
// current_scheduler() is the runtime of the calling worker thread, or null.
scheduler* current_scheduler() noexcept;
// local_work_queued() says whether the calling worker has other fibers
// queued to run (its ring or its LIFO slot); false on a plain thread. A
// hint, for spin-or-park decisions (Go's canSpin: a waiter that spins while
// runnable fibers wait behind it on its own worker only delays them).
// Any thread.
bool local_work_queued() noexcept;
// current_worker_index() is the calling worker's index, or -1. For tests.
int current_worker_index() noexcept;

// yield() lets other runnable fibers run; returns at once when there are
// none. Returns the calling fiber (null on a plain thread, where it yields
// the OS thread), so a cancellation point can check for a kill without
// another TLS read.
fiber_base* yield() noexcept;

// The handler for exceptions escaping detached fibers. Any thread.
using unhandled_handler = void (*)(fiber_base&, std::exception_ptr);
void set_unhandled_handler(unhandled_handler h) noexcept;
unhandled_handler get_unhandled_handler() noexcept;

class scheduler {
 public:
  explicit scheduler(config cfg);
  // ~scheduler() kills every fiber still alive, waits for them to unwind,
  // and stops the workers. Must not be called from one of its own fibers.
  ~scheduler();
  scheduler(const scheduler&) = delete;
  scheduler& operator=(const scheduler&) = delete;

  const config& cfg() const noexcept { return cfg_; }
  unsigned worker_count() const noexcept { return nworkers_; }

  // spawn() gives `f` a stack and makes it runnable. Takes over the caller's
  // reference to f and adds one for the runtime. stack_size 0: the default.
  // Any thread. Throws std::logic_error once the runtime is shutting down;
  // then the caller keeps its reference. (A stack is mapped when the fiber
  // first runs; if that fails, the fiber ends with the std::system_error.)
  void spawn(fiber_base* f, std::size_t stack_size = 0);
  // run_main() spawns `f` as the main fiber and blocks the calling thread
  // until it is done. The deadlock detector reports while a main fiber runs.
  // Must not be called from a fiber of this runtime (std::logic_error).
  // Takes over the caller's reference like spawn(); if it throws, the
  // caller keeps it.
  void run_main(fiber_base* f);

  std::size_t live_fibers() const noexcept { return live_.load(std::memory_order_acquire); }
  // dump() writes every worker's queues and every fiber's id, name, state
  // and wait reason. Any thread.
  void dump(std::ostream& out);
  // The last deadlock report (what deadlock_error carries).
  std::string deadlock_report() const;
  // unwind_deadlocked() kills every other fiber of this runtime and waits
  // until each has finished unwinding, so that the main fiber raises
  // deadlock_error with no fiber still parked on its locals (mutexes,
  // channels) when it unwinds. Stops waiting, leaving the rest, if the wait
  // itself ends for another reason (a killed fiber blocked again while
  // unwinding: the detector reports that as a deadlock too). Main fiber
  // only, after a park returned wake_reason::deadlock.
  void unwind_deadlocked(fiber_base* self);

  // Statistics for tests and benchmarks (relaxed counters).
  struct stats {
    std::uint64_t spawned = 0;
    std::uint64_t steals = 0;         // fibers taken from another worker's queue
    std::uint64_t global_pushes = 0;  // fibers that went through the global queue
    std::uint64_t deadlocks = 0;
    std::uint64_t stuck_reports = 0;   // reports the monitor made (see config::monitor_reports)
    std::uint64_t rescues = 0;         // times the monitor found a worker held by one fiber
    std::uint64_t spares_started = 0;  // spare workers the monitor started or woke
    std::uint64_t spares_live = 0;     // spare workers running fibers now (not retired)
    std::uint64_t monitor_polls = 0;   // I/O polls the monitor made for busy workers
  };
  stats get_stats() const noexcept;

  // Process-wide list of live runtimes, for green::dump().
  static void dump_all(std::ostream& out);

 private:
  friend struct worker;
  friend struct sched_access;
  struct impl;
  config cfg_;
  unsigned nworkers_ = 1;
  std::atomic<std::size_t> live_{0};
  std::unique_ptr<impl> impl_;
};

}  // namespace green::sched
