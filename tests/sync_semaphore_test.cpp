// Synchronization primitives, part of sync_test (sync_test_util.hpp lists
// the files): semaphore and bounded_semaphore. Bounding concurrency, a
// permit skipping a killed waiter, and the errors of a release past the
// count's limit.
#include <atomic>
#include <chrono>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <green/green.hpp>
#include <green/semaphore.hpp>

#include "sync_test_util.hpp"

using namespace std::chrono_literals;

namespace {

using green::testing::expect_killed;
using green::testing::expect_throw_with;
using green::testing::wait_parked;

// ---------------------------------------------------------------------------
// semaphore

TEST_P(sync_test, semaphore_bounds_concurrency) {
  run([&] {
    green::semaphore sem(3);
    std::atomic<int> inside{0}, max_inside{0};
    std::vector<green::fiber<void>> fs;
    for (int i = 0; i < 12; ++i)
      fs.push_back(green::spawn([&] {
        for (int k = 0; k < 20; ++k) {
          std::lock_guard lk(sem);
          int n = ++inside;
          int m = max_inside.load();
          while (n > m && !max_inside.compare_exchange_weak(m, n)) {
          }
          green::this_fiber::yield();
          --inside;
        }
      }));
    for (auto& f : fs) f.join();
    EXPECT_LE(max_inside.load(), 3);
    EXPECT_EQ(sem.value(), 3u);
  });
}

TEST_P(sync_test, semaphore_permit_skips_killed_waiter) {
  run([&] {
    green::semaphore sem(0);
    auto first = green::spawn([&] { sem.acquire(); });
    wait_parked(first, "semaphore");
    auto second = green::spawn([&] { sem.acquire(); });
    wait_parked(second, "semaphore");
    first.kill();
    expect_killed(first);
    sem.release();
    second.join();  // got the permit the killed fiber would have had
    EXPECT_EQ(sem.value(), 0u);
    EXPECT_FALSE(sem.try_acquire_for(1ms));
    std::thread([&] { sem.release(2); }).join();
    EXPECT_TRUE(sem.try_acquire());
    EXPECT_TRUE(sem.try_acquire_for(1ms));
  });
}

TEST_P(sync_test, bounded_semaphore_rejects_extra_release) {
  run([&] {
    green::bounded_semaphore sem(2);
    sem.acquire();
    sem.release();
    expect_throw_with<std::logic_error>([&] { sem.release(); }, "bounded_semaphore released too many times");
    EXPECT_EQ(sem.value(), 2u);
    green::semaphore unbounded(0);
    unbounded.release(5);
    EXPECT_EQ(unbounded.value(), 5u);
  });
}

// release_error() is what() of the E that sem.release(n) must throw.
template <class E, class S>
std::string release_error(S& sem, std::size_t n) {
  try {
    sem.release(n);
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << "release(" << n << ") did not throw";
  return {};
}

// Issue 13: semaphore(1).release(SIZE_MAX) said "bounded_semaphore released
// too many times" of a plain semaphore. A plain one overflows its count; a
// bounded one is released more often than it was acquired. Neither failed
// release changes the count.
TEST_P(sync_test, semaphore_release_past_its_maximum_says_the_count_would_overflow) {
  run([&] {
    constexpr std::size_t max = std::numeric_limits<std::size_t>::max();
    green::semaphore plain(1);
    std::string what = release_error<std::overflow_error>(plain, max);
    EXPECT_NE(what.find("green::semaphore: release(" + std::to_string(max) + ") with 1 free would overflow"),
              std::string::npos)
        << what;
    EXPECT_EQ(what.find("bounded"), std::string::npos) << what;
    EXPECT_EQ(plain.value(), 1u);
    plain.release(max - 1);
    EXPECT_EQ(plain.value(), max);
    EXPECT_THROW(plain.release(), std::overflow_error);
    EXPECT_EQ(plain.value(), max);

    green::bounded_semaphore bounded(2);
    bounded.acquire();
    what = release_error<std::logic_error>(bounded, 2);
    EXPECT_NE(what.find("bounded_semaphore released too many times"), std::string::npos) << what;
    EXPECT_NE(what.find("more than acquired (initial count 2)"), std::string::npos) << what;
    EXPECT_EQ(bounded.value(), 1u);
    bounded.release();
    EXPECT_EQ(bounded.value(), 2u);
    green::bounded_semaphore huge(max);  // its bound is SIZE_MAX: still the bounded error
    expect_throw_with<std::logic_error>([&] { huge.release(); }, "bounded_semaphore released too many times");
  });
}

}  // namespace
