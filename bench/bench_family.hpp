// bench_family.hpp: the side-by-side harness shared by core_bench and
// sync_bench. A "family" is one workload on every implementation, registered
// as <name>/<impl>/workers:<n> so that one run gives the ratios:
//   green     greenfiber, a fresh runtime per benchmark run (workers: args)
//   boost_rr  Boost.Fiber round_robin, 1 thread
//   boost_ws  Boost.Fiber work_stealing, 2 threads, in a forked child_server
//             (installable once per process, see boost_pool.hpp)
//   thread    std::thread, where a thread per task is feasible
// One iteration = one batch timed by the batch itself (manual time), so the
// hand-off to a worker, a pool or a child stays outside the measurement.
//
// With GREEN_BENCH_HAVE_GREEN it includes greenfiber, before Boost.Fiber (whose
// function-like macro cpu_relax() greenfiber avoids by naming its cpu_pause()).
#pragma once

#ifdef GREEN_BENCH_HAVE_GREEN
#include <green/green.hpp>
#include "stack.hpp"
#endif

#include <benchmark/benchmark.h>
#include <pthread.h>
#include <sched.h>

#include <boost/version.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "boost_pool.hpp"

// GREEN_BENCH_JOB(f) is f, or an empty job when greenfiber is not built.
#ifdef GREEN_BENCH_HAVE_GREEN
#define GREEN_BENCH_JOB(f) (f)
#else
#define GREEN_BENCH_JOB(f) nullptr
#endif

namespace green_bench {

// One batch as measured where it ran. Trivially copyable: crosses pipes.
struct batch_result {
  std::int64_t ns = 0;               // wall time of the batch
  std::int64_t items = 0;            // fibers spawned / yields / round trips / locks done in it
  std::int64_t check = 0;            // workload-specific value to verify (sum, counter, CPU ns)
  std::int64_t base_rss_kib = 0;     // RSS just before the batch (sleep_fanout)
  std::int64_t rss_growth_kib = -1;  // peak RSS minus RSS before the batch; -1: not measured
};

struct stopwatch {
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
  std::int64_t ns() const {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count();
  }
};

// first_allowed_cpu() is one CPU this process may run on, for pinning, or -1.
inline int first_allowed_cpu() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0)
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &set)) return c;
  return -1;
}

