// core_bench: the same workloads on greenfiber, Boost.Fiber (round_robin and
// work_stealing) and std::thread, side by side in one Google Benchmark binary
// so that ratios can be quoted from one run on one machine.
//
// Families (BM_<workload>/<impl>[/<variant>]/workers:<n>):
//   spawn_join   spawn kSpawnBatch empty fibers, then join all; ns_per_fiber.
//   yield        two fibers each yield kYieldsPerFiber times; ns_per_yield =
//                wall / total yields. On one worker each yield is a switch; on
//                two the fibers may run side by side and find no one to switch to.
//   skynet       10-ary tree over 1M leaves (1,111,110 spawns), sum checked;
//                ns_per_fiber and peak_rss_growth_MiB (in-process high-water mark).
//   sleep_fanout kFanout fibers sleep kFanoutSleep, then bump a counter; wall
//                time, peak_rss_MiB and rss_per_fiber_KiB, each run in a child.
//   idle         a 2-worker runtime whose one fiber sleeps (arg ms); CPU burnt
//                by the process meanwhile as cpu_s_per_2s, in a child.
// Impls: green (only with GREEN_BENCH_HAVE_GREEN), boost_rr (round_robin, 1
// thread), boost_rr_pooled (same with pooled_fixedsize_stack), boost_ws
// (work_stealing, 2 threads, spinning when idle; idle adds boost_ws_park,
// suspend = true), thread (std::thread, where a thread per task is feasible).
//
// Timing: manual time, measured with steady_clock on the thread that runs the
// batch, so the hand-off (rt.run, a boost_pool job, a child's socket) and
// runtime start-up stay outside without PauseTiming. One iteration = one
// batch; per-item counters = total time / total items. spawn_join and yield
// first run one untimed batch (stack caches, malloc's mmap threshold).
//
// Isolation: Boost 1.74's work_stealing can be installed once per process
// (boost_pool.hpp), so boost_ws cases run in a forked child_server (one child
// and pool per benchmark run, one batch per request). sleep_fanout and idle
// fork a fresh child per iteration (run_in_child) so peak RSS and CPU time
// are that case's alone; children first malloc_trim, and greenfiber's stack
// pool is trimmed around every green case, so no case reuses memory another
// one faulted in. Runtimes live for one benchmark run: no threads at fork.
//
// Boost settings: defaults (launch::post, default_stack = fixedsize_stack,
// 128 KiB malloc'ed, no guard page) except skynet, which uses launch::dispatch
// and 16 KiB stacks as Boost's performance/fiber/skynet_*.cpp do (post walks
// the tree breadth-first: ~1.1M live stacks, ~10 GiB RSS). Even so round_robin
// frees a finished fiber's stack only when its dispatcher runs, which an
// unbroken chain of ready fibers never lets happen: skynet/boost_rr holds
// ~3.5 GiB. sleep_fanout adds protected_fixedsize_stack (2 mappings per stack,
// so vm.max_map_count = 65530 stops it near 32,700 fibers: reported as an
// error) and pooled_fixedsize_stack on round_robin only (boost::pool is not
// thread-safe; work_stealing frees stacks on whichever thread ran them).
//
// Rejected: PauseTiming around setup (costly, noisy at microsecond batches);
// one shared work_stealing pool for the binary (no 1-vs-2 thread choice, its
// spinning threads would load every other case, no child forked after it
// could build its own); std::thread in skynet (1.1M threads) and sleep_fanout
// (100k threads with 8 MiB stack reservations each).
// Boost.Fiber defines a function-like macro cpu_relax()
// (boost/fiber/detail/cpu_relax.hpp); greenfiber's pause is named cpu_pause()
// so include order does not matter, but bench_family.hpp includes greenfiber first anyway.
#include <algorithm>
#include <array>
#include <atomic>
#include <boost/version.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <latch>
#include <memory>
#include <new>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "bench_family.hpp"
#include "bench_util.hpp"
#include "boost_pool.hpp"

namespace gb = green_bench;

using namespace std::chrono_literals;

