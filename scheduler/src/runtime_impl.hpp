// scheduler::impl: the state one runtime shares among its workers, its
// monitor and outside threads; and the declarations that connect the rooms.
// Private (see docs/scheduler.md, "Map of the rooms", for which file
// defines each member and who may call it).
//
// Layering (callers only go downward; .ci/check_graphs checks the objects):
//   lifecycle        constructor, destructor, spawn, run_main, config
//   monitor          sysmon: stuck workers, spares, the busy runtime's polls
//   worker           worker_main, find_runnable, run_fiber, retire
//   deadlock         check_deadlock, unwind_deadlocked
//   introspect, io   dump/stats; the fd table (the reactor's event sink)
//   io_seam          park_io, current_reactor, io_waiting
//   park             prepare_park, park, yield, park_thread, wait_done
//   fiber_exit       fiber_entry, finish_fiber, start_new
//   wake             wake, make_runnable, push_from_outside, wait_queue, kill
//   idle             wakep's slow path, notify, sleep, leave_idle
//   run_queue        overflow, steal, claim_batch -> global queue
//   tls, registry, stack_guard, reactor_epoll, timers, stacks, context
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "locks.hpp"
#include "reactor.hpp"
#include "worker.hpp"

namespace green::sched {

struct registry_shard {
  spinlock mu;
  fiber_base* head GREEN_GUARDED_BY(mu) = nullptr;
};

struct scheduler::impl {
  scheduler* self;
  std::vector<std::unique_ptr<worker>> workers;
  std::unique_ptr<reactor> poller;       // epoll today (reactor::make())
  std::atomic<bool> poller_busy{false};  // one thread at a time polls

  // global queue (global_queue.cpp). Invariants: ghead..gtail linked by
  // next_, gsize of them, guarded by gmu; gsize is also read unlocked as a hint.
  spinlock gmu;
  fiber_base* ghead GREEN_GUARDED_BY(gmu) = nullptr;
  fiber_base* gtail GREEN_GUARDED_BY(gmu) = nullptr;
  std::atomic<std::size_t> gsize{0};

  // idle workers (idle.cpp). Invariants: guarded by idle_mu, `idle` holds
  // exactly the workers with idle_listed set, and npidle == idle.size()
  // whenever idle_mu is free.
  // (worker::idle_listed and wake_spinning too, unannotated: worker.hpp
  // cannot name impl's members.)
  annotated_mutex idle_mu;
  std::vector<worker*> idle GREEN_GUARDED_BY(idle_mu);
  std::atomic<std::uint32_t> npidle{0};
  std::atomic<std::uint32_t> nmspinning{0};

  // registry (registry.cpp): one shard per worker plus one for outside spawns
  std::vector<std::unique_ptr<registry_shard>> shards;

  // lifecycle (lifecycle.cpp)
  std::atomic<bool> stopping{false};
  std::atomic<std::uint32_t> outside{0};  // threads inside push_from_outside()
  std::atomic<bool> stop{false};
  annotated_mutex drain_mu;  // pairs with drain_cv; guards no field
  std::condition_variable drain_cv;
  annotated_mutex main_mu;  // keeps `main` alive while check_deadlock() looks at it
  std::atomic<fiber_base*> main{nullptr};
  std::atomic<pid_t> main_waiter_tid{0};
  mutable annotated_mutex report_mu;
  std::string report GREEN_GUARDED_BY(report_mu);

  // stats
  std::atomic<std::uint64_t> spawned{0}, steals{0}, global_pushes{0}, deadlocks{0};

  // workers[0, nslots) have been started; nactive of them are not dormant
  // spares. Spares live in workers[nworkers, workers.size()).
  unsigned nworkers = 1;
  std::atomic<unsigned> nslots{0};
  std::atomic<unsigned> nactive{0};
  // spares_live() is how many spares run now (started and not retired).
  // relaxed: a count for dumps and stats. Any thread.
  unsigned spares_live() const noexcept { return nactive.load(std::memory_order_relaxed) - nworkers; }

  // monitor (monitor.cpp)
  std::thread monitor;
  std::atomic<pid_t> monitor_tid{0};
  std::atomic<std::uint32_t> mon_word{0};  // 0 ticking, 1 asleep (all idle), 2 stop
  std::atomic<std::uint32_t> nstuck{0};
  std::atomic<std::uint64_t> stuck_reports{0}, rescues{0}, spares_started{0}, monitor_polls{0};

  // schedtrace
  std::thread tracer;
  annotated_mutex trace_mu;  // pairs with trace_cv; guards no field
  std::condition_variable trace_cv;

  explicit impl(scheduler* s) : self(s), poller(reactor::make()) {}

  // global_queue.cpp
  void push_global(fiber_base* first, fiber_base* last, std::size_t n) noexcept;
  fiber_base* take_global(worker& w) noexcept;
  // wake.cpp
  void make_runnable(fiber_base* f, bool lifo = true) noexcept;
  void push_from_outside(fiber_base* f) noexcept;
  // wakep-inl.hpp, idle.cpp
  void wakep() noexcept;
  void wake_idle() noexcept;
  void notify(worker& w) noexcept;
  bool enter_idle(worker& w) noexcept;
  int sleep(worker& w, time_point deadline, reactor::ready_event* ready) noexcept;
  void leave_idle(worker& w) noexcept;
  fiber_base* found(worker& w, fiber_base* f) noexcept;
  void wake_monitor() noexcept;
  // worker.cpp
  void worker_main(worker& w) noexcept;
  fiber_base* find_runnable(worker& w) noexcept;
  fiber_base* linger(worker& w, std::size_t n) noexcept;
  void run_fiber(worker& w, fiber_base* f) noexcept;
  void retire(worker& w) noexcept;
  // fiber_exit.cpp
  void finish_fiber(worker* w, fiber_base* f) noexcept;
  // deadlock.cpp
  void check_deadlock(worker& w) noexcept;
  bool all_asleep(fiber_base* m, std::uint64_t* main_word) noexcept GREEN_REQUIRES(main_mu);
  std::string build_report();
  // registry.cpp
  void register_fiber(fiber_base* f, unsigned shard) noexcept;
  void unregister_fiber(fiber_base* f) noexcept;
  std::string describe(fiber_base* f, std::uint64_t* id = nullptr);
  // io_seam.cpp
  std::int64_t io_waiting() const noexcept;
  // monitor.cpp
  void monitor_main() noexcept;
  void activate_spare() noexcept;
  void hand_off(worker& v) noexcept;
  void report_held(const std::string& line) noexcept;
};

struct sched_access {
  static scheduler::impl* im(scheduler* s) { return s->impl_.get(); }
  // wake_as() is wake() saying where a parked fiber queues: the LIFO slot
  // (`lifo`) or its worker's run-queue tail. Any thread. Internal: only
  // wait_queue::wake_all(r, fifo) chooses.
  static bool wake_as(ticket t, wake_reason r, bool lifo) noexcept;
};

// park_thread() is park() for a plain OS thread (park.cpp). That thread only.
wake_reason park_thread(parker* p, ticket t, time_point deadline, after_switch_fn cb, void* arg) noexcept;

// The process-wide list of live runtimes (introspect.cpp), for dump_all()
// and io_waiters(). add/remove: lifecycle only.
void add_runtime(scheduler* s);
void remove_runtime(scheduler* s);

}  // namespace green::sched
