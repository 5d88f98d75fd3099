// sleep_vs_crunch: the classic experiment. Four tasks that only sleep 1 s
// and four that crunch numbers (count through a volatile, so the compiler
// keeps the loop, to a count calibrated to take ~0.3 s on this machine, so
// the whole run stays near 11 s), each set run serially, on 4 std::threads,
// and on 4 fibers of a runtime with 1 worker and with every core. Fibers
// overlap the sleeps even on one worker; crunching speeds up only with more
// workers (and cores). Prints the table of wall times.
// Usage: sleep_vs_crunch [count]   (default: calibrated)
#include <green/green.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <thread>
#include <vector>

namespace {

constexpr int kTasks = 4;
long crunch_count = 0;

void only_sleep() { green::this_fiber::sleep_for(std::chrono::seconds(1)); }  // a plain thread sleeps for real

void crunch_numbers() {
  volatile long x = 0;
  while (x < crunch_count) x = x + 1;
}

double seconds_of(const std::function<void()>& f) {
  auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double serial(void (*task)()) {
  return seconds_of([&] {
    for (int i = 0; i < kTasks; ++i) task();
  });
}

double threads(void (*task)()) {
  return seconds_of([&] {
    std::vector<std::thread> ts;
    for (int i = 0; i < kTasks; ++i) ts.emplace_back(task);
    for (auto& t : ts) t.join();
  });
}

double fibers(void (*task)(), unsigned workers) {
  green::runtime_config cfg;
  cfg.workers = workers;
  green::runtime rt(cfg);
  return seconds_of([&] {
    rt.run([&] {
      green::group g;
      for (int i = 0; i < kTasks; ++i) g.spawn(task);
      g.join(true);
    });
  });
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1) {
    crunch_count = std::atol(argv[1]);
  } else {
    crunch_count = 20'000'000;
    double t = seconds_of(crunch_numbers);
    crunch_count = static_cast<long>(static_cast<double>(crunch_count) * 0.3 / std::max(t, 1e-3));
  }
  const unsigned all = std::max(1u, std::thread::hardware_concurrency());
  std::printf("%d tasks each; crunch counts to %ld; %u cores\n", kTasks, crunch_count, all);
  std::printf("%-22s %10s %10s\n", "", "sleep 1 s", "crunch");
  auto row = [](const char* name, double s, double c) { std::printf("%-22s %9.2fs %9.2fs\n", name, s, c); };
  row("serial", serial(only_sleep), serial(crunch_numbers));
  row("4 std::threads", threads(only_sleep), threads(crunch_numbers));
  row("4 fibers, 1 worker", fibers(only_sleep, 1), fibers(crunch_numbers, 1));
  char name[32];
  std::snprintf(name, sizeof name, "4 fibers, %u workers", all);
  row(name, fibers(only_sleep, all), fibers(crunch_numbers, all));
  return 0;
}
