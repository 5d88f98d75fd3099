// Synchronization primitives, part of sync_test (sync_test_util.hpp lists
// the files): shared_mutex, with shared, exclusive and upgrade ownership,
// and upgrade_lock. Readers share and writers exclude, a waiting writer
// holds new readers back, conversions, misuse errors, kill and
// green::timeout while waiting, fibers mixed with threads.
#include <atomic>
#include <chrono>
#include <mutex>
#include <shared_mutex>
#include <system_error>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <green/event.hpp>
#include <green/green.hpp>
#include <green/shared_mutex.hpp>
#include <green/upgrade_lock.hpp>

#include "sync_test_util.hpp"

using namespace std::chrono_literals;

namespace {

using green::testing::expect_killed;
using green::testing::expect_system_error;
using green::testing::wait_parked;

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
    auto writer = green::spawn([&] { std::unique_lock lk(m); });
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

}  // namespace