namespace {

using gb::batch_result;
using gb::family_spec;
using gb::stopwatch;

// A batch of 1000 spawns takes ~0.1-1 ms with fibers: long enough that the
// ~10-50 us hand-off to a worker (outside the timing anyway) and clock reads
// are noise, short enough to repeat many times within --benchmark_min_time.
constexpr int kSpawnBatch = 1000;
// 2 x 50k yields at ~20-100 ns each: 2-10 ms per batch.
constexpr int kYieldsPerFiber = 50'000;
constexpr std::int64_t kSkynetLeaves = 1'000'000;
constexpr std::int64_t kSkynetSum = kSkynetLeaves * (kSkynetLeaves - 1) / 2;  // 499999500000
constexpr std::int64_t kSkynetSpawns = 1'111'110;                             // 10 + 100 + ... + 10^6
constexpr std::size_t kSkynetBoostStack = 16 * 1024;
constexpr int kFanout = 100'000;
constexpr auto kFanoutSleep = 100ms;

// rss_probe resets the process's RSS high-water mark and remembers the RSS
// now; growth_kib() is then how far the RSS peaked above it. Any thread.
struct rss_probe {
  bool reset = (gb::release_free_memory(), gb::reset_peak_rss());
  long base = gb::current_rss_kib();
  std::int64_t growth_kib() const { return reset && base >= 0 ? gb::hwm_rss_kib() - base : -1; }
};

// The idle workload's body, for any runtime's sleep: CPU time of the whole
// process during one sleep of the calling fiber.
template <class Sleep>
batch_result measure_idle(std::chrono::milliseconds ms, Sleep sleep) {
  double cpu0 = gb::process_cpu_seconds();
  stopwatch sw;
  sleep(ms);
  std::int64_t wall = sw.ns();
  double cpu = gb::process_cpu_seconds() - cpu0;
  return {wall, 0, static_cast<std::int64_t>(cpu * 1e9), 0};
}

// ---------------------------------------------------------------- greenfiber
#ifdef GREEN_BENCH_HAVE_GREEN

// Fiber context only.
batch_result green_spawn_join() {
  std::vector<green::fiber<void>> fibers;
  fibers.reserve(kSpawnBatch);
  stopwatch sw;
  for (int i = 0; i < kSpawnBatch; ++i) fibers.push_back(green::spawn([] {}));
  for (auto& f : fibers) f.join();
  return {sw.ns(), kSpawnBatch, 0, 0};
}

batch_result green_yield() {
  stopwatch sw;
  auto spin = [] {
    for (int i = 0; i < kYieldsPerFiber; ++i) green::this_fiber::yield();
  };
  auto a = green::spawn(spin);
  auto b = green::spawn(spin);
  a.join();
  b.join();
  return {sw.ns(), 2 * kYieldsPerFiber, 0, 0};
}

std::int64_t green_skynet_node(std::int64_t num, std::int64_t size) {
  if (size == 1) return num;
  const std::int64_t child = size / 10;
  std::vector<green::fiber<std::int64_t>> kids;
  kids.reserve(10);
  for (std::int64_t i = 0; i < 10; ++i)
    kids.push_back(green::spawn([num, i, child] { return green_skynet_node(num + i * child, child); }));
  std::int64_t sum = 0;
  for (auto& k : kids) sum += k.join();
  return sum;
}

batch_result green_skynet() {
  rss_probe rss;
  stopwatch sw;
  std::int64_t sum = green_skynet_node(0, kSkynetLeaves);
  return {sw.ns(), kSkynetSpawns, sum, 0, rss.growth_kib()};
}

batch_result green_sleep_fanout() {
  std::atomic<std::int64_t> woke{0};
  std::vector<green::fiber<void>> fibers;
  fibers.reserve(kFanout);
  std::int64_t base = gb::current_rss_kib();
  stopwatch sw;
  for (int i = 0; i < kFanout; ++i)
    fibers.push_back(green::spawn([&woke] {
      green::this_fiber::sleep_for(kFanoutSleep);
      woke.fetch_add(1, std::memory_order_relaxed);  // relaxed: read after join(), which synchronizes
    }));
  for (auto& f : fibers) f.join();
  return {sw.ns(), kFanout, woke.load(std::memory_order_relaxed), base};
}

#endif  // GREEN_BENCH_HAVE_GREEN

// --------------------------------------------------------------- Boost.Fiber

// Main fiber of a boost_pool thread only (as all boost_* workloads).
template <class StackAlloc>
batch_result boost_spawn_join_with(StackAlloc& salloc) {
  std::vector<boost::fibers::fiber> fibers;
  fibers.reserve(kSpawnBatch);
  stopwatch sw;
  for (int i = 0; i < kSpawnBatch; ++i) fibers.emplace_back(std::allocator_arg, salloc, [] {});
  for (auto& f : fibers) f.join();
  return {sw.ns(), kSpawnBatch, 0, 0};
}

// Boost's default: fixedsize_stack, malloc/free per fiber.
batch_result boost_spawn_join() {
  boost::fibers::default_stack salloc;
  return boost_spawn_join_with(salloc);
}

// pooled_fixedsize_stack keeps freed stacks, so after the first batch no
// stack page is faulted in again. One pool per thread, kept across batches;
// not thread-safe (boost::pool), hence round_robin only.
batch_result boost_spawn_join_pooled() {
  static thread_local boost::fibers::pooled_fixedsize_stack salloc;
  return boost_spawn_join_with(salloc);
}

batch_result boost_yield() {
  stopwatch sw;
  auto spin = [] {
    for (int i = 0; i < kYieldsPerFiber; ++i) boost::this_fiber::yield();
  };
  boost::fibers::fiber a(spin), b(spin);
  a.join();
  b.join();
  return {sw.ns(), 2 * kYieldsPerFiber, 0, 0};
}

std::int64_t boost_skynet_node(std::int64_t num, std::int64_t size) {
  if (size == 1) return num;
  const std::int64_t child = size / 10;
  std::array<std::int64_t, 10> sums{};
  std::array<boost::fibers::fiber, 10> kids;
  for (std::int64_t i = 0; i < 10; ++i)
    kids[i] = boost::fibers::fiber(boost::fibers::launch::dispatch, std::allocator_arg,
                                   boost::fibers::fixedsize_stack(kSkynetBoostStack),
                                   [&sums, num, i, child] { sums[i] = boost_skynet_node(num + i * child, child); });
  for (auto& k : kids) k.join();
  return std::accumulate(sums.begin(), sums.end(), std::int64_t{0});
}

batch_result boost_skynet() {
  rss_probe rss;
  stopwatch sw;
  std::int64_t sum = boost_skynet_node(0, kSkynetLeaves);
  return {sw.ns(), kSkynetSpawns, sum, 0, rss.growth_kib()};
}

// Throws std::runtime_error if a stack cannot be allocated, after joining the
// fibers already started.
template <class StackAlloc>
batch_result boost_sleep_fanout(StackAlloc salloc) {
  std::atomic<std::int64_t> woke{0};
  std::vector<boost::fibers::fiber> fibers;
  fibers.reserve(kFanout);
  std::int64_t base = gb::current_rss_kib();
  stopwatch sw;
  bool out_of_memory = false;
  try {
    for (int i = 0; i < kFanout; ++i)
      fibers.emplace_back(std::allocator_arg, salloc, [&woke] {
        boost::this_fiber::sleep_for(kFanoutSleep);
        woke.fetch_add(1, std::memory_order_relaxed);  // relaxed: read after join(), which synchronizes
      });
  } catch (const std::bad_alloc&) {
    out_of_memory = true;
  }
  // A guard-paged stack is 2 mappings (stack + PROT_NONE page). When
  // vm.max_map_count runs out, Boost 1.74 throws bad_alloc if mmap fails, but
  // if only the mprotect of the guard page fails it merely asserts, so with
  // NDEBUG the stack silently has no guard page (and merges with its
  // neighbour into one mapping). Detect both; neither is a valid run.
  const long max_maps = gb::read_sysctl_long("vm/max_map_count");
  const long maps = std::is_same_v<StackAlloc, boost::fibers::protected_fixedsize_stack> ? gb::mapping_count() : -1;
  const std::size_t spawned = fibers.size();
  for (auto& f : fibers) f.join();
  if (out_of_memory)
    throw std::runtime_error("std::bad_alloc after " + std::to_string(spawned) + " fibers: vm.max_map_count = " +
                             std::to_string(max_maps) + " and a guard-paged stack costs 2 mappings");
  if (max_maps > 0 && maps >= max_maps - 16)
    throw std::runtime_error("vm.max_map_count = " + std::to_string(max_maps) + " reached at about " +
                             std::to_string(max_maps / 2) + " fibers (2 mappings per guard-paged stack); Boost " +
                             "ignores the failed mprotect under NDEBUG, so the later stacks have no guard page");
  return {sw.ns(), kFanout, woke.load(std::memory_order_relaxed), base};
}

// ---------------------------------------------------------------- std::thread

batch_result thread_spawn_join() {
  std::vector<std::thread> threads;
  threads.reserve(kSpawnBatch);
  stopwatch sw;
  for (int i = 0; i < kSpawnBatch; ++i) threads.emplace_back([] {});
  for (auto& t : threads) t.join();
  return {sw.ns(), kSpawnBatch, 0, 0};
}

// Two threads each call std::this_thread::yield(); with pin_cpu >= 0 both are
// pinned to that CPU so a yield really switches between them.
batch_result thread_yield(int pin_cpu) {
  std::latch start(2);
  std::array<std::chrono::steady_clock::time_point, 2> t0, t1;
  auto body = [&](int k) {
    gb::pin_this_thread(pin_cpu);
    start.arrive_and_wait();
    t0[k] = std::chrono::steady_clock::now();
    for (int i = 0; i < kYieldsPerFiber; ++i) std::this_thread::yield();
    t1[k] = std::chrono::steady_clock::now();
  };
  std::thread a(body, 0), b(body, 1);
  a.join();
  b.join();
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::max(t1[0], t1[1]) - std::min(t0[0], t0[1]));
  return {ns.count(), 2 * kYieldsPerFiber, 0, 0};
}

