// Synchronization primitives: mutex, recursive/timed/recursive_timed mutex,
// shared_mutex (with upgrade ownership), condition variables, event,
// semaphores, latch, barrier, wait_group. Semantics,
// misuse errors, kill and green::timeout at every suspension point, and
// fibers mixed with plain threads. Parameterized over worker counts.
#include <atomic>
#include <chrono>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <green/barrier.hpp>
#include <green/condition_variable.hpp>
#include <green/event.hpp>
#include <green/green.hpp>
#include <green/latch.hpp>
#include <green/mutex.hpp>
#include <green/recursive_mutex.hpp>
#include <green/recursive_timed_mutex.hpp>
#include <green/semaphore.hpp>
#include <green/shared_mutex.hpp>
#include <green/timed_mutex.hpp>
#include <green/upgrade_lock.hpp>
#include <green/wait_group.hpp>

#include "test_util.hpp"

using namespace std::chrono_literals;

namespace {

using green::testing::expect_killed;
using green::testing::expect_system_error;
using green::testing::expect_throw_with;
using green::testing::wait_parked;
using green::testing::yield_until;

GREEN_WORKER_SUITE(sync_test);

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
    auto other = green::spawn(
        [&] { expect_system_error([&] { m.unlock(); }, std::errc::operation_not_permitted, "fiber #"); });
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
// shared_mutex

TEST_P(sync_test, shared_mutex_readers_share_writers_exclude) {
  run([&] {
    green::shared_mutex m;
    // All readers inside at once: each holds its share until all arrived.
    {
      green::latch all_in(6);
      std::vector<green::fiber<void>> fs;
      for (int i = 0; i < 5; ++i)
        fs.push_back(green::spawn([&] {
          std::shared_lock lk(m);
          all_in.arrive_and_wait();
        }));
      std::thread t([&] {
        std::shared_lock lk(m);
        all_in.arrive_and_wait();
      });
      for (auto& f : fs) f.join();
      t.join();
    }
    // Readers and writers mixed: a reader never sees a writer's change.
    long value = 0;
    std::vector<green::fiber<void>> fs;
    for (int i = 0; i < 6; ++i)
      fs.push_back(green::spawn([&] {
        for (int k = 0; k < 50; ++k) {
          std::shared_lock lk(m);
          long v = value;
          green::this_fiber::yield();
          EXPECT_EQ(v, value);
        }
      }));
    for (int i = 0; i < 3; ++i)
      fs.push_back(green::spawn([&] {
        for (int k = 0; k < 50; ++k) {
          std::unique_lock lk(m);
          long v = value;
          green::this_fiber::yield();
          value = v + 1;
        }
      }));
    for (auto& f : fs) f.join();
    EXPECT_EQ(value, 150);
  });
}

TEST_P(sync_test, shared_mutex_waiting_writer_blocks_new_readers) {
  run([&] {
    green::shared_mutex m;
    m.lock_shared();
    auto writer = green::spawn([&] {
      std::unique_lock lk(m);
    });
    wait_parked(writer, "shared_mutex (write)");
    EXPECT_FALSE(m.try_lock_shared());  // writer preference
    auto reader = green::spawn([&] {
      green::timeout t(5ms);
      EXPECT_THROW(m.lock_shared(), green::timeout_error);
    });
    reader.join();
    m.unlock_shared();
    writer.join();
    EXPECT_TRUE(m.try_lock_shared());
    m.unlock_shared();
  });
}

TEST_P(sync_test, shared_mutex_killed_writer_lets_readers_in) {
  run([&] {
    green::shared_mutex m;
    m.lock_shared();
    auto writer = green::spawn([&] { std::unique_lock lk(m); });
    wait_parked(writer, "shared_mutex (write)");
    auto reader = green::spawn([&] { std::shared_lock lk(m); });
    wait_parked(reader, "shared_mutex (read)");
    writer.kill();
    expect_killed(writer);
    reader.join();  // admitted once the writer left
    m.unlock_shared();
  });
}

TEST_P(sync_test, shared_mutex_misuse_is_reported) {
  run([&] {
    green::shared_mutex m;
    EXPECT_THROW(m.unlock(), std::system_error);
    EXPECT_THROW(m.unlock_shared(), std::system_error);
    m.lock();
    expect_system_error([&] { m.lock_shared(); }, std::errc::resource_deadlock_would_occur, "exclusively");
    expect_system_error([&] { m.lock(); }, std::errc::resource_deadlock_would_occur, "exclusively");
    m.unlock();
    EXPECT_TRUE(m.try_lock_for(1ms));
    m.unlock();
  });
}

// shared_mutex upgrade ownership

TEST_P(sync_test, shared_mutex_upgrader_shares_with_readers_excludes_writers_and_upgraders) {
  run([&] {
    green::shared_mutex m;
    m.lock_upgrade();
    auto other = green::spawn([&] {
      EXPECT_TRUE(m.try_lock_shared());
      m.unlock_shared();
      EXPECT_FALSE(m.try_lock_upgrade());
      EXPECT_FALSE(m.try_lock());
      EXPECT_FALSE(m.try_lock_upgrade_for(2ms));
      EXPECT_FALSE(m.try_lock_for(2ms));
    });
    other.join();
    std::thread([&] {
      EXPECT_TRUE(m.try_lock_shared());
      m.unlock_shared();
      EXPECT_FALSE(m.try_lock_upgrade_for(2ms));
    }).join();
    // A waiting upgrader gets in when the upgrade is released.
    auto next = green::spawn([&] {
      m.lock_upgrade();
      m.unlock_upgrade();
    });
    wait_parked(next, "shared_mutex (upgrade)");
    m.unlock_upgrade();
    next.join();
    EXPECT_TRUE(m.try_lock());
    m.unlock();
  });
}

TEST_P(sync_test, shared_mutex_upgrade_waits_for_readers_and_beats_queued_writers) {
  run([&] {
    green::shared_mutex m;
    green::event reader_in, release, tried;
    std::vector<char> order;  // written under exclusive ownership only
    std::thread reader([&] {
      m.lock_shared();
      reader_in.set();
      release.wait();
      m.unlock_shared();
    });
    reader_in.wait();
    auto upgrader = green::spawn([&] {
      m.lock_upgrade();
      EXPECT_FALSE(m.try_unlock_upgrade_and_lock());  // the thread still reads
      EXPECT_FALSE(m.try_unlock_upgrade_and_lock_for(1ms));
      tried.set();
      m.unlock_upgrade_and_lock();
      order.push_back('u');
      m.unlock();
    });
    tried.wait();
    wait_parked(upgrader, "upgrade to write");
    EXPECT_FALSE(m.try_lock_shared());  // held back by the pending upgrade
    EXPECT_FALSE(m.try_lock_upgrade());
    auto writer = green::spawn([&] {
      std::unique_lock lk(m);
      order.push_back('w');
    });
    wait_parked(writer, "shared_mutex (write)");
    release.set();
    reader.join();
    upgrader.join();
    writer.join();
    EXPECT_EQ(std::string(order.begin(), order.end()), "uw");
  });
}

TEST_P(sync_test, shared_mutex_interrupted_upgrade_keeps_upgrade_ownership) {
  run([&] {
    green::shared_mutex m;
    m.lock_shared();  // the upgrades below must wait for this reader
    // Released by the RAII guard during unwinding: only works if still owned.
    std::atomic<bool> released{false};
    struct upgrade_guard {
      green::shared_mutex& m;
      std::atomic<bool>& released;
      ~upgrade_guard() {
        m.unlock_upgrade();
        released = true;
      }
    };
    auto killed = green::spawn([&] {
      m.lock_upgrade();
      upgrade_guard g{m, released};
      m.unlock_upgrade_and_lock();
    });
    wait_parked(killed, "upgrade to write");
    auto reader = green::spawn([&] { std::shared_lock lk(m); });
    wait_parked(reader, "shared_mutex (read)");
    killed.kill();
    expect_killed(killed);
    EXPECT_TRUE(released.load());
    reader.join();  // let in once the pending upgrade left
    auto timed = green::spawn([&] {
      m.lock_upgrade();
      {
        green::timeout t(2ms);
        EXPECT_THROW(m.unlock_upgrade_and_lock(), green::timeout_error);
      }
      EXPECT_FALSE(m.try_unlock_upgrade_and_lock_until(std::chrono::steady_clock::now() + 1ms));
      m.unlock_upgrade();  // still the upgrader
    });
    timed.join();
    m.unlock_shared();
    EXPECT_TRUE(m.try_lock());
    m.unlock();
  });
}

TEST_P(sync_test, shared_mutex_conversions_between_exclusive_upgrade_and_shared) {
  run([&] {
    green::shared_mutex m;
    auto probe = [&](bool shared, bool upgrade, bool exclusive) {
      green::spawn([&] {
        EXPECT_EQ(m.try_lock_shared(), shared);
        if (shared) m.unlock_shared();
        EXPECT_EQ(m.try_lock_upgrade(), upgrade);
        if (upgrade) m.unlock_upgrade();
        EXPECT_EQ(m.try_lock(), exclusive);
        if (exclusive) m.unlock();
      }).join();
    };
    m.lock();
    probe(false, false, false);
    m.unlock_and_lock_upgrade();
    probe(true, false, false);
    m.unlock_upgrade_and_lock();  // no other reader: at once
    probe(false, false, false);
    m.unlock_and_lock_shared();
    probe(true, true, false);
    m.unlock_shared();
    m.lock_upgrade();
    m.unlock_upgrade_and_lock_shared();
    probe(true, true, false);
    m.unlock_shared();
    probe(true, true, true);
  });
}

TEST_P(sync_test, shared_mutex_upgrade_misuse_is_reported) {
  run([&] {
    green::shared_mutex m;
    using std::errc;
    expect_system_error([&] { m.unlock_upgrade(); }, errc::operation_not_permitted, "upgrade ownership");
    expect_system_error([&] { m.unlock_upgrade_and_lock(); }, errc::operation_not_permitted, "upgrade ownership");
    expect_system_error([&] { m.unlock_and_lock_upgrade(); }, errc::operation_not_permitted, "exclusively");
    expect_system_error([&] { m.unlock_and_lock_shared(); }, errc::operation_not_permitted, "exclusively");
    m.lock_upgrade();
    expect_system_error([&] { m.lock_upgrade(); }, errc::resource_deadlock_would_occur, "already holds upgrade");
    expect_system_error([&] { m.lock(); }, errc::resource_deadlock_would_occur, "unlock_upgrade_and_lock");
    expect_system_error([&] { m.unlock_shared(); }, errc::operation_not_permitted, "unlock_upgrade");
    green::spawn([&] {
      expect_system_error([&] { m.unlock_upgrade(); }, errc::operation_not_permitted, "upgrade ownership");
    }).join();
    std::thread([&] {
      expect_system_error([&] { m.unlock_upgrade_and_lock_shared(); }, errc::operation_not_permitted, "upgrade");
    }).join();
    m.unlock_upgrade_and_lock();
    expect_system_error([&] { m.lock_upgrade(); }, errc::resource_deadlock_would_occur, "exclusively");
    m.unlock();
  });
}

TEST_P(sync_test, shared_mutex_upgraders_readers_writers_fibers_and_threads) {
  run([&] {
    green::shared_mutex m;
    long value = 0;
    const int rounds = green::testing::scaled(200);
    std::vector<green::fiber<void>> fs;
    for (int i = 0; i < 3; ++i)  // upgraders: read, then add one without a writer in between
      fs.push_back(green::spawn([&] {
        for (int k = 0; k < rounds; ++k) {
          m.lock_upgrade();
          long v = value;
          green::this_fiber::yield();
          m.unlock_upgrade_and_lock();
          EXPECT_EQ(value, v);
          value = v + 1;
          if (k % 2) {
            m.unlock();
          } else {
            m.unlock_and_lock_shared();
            m.unlock_shared();
          }
        }
      }));
    for (int i = 0; i < 3; ++i)
      fs.push_back(green::spawn([&] {
        for (int k = 0; k < rounds; ++k) {
          std::shared_lock lk(m);
          long v = value;
          green::this_fiber::yield();
          EXPECT_EQ(v, value);
        }
      }));
    std::thread writer([&] {
      for (int k = 0; k < rounds; ++k) {
        std::unique_lock lk(m);
        ++value;
      }
    });
    for (auto& f : fs) f.join();
    writer.join();
    EXPECT_EQ(value, 4L * rounds);
  });
}

TEST_P(sync_test, upgrade_lock_releases_upgrades_and_survives_interruption) {
  run([&] {
    green::shared_mutex m;
    {
      green::upgrade_lock lk(m);
      EXPECT_TRUE(lk.owns_lock());
      green::spawn([&] {
        green::upgrade_lock other(m, std::try_to_lock);
        EXPECT_FALSE(other);
        std::shared_lock reader(m);  // readers still share
      }).join();
      expect_system_error([&] { lk.lock(); }, std::errc::resource_deadlock_would_occur, "already owns");
      std::unique_lock w = lk.upgrade();
      EXPECT_FALSE(lk.owns_lock());
      EXPECT_TRUE(w.owns_lock());
      expect_system_error([&] { lk.unlock(); }, std::errc::operation_not_permitted, "does not own");
    }
    EXPECT_TRUE(m.try_lock());  // both released
    m.unlock();
    // An interrupted upgrade() leaves the upgrade owned; unwinding releases it.
    m.lock_shared();
    auto killed = green::spawn([&] {
      green::upgrade_lock lk(m, 1h);
      auto w = lk.upgrade();
    });
    wait_parked(killed, "upgrade to write");
    killed.kill();
    expect_killed(killed);
    std::thread([&] {
      green::upgrade_lock lk(m, std::defer_lock);
      EXPECT_TRUE(lk.try_lock());  // released by the killed fiber's unwinding
    }).join();
    m.unlock_shared();
  });
}

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

// ---------------------------------------------------------------------------
// event

TEST_P(sync_test, event_set_clear_wait) {
  run([&] {
    green::event e;
    EXPECT_FALSE(e.is_set());
    EXPECT_FALSE(e.wait_for(2ms));
    std::vector<green::fiber<void>> fs;
    for (int i = 0; i < 8; ++i) fs.push_back(green::spawn([&] { e.wait(); }));
    std::thread waiter([&] { EXPECT_TRUE(e.wait_for(1h)); });
    for (auto& f : fs) wait_parked(f, "event");
    std::thread([&] { e.set(); }).join();  // a thread wakes fibers
    for (auto& f : fs) f.join();
    waiter.join();
    EXPECT_TRUE(e.is_set());
    EXPECT_TRUE(e.wait_for(0ms));
    e.clear();
    EXPECT_FALSE(e.wait_for(1ms));
  });
}

TEST_P(sync_test, event_waiter_killed_and_timed_out) {
  run([&] {
    green::event e;
    auto killed = green::spawn([&] { e.wait(); });
    wait_parked(killed, "event");
    killed.kill();
    expect_killed(killed);
    auto timed = green::spawn([&] {
      green::timeout t(3ms);
      EXPECT_THROW(e.wait(), green::timeout_error);
    });
    timed.join();
    auto ok = green::spawn([&] { e.wait(); });
    wait_parked(ok, "event");
    e.set();
    ok.join();
  });
}

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

// ---------------------------------------------------------------------------
// latch, barrier, wait_group

TEST_P(sync_test, latch_releases_everyone_at_zero) {
  run([&] {
    green::latch l(5);
    std::atomic<int> passed{0};
    std::vector<green::fiber<void>> fs;
    for (int i = 0; i < 4; ++i)
      fs.push_back(green::spawn([&] {
        l.arrive_and_wait();
        ++passed;
      }));
    std::thread t([&] {
      l.wait();
      ++passed;
    });
    EXPECT_FALSE(l.wait_for(1ms));  // one count_down is still missing
    l.count_down();
    for (auto& f : fs) f.join();
    t.join();
    EXPECT_EQ(passed.load(), 5);
    EXPECT_TRUE(l.try_wait());
    EXPECT_THROW(l.count_down(), std::logic_error);
  });
}

TEST_P(sync_test, barrier_phases_and_completion) {
  run([&] {
    constexpr int parties = 4, phases = 25;
    int completions = 0;
    std::atomic<int> arrived_in_phase{0};
    green::barrier b(parties, [&] {
      EXPECT_EQ(arrived_in_phase.exchange(0), parties);
      ++completions;
    });
    std::vector<green::fiber<void>> fs;
    std::atomic<int> lasts{0};
    for (int i = 0; i < parties - 1; ++i)
      fs.push_back(green::spawn([&] {
        for (int p = 0; p < phases; ++p) {
          ++arrived_in_phase;
          if (b.arrive_and_wait() == parties - 1) ++lasts;
        }
      }));
    std::thread t([&] {
      for (int p = 0; p < phases; ++p) {
        ++arrived_in_phase;
        if (b.arrive_and_wait() == parties - 1) ++lasts;
      }
    });
    for (auto& f : fs) f.join();
    t.join();
    EXPECT_EQ(completions, phases);
    EXPECT_EQ(lasts.load(), phases);
  });
}

TEST_P(sync_test, barrier_killed_waiter_withdraws) {
  run([&] {
    green::barrier b(2);
    auto killed = green::spawn([&] { b.arrive_and_wait(); });
    wait_parked(killed, "barrier");
    killed.kill();
    expect_killed(killed);
    // The killed arrival was withdrawn: one arrival alone does not trip it.
    auto a = green::spawn([&] { return b.arrive_and_wait(); });
    wait_parked(a, "barrier");
    std::size_t mine = b.arrive_and_wait();
    EXPECT_EQ(mine + a.join(), 1u);  // indices 0 and 1
    b.arrive_and_drop();
    EXPECT_EQ(b.parties(), 1u);
    b.arrive_and_wait();  // alone now
  });
}

TEST_P(sync_test, barrier_wait_for_times_out_and_withdraws_keeping_the_phase) {
  run([&] {
    int completions = 0;
    green::barrier b(3, [&] { ++completions; });
    auto first = green::spawn([&] { return b.arrive_and_wait(); });
    wait_parked(first, "barrier");
    EXPECT_EQ(b.arrive_and_wait_for(2ms), std::nullopt);  // 2 of 3: withdrawn
    std::optional<std::size_t> thread_index;
    std::thread([&] { thread_index = b.arrive_and_wait_for(1ms); }).join();  // a thread, likewise
    EXPECT_EQ(thread_index, std::nullopt);
    EXPECT_EQ(completions, 0);
    // The phase is still open with one arrival: two more complete it.
    std::thread t([&] { thread_index = b.arrive_and_wait_until(std::chrono::steady_clock::now() + 1h); });
    auto last = b.arrive_and_wait_for(1h);
    t.join();
    ASSERT_TRUE(last.has_value());
    ASSERT_TRUE(thread_index.has_value());
    EXPECT_EQ(first.join(), 0u);
    EXPECT_EQ(*last + *thread_index, 3u);  // indices 1 and 2
    EXPECT_EQ(completions, 1);
    // The last arrival never waits: a zero timeout completes the phase.
    green::barrier one(1);
    EXPECT_EQ(one.arrive_and_wait_for(0ms), std::optional<std::size_t>(0));
  });
}

TEST_P(sync_test, barrier_wait_for_scope_timeout_raises_and_withdraws) {
  run([&] {
    green::barrier b(2);
    auto timed = green::spawn([&] {
      green::timeout t(2ms);
      EXPECT_THROW(b.arrive_and_wait_for(1h), green::timeout_error);
    });
    timed.join();
    auto a = green::spawn([&] { return b.arrive_and_wait_for(1h); });
    wait_parked(a, "barrier");
    EXPECT_EQ(b.arrive_and_wait(), 1u);
    EXPECT_EQ(a.join(), std::optional<std::size_t>(0));
  });
}

TEST_P(sync_test, wait_group_waits_for_all) {
  run([&] {
    green::wait_group wg;
    std::atomic<int> done{0};
    for (int i = 0; i < 20; ++i) {
      wg.add();
      green::spawn([&] {
        green::this_fiber::sleep_for(1ms);
        ++done;
        wg.done();
      }).detach();
    }
    wg.add(2);
    std::thread t([&] {
      ++done;
      wg.done();
      ++done;
      wg.done();
    });
    wg.wait();
    EXPECT_EQ(done.load(), 22);
    t.join();
    EXPECT_TRUE(wg.wait_for(0ms));
    expect_throw_with<std::logic_error>([&] { wg.done(); }, "negative counter");
    wg.add();
    EXPECT_FALSE(wg.wait_for(1ms));
    auto killed = green::spawn([&] { wg.wait(); });
    wait_parked(killed, "wait_group");
    killed.kill();
    expect_killed(killed);
    wg.done();
  });
}

TEST_P(sync_test, stack_primitive_destroyed_right_after_wake) {
  // A waiter that returns may destroy the primitive while its waker is still
  // inside the primitive's critical section; the destructor must wait.
  run([&] {
    for (int i = 0; i < 2000; ++i) {
      auto wg = std::make_unique<green::wait_group>();
      auto ev = std::make_unique<green::event>();
      wg->add();
      auto f = green::spawn([w = wg.get(), e = ev.get()] {
        w->done();
        e->set();
      });
      wg->wait();
      ev->wait();
      wg.reset();
      ev.reset();
      f.join();
    }
  });
}

// ---------------------------------------------------------------------------
// destroying a primitive that fibers wait on

TEST(sync_death_test, destroying_a_waited_on_event_terminates) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        green::runtime rt(green::testing::test_config(2));
        rt.run([] {
          auto* e = new green::event;
          auto f = green::spawn([e] { e->wait(); });
          wait_parked(f, "event");
          delete e;
        });
      },
      "green::event at 0x[0-9a-f]+ destroyed while 1 fiber");
}

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
