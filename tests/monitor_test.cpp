// The monitor: a fiber that holds its worker (a blocking call, a long
// computation) does not stop the other fibers; a fiber blocked in a system
// call nobody patched is reported (once per call site), a computation only
// when asked (config::monitor_reports); spare workers can be switched off.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <green/sched/io.hpp>

#include "test_util.hpp"

using namespace std::chrono_literals;

namespace {

// spin_until() busy-waits without ever switching, like a long computation,
// until `flag` is set. No give-up time: if the monitor never lets the fiber
// that sets the flag run, the test hangs and the watchdog names it.
void spin_until(const std::atomic<bool>& flag) {
  while (!flag.load()) green::sched::cpu_pause();
}

// spawn_spinners() starts n fibers that each count themselves in
// `spinning`, then spin_until(flag). Fiber context.
std::vector<green::fiber<void>> spawn_spinners(unsigned n, const std::atomic<bool>& flag,
                                               std::atomic<unsigned>& spinning) {
  std::vector<green::fiber<void>> fs;
  for (unsigned i = 0; i < n; ++i)
    fs.push_back(green::spawn([&] {
      ++spinning;
      spin_until(flag);
    }));
  return fs;
}

// compute_on_every_worker() keeps every one of `workers` workers computing
// until a fiber that only runs after all of them started sets the flag:
// only the monitor's hand-off can run it. Fiber context.
void compute_on_every_worker(unsigned workers) {
  std::atomic<bool> flag{false};
  std::atomic<unsigned> spinning{0};
  auto spinners = spawn_spinners(workers, flag, spinning);
  while (spinning.load() < workers) green::this_fiber::yield();
  auto setter = green::spawn([&] { flag = true; });
  setter.join();
  for (auto& s : spinners) s.join();
}

// wait_for_stuck_report() yields until the monitor has made `n` reports.
// Fiber context. It yields rather than sleeps: a fiber's timer lives on
// the worker it parked on, which may be the held one.
void wait_for_stuck_report(green::runtime& rt, std::uint64_t n) {
  while (rt.stats().stuck_reports < n) green::this_fiber::yield();
}

// wait_for_rescues() yields until the monitor has found `n` held workers.
// Fiber or thread context; yields, as wait_for_stuck_report() does.
void wait_for_rescues(green::runtime& rt, std::uint64_t n) {
  while (rt.stats().rescues < n) {
    if (green::sched::current_fiber()) green::this_fiber::yield();
    else std::this_thread::yield();
  }
}

// report_log collects the monitor's reports through config::monitor_sink.
struct report_log {
  std::mutex mu;
  std::vector<std::string> lines;
  // attach() points cfg's sink at this log, which must outlive the runtime.
  green::runtime_config& attach(green::runtime_config& cfg) {
    cfg.monitor_sink = [this](const std::string& line) {
      std::lock_guard<std::mutex> lk(mu);
      lines.push_back(line);
    };
    return cfg;
  }
  std::vector<std::string> take() {
    std::lock_guard<std::mutex> lk(mu);
    return lines;
  }
  // count_with() is how many reports so far contain `what`.
  std::size_t count_with(const std::string& what) {
    std::lock_guard<std::mutex> lk(mu);
    std::size_t n = 0;
    for (auto& l : lines) n += l.find(what) != std::string::npos;
    return n;
  }
};

// monitor_config() is test_config(workers) with the given report setting,
// reporting into `log`.
green::runtime_config monitor_config(unsigned workers, green::monitor_report mode, report_log& log) {
  green::runtime_config cfg = green::testing::test_config(workers);
  cfg.monitor_reports = mode;
  return log.attach(cfg);
}

// env_var sets an environment variable for one scope. Tests of one binary
// run one at a time, so nothing else reads the environment meanwhile.
class env_var {
 public:
  env_var(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value, 1);
  }
  ~env_var() {
    if (old_.empty()) ::unsetenv(name_);
    else ::setenv(name_, old_.c_str(), 1);
  }
  env_var(const env_var&) = delete;
  env_var& operator=(const env_var&) = delete;

 private:
  const char* name_;
  std::string old_;
};