// ------------------------------------------------------------------- drivers

// One fresh child per iteration: `job` sets up its runtime, runs, and reports.
// Sets peak_rss_MiB and rss_per_fiber_KiB (peak minus RSS before the batch).
template <class Job>
void run_fanout_in_children(benchmark::State& state, Job job) {
  double peak_kib = 0, per_fiber_kib = 0;
  int n = 0;
  for (auto _ : state) {
    gb::child_outcome<batch_result> out;
    try {
      out = gb::run_in_child(job);
    } catch (const std::exception& e) {
      state.SkipWithError(e.what());
      break;
    }
    if (out.value.check != kFanout) {
      state.SkipWithError(("only " + std::to_string(out.value.check) + " fibers woke").c_str());
      break;
    }
    state.SetIterationTime(static_cast<double>(out.value.ns) * 1e-9);
    peak_kib += static_cast<double>(out.stats.peak_rss_kib);
    per_fiber_kib += static_cast<double>(out.stats.peak_rss_kib - out.value.base_rss_kib) / kFanout;
    ++n;
  }
  if (n > 0) {
    state.SetItemsProcessed(static_cast<std::int64_t>(n) * kFanout);
    state.counters["peak_rss_MiB"] = peak_kib / n / 1024;
    state.counters["rss_per_fiber_KiB"] = per_fiber_kib / n;
  }
}

