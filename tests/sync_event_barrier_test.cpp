// Synchronization primitives, part of sync_test (sync_test_util.hpp lists
// the files): event, latch, barrier, wait_group. Set/clear/wait, phases and
// completion, a killed or timed-out waiter withdrawing, and a primitive
// destroyed by its waiter right after the wake.
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <green/barrier.hpp>
#include <green/event.hpp>
#include <green/green.hpp>
#include <green/latch.hpp>
#include <green/mutex.hpp>
#include <green/wait_group.hpp>

#include "sync_test_util.hpp"

using namespace std::chrono_literals;

namespace {

using green::testing::expect_killed;
using green::testing::expect_throw_with;
using green::testing::wait_parked;

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

}  // namespace