// test_pipe owns a pipe's two ends and closes them on every way out of the
// test (an ASSERT returns early). Blocking unless `flags` says otherwise: an
// unpatched read of it holds its worker. Whoever waited on the read end with
// green::sched::wait_fd must call notify_close() first.
struct test_pipe {
  int r = -1;
  int w = -1;
  explicit test_pipe(int flags = 0) {
    int p[2];
    if (::pipe2(p, flags | O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe2");
    r = p[0];
    w = p[1];
  }
  ~test_pipe() {
    ::close(r);
    ::close(w);
  }
  test_pipe(const test_pipe&) = delete;
  test_pipe& operator=(const test_pipe&) = delete;
  // put() writes one byte; read_byte() reads one, or returns '?'.
  bool put(char c) const { return ::write(w, &c, 1) == 1; }
  char read_byte() const {
    char c = 0;
    return ::read(r, &c, 1) == 1 ? c : '?';
  }
};

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

GREEN_WORKER_SUITE(monitor_test);

// The issue's example: a fiber in a blocking call does not stop 1,000
// others. The call (an unpatched read of a blocking pipe) ends only when the
// main fiber writes the byte, which it does after every other fiber has
// finished and the monitor has reported the blocker: a monitor that does not
// hand the blocked worker's fibers on deadlocks, and the watchdog names it.
// (Formerly a ::sleep(1) raced against the 1,000 fibers, which a loaded
// machine lost.)
TEST_P(monitor_test, a_blocking_call_does_not_stop_the_other_fibers) {
  report_log log;
  green::runtime rt(monitor_config(GetParam(), green::monitor_report::blocking, log));
  rt.run([&] {
    test_pipe p;  // blocking: the read holds its worker
    std::atomic<bool> started{false};
    auto blocker = green::spawn(green::spawn_options{"sleeper"}, [&] {
      started = true;
      return p.read_byte();
    });
    // On one worker this hands the worker to the blocker; only the monitor
    // (which starts a spare worker) brings us back.
    while (!started) green::this_fiber::yield();
    const int n = green::testing::scaled(1000);
    std::atomic<int> finished{0};
    std::vector<green::fiber<void>> fs;
    for (int i = 0; i < n; ++i)
      fs.push_back(green::spawn([&] {
        for (int k = 0; k < 3; ++k) green::this_fiber::yield();
        ++finished;
      }));
    for (auto& f : fs) f.join();
    EXPECT_EQ(finished.load(), n);
    wait_for_stuck_report(rt, 1);  // still blocked: only our write ends the read
    ASSERT_TRUE(p.put('b'));
    EXPECT_EQ(blocker.join(), 'b');
  });
  auto lines = log.take();
  ASSERT_EQ(lines.size(), 1u);  // reported once, by name, with its spawner
  EXPECT_EQ(count(lines[0], "'sleeper'"), 1u) << lines[0];
  EXPECT_NE(lines[0].find("(spawned by fiber #"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find(" 'main')"), std::string::npos) << lines[0];
  auto st = rt.stats();
  EXPECT_EQ(st.stuck_reports, 1u);
  if (GetParam() == 1) {
    EXPECT_GE(st.spares_started, 1u);
  }
}

// By default a computation is rescued without a word (issue 15: spawn
// loops, TLS and pool.map over CPU slices were told to "use to_thread").
TEST_P(monitor_test, a_long_computation_does_not_starve_the_fiber_it_waits_for) {
  report_log log;
  green::runtime rt(monitor_config(GetParam(), green::monitor_report::blocking, log));
  ::testing::internal::CaptureStderr();
  rt.run([&] { compute_on_every_worker(GetParam()); });
  std::string err = ::testing::internal::GetCapturedStderr();
  // While the last spinner started, every worker was spinning and this main
  // fiber ran too: on a spare, which the monitor starts only after it found
  // every worker held. Nothing was said about it.
  auto st = rt.stats();
  EXPECT_GE(st.rescues, 1u);
  EXPECT_GE(st.spares_started, 1u);
  EXPECT_EQ(st.stuck_reports, 0u);
  EXPECT_TRUE(log.take().empty());
  EXPECT_EQ(err, "");
}

TEST_P(monitor_test, io_is_polled_while_every_worker_is_busy) {
  green::runtime rt(green::testing::test_config(GetParam()));
  ::testing::internal::CaptureStderr();
  rt.run([&] {
    test_pipe p(O_NONBLOCK);
    std::atomic<bool> flag{false};
    auto reader = green::spawn([&] {
      char c = 0;
      while (::read(p.r, &c, 1) != 1) green::sched::wait_fd(p.r, green::sched::io_dir::read);
      flag = true;
      return c;
    });
    green::testing::wait_parked(reader, "fd read");
    // The byte is written only once every worker spins, and the spinners
    // stop only when the reader got it: a runtime that polls I/O only from
    // idle workers hangs here.
    std::atomic<unsigned> spinning{0};
    auto spinners = spawn_spinners(GetParam(), flag, spinning);
    green::testing::side_thread writer([&] {
      while (spinning.load() < GetParam()) std::this_thread::yield();
      EXPECT_TRUE(p.put('r'));
    });
    for (auto& s : spinners) s.join();
    EXPECT_EQ(reader.join(), 'r');
    writer.join();
    green::sched::notify_close(p.r);
  });
  (void)::testing::internal::GetCapturedStderr();
}

TEST(monitor, can_be_switched_off_and_rejects_a_negative_limit) {
  green::runtime_config cfg = green::testing::test_config(1);
  cfg.monitor_limit = 0ms;
  green::runtime rt(cfg);
  rt.run([] {
    auto t0 = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - t0 < 30ms) {
    }
  });
  EXPECT_EQ(green::testing::scheduler(rt).get_stats().stuck_reports, 0u);
  cfg.monitor_limit = -1ms;
  green::testing::expect_throw_with<std::invalid_argument>([&] { green::runtime bad(cfg); }, "monitor_limit");
}

// The blocking report names the call, the fiber, its spawner and the fix,
// and comes once for a fiber that blocks at one site again and again: the
// blocker reads three times, switching in between (so each read is a new
// stretch the monitor finds held), and each byte is written only once the
// monitor has found the blocker held once more.
TEST_P(monitor_test, a_blocking_call_is_reported_once_per_site_by_name) {
  report_log log;
  green::runtime rt(monitor_config(GetParam(), green::monitor_report::blocking, log));
  rt.run([&] {
    test_pipe p;  // blocking: each read holds its worker
    auto blocker = green::spawn(green::spawn_options{"blocker"}, [&] {
      int got = 0;
      for (int i = 0; i < 3; ++i) {
        char c = 0;
        got += static_cast<int>(::read(p.r, &c, 1));
        green::this_fiber::yield();
      }
      return got;
    });
    for (std::uint64_t i = 1; i <= 3; ++i) {
      wait_for_rescues(rt, i);
      ASSERT_TRUE(p.put('x'));
    }
    EXPECT_EQ(blocker.join(), 3);
  });
  auto lines = log.take();
  ASSERT_EQ(lines.size(), 1u);
  const std::string& r = lines[0];
  EXPECT_NE(r.find("'blocker'"), std::string::npos) << r;
  EXPECT_NE(r.find("the system call read"), std::string::npos) << r;
  EXPECT_NE(r.find("(spawned by fiber #"), std::string::npos) << r;
  EXPECT_NE(r.find("green::to_thread"), std::string::npos) << r;
  EXPECT_NE(r.find("greenfiber::patch"), std::string::npos) << r;
  EXPECT_EQ(rt.stats().stuck_reports, 1u);
  EXPECT_GE(rt.stats().rescues, 3u);
}

// `all` reports a computation too, once: the setter waits for the
// cruncher's report, so the spinner goes on being held after it. `all`
// also names any other fiber that holds a worker long enough (under TSan,
// main waiting in the sanitizer's futex for 13 ms was), so the test looks
// for the cruncher's lines, not for the only line (a CI failure under
// TSan: the setter took main's report for the cruncher's).
TEST_P(monitor_test, all_reports_a_computation_once) {
  report_log log;
  green::runtime rt(monitor_config(GetParam(), green::monitor_report::all, log));
  rt.run([&] {
    std::atomic<bool> flag{false};
    auto spinner = green::spawn(green::spawn_options{"cruncher"}, [&] { spin_until(flag); });
    auto setter = green::spawn([&] {
      while (log.count_with("'cruncher'") == 0) green::this_fiber::yield();
      flag = true;
    });
    setter.join();
    spinner.join();
  });
  auto lines = log.take();
  std::vector<std::string> cruncher;
  for (auto& l : lines)
    if (l.find("'cruncher'") != std::string::npos) cruncher.push_back(l);
  ASSERT_EQ(cruncher.size(), 1u);
  EXPECT_NE(cruncher[0].find("computed"), std::string::npos) << cruncher[0];
  EXPECT_EQ(rt.stats().stuck_reports, lines.size());
  EXPECT_GE(rt.stats().rescues, 1u);
}

// `off` says nothing about a blocking call or a computation, and still
// rescues: the main fiber and the setter run while each holds a worker.
TEST_P(monitor_test, off_reports_nothing_but_still_rescues) {
  report_log log;
  green::runtime rt(monitor_config(GetParam(), green::monitor_report::off, log));
  ::testing::internal::CaptureStderr();
  rt.run([&] {
    compute_on_every_worker(GetParam());
    // Then a blocking read, ended once the monitor found it held.
    test_pipe p;
    const std::uint64_t before = rt.stats().rescues;
    auto blocker = green::spawn([&] {
      char c = 0;
      return ::read(p.r, &c, 1);
    });
    wait_for_rescues(rt, before + 1);
    ASSERT_TRUE(p.put('x'));
    EXPECT_EQ(blocker.join(), 1);
  });
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(log.take().empty());
  EXPECT_EQ(err, "");
  EXPECT_EQ(rt.stats().stuck_reports, 0u);
  EXPECT_GE(rt.stats().rescues, 2u);
}

// With max_spare_workers = 0, `workers = N` is exactly N threads running
// fibers, even while one of them blocks in a raw read: the fibers queued
// behind the blocker wait for a worker (on one worker, until the read
// ends). A side thread writes the byte once the monitor found the worker
// held, which is when it would have started a spare.
TEST_P(monitor_test, no_spare_workers_means_exactly_n_threads_run_fibers) {
  report_log log;
  green::runtime_config cfg = monitor_config(GetParam(), green::monitor_report::blocking, log);
  cfg.max_spare_workers = 0;
  green::runtime rt(cfg);
  const int n = 20;
  std::vector<std::thread::id> ran(2 * n + 2);
  rt.run([&] {
    test_pipe p;
    ran[0] = std::this_thread::get_id();
    green::testing::side_thread writer([&] {
      wait_for_rescues(rt, 1);
      EXPECT_TRUE(p.put('x'));
    });
    auto blocker = green::spawn([&] {
      ran[1] = std::this_thread::get_id();
      char c = 0;
      return ::read(p.r, &c, 1);
    });
    std::vector<green::fiber<void>> fs;
    for (int i = 0; i < n; ++i)
      fs.push_back(green::spawn([&, i] {
        ran[2 + 2 * i] = std::this_thread::get_id();
        for (int k = 0; k < 3; ++k) green::this_fiber::yield();
        ran[3 + 2 * i] = std::this_thread::get_id();
      }));
    for (auto& f : fs) f.join();
    EXPECT_EQ(blocker.join(), 1);
    writer.join();
  });
  std::set<std::thread::id> threads(ran.begin(), ran.end());
  EXPECT_EQ(threads.count(std::thread::id{}), 0u);  // every slot was written
  EXPECT_LE(threads.size(), GetParam());
  if (GetParam() == 1) {
    EXPECT_EQ(threads.size(), 1u);
  }
  EXPECT_EQ(rt.stats().spares_started, 0u);
  EXPECT_EQ(rt.stats().spares_live, 0u);
  std::ostringstream dump;
  rt.dump(dump);
  EXPECT_NE(dump.str().find("spare workers: 0 started (0 activations), 0 live, limit 0"), std::string::npos)
      << dump.str();
}

// A fiber's timer lives on the worker it parked on. When that worker was
// held (an unpatched read) with nothing queued, nobody fired the timer: the
// sleeper, the only fiber that could end the read, slept on, and on one
// worker the program hung. The monitor now fires a held worker's due timers.
TEST_P(monitor_test, a_sleeper_whose_worker_is_held_still_wakes) {
  report_log log;
  green::runtime rt(monitor_config(GetParam(), green::monitor_report::off, log));
  rt.run([&] {
    test_pipe p;  // blocking: the read holds its worker
    std::atomic<bool> sleeping{false};
    auto sleeper = green::spawn([&] {
      sleeping = true;
      green::this_fiber::sleep_for(20ms);  // parks with its timer on this worker
      char c = 's';
      return ::write(p.w, &c, 1);
    });
    while (!sleeping) green::this_fiber::yield();
    // Spawned after the sleeper parked; on one worker it runs on the same
    // thread, holding it in the read until the sleeper writes.
    auto reader = green::spawn([&] { return p.read_byte(); });
    EXPECT_EQ(reader.join(), 's');
    EXPECT_EQ(sleeper.join(), 1);
  });
  EXPECT_TRUE(log.take().empty());
}

TEST(monitor, environment_chooses_the_report_setting_and_rejects_bad_values) {
  green::runtime_config cfg = green::testing::test_config(1);
  cfg.monitor_reports = green::monitor_report::all;
  {
    env_var v("GREEN_MONITOR", "off");
    green::runtime rt(cfg);
    EXPECT_EQ(green::testing::scheduler(rt).cfg().monitor_reports, green::monitor_report::off);
  }
  {
    env_var v("GREEN_MAX_SPARE_WORKERS", "3");
    green::runtime rt(cfg);
    EXPECT_EQ(green::testing::scheduler(rt).cfg().max_spare_workers, 3u);
  }
  {
    env_var v("GREEN_MONITOR", "loud");
    green::testing::expect_throw_with<std::invalid_argument>([&] { green::runtime bad(cfg); },
                                                             "GREEN_MONITOR must be off, blocking or all, got 'loud'");
  }
  {
    env_var v("GREEN_MAX_SPARE_WORKERS", "two");
    green::testing::expect_throw_with<std::invalid_argument>([&] { green::runtime bad(cfg); },
                                                             "GREEN_MAX_SPARE_WORKERS must be a non-negative");
  }
}
