// sleep_vs_crunch: the classic experiment. Four tasks that only sleep 1 s
// and four that crunch numbers (count through a volatile, so the compiler
// keeps the loop, to a count calibrated to take ~0.3 s on this machine, so
// the whole run stays near 13 s), each set run serially, on 4 std::threads,
// and on 4 fibers of a runtime with 1 worker and with every core. Fibers
// overlap the sleeps even on one worker; crunching speeds up only with more
// threads (and cores). Prints the table of wall times, and for each row how
// many OS threads ran the tasks: a crunching fiber holds its worker, so the
// runtime's monitor moves the other fibers to a spare worker thread (see
// README, "Cooperative, on every core"); the row with max_spare_workers = 0
// shows one worker that really is one thread.
// Usage: sleep_vs_crunch [count]   (default: calibrated)
#include <green/green.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <set>
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

// One run of a set of tasks: its wall time, how many OS threads ran them,
// and how many spare workers the runtime started for them.
struct result {
  double seconds = 0;
  std::size_t threads = 0;
  std::uint64_t spares = 0;
};

// thread_set records which OS threads ran a task (at its start and its end:
// a fiber may resume on another thread after a sleep).
class thread_set {
 public:
  void add() {
    std::lock_guard<std::mutex> lk(mu_);
    ids_.insert(std::this_thread::get_id());
  }
  std::size_t size() const { return ids_.size(); }

 private:
  std::mutex mu_;
  std::set<std::thread::id> ids_;
};

// run_task() runs the task, counting the threads it ran on.
void run_task(void (*task)(), thread_set& ts) {
  ts.add();
  task();
  ts.add();
}

double seconds_of(const std::function<void()>& f) {
  auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

result serial(void (*task)()) {
  thread_set ts;
  double s = seconds_of([&] {
    for (int i = 0; i < kTasks; ++i) run_task(task, ts);
  });
  return {s, ts.size(), 0};
}

result threads(void (*task)()) {
  thread_set ts;
  double s = seconds_of([&] {
    std::vector<std::thread> pool;
    for (int i = 0; i < kTasks; ++i) pool.emplace_back([&] { run_task(task, ts); });
    for (auto& t : pool) t.join();
  });
  return {s, ts.size(), 0};
}

result fibers(void (*task)(), unsigned workers, unsigned max_spares) {
  green::runtime_config cfg;
  cfg.workers = workers;
  cfg.max_spare_workers = max_spares;
  green::runtime rt(cfg);
  thread_set ts;
  double s = seconds_of([&] {
    rt.run([&] {
      green::group g;
      for (int i = 0; i < kTasks; ++i) g.spawn([&] { run_task(task, ts); });
      g.join(true);
    });
  });
  return {s, ts.size(), rt.stats().spares_started};
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
  std::printf("%-34s %10s %8s %10s %8s %7s\n", "", "sleep 1 s", "threads", "crunch", "threads", "spares");
  auto row = [](const char* name, result sl, result cr) {
    std::printf("%-34s %9.2fs %8zu %9.2fs %8zu %7llu\n", name, sl.seconds, sl.threads, cr.seconds, cr.threads,
                static_cast<unsigned long long>(sl.spares + cr.spares));
  };
  row("serial", serial(only_sleep), serial(crunch_numbers));
  row("4 std::threads", threads(only_sleep), threads(crunch_numbers));
  row("4 fibers, 1 worker, no spares", fibers(only_sleep, 1, 0), fibers(crunch_numbers, 1, 0));
  const unsigned spares = green::runtime_config{}.max_spare_workers;
  char name[48];
  std::snprintf(name, sizeof name, "4 fibers, 1 worker, <= %u spares", spares);
  row(name, fibers(only_sleep, 1, spares), fibers(crunch_numbers, 1, spares));
  std::snprintf(name, sizeof name, "4 fibers, %u workers, no spares", all);
  row(name, fibers(only_sleep, all, 0), fibers(crunch_numbers, all, 0));
  std::printf(
      "threads: OS threads that ran the tasks; spares: spare worker threads the runtime's\n"
      "monitor started because a crunching fiber held every worker (max_spare_workers)\n");
  return 0;
}
