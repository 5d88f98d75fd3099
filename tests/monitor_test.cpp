// The monitor: a fiber that holds its worker (a blocking call, a long
// computation) is reported, and the other fibers keep running elsewhere.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <string>
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

// wait_for_stuck_report() polls until the monitor has reported `n` fibers.
// Fiber context.
void wait_for_stuck_report(green::runtime& rt, std::uint64_t n) {
  while (green::testing::scheduler(rt).get_stats().stuck_reports < n) green::this_fiber::sleep_for(1ms);
}

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
  green::runtime rt(green::testing::test_config(GetParam()));
  ::testing::internal::CaptureStderr();
  rt.run([&] {
    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);  // blocking: the read holds its worker
    std::atomic<bool> started{false};
    auto blocker = green::spawn(green::spawn_options{"sleeper"}, [&] {
      started = true;
      char c = 0;
      return ::read(p[0], &c, 1) == 1 ? c : '?';
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
    char c = 'b';
    ASSERT_EQ(::write(p[1], &c, 1), 1);
    EXPECT_EQ(blocker.join(), 'b');
    ::close(p[0]);
    ::close(p[1]);
  });
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(count(err, "'sleeper'"), 1u) << err;  // reported once, by name
  EXPECT_NE(err.find("spawned by fiber #"), std::string::npos) << err;
  auto st = green::testing::scheduler(rt).get_stats();
  EXPECT_GE(st.stuck_reports, 1u);
  if (GetParam() == 1) {
    EXPECT_GE(st.spares_started, 1u);
  }
}

TEST_P(monitor_test, a_long_computation_does_not_starve_the_fiber_it_waits_for) {
  green::runtime rt(green::testing::test_config(GetParam()));
  ::testing::internal::CaptureStderr();
  rt.run([&] {
    std::atomic<bool> flag{false};
    std::atomic<unsigned> spinning{0};
    // Every worker spins until a fiber that only runs after all of them
    // started sets the flag: only the monitor's hand-off can run it.
    auto spinners = spawn_spinners(GetParam(), flag, spinning);
    while (spinning.load() < GetParam()) green::this_fiber::yield();
    auto setter = green::spawn([&] { flag = true; });
    setter.join();
    for (auto& s : spinners) s.join();
  });
  std::string err = ::testing::internal::GetCapturedStderr();
  // While the last spinner started, every worker was spinning and this main
  // fiber ran too: on a spare, which the monitor starts only after it reported
  // a stuck worker.
  auto st = green::testing::scheduler(rt).get_stats();
  EXPECT_GE(st.stuck_reports, 1u) << err;
  EXPECT_GE(st.spares_started, 1u) << err;
}

TEST_P(monitor_test, io_is_polled_while_every_worker_is_busy) {
  green::runtime rt(green::testing::test_config(GetParam()));
  ::testing::internal::CaptureStderr();
  rt.run([&] {
    int p[2];
    ASSERT_EQ(::pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    std::atomic<bool> flag{false};
    auto reader = green::spawn([&] {
      char c = 0;
      while (::read(p[0], &c, 1) != 1) green::sched::wait_fd(p[0], green::sched::io_dir::read);
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
      char c = 'r';
      EXPECT_EQ(::write(p[1], &c, 1), 1);
    });
    for (auto& s : spinners) s.join();
    EXPECT_EQ(reader.join(), 'r');
    writer.join();
    green::sched::notify_close(p[0]);
    ::close(p[0]);
    ::close(p[1]);
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
