// Lifecycle and configuration: a runtime's constructor (configuration,
// environment variables, workers, monitor, tracer), its destructor
// (shutdown), spawn() and run_main(). The top room: it wires the others
// together and nothing below calls it.
//
// Configuration. config's fields, overridden by GREEN_WORKERS,
// GREEN_SHUFFLE (seed), GREEN_SCHEDTRACE (period in ms), GREEN_MONITOR_MS,
// GREEN_MONITOR (off|blocking|all) and GREEN_MAX_SPARE_WORKERS; bad values
// raise std::invalid_argument naming the field or variable and the value.
//
// Shutdown (~scheduler), in order:
//   1. leave the process-wide list (no new dump_all() sees us);
//   2. stopping = true, then kill every live fiber and wait for live_ == 0,
//      repeating (killed fibers may spawn or park again);
//   3. wait until no outside thread is still inside push_from_outside();
//   4. stop the monitor; stop = true, then wake every worker (futex, the
//      reactor, a dormant spare's word) and join them;
//   5. forget the fd registrations with our reactor; trim the stack pool;
//      stop the tracer.
//
// Rejected: detaching the workers (a fiber could outlive its runtime);
// a global default runtime (no globals that limit a process to one).
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

#include "futex.hpp"
#include "io_internal.hpp"
#include "run_queue-inl.hpp"
#include "wakep-inl.hpp"

namespace green::sched {

namespace {
// env_unsigned() is the decimal value of environment variable `name`, or
// `fallback` when it is unset or empty; anything else raises
// std::invalid_argument naming the variable.
unsigned env_unsigned(const char* name, unsigned fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  errno = 0;
  unsigned long x = std::strtoul(v, &end, 10);
  if (*v == '-' || *end != 0 || errno != 0 || x >= ~0u)
    throw std::invalid_argument(std::string("green: ") + name + " must be a non-negative decimal number, got '" + v +
                                "'");
  return static_cast<unsigned>(x);
}

// env_monitor_report() is GREEN_MONITOR's setting, or `fallback` when unset.
monitor_report env_monitor_report(monitor_report fallback) {
  const char* v = std::getenv("GREEN_MONITOR");
  if (!v || !*v) return fallback;
  std::string s(v);
  if (s == "off") return monitor_report::off;
  if (s == "blocking") return monitor_report::blocking;
  if (s == "all") return monitor_report::all;
  throw std::invalid_argument("green: GREEN_MONITOR must be off, blocking or all, got '" + s + "'");
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
  if (cfg_.shuffle)
    std::fprintf(stderr, "green: shuffle seed %" PRIu64 " (GREEN_SHUFFLE=%" PRIu64 " replays)\n", cfg_.shuffle_seed,
                 cfg_.shuffle_seed);
  if (unsigned ms = env_unsigned("GREEN_SCHEDTRACE", 0)) cfg_.schedtrace = std::chrono::milliseconds(ms);
  nworkers_ = cfg_.workers;
  if (unsigned ms = env_unsigned("GREEN_MONITOR_MS", ~0u); ms != ~0u)
    cfg_.monitor_limit = std::chrono::milliseconds(ms);
  cfg_.monitor_reports = env_monitor_report(cfg_.monitor_reports);
  cfg_.max_spare_workers = env_unsigned("GREEN_MAX_SPARE_WORKERS", cfg_.max_spare_workers);
  if (cfg_.monitor_reports != monitor_report::off && cfg_.monitor_reports != monitor_report::blocking &&
      cfg_.monitor_reports != monitor_report::all)
    throw std::invalid_argument("green: monitor_reports must be off, blocking or all, got " +
                                std::to_string(static_cast<int>(cfg_.monitor_reports)));
  // Each spare's slot is allocated up front (a worker, its ring, a registry
  // shard: ~6 KiB at the default ring), so 1024 is 6 MiB; more is a typo.
  if (cfg_.max_spare_workers > 1024)
    throw std::invalid_argument("green: max_spare_workers must be at most 1024, got " +
                                std::to_string(cfg_.max_spare_workers));
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
      cv_lock lk(m.trace_mu);
      while (!m.stop.load(std::memory_order_acquire)) {
        m.trace_cv.wait_for(lk.native(), cfg_.schedtrace);
        if (m.stop.load(std::memory_order_acquire)) break;
        std::ostringstream out;
        dump(out);
        std::fputs(out.str().c_str(), stderr);
      }
    });
  }
  add_runtime(this);
}

