// cold_bench: the C++ side of the workloads bench/compare sets beside Go
// (issue 16), one sample per process. bench/go/bench.go is the Go side; both
// print bench/compare's JSON lines (workload, impl, metric, value, unit,
// lower_better, group) and compare runs them interleaved, a fresh process
// per sample (green, go, boost, thread, green, go, ...).
//
//   cold_bench fanout green|boost [--warm] [--n=N]   spawn N (100,000) fibers that add their index to
//                                                    an atomic sum and return, then join all; ns per fiber.
//                                                    Cold: the measured batch is the process's first
//                                                    spawns. --warm: after one untimed batch.
//   cold_bench sleep green|boost [--n=N]             N fibers each sleep 100 ms; wall from the first spawn
//                                                    to the last join (ms) and the process's peak RSS (MiB).
//   cold_bench parked green [--n=N]                  N (1,000,000) fibers block on one event; the growth of
//                                                    the resident set (/proc/self/statm) from before the
//                                                    first spawn to when all have started, per fiber.
//   cold_bench mutex green|thread [--hogs=H]         4 fibers on the default runtime (or 4 std::threads)
//                                                    lock one mutex 250,000 times each around a counter,
//                                                    with H (2) busy-looping /bin/sh processes beside,
//                                                    started before and killed after; ns per lock.
//
// Impls: green (the default runtime: one worker per core, as green::run
// gives a user), boost (Boost.Fiber's round_robin on the main thread, 128 KiB
// stacks from pooled_fixedsize_stack: see boost_spawn), thread (std::thread +
// std::mutex).
// Left out: std::thread fan-outs (100,000 threads, 8 MiB stack reservations
// each) and 1M parked Boost fibers (1M x 128 KiB malloc'ed stacks, gigabytes
// of RSS) — see docs/performance.md.
//
// The hogs are the same for every implementation (Go's program starts the
// same shell loop): forked before any runtime or thread exists, each asks
// for SIGKILL if this process's main thread dies (PR_SET_PDEATHSIG), so an
// interrupted run leaves none behind.
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/fiber/all.hpp>
#include <chrono>
#include <cinttypes>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <green/green.hpp>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench_util.hpp"

namespace gb = green_bench;

namespace {

using clock_type = std::chrono::steady_clock;
constexpr auto kSleep = std::chrono::milliseconds(100);
constexpr int kLockers = 4;  // sync_bench's mutex workload
constexpr int kLocksEach = 250'000;

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "cold_bench: %s\nusage: cold_bench fanout green|boost [--warm] [--n=N]\n"
               "       cold_bench sleep green|boost [--n=N]\n"
               "       cold_bench parked green [--n=N]\n"
               "       cold_bench mutex green|thread [--hogs=H]\n",
               why.c_str());
  std::exit(2);
}

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "cold_bench: %s\n", what.c_str());
  std::exit(1);
}

// emit() prints one result line for bench/compare (lower is better for all).
void emit(const std::string& workload, const std::string& impl, const char* metric, double value, const char* unit) {
  std::printf(
      "{\"workload\": \"%s\", \"impl\": \"%s\", \"metric\": \"%s\", \"value\": %.6g, \"unit\": \"%s\", "
      "\"lower_better\": true, \"group\": \"\"}\n",
      workload.c_str(), impl.c_str(), metric, value, unit);
}

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

// count_name(n) names a count as the workloads do: 100k, 1M, 2500.
std::string count_name(int n) {
  if (n % 1'000'000 == 0) return std::to_string(n / 1'000'000) + "M";
  if (n % 1'000 == 0) return std::to_string(n / 1'000) + "k";
  return std::to_string(n);
}

std::string green_label(const green::runtime& rt) { return "green " + std::to_string(rt.workers()) + "w"; }

// ---------------------------------------------------------------- fan-out

// fanout_batch(n, spawn): spawn(fn) starts a fiber and returns its handle;
// every fiber adds its index to a sum, then all are joined. Returns seconds.
template <class Handle, class Spawn>
double fanout_batch(int n, Spawn spawn) {
  std::atomic<std::int64_t> sum{0};
  std::vector<Handle> fibers;
  fibers.reserve(static_cast<std::size_t>(n));
  const auto t0 = clock_type::now();
  for (int i = 0; i < n; ++i) fibers.push_back(spawn([&sum, i] { sum.fetch_add(i, std::memory_order_relaxed); }));
  for (auto& f : fibers) f.join();
  const double secs = seconds_since(t0);
  // relaxed: join() ordered every add before this load
  if (sum.load(std::memory_order_relaxed) != std::int64_t{n} * (n - 1) / 2) fail("fanout: wrong sum");
  return secs;
}