template <class StackAlloc>
void register_boost_fanout(const std::string& stack_name, gb::boost_algo algo, unsigned threads) {
  std::string name = "BM_sleep_fanout/" + std::string(threads == 1 ? "boost_rr/" : "boost_ws/") + stack_name;
  benchmark::RegisterBenchmark(name.c_str(),
                               [=](benchmark::State& st) {
                                 run_fanout_in_children(st, [=] {
                                   gb::boost_pool pool(algo, threads);
                                   return pool.run([] { return boost_sleep_fanout(StackAlloc{}); });
                                 });
                               })
      ->ArgName("workers")
      ->Arg(static_cast<int>(threads))
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond)
      ->Iterations(1);
}

// Each iteration is a fresh child that starts a runtime, then measures CPU
// time over one sleep of `ms` (the benchmark's argument) on its only fiber.
template <class Job>
void run_idle_in_children(benchmark::State& state, Job job) {
  double cpu_s = 0, wall_s = 0;
  for (auto _ : state) {
    gb::child_outcome<batch_result> out;
    try {
      out = gb::run_in_child(job);
    } catch (const std::exception& e) {
      state.SkipWithError(e.what());
      break;
    }
    state.SetIterationTime(static_cast<double>(out.value.ns) * 1e-9);
    cpu_s += static_cast<double>(out.value.check) * 1e-9;
    wall_s += static_cast<double>(out.value.ns) * 1e-9;
  }
  if (wall_s > 0) {
    state.counters["cpu_s_per_2s"] = cpu_s / wall_s * 2.0;
    state.counters["cpus_busy"] = cpu_s / wall_s;
  }
}

void register_idle_boost(const char* name, gb::boost_algo algo, unsigned threads) {
  benchmark::RegisterBenchmark(
      name,
      [=](benchmark::State& st) {
        std::chrono::milliseconds ms(st.range(0));
        run_idle_in_children(st, [=] {
          gb::boost_pool pool(algo, threads);
          return pool.run([ms] { return measure_idle(ms, [](auto d) { boost::this_fiber::sleep_for(d); }); });
        });
      })
      ->ArgName("ms")
      ->Arg(2000)
      ->Arg(500)
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond)
      ->Iterations(1);
}

