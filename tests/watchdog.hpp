// The test watchdog: every test runs under an alarm; a lost wake-up becomes
// a failure naming the test (on stderr, exit status watchdog_exit_code)
// within GREEN_WATCHDOG_S seconds (default 120; 0 switches it off) instead
// of a hang. It uses SIGALRM, not a thread: a watchdog thread would count as
// an outside thread that might wake fibers and so hide deadlocks from the
// detector. Every test binary links it (tests/CMakeLists.txt); the
// watchdog_names_a_hanging_test CTest entry proves it fires.
#pragma once

#include <vector>

#include <gtest/gtest.h>

#include <green/green.hpp>

#include "sanitizers.hpp"  // scheduler/src: GREEN_ASAN, GREEN_TSAN

namespace green::testing {

// The exit status of a process the watchdog ended (GNU timeout's).
inline constexpr int watchdog_exit_code = 124;
// watchdog_limit_s() is the limit read from GREEN_WATCHDOG_S. Any thread.
unsigned watchdog_limit_s();

// The worker counts scheduler tests run over.
inline std::vector<unsigned> worker_counts() { return {1, 2, 4}; }

// A config for tests: tiny run queues so overflow and stealing paths run.
inline runtime_config test_config(unsigned workers) {
  runtime_config cfg;
  cfg.workers = workers;
  cfg.run_queue_capacity = 4;
  return cfg;
}

// Pretty test names: "workers_2".
inline std::string worker_name(const ::testing::TestParamInfo<unsigned>& info) {
  return "workers_" + std::to_string(info.param);
}

// Which sanitizer this build runs under: GREEN_ASAN / GREEN_TSAN, from the
// runtime's one copy of the detection macros (included above).

#ifdef GREEN_TSAN
constexpr bool tsan = true;
#else
constexpr bool tsan = false;
#endif
#ifdef GREEN_ASAN
constexpr bool asan = true;
#else
constexpr bool asan = false;
#endif
// True in sanitizer builds (slower; some tests shrink).
constexpr bool sanitized = tsan || asan;

// scaled() shrinks a fiber count for sanitizer builds: TSan models every
// fiber as a thread (measured: ~4.6 ms per fiber created), so counts that
// take milliseconds natively take minutes there.
constexpr int scaled(int n) { return sanitized ? (n / 20 > 0 ? n / 20 : 1) : n; }

constexpr bool optimized =
#ifdef NDEBUG
    true;
#else
    false;
#endif

}  // namespace green::testing
