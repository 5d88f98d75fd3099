// Synchronization primitives, part of sync_test (sync_test_util.hpp lists
// the files): mutex, timed_mutex, recursive_mutex, recursive_timed_mutex.
// Exclusion among fibers and threads, misuse errors, kill and green::timeout
// while waiting, hand-off to a starving waiter. Parameterized over worker
// counts; this file also instantiates the suite for all of sync_test's
// files.
#include <atomic>
#include <chrono>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <green/event.hpp>
#include <green/green.hpp>
#include <green/mutex.hpp>
#include <green/recursive_mutex.hpp>
#include <green/recursive_timed_mutex.hpp>
#include <green/timed_mutex.hpp>

#include "sync_test_util.hpp"

using namespace std::chrono_literals;

namespace {

using green::testing::expect_killed;
using green::testing::expect_system_error;
using green::testing::wait_parked;
using green::testing::yield_until;

// The one instantiation of sync_test: it covers every file's TEST_Ps.
GREEN_WORKER_INSTANTIATE(sync_test);

// ---------------------------------------------------------------------------
// mutex

TEST_P(sync_test, mutex_excludes_fibers_that_yield_inside) {
  long counter = 0;  // deliberately not atomic: the mutex must protect it
  run([&] {
    green::mutex m;
    std::vector<green::fiber<void>> fs;
    for (int i = 0; i < 16; ++i)
      fs.push_back(green::spawn([&] {
        for (int k = 0; k < 500; ++k) {
          std::lock_guard lk(m);
          long v = counter;
          if (k % 7 == 0) green::this_fiber::yield();
          counter = v + 1;
        }
      }));
    for (auto& f : fs) f.join();
  });
  EXPECT_EQ(counter, 16 * 500);
}

TEST_P(sync_test, mutex_excludes_fibers_and_threads_together) {
  long counter = 0;
  green::mutex m;
  run([&] {
    std::vector<std::thread> ts;
    for (int t = 0; t < 2; ++t)
      ts.emplace_back([&] {
        for (int k = 0; k < 20000; ++k) {
          std::lock_guard lk(m);
          ++counter;
        }
      });
    std::vector<green::fiber<void>> fs;
    for (int i = 0; i < 8; ++i)
      fs.push_back(green::spawn([&] {
        for (int k = 0; k < 5000; ++k) {
          std::unique_lock lk(m);
          ++counter;
          if (k % 100 == 0) {
            lk.unlock();
            green::this_fiber::yield();
          }
        }
      }));
    for (auto& f : fs) f.join();
    for (auto& t : ts) t.join();
  });
  EXPECT_EQ(counter, 2 * 20000 + 8 * 5000);
}

TEST_P(sync_test, thread_blocks_on_mutex_a_fiber_holds) {
  run([&] {
    green::mutex m;
    green::event locked;
    std::atomic<bool> thread_got{false};
    auto holder = green::spawn([&] {
      std::lock_guard lk(m);
      locked.set();
      green::this_fiber::sleep_for(20ms);
      EXPECT_FALSE(thread_got.load());
    });
    std::thread t([&] {
      locked.wait();
      std::lock_guard lk(m);
      thread_got = true;
    });
    holder.join();
    t.join();
    EXPECT_TRUE(thread_got.load());
  });
}

TEST_P(sync_test, mutex_relock_by_owner_reports_deadlock) {
  run([&] {
    green::mutex m;
    m.lock();
    expect_system_error([&] { m.lock(); }, std::errc::resource_deadlock_would_occur, "already owns this mutex");
    EXPECT_FALSE(m.try_lock());
    m.unlock();
  });
  // The same from a plain thread.
  green::mutex m;
  m.lock();
  EXPECT_THROW(m.lock(), std::system_error);
  m.unlock();
}

TEST_P(sync_test, mutex_unlock_by_non_owner_throws) {
  run([&] {
    green::mutex m;
    expect_system_error([&] { m.unlock(); }, std::errc::operation_not_permitted, "does not own");
    m.lock();
    auto other =
        green::spawn([&] { expect_system_error([&] { m.unlock(); }, std::errc::operation_not_permitted, "fiber #"); });
    other.join();
    std::thread([&] { EXPECT_THROW(m.unlock(), std::system_error); }).join();
    EXPECT_TRUE(m.owned_by_caller());
    m.unlock();
  });
}

TEST_P(sync_test, killed_mutex_waiter_leaves_the_queue) {
  run([&] {
    green::mutex m;
    m.lock();
    auto waiter = green::spawn([&] {
      std::lock_guard lk(m);
      ADD_FAILURE() << "a killed waiter got the lock";
    });
    wait_parked(waiter, "mutex");
    waiter.kill();
    expect_killed(waiter);
    m.unlock();
    // Nobody else is queued: a fresh locker gets it at once.
    EXPECT_TRUE(m.try_lock());
    m.unlock();
  });
}

TEST_P(sync_test, scope_timeout_interrupts_mutex_lock) {
  run([&] {
    green::mutex m;
    green::event release;  // set only after the timed lock ended: nothing races its timeout
    auto holder = green::spawn([&] {
      std::lock_guard lk(m);
      release.wait();
    });
    yield_until([&] { return !m.try_lock() || (m.unlock(), false); });
    auto f = green::spawn([&] {
      green::timeout t(10ms);
      try {
        m.lock();
        ADD_FAILURE() << "lock did not time out";
        m.unlock();
      } catch (const green::timeout_error& e) {
        EXPECT_EQ(e.owner(), &t);
      }
    });
    f.join();
    release.set();
    holder.join();
    EXPECT_TRUE(m.try_lock());
    m.unlock();
  });
}

TEST_P(sync_test, timed_mutex_gives_up_at_deadline) {
  run([&] {
    green::timed_mutex m;
    green::event locked, release;
    auto holder = green::spawn([&] {
      std::lock_guard lk(m);
      locked.set();
      release.wait();
    });
    locked.wait();
    EXPECT_FALSE(m.try_lock_for(5ms));
    EXPECT_FALSE(m.try_lock_until(std::chrono::steady_clock::now() + 2ms));
    EXPECT_FALSE(m.try_lock_until(std::chrono::system_clock::now() + 2ms));
    // A plain thread times out too.
    std::thread([&] { EXPECT_FALSE(m.try_lock_for(5ms)); }).join();
    release.set();
    EXPECT_TRUE(m.try_lock_for(1h));
    m.unlock();
    holder.join();
  });
}

TEST_P(sync_test, mutex_hand_off_reaches_a_starving_waiter) {
  // Two fibers hammer the lock; a third must still get it (the 1 ms
  // starvation hand-off), else the watchdog fires.
  run([&] {
    green::mutex m;
    std::atomic<bool> stop{false};
    std::vector<green::fiber<void>> hammers;
    for (int i = 0; i < 2; ++i)
      hammers.push_back(green::spawn([&] {
        while (!stop.load(std::memory_order_relaxed)) {
          std::lock_guard lk(m);
          green::this_fiber::yield();  // hold it across a switch
        }
      }));
    for (int k = 0; k < 20; ++k) {
      std::lock_guard lk(m);
    }
    stop = true;
    for (auto& f : hammers) f.join();
  });
}

// ---------------------------------------------------------------------------
// recursive_mutex

TEST_P(sync_test, recursive_mutex_counts_and_checks_owner) {
  run([&] {
    green::recursive_mutex m;
    m.lock();
    m.lock();
    EXPECT_TRUE(m.try_lock());
    EXPECT_EQ(m.depth(), 3u);
    auto other = green::spawn([&] {
      EXPECT_FALSE(m.try_lock());
      EXPECT_EQ(m.depth(), 0u);
      EXPECT_THROW(m.unlock(), std::system_error);
      EXPECT_FALSE(m.try_lock_for(2ms));
    });
    other.join();
    m.unlock();
    m.unlock();
    auto still = green::spawn([&] { EXPECT_FALSE(m.try_lock()); });
    still.join();
    m.unlock();
    // One unlock too many.
    expect_system_error([&] { m.unlock(); }, std::errc::operation_not_permitted, "recursive_mutex");
    auto after = green::spawn([&] {
      EXPECT_TRUE(m.try_lock());
      m.unlock();
    });
    after.join();
  });
}

TEST_P(sync_test, recursive_timed_mutex_times_out_counts_and_mixes_with_threads) {
  run([&] {
    green::recursive_timed_mutex m;
    green::event held, release;
    std::thread holder([&] {
      m.lock();
      EXPECT_TRUE(m.try_lock_for(1ms));  // the owner counts once more, at once
      EXPECT_TRUE(m.try_lock_until(std::chrono::system_clock::now() + 1ms));
      EXPECT_EQ(m.depth(), 3u);
      held.set();
      release.wait();
      m.unlock();
      m.unlock();
      m.unlock();
      expect_system_error([&] { m.unlock(); }, std::errc::operation_not_permitted, "nobody");
    });
    held.wait();
    EXPECT_FALSE(m.try_lock_for(2ms));
    EXPECT_FALSE(m.try_lock_until(std::chrono::steady_clock::now() + 2ms));
    EXPECT_EQ(m.depth(), 0u);
    expect_system_error([&] { m.unlock(); }, std::errc::operation_not_permitted, "a plain thread");
    auto waiter = green::spawn([&] {
      EXPECT_TRUE(m.try_lock_for(1h));  // woken only when the count reaches 0
      EXPECT_EQ(m.depth(), 1u);
      m.unlock();
    });
    wait_parked(waiter, "mutex");
    release.set();
    holder.join();
    waiter.join();
    EXPECT_TRUE(m.try_lock_for(0ms));
    m.unlock();
  });
}

TEST_P(sync_test, recursive_timed_mutex_waiter_killed_or_scope_timed_out) {
  run([&] {
    green::recursive_timed_mutex m;
    m.lock();
    m.lock();
    auto killed = green::spawn([&] { m.try_lock_for(1h); });
    wait_parked(killed, "mutex");
    killed.kill();
    expect_killed(killed);
    auto timed = green::spawn([&] {
      green::timeout t(2ms);
      EXPECT_THROW(m.try_lock_for(1h), green::timeout_error);
      EXPECT_EQ(m.depth(), 0u);
    });
    timed.join();
    m.unlock();
    auto blocked = green::spawn([&] { return m.try_lock_for(1ms); });
    EXPECT_FALSE(blocked.join());  // still held once
    m.unlock();
    auto free = green::spawn([&] {
      std::unique_lock lk(m, std::defer_lock);
      return lk.try_lock_for(1ms);
    });
    EXPECT_TRUE(free.join());
  });
}

// ---------------------------------------------------------------------------
// destroying a mutex that fibers wait on

TEST(sync_death_test, destroying_a_waited_on_mutex_terminates) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        green::runtime rt(green::testing::test_config(1));
        rt.run([] {
          auto* m = new green::mutex;
          m->lock();
          auto f = green::spawn([m] { m->lock(); });
          wait_parked(f, "mutex");
          delete m;
        });
      },
      "green::mutex at 0x[0-9a-f]+ destroyed while 1 fiber");
}

}  // namespace