scheduler::~scheduler() {
  remove_runtime(this);
  impl& m = *impl_;
  if (current_scheduler() == this) {
    std::fprintf(stderr, "green: a runtime cannot be destroyed from one of its own fibers\n");
    std::terminate();
  }
  m.stopping.store(true, std::memory_order_release);  // release: pairs with finish_fiber()'s acquire
  // Kill what is left and wait for it to unwind; killed fibers may spawn or
  // park again, so repeat until none is alive.
  while (live_.load(std::memory_order_acquire) != 0) {
    for (auto& sh : m.shards) {
      lock_guard_of lk(sh->mu);
      for (fiber_base* f = sh->head; f; f = f->reg_next_) f->kill();
    }
    cv_lock lk(m.drain_mu);
    m.drain_cv.wait_for(lk.native(), std::chrono::milliseconds(10),
                        [&] { return live_.load(std::memory_order_acquire) == 0; });
  }
  // A thread that woke our last fiber may still be finishing that wake.
  while (m.outside.load(std::memory_order_acquire) != 0) std::this_thread::yield();  // acquire: pairs with its release
  if (m.monitor.joinable()) {
    m.mon_word.store(2, std::memory_order_seq_cst);  // seq_cst: with the monitor's seq_cst loads (monitor.cpp)
    futex_wake(&m.mon_word, 1);
    m.monitor.join();
  }
  m.stop.store(true, std::memory_order_release);
  for (auto& w : m.workers) {
    if (!w->thread.joinable()) continue;
    w->token.store(0, std::memory_order_relaxed);
    m.notify(*w);
    m.poller->wake();
    w->dormant.store(0, std::memory_order_seq_cst);  // seq_cst: as activate_spare()'s store (retire() rechecks stop)
    futex_wake(&w->dormant, 1);
  }
  for (auto& w : m.workers)
    if (w->thread.joinable()) w->thread.join();
  io_internal::forget(m.poller.get());
  stack_allocator::instance().trim();
  if (m.tracer.joinable()) {
    { lock_guard_of lk(m.trace_mu); }
    m.trace_cv.notify_all();
    m.tracer.join();
  }
}

// spawn(): see scheduler.hpp. Any thread.
void scheduler::spawn(fiber_base* f, std::size_t stack_size) {
  impl& m = *impl_;
  if (m.stop.load(std::memory_order_acquire)) throw std::logic_error("green: spawn on a runtime that is shutting down");
  worker* w = this_worker();
  bool local = w && w->s == this;
  // The stack is taken when the fiber first runs (worker::start()): a fiber
  // that waits in a queue costs only its control block, and it gets a stack
  // that a fiber which just exited left warm in the worker's cache.
  f->stack_size_ = stack_size ? stack_size : cfg_.stack_size;
  f->sched_ = this;
  f->parent_id_ = (local && w->current) ? w->current->id_ : 0;
  live_.fetch_add(1, std::memory_order_relaxed);
  m.spawned.fetch_add(1, std::memory_order_relaxed);
  m.register_fiber(f, local ? w->index : static_cast<unsigned>(m.shards.size() - 1));
  GREEN_DCHECK(f->state_.load(std::memory_order_relaxed) == fiber_state::created,
               "bad fiber state: spawn of a fiber already spawned");
  f->state_.store(fiber_state::runnable, std::memory_order_relaxed);
  if (local) {
    w->push(f, true);
    m.wakep();
  } else {
    // From outside with every worker busy and none idle, the global queue is
    // still polled every 61 ticks; if all sleep, wakep() woke one.
    m.push_from_outside(f);
  }
}

// run_main(): see scheduler.hpp. A thread that is not one of our workers.
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
      lock_guard_of lk(m.main_mu);
      m.main.store(nullptr);
    }
    f->release();
    throw;
  }
  f->wait_done(no_deadline);
  {
    lock_guard_of lk(m.main_mu);
    m.main.store(nullptr, std::memory_order_release);
  }
  f->release();
}

}  // namespace green::sched
