// green::runtime — a set of worker threads that run fibers.
#pragma once

#include <optional>
#include <type_traits>
#include <utility>

#include "green/fiber.hpp"
#include "green/sched/scheduler.hpp"

namespace green {

using runtime_config = sched::config;
using runtime_stats = sched::scheduler::stats;
using sched::deadlock_policy;
using sched::guard_policy;
using sched::monitor_report;

// runtime owns its workers from construction to destruction. Several may
// exist at once, and one may be created and destroyed many times.
class runtime {
 public:
  // runtime() starts cfg.workers worker threads (0: one per core).
  // Throws std::invalid_argument for a bad config.
  explicit runtime(runtime_config cfg = {}) : sched_(std::move(cfg)) {}
  // ~runtime() kills the fibers still alive, waits for them to unwind and
  // stops the workers. Must not run on one of its own fibers.
  ~runtime() = default;
  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;

  // run() runs fn(args...) as the main fiber and returns its result (or
  // rethrows its exception) once it finishes. Blocks the calling thread,
  // which must not be one of this runtime's fibers. While it runs, the
  // deadlock detector watches the runtime.
  template <class F, class... Args>
  std::invoke_result_t<std::decay_t<F>, std::decay_t<Args>...> run(F&& fn, Args&&... args) {
    auto* f = detail::make_fiber(std::forward<F>(fn), std::forward<Args>(args)...);
    f->set_name("main");
    fiber<std::invoke_result_t<std::decay_t<F>, std::decay_t<Args>...>> handle(f);
    try {
      sched_.run_main(f);  // takes over the creation reference
    } catch (...) {
      f->release();  // not taken over; the handle drops its own
      throw;
    }
    return handle.join();
  }

  // spawn() starts a fiber on this runtime from any thread (inside a fiber,
  // green::spawn() uses the fiber's own runtime).
  template <class F, class... Args>
  auto spawn(F&& fn, Args&&... args) {
    return spawn(spawn_options{}, std::forward<F>(fn), std::forward<Args>(args)...);
  }
  template <class F, class... Args>
  auto spawn(spawn_options opts, F&& fn, Args&&... args) {
    return detail::spawn_on(sched_, std::move(opts), std::forward<F>(fn), std::forward<Args>(args)...);
  }

  unsigned workers() const noexcept { return sched_.worker_count(); }
  std::size_t live_fibers() const noexcept { return sched_.live_fibers(); }
  // stats() is a snapshot of the runtime's counters: fibers spawned, the
  // monitor's rescues and reports, spare workers started and running.
  runtime_stats stats() const noexcept { return sched_.get_stats(); }
  void dump(std::ostream& out) { sched_.dump(out); }

 private:
  friend struct detail::access;  // green/testing.hpp's scheduler()
  sched::scheduler sched_;
};

// run() creates a runtime with `cfg`, runs fn as its main fiber, destroys
// the runtime and returns fn's result.
template <class F>
auto run(F&& fn, runtime_config cfg = {}) {
  runtime rt(std::move(cfg));
  return rt.run(std::forward<F>(fn));
}

// dump() writes every live runtime's workers and fibers (id, name, state,
// what each waits on). GREEN_SCHEDTRACE=ms prints it periodically.
void dump(std::ostream& out);

}  // namespace green