void register_all() {
  // -- spawn_join, yield, skynet: one batch per iteration, in process (boost_ws in a child).
  family_spec spawn_join;
  spawn_join.name = "BM_spawn_join";
  spawn_join.per_item = "ns_per_fiber";
  spawn_join.green = GREEN_BENCH_JOB(green_spawn_join);
  spawn_join.boost = boost_spawn_join;
  spawn_join.boost_rr_pooled = boost_spawn_join_pooled;
  spawn_join.thread = [](benchmark::State&) { return thread_spawn_join(); };
  gb::register_family(spawn_join);

  family_spec yield;
  yield.name = "BM_yield";
  yield.per_item = "ns_per_yield";
  yield.green = GREEN_BENCH_JOB(green_yield);
  yield.boost = boost_yield;
  // workers:1 pins both threads to one CPU, so each yield is a switch;
  // workers:2 lets them run on two CPUs (then it is the cost of sched_yield).
  yield.thread = [](benchmark::State& st) { return thread_yield(gb::thread_pin_for(st.range(0))); };
  yield.thread_args = {1, 2};
  gb::register_family(yield);

  // No std::thread case: 1.1M threads. No warm-up: a batch is seconds long.
  family_spec skynet;
  skynet.name = "BM_skynet";
  skynet.per_item = "ns_per_fiber";
  skynet.green = GREEN_BENCH_JOB(green_skynet);
  skynet.boost = boost_skynet;
  skynet.unit = benchmark::kMillisecond;
  skynet.expect = kSkynetSum;
  skynet.warmup = false;
  gb::register_family(skynet);

  // -- sleep_fanout: a fresh child per iteration, for its peak RSS. No
  // std::thread case: 100k threads (and 100k x 8 MiB of stack reservations).
#ifdef GREEN_BENCH_HAVE_GREEN
  benchmark::RegisterBenchmark("BM_sleep_fanout/green",
                               [](benchmark::State& st) {
                                 int workers = static_cast<int>(st.range(0));
                                 run_fanout_in_children(st, [workers] {
                                   return gb::green_case(workers, [](green::runtime& rt) {
                                     return rt.run([] { return green_sleep_fanout(); });
                                   });
                                 });
                               })
      ->ArgName("workers")
      ->Arg(1)
      ->Arg(2)
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond)
      ->Iterations(1);
#endif
  using gb::boost_algo;
  register_boost_fanout<boost::fibers::fixedsize_stack>("fixedsize_stack", boost_algo::round_robin, 1);
  register_boost_fanout<boost::fibers::pooled_fixedsize_stack>("pooled_fixedsize_stack", boost_algo::round_robin, 1);
  register_boost_fanout<boost::fibers::protected_fixedsize_stack>("protected_fixedsize_stack", boost_algo::round_robin,
                                                                  1);
  register_boost_fanout<boost::fibers::fixedsize_stack>("fixedsize_stack", boost_algo::work_stealing, 2);
  register_boost_fanout<boost::fibers::protected_fixedsize_stack>("protected_fixedsize_stack",
                                                                  boost_algo::work_stealing, 2);

  // -- idle: a fresh child per iteration; 2 workers where the runtime has a
  // choice. No std::thread case: blocked threads burn nothing by construction.
#ifdef GREEN_BENCH_HAVE_GREEN
  benchmark::RegisterBenchmark(
      "BM_idle/green",
      [](benchmark::State& st) {
        std::chrono::milliseconds ms(st.range(0));
        run_idle_in_children(st, [ms] {
          return gb::green_case(2, [ms](green::runtime& rt) {
            return rt.run([ms] { return measure_idle(ms, [](auto d) { green::this_fiber::sleep_for(d); }); });
          });
        });
      })
      ->ArgName("ms")
      ->Arg(2000)
      ->Arg(500)
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond)
      ->Iterations(1);
#endif
  register_idle_boost("BM_idle/boost_rr", boost_algo::round_robin, 1);
  register_idle_boost("BM_idle/boost_ws", boost_algo::work_stealing, 2);
  register_idle_boost("BM_idle/boost_ws_park", boost_algo::work_stealing_park, 2);
}

void add_context() {
  gb::add_common_context();
  benchmark::AddCustomContext("boost_default_stack_KiB",
                              std::to_string(boost::context::stack_traits::default_size() / 1024));
  benchmark::AddCustomContext("vm.max_map_count", std::to_string(gb::read_sysctl_long("vm/max_map_count")));
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  add_context();
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
