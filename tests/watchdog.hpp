// The test watchdog: every test runs under an alarm; a lost wake-up becomes
// a failure naming the test (and a dump of every runtime) instead of a hang.
// It uses SIGALRM, not a thread: a watchdog thread would count as an outside
// thread that might wake fibers and so hide deadlocks from the detector.
#pragma once

#include <vector>

#include <gtest/gtest.h>

#include <green/green.hpp>

namespace green::testing {

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

// True in sanitizer builds (slower; some tests shrink).
constexpr bool sanitized =
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
    true;
#else
    false;
#endif
#else
    false;
#endif

constexpr bool tsan =
#if defined(__SANITIZE_THREAD__)
    true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
    true;
#else
    false;
#endif
#else
    false;
#endif

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
