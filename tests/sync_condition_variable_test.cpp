// Synchronization primitives, part of sync_test (sync_test_util.hpp lists
// the files): condition_variable and condition_variable_any. Producer and
// consumer, timeouts, kill and green::timeout keep the lock, misuse, and
// notify_all across fibers and threads.
#include <atomic>
#include <chrono>
#include <mutex>
#include <shared_mutex>
#include <system_error>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <green/condition_variable.hpp>
#include <green/event.hpp>
#include <green/green.hpp>
#include <green/mutex.hpp>
#include <green/shared_mutex.hpp>

#include "sync_test_util.hpp"

using namespace std::chrono_literals;

namespace {

using green::testing::expect_killed;
using green::testing::wait_parked;

// ---------------------------------------------------------------------------
// condition_variable

TEST_P(sync_test, condition_variable_producer_consumer) {
  run([&] {
    green::mutex m;
    green::condition_variable cv;
    std::vector<int> items;
    bool done = false;
    long sum = 0;
    std::vector<green::fiber<void>> consumers;
    for (int c = 0; c < 4; ++c)
      consumers.push_back(green::spawn([&] {
        std::unique_lock lk(m);
        for (;;) {
          cv.wait(lk, [&] { return !items.empty() || done; });
          if (items.empty()) return;
          sum += items.back();
          items.pop_back();
        }
      }));
    green::testing::side_thread producer([&] {
      for (int i = 1; i <= 1000; ++i) {
        std::lock_guard lk(m);
        items.push_back(i);
        cv.notify_one();
      }
      std::lock_guard lk(m);
      done = true;
      cv.notify_all();
    });
    producer.join();
    for (auto& f : consumers) f.join();
    EXPECT_EQ(sum, 1000L * 1001 / 2);
  });
}

TEST_P(sync_test, condition_variable_wait_for_times_out_with_lock_held) {
  run([&] {
    green::mutex m;
    green::condition_variable cv;
    std::unique_lock lk(m);
    EXPECT_EQ(cv.wait_for(lk, 2ms), std::cv_status::timeout);
    EXPECT_TRUE(m.owned_by_caller());
    EXPECT_FALSE(cv.wait_for(lk, 2ms, [] { return false; }));
    EXPECT_TRUE(cv.wait_until(lk, std::chrono::steady_clock::now() + 1ms, [] { return true; }));
    EXPECT_TRUE(m.owned_by_caller());
  });
}

TEST_P(sync_test, condition_variable_interrupts_keep_the_lock) {
  run([&] {
    green::mutex m;
    green::condition_variable cv;
    std::atomic<bool> held_when_unwinding{false};
    auto killed = green::spawn([&] {
      std::unique_lock lk(m);
      struct probe {
        std::unique_lock<green::mutex>& lk;
        std::atomic<bool>& out;
        ~probe() { out = lk.owns_lock() && lk.mutex()->owned_by_caller(); }
      } p{lk, held_when_unwinding};
      cv.wait(lk);
    });
    wait_parked(killed, "condition_variable");
    {
      // The killed fiber must reacquire m before it unwinds: hold m while
      // it is killed so its relock has to wait.
      std::lock_guard lk(m);
      killed.kill();
      wait_parked(killed, "mutex");  // woken by the kill, it now waits for m
    }
    expect_killed(killed);
    EXPECT_TRUE(held_when_unwinding.load());

    auto timed = green::spawn([&] {
      std::unique_lock lk(m);
      green::timeout t(5ms);
      EXPECT_THROW(cv.wait(lk), green::timeout_error);
      EXPECT_TRUE(lk.owns_lock() && m.owned_by_caller());
    });
    timed.join();
    EXPECT_TRUE(m.try_lock());
    m.unlock();
  });
}

TEST_P(sync_test, condition_variable_wait_without_lock_throws) {
  run([&] {
    green::mutex m;
    green::condition_variable cv;
    std::unique_lock lk(m, std::defer_lock);
    EXPECT_THROW(cv.wait_for(lk, 1ms), std::system_error);
  });
}

TEST_P(sync_test, condition_variable_notify_all_wakes_fibers_and_threads) {
  run([&] {
    green::mutex m;
    green::condition_variable cv;
    bool go = false;
    std::atomic<int> woke{0};
    std::vector<green::fiber<void>> fs;
    for (int i = 0; i < 10; ++i)
      fs.push_back(green::spawn([&] {
        std::unique_lock lk(m);
        cv.wait(lk, [&] { return go; });
        ++woke;
      }));
    std::thread t([&] {
      std::unique_lock lk(m);
      cv.wait(lk, [&] { return go; });
      ++woke;
    });
    for (auto& f : fs) wait_parked(f, "condition_variable");
    {
      std::lock_guard lk(m);
      go = true;
    }
    cv.notify_all();
    for (auto& f : fs) f.join();
    t.join();
    EXPECT_EQ(woke.load(), 11);
  });
}

TEST_P(sync_test, condition_variable_any_with_shared_lock) {
  run([&] {
    green::shared_mutex m;
    green::condition_variable_any cv;
    bool ready = false;
    auto waiter = green::spawn([&] {
      std::shared_lock lk(m);
      cv.wait(lk, [&] { return ready; });
      EXPECT_TRUE(lk.owns_lock());
    });
    wait_parked(waiter, "condition_variable_any");
    {
      std::unique_lock lk(m);
      ready = true;
    }
    cv.notify_one();
    waiter.join();
    std::unique_lock lk(m);
    EXPECT_EQ(cv.wait_for(lk, 1ms), std::cv_status::timeout);
  });
}

}  // namespace
