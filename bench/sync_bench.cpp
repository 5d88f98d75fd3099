// sync_bench: channels and mutexes on greenfiber, Boost.Fiber (round_robin
// and work_stealing) and std::thread, side by side in one Google Benchmark
// binary (harness: bench_family.hpp) so that ratios come from one run.
//
// Families (BM_<workload>/<impl>/workers:<n>):
//   pingpong_unbuffered  two fibers bounce a counter kRoundTrips times over
//                        two unbuffered channels; ns_per_round_trip (two
//                        sends, two receives, two switches on one worker).
//   pingpong_buffered    the same over two channels of capacity kBuffered.
//   mutex_contended      kLockers fibers each lock/unlock one mutex
//                        kLocksEach times around a counter increment;
//                        ns_per_lock = wall / (kLockers * kLocksEach).
// Impls: green (workers 1 and 2), boost_rr (1 thread), boost_ws (2 threads,
// in a child), thread: std::mutex + std::condition_variable. The thread
// ping-pong runs a cv_channel (below) between two threads, pinned to one CPU
// for workers:1 (so a round trip is two context switches, as for fibers on
// one worker) and free for workers:2; the mutex case runs kLockers threads on
// a std::mutex.
//
// Boost: unbuffered_channel, buffered_channel (its capacity must be a power
// of two; it holds capacity-1 values, which ping-pong never reaches) and
// boost::fibers::mutex, defaults otherwise (launch::post).
//
// Rejected: one channel used in both directions (a sender could receive its
// own ping); timing the batch from the benchmark thread (it would include
// the hand-off to the runtime, ~10-50 us, 1-5% of a batch).
#include <array>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <latch>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "bench_family.hpp"

namespace gb = green_bench;

namespace {

using gb::batch_result;
using gb::family_spec;
using gb::stopwatch;

// 20k round trips: ~2-5 ms per batch for fibers (100-250 ns each), ~100-200
// ms for threads (5-10 us of futex wake-ups each); enough iterations of both
// within the default --benchmark_min_time.
constexpr int kRoundTrips = 20'000;
// Any capacity >= 1 gives ping-pong the same shape (at most one value is in
// flight per direction); 16 is a power of two for Boost.
constexpr std::size_t kBuffered = 16;
// The workload: 4 lockers x 250k on 2 workers.
constexpr int kLockers = 4;
constexpr int kLocksEach = 250'000;
constexpr std::int64_t kLocksTotal = std::int64_t{kLockers} * kLocksEach;
// Sum of 0..kRoundTrips-1, as the ponger sees it: checks no value was lost.
constexpr std::int64_t kPingSum = std::int64_t{kRoundTrips} * (kRoundTrips - 1) / 2;

// pingpong(ping, pong, spawn, join) is the workload for any runtime: the
// caller pings 0..kRoundTrips-1, a spawned ponger echoes each back and sums
// them; recv on the channels returns the value.
template <class Ping, class Pong, class Spawn>
batch_result pingpong(Ping& ping, Pong& pong, Spawn spawn) {
  std::int64_t sum = 0;
  stopwatch sw;
  auto join = spawn([&] {
    for (int i = 0; i < kRoundTrips; ++i) {
      int v = ping.recv();
      sum += v;
      pong.send(v);
    }
  });
  for (int i = 0; i < kRoundTrips; ++i) {
    ping.send(i);
    if (pong.recv() != i) throw std::runtime_error("pingpong: wrong value echoed");
  }
  std::int64_t ns = sw.ns();
  join();
  return {ns, kRoundTrips, sum, 0};
}

// contended<Mutex>(spawn) runs kLockers lockers; spawn(fn) starts one and
// returns its join function.
template <class Mutex, class Spawn>
batch_result contended(Spawn spawn) {
  Mutex mu;
  std::int64_t counter = 0;
  stopwatch sw;
  std::vector<std::function<void()>> joins;
  for (int k = 0; k < kLockers; ++k)
    joins.push_back(spawn([&] {
      for (int i = 0; i < kLocksEach; ++i) {
        std::lock_guard<Mutex> lk(mu);
        ++counter;
      }
    }));
  for (auto& j : joins) j();
  return {sw.ns(), kLocksTotal, counter, 0};
}

// ---------------------------------------------------------------- greenfiber
#ifdef GREEN_BENCH_HAVE_GREEN

// green::channel with recv() returning the value.
struct green_chan {
  explicit green_chan(std::size_t cap) : ch(cap) {}
  green::channel<int> ch;
  void send(int v) { ch.send(v); }
  int recv() { return *ch.recv(); }
};

auto green_spawn = [](auto fn) {
  auto f = std::make_shared<green::fiber<void>>(green::spawn(std::move(fn)));
  return [f] { f->join(); };
};

template <std::size_t Cap>
batch_result green_pingpong() {
  green_chan ping(Cap), pong(Cap);
  return pingpong(ping, pong, green_spawn);
}

batch_result green_mutex() { return contended<green::mutex>(green_spawn); }

#endif  // GREEN_BENCH_HAVE_GREEN

// --------------------------------------------------------------- Boost.Fiber

template <class Chan>
struct boost_chan {
  template <class... A>
  explicit boost_chan(A... a) : ch(a...) {}
  Chan ch;
  void send(int v) { ch.push(v); }
  int recv() { return ch.value_pop(); }
};

auto boost_spawn = [](auto fn) {
  auto f = std::make_shared<boost::fibers::fiber>(std::move(fn));
  return [f] { f->join(); };
};

batch_result boost_pingpong_unbuffered() {
  boost_chan<boost::fibers::unbuffered_channel<int>> ping, pong;
  return pingpong(ping, pong, boost_spawn);
}

batch_result boost_pingpong_buffered() {
  boost_chan<boost::fibers::buffered_channel<int>> ping(kBuffered), pong(kBuffered);
  return pingpong(ping, pong, boost_spawn);
}

batch_result boost_mutex() { return contended<boost::fibers::mutex>(boost_spawn); }

// ---------------------------------------------------------------- std::thread

// cv_channel is the obvious std::mutex + std::condition_variable channel:
// capacity 0 is a rendezvous (send() returns once a receiver took the value).
// Invariants: q_.size() <= max(cap_, 1); taken_ counts values received.
class cv_channel {
 public:
  explicit cv_channel(std::size_t cap) : cap_(cap) {}
  void send(int v) {
    std::unique_lock lk(mu_);
    can_put_.wait(lk, [&] { return q_.size() < std::max<std::size_t>(cap_, 1); });
    q_.push_back(v);
    const std::uint64_t mine = ++sent_;
    can_get_.notify_one();
    if (cap_ == 0) can_put_.wait(lk, [&] { return taken_ >= mine; });
  }
  int recv() {
    std::unique_lock lk(mu_);
    can_get_.wait(lk, [&] { return !q_.empty(); });
    int v = q_.front();
    q_.pop_front();
    ++taken_;
    // all: a rendezvous sender and a sender waiting for room share can_put_
    can_put_.notify_all();
    return v;
  }