// sleep_batch(n, spawn, sleep): n fibers each sleep kSleep and count
// themselves; the wall from the first spawn to the last join.
template <class Handle, class Spawn, class Sleep>
double sleep_batch(int n, Spawn spawn, Sleep sleep) {
  std::atomic<std::int64_t> woke{0};
  std::vector<Handle> fibers;
  fibers.reserve(static_cast<std::size_t>(n));
  const auto t0 = clock_type::now();
  for (int i = 0; i < n; ++i)
    fibers.push_back(spawn([&woke, sleep] {
      sleep(kSleep);
      woke.fetch_add(1, std::memory_order_relaxed);
    }));
  for (auto& f : fibers) f.join();
  const double secs = seconds_since(t0);
  if (woke.load(std::memory_order_relaxed) != n) fail("sleep: not every fiber woke");  // relaxed: after join()
  return secs;
}

auto green_spawn = [](auto fn) { return green::spawn(std::move(fn)); };
// Boost.Fiber with pooled_fixedsize_stack (128 KiB stacks carved from
// boost::pool's growing blocks): with its default fixedsize_stack (one
// malloc, so one mmap, per 128 KiB stack) 100,000 live fibers take ~40 s here
// (~430 us per fiber), too slow to repeat; core_bench keeps that case.
// Round_robin on the main thread only (boost::pool is not thread-safe).
auto boost_spawn = [](auto fn) {
  static boost::fibers::pooled_fixedsize_stack stacks;
  return boost::fibers::fiber(std::allocator_arg, stacks, std::move(fn));
};

void fanout(const std::string& impl, int n, bool warm) {
  const std::string name = "fan-out " + count_name(n) + (warm ? " warm" : " cold");
  if (impl == "green") {
    green::runtime rt;
    const double secs = rt.run([&] {
      if (warm) fanout_batch<green::fiber<void>>(n, green_spawn);
      return fanout_batch<green::fiber<void>>(n, green_spawn);
    });
    emit(name, green_label(rt), "", secs * 1e9 / n, "ns per fiber");
  } else if (impl == "boost") {
    // main() is Boost.Fiber's main fiber on the default round_robin scheduler.
    if (warm) fanout_batch<boost::fibers::fiber>(n, boost_spawn);
    const double secs = fanout_batch<boost::fibers::fiber>(n, boost_spawn);
    emit(name, "boost_rr/pooled 1w", "", secs * 1e9 / n, "ns per fiber");
  } else {
    usage("fanout runs green or boost, not " + impl);
  }
}

void sleep_fanout(const std::string& impl, int n) {
  const std::string name = "sleep fan-out " + count_name(n) + " x 100 ms";
  double secs = 0;
  std::string label;
  if (impl == "green") {
    green::runtime rt;
    label = green_label(rt);
    secs = rt.run([&] {
      return sleep_batch<green::fiber<void>>(n, green_spawn, [](auto d) { green::this_fiber::sleep_for(d); });
    });
  } else if (impl == "boost") {
    label = "boost_rr/pooled 1w";
    secs = sleep_batch<boost::fibers::fiber>(n, boost_spawn, [](auto d) { boost::this_fiber::sleep_for(d); });
  } else {
    usage("sleep runs green or boost, not " + impl);
  }
  emit(name, label, "wall", secs * 1e3, "ms");
  emit(name, label, "peak RSS", static_cast<double>(gb::peak_rss_kib()) / 1024, "MiB");
}

// ---------------------------------------------------------------- parked

void parked(const std::string& impl, int n) {
  if (impl != "green") usage("parked runs green only, not " + impl);
  green::runtime rt;
  const double kib_each = rt.run([n] {
    green::wait_group started, finished;
    green::event release;
    const long before = gb::current_rss_kib();
    started.add(n);
    finished.add(n);
    for (int i = 0; i < n; ++i)
      green::spawn([&] {
        started.done();
        release.wait();
        finished.done();
      }).detach();
    started.wait();
    const long after = gb::current_rss_kib();
    release.set();
    finished.wait();
    if (before < 0 || after < 0) fail("parked: /proc/self/statm is not readable");
    return static_cast<double>(after - before) / n;
  });
  emit(count_name(n) + " parked fibers", green_label(rt), "RSS", kib_each, "KiB per fiber");
}

