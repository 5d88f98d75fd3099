// The worker: one OS thread of a runtime, and the per-thread state that
// finds it. Private to the runtime (see docs/scheduler.md, "Map of the
// rooms").
//
// Roles. A worker owns a ring run queue (Go's runq: the owner pushes at the
// tail, the owner and thieves take from the head with a CAS), a LIFO slot
// (`runnext`), a timer heap and a stack cache. Its fields are grouped by who
// may touch them: "owner only" fields are read and written by the worker's
// own thread (or the fiber it runs); the ring's head/tail/runnext and the
// sleeping words are shared and atomic; idle bookkeeping is guarded by
// impl::idle_mu.
//
// Thread state. A fiber may resume on another OS thread, so the calling
// thread's worker is read only through this_worker(), an out-of-line call
// with a compiler barrier: inlined, the compiler could keep a TLS address
// computed before a switch.
// The thread state a fiber carries with it (errno and the C++ runtime's
// exception-handling globals) is saved into the fiber at each switch away
// and written back when it resumes, through addresses cached here per
// worker thread (switch-inl.hpp).
#pragma once

#include <sys/types.h>
#include <time.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>

#include "check.hpp"
#include "fiber_parts.hpp"
#include "green/sched/scheduler.hpp"

#if defined(__clang__)
#define GREEN_NOINLINE __attribute__((noinline))
#else
#define GREEN_NOINLINE __attribute__((noinline, noipa))
#endif
#define GREEN_NOINLINE_COLD __attribute__((noinline, cold))
// The switch path (park, wake, pick, push): one call each would be ~10% of a
// channel round trip. Defined in the *-inl.hpp headers, so every room that
// runs the switch path inlines them.
#define GREEN_HOT inline __attribute__((always_inline))

namespace green::sched {

// eh_globals mirrors the C++ runtime's per-thread exception-handling state,
// Itanium C++ ABI 2.2.2 "__cxa_eh_globals": the stack of caught exceptions
// (the innermost catch first, what `throw;` and std::current_exception()
// use) and the count of exceptions thrown and not yet caught
// (std::uncaught_exceptions()). libstdc++, libc++abi and libcxxrt all start
// the struct with these two fields (libstdc++ adds an ARM-EHABI-only field
// after them), and __cxa_get_globals() returns a fixed address per thread.
struct eh_globals {
  void* caught = nullptr;
  unsigned int uncaught = 0;
};

// this_worker() is the calling thread's worker, or null. Any thread.
worker* this_worker() noexcept;
// this_thread_parker() is the parker of the calling plain thread. Any thread.
parker* this_thread_parker() noexcept;
// set_this_worker() binds (or, with null, unbinds) the calling thread to a
// worker. The worker's own thread only, at its start and end.
void set_this_worker(worker* w) noexcept;

inline std::uint64_t xorshift(std::uint64_t& s) noexcept {
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  return s;
}

// What after_switch() does with the fiber that just switched away.
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
  std::uint32_t tick = 61;  // counts picks down to the next global-queue/timer check
  bool shuffle = false;     // cfg().shuffle, cached off the switch path
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
  std::atomic<std::uint64_t> switches{0};  // relaxed: progress counter for dumps and the monitor
  // Fibers in park_io() that entered it here minus those that left it here
  // (a fiber may resume on another worker): summed over the runtime's
  // workers it is how many wait on fds. Owner-only writes, so a plain
  // load+store instead of an RMW on one process-wide line, which every
  // fd wait of every worker used to bounce.
  std::atomic<std::int64_t> io_waits{0};
  std::atomic<fiber_base*> running{nullptr};  // relaxed: what the monitor sees running (identity only)
  std::atomic<std::uint32_t> dormant{0};      // spare workers: 1 while retired (futex word)
  clockid_t cpu_clock{};                      // the thread's CPU-time clock; set by its creator, read by the monitor
  int* errno_addr = nullptr;                  // the thread's errno (saved and restored per fiber across switches)
  eh_globals* eh_addr = nullptr;  // the thread's C++ exception state (saved and restored like errno); never null
  eh_globals eh_none;             // what eh_addr points to where the C++ runtime gives no eh globals

  // count_switch(): owner only, so a plain load+store (no locked RMW on the switch path).
  void count_switch() noexcept {
    switches.store(switches.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }

  // The switch room (switch-inl.hpp, fiber_exit.cpp).
  void after_switch() noexcept;
  static worker* switch_out(worker* w, after a, after_switch_fn cb = nullptr, void* cb_arg = nullptr) noexcept;
  static wake_reason park_fiber(worker*& w, ticket t, const char* what, time_point deadline, after_switch_fn cb,
                                void* arg) noexcept;
  static void fiber_entry(context* from, void* arg);
  static void check_stack(fiber_base* f) noexcept;
  static void save_thread_state(worker* w, fiber_base* f) noexcept;
  static void restore_thread_state(worker* w, fiber_base* f) noexcept;
  static const char* stack_lo(const fiber_base* f) noexcept { return fiber_parts::stk(f).lo; }
  bool start(fiber_base* f) noexcept { return fiber_parts::stk(f) ? true : start_new(f); }
  bool start_new(fiber_base* f) noexcept;
  static bool publish_done(fiber_base* f) noexcept;
  fiber_base* pick_startable() noexcept;

  // The run-queue room (run_queue-inl.hpp, run_queue.cpp).
  fiber_base* pick_local() noexcept;
  void push(fiber_base* f, bool lifo) noexcept;
  void push_tail(fiber_base* f) noexcept;
  void ring_put(fiber_base* f) noexcept;
  void put_at(fiber_base* f, std::uint32_t t) noexcept;
  bool push_overflow(fiber_base* f, std::uint32_t h, std::uint32_t t) noexcept;
  fiber_base* steal_from(worker& v, bool take_runnext) noexcept;
  void prefetch_next() noexcept;
  std::uint32_t queued() const noexcept {
    std::uint32_t n = tail.load(std::memory_order_relaxed) - head.load(std::memory_order_relaxed);
    return n + (runnext.load(std::memory_order_relaxed) ? 1 : 0);
  }
  bool has_work() const noexcept {
    return head.load(std::memory_order_acquire) != tail.load(std::memory_order_acquire) ||
           runnext.load(std::memory_order_acquire) != nullptr;
  }
};

// claim_batch() takes up to `max` fibers from the head of v's ring with one
// CAS on head (the claim every taker makes; Go's runqgrab) and returns how
// many (0: the ring is empty), with *first set to the old head. `half`:
// take half of what is queued, rounded up (steal, overflow); else all of it.
// `out` non-null: the fibers are copied there BEFORE the CAS, because once
// head has moved past a slot its owner may overwrite it (thieves, the
// monitor). `out` null: only the owner may pass it; no one else writes its
// ring, so it reads ring[(*first + i) & (cap - 1)] after the claim (no batch
// array on a fiber stack). Any thread.
std::uint32_t claim_batch(worker& v, fiber_base** out, std::uint32_t max, bool half, std::uint32_t* first) noexcept;

// report_overflow() reports a stack overflow of `f` and aborts.
// Async-signal-safe (the SIGSEGV handler calls it). Any thread.
[[noreturn]] void report_overflow(const fiber_base* f, const char* how) noexcept;
// install_segv_handler() installs the guard-page handler once per process;
// install_altstack() gives the calling thread an alternate signal stack.
// No-ops under a sanitizer. Lifecycle / a worker's own thread.
void install_segv_handler();
void install_altstack();

}  // namespace green::sched