 private:
  std::mutex mu_;
  std::condition_variable can_put_, can_get_;
  std::deque<int> q_;
  std::uint64_t sent_ = 0, taken_ = 0;
  const std::size_t cap_;
};

// thread_spawn_on(cpu) starts a std::thread pinned to `cpu` (or free for -1).
auto thread_spawn_on(int cpu) {
  return [cpu](auto fn) {
    auto t = std::make_shared<std::thread>([cpu, fn = std::move(fn)] {
      gb::pin_this_thread(cpu);
      fn();
    });
    return [t] { t->join(); };
  };
}

batch_result thread_pingpong(std::size_t cap, int pin_cpu) {
  // The benchmark thread is the pinger; it gets its own affinity back after.
  struct restore_affinity {
    cpu_set_t saved;
    restore_affinity() { pthread_getaffinity_np(pthread_self(), sizeof saved, &saved); }
    ~restore_affinity() { pthread_setaffinity_np(pthread_self(), sizeof saved, &saved); }
  } restore;
  gb::pin_this_thread(pin_cpu);
  cv_channel ping(cap), pong(cap);
  return pingpong(ping, pong, thread_spawn_on(pin_cpu));
}

batch_result thread_mutex() { return contended<std::mutex>(thread_spawn_on(-1)); }

// ------------------------------------------------------------------- drivers

void register_all() {
  // Designated initializers: fields in family_spec's order.
  gb::register_family({
      .name = "BM_pingpong_unbuffered",
      .per_item = "ns_per_round_trip",
      .green = GREEN_BENCH_JOB(green_pingpong<0>),
      .boost = boost_pingpong_unbuffered,
      .thread = [](benchmark::State& st) { return thread_pingpong(0, gb::thread_pin_for(st.range(0))); },
      .thread_args = {1, 2},
      .unit = benchmark::kMillisecond,
      .expect = kPingSum,
  });
  gb::register_family({
      .name = "BM_pingpong_buffered",
      .per_item = "ns_per_round_trip",
      .green = GREEN_BENCH_JOB(green_pingpong<kBuffered>),
      .boost = boost_pingpong_buffered,
      .thread = [](benchmark::State& st) { return thread_pingpong(kBuffered, gb::thread_pin_for(st.range(0))); },
      .thread_args = {1, 2},
      .unit = benchmark::kMillisecond,
      .expect = kPingSum,
  });
  gb::register_family({
      .name = "BM_mutex_contended",
      .per_item = "ns_per_lock",
      .green = GREEN_BENCH_JOB(green_mutex),
      .boost = boost_mutex,
      .thread = [](benchmark::State&) { return thread_mutex(); },
      .thread_args = {},  // kLockers threads, free
      .unit = benchmark::kMillisecond,
      .expect = kLocksTotal,
  });
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  gb::add_common_context();
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
