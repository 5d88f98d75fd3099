// pool_bench: green::pool against a std::thread pool of the same size
// (thread_pool.hpp), the per-task cost of a pool against a bare spawn+join,
// and parallel_reduce on 1 and 2 workers, in one Google Benchmark binary so
// ratios come from one run on one machine.
//
// Families (manual time, measured inside the batch; runtimes and thread
// pools are built once per benchmark run, outside the timed loop):
//   bare_spawn_join/green/workers:W   spawn kBatch fibers returning an int,
//                                     then join each; ns_per_task.
//   pool_spawn/green/workers:W/size:S pool(S).spawn the same kBatch tasks,
//                                     then get() each; ns_per_task. size
//                                     kBatch never waits for a slot (pure
//                                     bookkeeping cost); size 64 does.
//   pool_spawn/thread/size:S          thread_pool(S).submit + future.get().
//   pool_map/green/workers:W/size:S   pool(S).map over kMapItems ints
//                                     (x * 2 + 1); ns_per_item.
//   pool_map/thread/size:S            thread_pool(S).map, same items.
//   parallel_reduce/green/workers:W   sum of sqrt(1..kReduceN) with
//                                     green::parallel_reduce; speed-up =
//                                     time(workers:1) / time(workers:2).
// kBatch = 10,000: a batch takes milliseconds, far above clock resolution,
// and 10,000 parked fibers fit easily in memory. kMapItems = 1,000,000 as
// the issue asks. kReduceN = 50,000,000 as examples/parallel_squares.
#include <green/green.hpp>

#include <benchmark/benchmark.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "thread_pool.hpp"

namespace {

constexpr int kBatch = 10'000;
constexpr std::size_t kMapItems = 1'000'000;
constexpr std::size_t kReduceN = 50'000'000;

using clk = std::chrono::steady_clock;

double since(clk::time_point t0) { return std::chrono::duration<double>(clk::now() - t0).count(); }

green::runtime_config config(int workers) {
  green::runtime_config cfg;
  cfg.workers = static_cast<unsigned>(workers);
  return cfg;
}

// Runs `batch` (returning its own seconds) once untimed, then once per
// iteration; reports `per` = ns per item.
template <class Batch>
void run_batches(benchmark::State& state, double items, const char* per, Batch batch) {
  batch();
  double total = 0;
  for (auto _ : state) {
    double s = batch();
    state.SetIterationTime(s);
    total += s;
  }
  state.counters[per] = total * 1e9 / (items * static_cast<double>(state.iterations()));
  state.SetItemsProcessed(static_cast<std::int64_t>(items) * state.iterations());
}

// run_batches() with each batch as the main fiber of `rt`.
template <class Batch>
void run_green(benchmark::State& state, green::runtime& rt, double items, const char* per, Batch batch) {
  run_batches(state, items, per, [&] { return rt.run(batch); });
}

// One spawn batch: start(i) for i < kBatch (each returning a handle to i),
// then finish(handle) for each, summing the results. Returns seconds.
template <class Start, class Finish>
double spawn_batch(Start start, Finish finish) {
  auto t0 = clk::now();
  std::vector<decltype(start(0))> hs;
  hs.reserve(kBatch);
  for (int i = 0; i < kBatch; ++i) hs.push_back(start(i));
  long sum = 0;
  for (auto& h : hs) sum += finish(h);
  benchmark::DoNotOptimize(sum);
  return since(t0);
}

void bare_spawn_join_green(benchmark::State& state) {
  green::runtime rt(config(static_cast<int>(state.range(0))));
  run_green(state, rt, kBatch, "ns_per_task", [] {
    return spawn_batch([](int i) { return green::spawn([i] { return i; }); }, [](auto& f) { return f.join(); });
  });
}

void pool_spawn_green(benchmark::State& state) {
  green::runtime rt(config(static_cast<int>(state.range(0))));
  const auto size = state.range(1);
  run_green(state, rt, kBatch, "ns_per_task", [size] {
    // Making and destroying the pool stays outside the timed part, like the runtime.
    green::pool p(size);
    return spawn_batch([&](int i) { return p.spawn([i] { return i; }); }, [](auto& r) { return r.get(); });
  });
}

void pool_spawn_thread(benchmark::State& state) {
  green_bench::thread_pool tp(static_cast<std::size_t>(state.range(0)));
  run_batches(state, kBatch, "ns_per_task", [&] {
    return spawn_batch([&](int i) { return tp.submit([i] { return i; }); }, [](auto& f) { return f.get(); });
  });
}

const std::vector<int>& map_items() {
  static const std::vector<int> v = [] {
    std::vector<int> x(kMapItems);
    std::iota(x.begin(), x.end(), 0);
    return x;
  }();
  return v;
}

void pool_map_green(benchmark::State& state) {
  green::runtime rt(config(static_cast<int>(state.range(0))));
  const auto size = state.range(1);
  run_green(state, rt, kMapItems, "ns_per_item", [size] {
    auto t0 = clk::now();
    green::pool p(size);
    auto out = p.map([](int x) { return x * 2 + 1; }, map_items());
    benchmark::DoNotOptimize(out.data());
    return since(t0);
  });
}

void pool_map_thread(benchmark::State& state) {
  green_bench::thread_pool tp(static_cast<std::size_t>(state.range(0)));
  run_batches(state, kMapItems, "ns_per_item", [&] {
    auto t0 = clk::now();
    auto out = tp.map([](int x) { return x * 2 + 1; }, map_items());
    benchmark::DoNotOptimize(out.data());
    return since(t0);
  });
}

void parallel_reduce_green(benchmark::State& state) {
  green::runtime rt(config(static_cast<int>(state.range(0))));
  double sum = 0;
  run_green(state, rt, kReduceN, "ns_per_item", [&sum] {
    auto t0 = clk::now();
    sum = green::parallel_reduce(
        1, kReduceN + 1, 0.0, [](std::size_t i) { return std::sqrt(static_cast<double>(i)); },
        [](double a, double b) { return a + b; });
    return since(t0);
  });
  benchmark::DoNotOptimize(sum);
}

}  // namespace

BENCHMARK(bare_spawn_join_green)
    ->Name("bare_spawn_join/green")
    ->ArgName("workers")
    ->Arg(1)
    ->Arg(2)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(pool_spawn_green)
    ->Name("pool_spawn/green")
    ->ArgNames({"workers", "size"})
    ->Args({1, kBatch})
    ->Args({2, kBatch})
    ->Args({1, 64})
    ->Args({2, 64})
    ->Args({2, 2})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(pool_spawn_thread)
    ->Name("pool_spawn/thread")
    ->ArgName("size")
    ->Arg(2)
    ->Arg(64)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(pool_map_green)
    ->Name("pool_map/green")
    ->ArgNames({"workers", "size"})
    ->Args({2, 2})
    ->Args({2, 64})
    ->Args({1, 64})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3);
BENCHMARK(pool_map_thread)
    ->Name("pool_map/thread")
    ->ArgName("size")
    ->Arg(2)
    ->Arg(64)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3);
BENCHMARK(parallel_reduce_green)
    ->Name("parallel_reduce/green")
    ->ArgName("workers")
    ->Arg(1)
    ->Arg(2)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->Iterations(10);

BENCHMARK_MAIN();