// pin_this_thread(cpu) binds the calling thread to `cpu`; no-op for cpu < 0.
inline void pin_this_thread(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

// thread_pin_for(workers) is the CPU the thread cases pin to for workers == 1
// (so two threads really take turns on one core, like fibers on one worker),
// or -1 (free) otherwise.
inline int thread_pin_for(std::int64_t workers) { return workers == 1 ? first_allowed_cpu() : -1; }

#ifdef GREEN_BENCH_HAVE_GREEN

inline green::runtime_config green_config(int workers) {
  green::runtime_config cfg;
  cfg.workers = static_cast<unsigned>(workers);
  return cfg;
}

// greenfiber pools freed stacks process-wide, committed, until trim(). Trim
// before and after each case so that one case's stacks neither serve the next
// (in this process, or in a child that inherits the pool) nor sit in its RSS.
inline void release_green_stacks() { green::sched::stack_allocator::instance().trim(0); }

// green_case(workers, fn) runs fn(rt) with a fresh runtime between two trims.
template <class Fn>
auto green_case(int workers, Fn fn) {
  release_green_stacks();
  struct trim_after {
    ~trim_after() { release_green_stacks(); }
  } after;
  green::runtime rt(green_config(workers));
  return fn(rt);
}

#endif  // GREEN_BENCH_HAVE_GREEN

// What a family of cases (one workload, all implementations) consists of.
struct family_spec {
  std::string name;                                       // "BM_spawn_join"
  const char* per_item = "ns_per_item";                   // counter: batch time / items
  std::function<batch_result()> green;                    // empty: greenfiber not built
  std::vector<int> green_args = {1, 2};                   // its "workers" arguments
  batch_result (*boost)() = nullptr;                      // boost_rr (1 thread) and boost_ws (2, in a child)
  batch_result (*boost_rr_pooled)() = nullptr;            // optional boost_rr_pooled case
  std::function<batch_result(benchmark::State&)> thread;  // empty: no std::thread case
  std::vector<int> thread_args;                           // its "workers" arguments, if any
  benchmark::TimeUnit unit = benchmark::kMicrosecond;
  std::optional<std::int64_t> expect;  // required batch_result::check
  bool warmup = true;                  // run one untimed batch first (stack caches, malloc thresholds)
};

// Runs one batch per iteration through exec(), which returns the batch's own
// timing or throws. Sets <per_item>, items_per_second and, where the batch
// measured it, peak_rss_growth_MiB (largest over the iterations).
template <class Exec>
void run_batches(benchmark::State& state, const family_spec& spec, Exec&& exec) {
  auto check = [&](const batch_result& r) {
    if (!spec.expect || r.check == *spec.expect) return true;
    state.SkipWithError(
        ("wrong result " + std::to_string(r.check) + ", expected " + std::to_string(*spec.expect)).c_str());
    return false;
  };
  try {
    if (spec.warmup && !check(exec())) return;
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  double ns = 0, items = 0;
  std::int64_t growth_kib = -1;
  for (auto _ : state) {
    batch_result r;
    try {
      r = exec();
    } catch (const std::exception& e) {
      state.SkipWithError(e.what());
      break;
    }
    if (!check(r)) break;
    state.SetIterationTime(static_cast<double>(r.ns) * 1e-9);
    ns += static_cast<double>(r.ns);
    items += static_cast<double>(r.items);
    growth_kib = std::max(growth_kib, r.rss_growth_kib);
  }
  if (items > 0) {
    state.SetItemsProcessed(static_cast<std::int64_t>(items));
    state.counters[spec.per_item] = ns / items;
  }
  if (growth_kib >= 0) state.counters["peak_rss_growth_MiB"] = static_cast<double>(growth_kib) / 1024;
}

// Catches set-up failures (runtime or child start) and reports them.
template <class Body>
void guarded(benchmark::State& state, Body&& body) {
  try {
    body();
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

// A child process with a 2-thread work_stealing pool that runs `job` once per call().
template <class Job>
child_server<int, batch_result> boost_ws_server(Job job) {
  return child_server<int, batch_result>([job] {
    auto pool = std::make_shared<boost_pool>(boost_algo::work_stealing, 2);
    return [pool, job](const int&) { return pool->run(job); };
  });
}

// Registers <name>/green (spec.green_args), /boost_rr (1), /boost_rr_pooled
// (1, if given), /boost_ws (2) and /thread (if given). Runtimes and pools are
// made per benchmark run, outside the timed loop.
inline void register_family(const family_spec& spec) {
  auto finish = [&](benchmark::internal::Benchmark* b) { b->UseManualTime()->Unit(spec.unit); };
#ifdef GREEN_BENCH_HAVE_GREEN
  if (spec.green) {
    auto* b = benchmark::RegisterBenchmark((spec.name + "/green").c_str(), [spec](benchmark::State& st) {
      guarded(st, [&] {
        green_case(static_cast<int>(st.range(0)), [&](green::runtime& rt) {
          run_batches(st, spec, [&] { return rt.run([&] { return spec.green(); }); });
        });
      });
    });
    finish(b);
    b->ArgName("workers");
    for (int a : spec.green_args) b->Arg(a);
  }
#endif
  auto rr = [spec](batch_result (*job)()) {
    return [spec, job](benchmark::State& st) {
      guarded(st, [&] {
        boost_pool pool(boost_algo::round_robin, 1);
        run_batches(st, spec, [&] { return pool.run(job); });
      });
    };
  };
  finish(benchmark::RegisterBenchmark((spec.name + "/boost_rr").c_str(), rr(spec.boost))->ArgName("workers")->Arg(1));
  if (spec.boost_rr_pooled)
    finish(benchmark::RegisterBenchmark((spec.name + "/boost_rr_pooled").c_str(), rr(spec.boost_rr_pooled))
               ->ArgName("workers")
               ->Arg(1));
  finish(benchmark::RegisterBenchmark((spec.name + "/boost_ws").c_str(),
                                      [spec](benchmark::State& st) {
                                        guarded(st, [&] {
                                          auto server = boost_ws_server(spec.boost);
                                          run_batches(st, spec, [&] { return server.call(0); });
                                        });
                                      })
             ->ArgName("workers")
             ->Arg(2));
  if (spec.thread) {
    auto* b = benchmark::RegisterBenchmark((spec.name + "/thread").c_str(), [spec](benchmark::State& st) {
      guarded(st, [&] { run_batches(st, spec, [&] { return spec.thread(st); }); });
    });
    finish(b);
    if (!spec.thread_args.empty()) {
      b->ArgName("workers");
      for (int a : spec.thread_args) b->Arg(a);
    }
  }
}

// add_common_context() labels the output with what was built and Boost's version.
inline void add_common_context() {
#ifdef GREEN_BENCH_HAVE_GREEN
  benchmark::AddCustomContext("greenfiber", "built");
#else
  benchmark::AddCustomContext("greenfiber", "not built (no greenfiber target): baselines only");
#endif
  benchmark::AddCustomContext("boost", BOOST_LIB_VERSION);
}

}  // namespace green_bench