// ---------------------------------------------------------------- mutex + hogs

// hogs: `count` busy-looping shells, started at construction (before any
// thread of this process exists: plain fork + exec) and killed at
// destruction.
class hogs {
 public:
  explicit hogs(int count) {
    for (int i = 0; i < count; ++i) {
      const pid_t pid = ::fork();
      if (pid < 0) fail(std::string("fork: ") + std::strerror(errno));
      if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        ::execl("/bin/sh", "sh", "-c", "while :; do :; done", static_cast<char*>(nullptr));
        ::_exit(127);
      }
      pids_.push_back(pid);
    }
    if (count > 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let them reach their loops
  }
  ~hogs() {
    for (pid_t pid : pids_) ::kill(pid, SIGKILL);
    for (pid_t pid : pids_) ::waitpid(pid, nullptr, 0);
  }
  hogs(const hogs&) = delete;
  hogs& operator=(const hogs&) = delete;

 private:
  std::vector<pid_t> pids_;
};

// contended<Mutex>(spawn): kLockers lockers; spawn(fn) returns a handle to join.
template <class Mutex, class Handle, class Spawn>
double contended(Spawn spawn) {
  Mutex mu;
  std::int64_t counter = 0;
  std::vector<Handle> lockers;
  const auto t0 = clock_type::now();
  for (int k = 0; k < kLockers; ++k)
    lockers.push_back(spawn([&] {
      for (int i = 0; i < kLocksEach; ++i) {
        std::lock_guard<Mutex> lk(mu);
        ++counter;
      }
    }));
  for (auto& l : lockers) l.join();
  const double secs = seconds_since(t0);
  if (counter != std::int64_t{kLockers} * kLocksEach) fail("mutex: lost an increment");
  return secs * 1e9 / (std::int64_t{kLockers} * kLocksEach);
}

void mutex_with_hogs(const std::string& impl, int hog_count) {
  if (impl != "green" && impl != "thread") usage("mutex runs green or thread, not " + impl);
  const std::string name =
      hog_count > 0 ? "contended mutex + " + std::to_string(hog_count) + " CPU hogs" : "contended mutex";
  hogs beside(hog_count);
  if (impl == "green") {
    green::runtime rt;
    const double ns = rt.run([] { return contended<green::mutex, green::fiber<void>>(green_spawn); });
    emit(name, green_label(rt), "", ns, "ns per lock");
  } else {
    const double ns = contended<std::mutex, std::thread>([](auto fn) { return std::thread(std::move(fn)); });
    emit(name, "thread", "", ns, "ns per lock");
  }
}

// int_option(args, "--n=", def, min) is the integer after the prefix (min to
// 100,000,000, else a usage error), or def.
int int_option(const std::vector<std::string_view>& args, std::string_view prefix, int def, long min) {
  for (auto a : args) {
    if (a.substr(0, prefix.size()) != prefix) continue;
    const std::string digits(a.substr(prefix.size()));
    char* end = nullptr;
    const long v = std::strtol(digits.c_str(), &end, 10);
    if (digits.empty() || *end != '\0' || v < min || v > 100'000'000) usage("bad " + std::string(a));
    return static_cast<int>(v);
  }
  return def;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) usage("need a workload and an implementation");
  const std::string workload = argv[1], impl = argv[2];
  std::vector<std::string_view> args(argv + 3, argv + argc);
  bool warm = false;
  for (auto a : args) {
    if (a == "--warm") warm = true;
    else if (a.substr(0, 4) != "--n=" && a.substr(0, 7) != "--hogs=") usage("unknown option " + std::string(a));
  }
  if (workload == "fanout") {
    fanout(impl, int_option(args, "--n=", 100'000, 1), warm);
  } else if (workload == "sleep") {
    sleep_fanout(impl, int_option(args, "--n=", 100'000, 1));
  } else if (workload == "parked") {
    parked(impl, int_option(args, "--n=", 1'000'000, 1));
  } else if (workload == "mutex") {
    mutex_with_hogs(impl, int_option(args, "--hogs=", 2, 0));
  } else {
    usage("unknown workload " + workload);
  }
  return 0;
}
