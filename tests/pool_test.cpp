// Results, groups, pools and parallel map: async_result, wait_all /
// wait_any / as_completed / gather, group, pool (bounded concurrency,
// back-pressure, try_spawn, apply, map, imap, imap_unordered, join, kill),
// parallel_for / parallel_map / parallel_reduce. Parameterized over worker
// counts, under the watchdog.
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <green/green.hpp>

#include "test_util.hpp"

using namespace std::chrono_literals;

namespace {

using green::testing::expect_throw_with;
using green::testing::scaled;
using green::testing::wait_parked;
using green::testing::yield_until;

GREEN_WORKER_SUITE(pool_test);

// Counts the tasks that unwound (returned or were killed) with it alive.
struct on_unwind {
  std::atomic<int>& n;
  ~on_unwind() { ++n; }
};

// A running counter with a high-water mark.
struct concurrency_probe {
  std::atomic<int> now{0};
  std::atomic<int> peak{0};
  void enter() {
    int v = now.fetch_add(1) + 1;
    int p = peak.load();
    while (v > p && !peak.compare_exchange_weak(p, v)) {
    }
  }
  void leave() { now.fetch_sub(1); }
};

// ---------------------------------------------------------------------------
// async_result

TEST_P(pool_test, async_result_set_get_from_fiber_and_many_waiters) {
  run([] {
    green::async_result<int> r;
    EXPECT_FALSE(r.ready());
    std::atomic<int> got{0};
    std::vector<green::fiber<void>> ws;
    for (int i = 0; i < 8; ++i) ws.push_back(green::spawn([&, r] { got += r.get(); }));
    for (auto& w : ws) wait_parked(w, "event");
    r.set(5);
    for (auto& w : ws) w.join();
    EXPECT_EQ(got.load(), 40);
    EXPECT_TRUE(r.ready());
    EXPECT_TRUE(r.successful());
    EXPECT_EQ(r.get(), 5);
  });
}

TEST_P(pool_test, async_result_set_from_plain_thread_and_wait_on_thread) {
  green::async_result<std::string> r;
  green::async_result<void> back;
  run([&] {
    green::testing::side_thread t([&] {
      r.set("hello");
      back.wait();  // a plain thread blocks for real
    });
    EXPECT_EQ(r.get(), "hello");
    back.set();
    t.join();
  });
}

TEST_P(pool_test, async_result_exception_rethrown_by_every_get) {
  run([] {
    green::async_result<int> r;
    auto f = green::spawn([r]() mutable { r.set_exception(std::make_exception_ptr(std::runtime_error("boom"))); });
    f.join();
    EXPECT_TRUE(r.ready());
    EXPECT_FALSE(r.successful());
    EXPECT_TRUE(r.exception());
    expect_throw_with<std::runtime_error>([&] { r.get(); }, "boom");
    expect_throw_with<std::runtime_error>([&] { r.get(); }, "boom");
  });
}

TEST_P(pool_test, async_result_second_set_is_a_clear_error) {
  run([] {
    green::async_result<int> r;
    r.set(1);
    expect_throw_with<std::logic_error>([&] { r.set(2); }, "already set");
    expect_throw_with<std::logic_error>([&] { r.set_exception(std::make_exception_ptr(std::runtime_error("x"))); },
                                        "already set");
    EXPECT_EQ(r.get(), 1);
  });
}

TEST_P(pool_test, async_result_timeouts) {
  run([] {
    green::async_result<int> r;
    EXPECT_FALSE(r.wait_for(5ms));
    EXPECT_FALSE(r.wait_until(std::chrono::steady_clock::now() + 2ms));
    EXPECT_THROW(r.get_for(5ms), green::timeout_error);
    {
      green::timeout t(5ms);
      EXPECT_THROW(r.wait(), green::timeout_error);
    }
    r.set(3);
    EXPECT_EQ(r.get_for(1h), 3);
  });
}

TEST_P(pool_test, async_result_take_moves_out_move_only_value) {
  run([] {
    green::async_result<std::unique_ptr<int>> r;
    r.set(std::make_unique<int>(7));
    std::unique_ptr<int> p = r.take();
    ASSERT_TRUE(p);
    EXPECT_EQ(*p, 7);
  });
}

TEST_P(pool_test, async_result_waiter_killed_leaves_result_usable) {
  run([] {
    green::async_result<int> r;
    auto f = green::spawn([r] { return r.get(); });
    wait_parked(f, "event");
    f.kill();
    green::testing::expect_killed(f);
    r.set(1);
    EXPECT_EQ(r.get(), 1);
  });
}

// ---------------------------------------------------------------------------
// wait_all / wait_any / as_completed / gather

TEST_P(pool_test, wait_all_over_fibers_and_results) {
  run([] {
    std::vector<green::fiber<int>> fs;
    for (int i = 0; i < 10; ++i)
      fs.push_back(green::spawn([i] {
        green::this_fiber::sleep_for(std::chrono::milliseconds(i % 3));
        return i;
      }));
    green::wait_all(fs);
    for (auto& f : fs) EXPECT_TRUE(f.done());
    std::vector<green::async_result<int>> rs(3);
    auto setter = green::spawn([rs]() mutable {
      for (int i = 0; i < 3; ++i) rs[i].set(i);
    });
    EXPECT_TRUE(green::wait_all_for(rs, 1h));
    setter.join();
    auto vals = green::gather(fs);
    EXPECT_EQ(vals, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
    EXPECT_EQ(green::gather(rs), (std::vector<int>{0, 1, 2}));
  });
}

TEST_P(pool_test, wait_all_for_times_out) {
  run([] {
    std::vector<green::async_result<int>> rs(2);
    rs[0].set(1);
    EXPECT_FALSE(green::wait_all_for(rs, 5ms));
    EXPECT_FALSE(green::wait_all_until(rs, std::chrono::steady_clock::now() + 1ms));
  });
}

TEST_P(pool_test, wait_any_returns_the_first_to_finish) {
  run([] {
    std::vector<green::async_result<int>> rs(4);
    auto f = green::spawn([rs]() mutable { rs[2].set(2); });
    EXPECT_EQ(green::wait_any(rs), 2u);
    f.join();
    rs[0].set(0);
    EXPECT_EQ(green::wait_any(rs), 0u);  // several done: the lowest index
    std::vector<green::async_result<int>> none(2);
    EXPECT_FALSE(green::wait_any_for(none, 5ms).has_value());
    EXPECT_FALSE(green::wait_any_until(none, std::chrono::steady_clock::now() + 2ms).has_value());
    std::vector<green::async_result<int>> empty;
    EXPECT_THROW(green::wait_any(empty), std::invalid_argument);
  });
}

TEST_P(pool_test, wait_any_over_fibers_and_mixed_waitables) {
  run([] {
    green::event go;
    auto slow = green::spawn([&] { go.wait(); });
    auto fast = green::spawn([] { return 1; });
    std::vector<green::waitable> ws{slow, fast};
    EXPECT_EQ(green::wait_any(ws), 1u);
    green::async_result<void> r;
    std::vector<green::waitable> ws2{slow, r};
    EXPECT_FALSE(green::wait_any_for(ws2, 2ms).has_value());
    go.set();
    EXPECT_EQ(green::wait_any(ws2), 0u);
    slow.join();
    EXPECT_EQ(fast.join(), 1);
  });
}

TEST_P(pool_test, as_completed_yields_in_completion_order) {
  run([] {
    std::vector<green::async_result<int>> rs(5);
    // Complete in the order 3, 1, 4, 0, 2, each after the loop asked for it.
    const std::vector<int> order{3, 1, 4, 0, 2};
    green::event step;
    std::atomic<int> next{0};
    auto setter = green::spawn([&, rs]() mutable {
      for (int i : order) {
        rs[static_cast<std::size_t>(i)].set(i * 10);
        yield_until([&] { return next.load() > 0; });
        next.fetch_sub(1);
      }
    });
    std::vector<int> seen;
    for (auto& r : green::as_completed(rs)) {
      seen.push_back(r.get() / 10);
      next.fetch_add(1);
    }
    setter.join();
    EXPECT_EQ(seen, order);
  });
}

TEST_P(pool_test, as_completed_over_fibers_and_early_exit) {
  run([] {
    green::event go;
    std::vector<green::fiber<int>> fs;
    fs.push_back(green::spawn([&] {
      go.wait();
      return 0;
    }));
    fs.push_back(green::spawn([] { return 1; }));
    int first = -1;
    for (auto& f : green::as_completed(fs)) {
      first = f.join();
      break;  // leaving stops the watcher of fs[0]
    }
    EXPECT_EQ(first, 1);
    go.set();
    EXPECT_EQ(fs[0].join(), 0);
  });
}

TEST_P(pool_test, as_completed_exception_surfaces_in_the_loop_and_timeout_raises) {
  run([] {
    std::vector<green::async_result<int>> rs(2);
    rs[1].set_exception(std::make_exception_ptr(std::runtime_error("task 1 failed")));
    int n = 0;
    try {
      for (auto& r : green::as_completed_for(rs, 5ms)) {
        ++n;
        r.get();
      }
      ADD_FAILURE() << "expected an exception";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "task 1 failed");
    }
    EXPECT_EQ(n, 1);
    n = 0;
    EXPECT_THROW(
        {
          for (auto& r : green::as_completed_for(rs, 5ms)) {
            (void)r;
            ++n;
          }
        },
        green::timeout_error);
    EXPECT_EQ(n, 1);  // rs[1] was ready; rs[0] never is
  });
}

TEST_P(pool_test, gather_rethrows_first_failure_in_input_order) {
  run([] {
    std::vector<green::fiber<int>> fs;
    for (int i = 0; i < 4; ++i)
      fs.push_back(green::spawn([i]() -> int {
        if (i == 1 || i == 3) throw std::runtime_error("fail " + std::to_string(i));
        return i;
      }));
    expect_throw_with<std::runtime_error>([&] { green::gather(fs); }, "fail 1");
    std::atomic<int> ran{0};
    std::vector<green::fiber<void>> vs;
    for (int i = 0; i < 3; ++i) vs.push_back(green::spawn([&] { ++ran; }));
    green::gather(vs);  // void: waits, joins, returns nothing
    EXPECT_EQ(ran.load(), 3);
    for (auto& v : vs) EXPECT_FALSE(v.joinable());
  });
}

// ---------------------------------------------------------------------------
// group

TEST_P(pool_test, group_spawn_size_join) {
  run([] {
    green::group g;
    EXPECT_EQ(g.size(), 0u);
    EXPECT_TRUE(g.empty());
    green::event go;
    std::vector<green::async_result<int>> rs;
    for (int i = 0; i < 10; ++i)
      rs.push_back(g.spawn(
          [&go](int v) {
            go.wait();
            return v * 2;
          },
          i));
    EXPECT_EQ(g.size(), 10u);
    EXPECT_FALSE(g.join_for(2ms));
    go.set();
    g.join();
    EXPECT_EQ(g.size(), 0u);
    for (int i = 0; i < 10; ++i) EXPECT_EQ(rs[static_cast<std::size_t>(i)].get(), 2 * i);
  });
}

TEST_P(pool_test, group_add_and_discard) {
  run([] {
    green::group g;
    green::event go;
    auto f = green::spawn([&] {
      go.wait();
      return 3;
    });
    g.add(f);
    EXPECT_EQ(g.size(), 1u);
    auto r = g.spawn([&] { go.wait(); });
    EXPECT_EQ(g.size(), 2u);
    g.discard(r);
    EXPECT_EQ(g.size(), 1u);
    g.discard(r);  // not a member any more: a no-op
    EXPECT_EQ(g.size(), 1u);
    EXPECT_FALSE(g.join_for(2ms));
    go.set();
    g.join();
    EXPECT_EQ(g.size(), 0u);
    EXPECT_EQ(f.join(), 3);  // the handle is still the caller's
    r.get();
    // discard of an added fiber
    green::event go2;
    auto f2 = green::spawn([&] { go2.wait(); });
    g.add(f2);
    g.discard(f2);
    EXPECT_EQ(g.size(), 0u);
    g.join();
    go2.set();
    f2.join();
    EXPECT_THROW(g.add(f2), std::logic_error);  // joined: not joinable
  });
}

TEST_P(pool_test, group_join_raise_error_raises_first_error_at_once) {
  run([] {
    green::group g;
    green::event never;
    auto stuck = g.spawn([&] { never.wait(); });
    auto bad = g.spawn([]() -> int { throw std::runtime_error("first failure"); });
    expect_throw_with<std::runtime_error>([&] { g.join(true); }, "first failure");
    EXPECT_EQ(g.size(), 1u);  // stuck still runs: raise_error does not wait for it
    expect_throw_with<std::runtime_error>([&] { bad.get(); }, "first failure");  // also where consumed
    EXPECT_FALSE(g.join_for(2ms, true));                                         // the error was raised once
    g.kill();
    EXPECT_THROW(stuck.get(), green::fiber_killed_error);
    g.join(true);
  });
}

TEST_P(pool_test, group_kill_and_killone) {
  run([] {
    green::group g;
    std::atomic<int> unwound{0}, started{0};
    auto body = [&] {
      on_unwind u{unwound};
      started.fetch_add(1);
      for (;;) green::this_fiber::sleep_for(1ms);
    };
    std::vector<green::async_result<void>> rs;
    for (int i = 0; i < 5; ++i) rs.push_back(g.spawn(body));
    // Kill only started members: one killed before it starts never runs its
    // body, so it would have nothing to unwind.
    green::testing::yield_until([&] { return started.load() == 5; });
    g.killone(rs[2]);
    EXPECT_EQ(g.size(), 4u);
    EXPECT_EQ(unwound.load(), 1);
    EXPECT_THROW(rs[2].get(), green::fiber_killed_error);
    auto f = green::spawn(body);
    g.add(f);
    green::testing::yield_until([&] { return started.load() == 6; });
    g.killone(f);
    green::testing::expect_killed(f);
    EXPECT_TRUE(g.kill_for(1h));
    EXPECT_EQ(g.size(), 0u);
    EXPECT_EQ(unwound.load(), 6);
    for (auto& r : rs) EXPECT_THROW(r.get(), green::fiber_killed_error);
    // kill_for: false while a member that ignores kills still runs.
    std::atomic<bool> release{false}, stubborn_started{false};
    auto stubborn = g.spawn([&] {
      stubborn_started.store(true);
      while (!release.load()) {
        try {
          green::this_fiber::sleep_for(1ms);
        } catch (const green::fiber_exit&) {
        }
      }
    });
    green::testing::yield_until([&] { return stubborn_started.load(); });
    EXPECT_FALSE(g.kill_for(5ms));
    release = true;
    g.join();
    stubborn.get();
  });
}

TEST_P(pool_test, group_destructor_kills_and_waits) {
  std::atomic<int> unwound{0}, started{0};
  run([&] {
    green::group g;
    for (int i = 0; i < 4; ++i)
      g.spawn([&] {
        on_unwind u{unwound};
        started.fetch_add(1);
        green::event never;
        never.wait();
      });
    green::testing::yield_until([&] { return started.load() == 4; });
  });
  EXPECT_EQ(unwound.load(), 4);
}

TEST(pool_plain, group_spawn_outside_runtime_is_a_clear_error) {
  green::group g;
  expect_throw_with<std::logic_error>([&] { g.spawn([] {}); }, "outside a green runtime");
}

// ---------------------------------------------------------------------------
// pool

TEST(pool_size, zero_or_negative_is_a_clear_error) {
  expect_throw_with<std::invalid_argument>([] { green::pool p(0); }, "size must be at least 1 (got 0)");
  expect_throw_with<std::invalid_argument>([] { green::pool p(-3); }, "size must be at least 1 (got -3)");
}

TEST_P(pool_test, pool_never_runs_more_than_size) {
  const int trials = scaled(40);
  run([&] {
    for (int trial = 0; trial < trials; ++trial) {
      const int size = 1 + trial % 5;
      green::pool p(size);
      concurrency_probe probe;
      for (int i = 0; i < 30; ++i)
        p.spawn([&, i] {
          probe.enter();
          if (i % 3 == 0) green::this_fiber::yield();
          if (i % 5 == 0) green::this_fiber::sleep_for(std::chrono::microseconds(50));
          EXPECT_LE(probe.now.load(), size);
          probe.leave();
        });
      p.join();
      ASSERT_LE(probe.peak.load(), size) << "trial " << trial;
      EXPECT_GE(probe.peak.load(), 1);
      EXPECT_EQ(p.free_count(), static_cast<std::size_t>(size));
    }
  });
}

TEST_P(pool_test, pool_map_never_runs_more_than_size) {
  const int trials = scaled(20);
  run([&] {
    for (int trial = 0; trial < trials; ++trial) {
      const int size = 1 + trial % 4;
      green::pool p(size);
      concurrency_probe probe;
      std::vector<int> in(40);
      std::iota(in.begin(), in.end(), 0);
      auto out = p.map(
          [&](int v) {
            probe.enter();
            green::this_fiber::yield();
            probe.leave();
            return v + 1;
          },
          in);
      ASSERT_LE(probe.peak.load(), size);
      ASSERT_EQ(out.size(), in.size());
    }
  });
}

TEST_P(pool_test, pool_spawn_blocks_while_full_and_try_spawn_fails) {
  run([] {
    green::pool p(2);
    EXPECT_EQ(p.capacity(), 2u);
    EXPECT_EQ(p.free_count(), 2u);
    EXPECT_FALSE(p.full());
    green::event go;
    auto a = p.spawn([&] { go.wait(); });
    auto b = p.try_spawn([&] { go.wait(); });
    EXPECT_TRUE(p.full());
    EXPECT_EQ(p.free_count(), 0u);
    expect_throw_with<green::pool_full_error>([&] { p.try_spawn([] {}); }, "all 2 slots are busy");
    EXPECT_FALSE(p.wait_available_for(2ms));
    std::atomic<bool> spawned{false};
    auto spawner = green::spawn([&] {
      p.spawn([] {});  // waits for a slot: back-pressure
      spawned = true;
    });
    wait_parked(spawner, "semaphore");
    EXPECT_FALSE(spawned.load());
    go.set();
    spawner.join();
    EXPECT_TRUE(spawned.load());
    p.wait_available();
    EXPECT_TRUE(p.wait_available_for(1h));
    p.join();
    EXPECT_EQ(p.free_count(), 2u);
    a.get();
    b.get();
  });
}

TEST_P(pool_test, pool_add_takes_a_slot) {
  run([] {
    green::pool p(1);
    green::event go;
    auto f = green::spawn([&] { go.wait(); });
    p.add(f);
    EXPECT_TRUE(p.full());
    EXPECT_EQ(p.size(), 1u);
    go.set();
    p.join();
    EXPECT_EQ(p.free_count(), 1u);
    f.join();
  });
}

TEST_P(pool_test, pool_apply_returns_and_rethrows) {
  run([] {
    green::pool p(2);
    EXPECT_EQ(p.apply([](int a, int b) { return a * b; }, 6, 7), 42);
    EXPECT_EQ(p.free_count(), 2u);  // the slot is back once the result is seen
    expect_throw_with<std::runtime_error>([&] { p.apply([]() -> int { throw std::runtime_error("apply boom"); }); },
                                          "apply boom");
    // apply from a task of a full pool runs inline instead of deadlocking.
    green::pool one(1);
    EXPECT_EQ(one.spawn([&] { return one.apply([] { return 5; }); }).get(), 5);
  });
}

TEST_P(pool_test, pool_map_keeps_input_order) {
  run([] {
    green::pool p(4);
    std::vector<int> in(scaled(200));
    std::iota(in.begin(), in.end(), 0);
    auto out = p.map(
        [](int v) {
          // Later items finish first.
          if (v % 7 == 0) green::this_fiber::sleep_for(std::chrono::microseconds(200));
          green::this_fiber::yield();
          return v * v;
        },
        in);
    ASSERT_EQ(out.size(), in.size());
    for (std::size_t i = 0; i < in.size(); ++i) EXPECT_EQ(out[i], in[i] * in[i]);
    EXPECT_TRUE(p.map([](int v) { return v; }, std::vector<int>{}).empty());
  });
}

TEST_P(pool_test, pool_map_exception_propagates_and_stops_the_rest) {
  run([] {
    green::pool p(3);
    std::atomic<int> started{0};
    std::vector<int> in(100);
    std::iota(in.begin(), in.end(), 0);
    expect_throw_with<std::runtime_error>(
        [&] {
          p.map(
              [&](int v) {
                ++started;
                if (v == 5 || v == 7) throw std::runtime_error("item " + std::to_string(v));
                green::this_fiber::sleep_for(std::chrono::microseconds(100));
                return v;
              },
              in);
        },
        "item 5");
    EXPECT_EQ(p.size(), 0u);  // the tasks in flight were stopped and have ended
    EXPECT_EQ(p.free_count(), 3u);
    EXPECT_LT(started.load(), 100);  // lazy: not all were started
  });
}

TEST_P(pool_test, pool_imap_is_lazy_and_in_order) {
  run([] {
    green::pool p(2);
    std::atomic<int> started{0};
    std::vector<int> in(50);
    std::iota(in.begin(), in.end(), 0);
    int expect = 0;
    for (int v : p.imap(
             [&](int x) {
               ++started;
               return x * 3;
             },
             in)) {
      EXPECT_EQ(v, expect * 3);
      // Never more than 2 * capacity ahead of the consumer.
      EXPECT_LE(started.load(), expect + 1 + 4);
      ++expect;
    }
    EXPECT_EQ(expect, 50);
  });
}

TEST_P(pool_test, pool_imap_exception_surfaces_in_the_iteration) {
  run([] {
    green::pool p(2);
    std::vector<int> in{0, 1, 2, 3};
    std::vector<int> seen;
    try {
      for (int v : p.imap(
               [](int x) {
                 if (x == 2) throw std::runtime_error("imap 2");
                 return x;
               },
               in))
        seen.push_back(v);
      ADD_FAILURE() << "expected an exception";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "imap 2");
    }
    EXPECT_EQ(seen, (std::vector<int>{0, 1}));
    p.join();
  });
}

TEST_P(pool_test, pool_imap_unordered_yields_in_completion_order) {
  run([] {
    green::pool p(4);
    // Four tasks each wait for their turn; turns go 2, 0, 3, 1.
    const std::vector<int> order{2, 0, 3, 1};
    std::atomic<int> turn{0};
    std::vector<int> in{0, 1, 2, 3};
    std::vector<int> seen;
    for (int v : p.imap_unordered(
             [&](int x) {
               yield_until([&] { return order[static_cast<std::size_t>(turn.load())] == x; });
               return x;
             },
             in)) {
      seen.push_back(v);
      if (turn.load() < 3) ++turn;  // the next task may finish only after this one was yielded
    }
    EXPECT_EQ(seen, order);
  });
}

TEST_P(pool_test, pool_imap_unordered_exception_and_early_exit) {
  run([] {
    green::pool p(3);
    std::vector<int> in(30);
    std::iota(in.begin(), in.end(), 0);
    expect_throw_with<std::runtime_error>(
        [&] {
          for (int v : p.imap_unordered(
                   [](int x) {
                     if (x == 4) throw std::runtime_error("unordered 4");
                     return x;
                   },
                   in))
            (void)v;
        },
        "unordered 4");
    int n = 0;
    for (int v : p.imap_unordered([](int x) { return x; }, in)) {
      (void)v;
      if (++n == 3) break;
    }
    EXPECT_EQ(p.size(), 0u);
    EXPECT_EQ(p.free_count(), 3u);
  });
}

TEST_P(pool_test, pool_kill_stops_its_fibers_and_join_returns) {
  run([] {
    green::pool p(3);
    std::atomic<int> unwound{0}, started{0};
    std::vector<green::async_result<void>> rs;
    for (int i = 0; i < 3; ++i)
      rs.push_back(p.spawn([&] {
        on_unwind u{unwound};
        started.fetch_add(1);
        for (;;) green::this_fiber::sleep_for(1ms);
      }));
    green::testing::yield_until([&] { return started.load() == 3; });
    // A spawner blocked on the full pool is not a member and is not killed.
    auto spawner = green::spawn([&] { p.spawn([] { return 1; }).get(); });
    wait_parked(spawner, "semaphore");
    p.kill();
    spawner.join();  // its task got a slot after the kill and ran
    p.join();
    EXPECT_EQ(unwound.load(), 3);
    EXPECT_EQ(p.size(), 0u);
    EXPECT_EQ(p.free_count(), 3u);
    for (auto& r : rs) EXPECT_THROW(r.get(), green::fiber_killed_error);
  });
}

TEST_P(pool_test, pool_map_under_a_timeout_scope_cleans_up) {
  run([] {
    green::pool p(2);
    std::vector<int> in(20);
    std::iota(in.begin(), in.end(), 0);
    EXPECT_THROW(
        {
          green::timeout t(5ms);
          p.map(
              [](int v) {
                green::this_fiber::sleep_for(1h);
                return v;
              },
              in);
        },
        green::timeout_error);
    EXPECT_EQ(p.size(), 0u);  // the tasks in flight were killed and have ended
    EXPECT_EQ(p.free_count(), 2u);
  });
}

TEST_P(pool_test, killed_consumer_of_map_unwinds_and_its_tasks_end) {
  run([] {
    green::pool p(2);
    std::vector<int> in(20);
    std::iota(in.begin(), in.end(), 0);
    auto consumer = green::spawn([&] {
      return p.map(
          [](int v) {
            green::this_fiber::sleep_for(1h);
            return v;
          },
          in);
    });
    yield_until([&] { return p.full(); });
    consumer.kill();
    green::testing::expect_killed(consumer);
    EXPECT_EQ(p.size(), 0u);
    EXPECT_EQ(p.free_count(), 2u);
  });
}

TEST_P(pool_test, pool_join_timeout_and_raise_error) {
  run([] {
    green::pool p(2);
    green::event go;
    p.spawn([&] { go.wait(); });
    EXPECT_FALSE(p.join_for(3ms));
    EXPECT_FALSE(p.join_until(std::chrono::steady_clock::now() + 1ms));
    go.set();
    EXPECT_TRUE(p.join_for(1h));
    p.spawn([]() -> int { throw std::runtime_error("pool task failed"); });
    expect_throw_with<std::runtime_error>([&] { p.join(true); }, "pool task failed");
  });
}

TEST_P(pool_test, pool_task_exception_is_never_lost_nor_terminating) {
  run([] {
    green::pool p(2);
    // Results dropped unseen: nothing terminates; join(raise_error) reports it.
    for (int i = 0; i < 5; ++i) p.spawn([]() -> int { throw std::runtime_error("dropped"); });
    expect_throw_with<std::runtime_error>([&] { p.join(true); }, "dropped");
    p.join();
  });
}

TEST_P(pool_test, pool_tasks_mixed_with_plain_thread_waiters) {
  run([] {
    green::pool p(2);
    std::vector<green::async_result<int>> rs;
    for (int i = 0; i < 6; ++i)
      rs.push_back(p.spawn([i] {
        green::this_fiber::sleep_for(std::chrono::microseconds(100));
        return i;
      }));
    std::atomic<int> sum{0};
    green::testing::side_thread t([&] {
      for (auto& r : rs) sum += r.get();  // a plain thread waits on fiber results
    });
    t.join();
    EXPECT_EQ(sum.load(), 15);
  });
}

// ---------------------------------------------------------------------------
// parallel_for / parallel_map / parallel_reduce

TEST_P(pool_test, parallel_for_covers_every_index_once) {
  run([] {
    const std::size_t n = static_cast<std::size_t>(scaled(100000));
    std::vector<std::atomic<int>> hits(n);
    green::parallel_for(0, n, [&](std::size_t i) { hits[i].fetch_add(1, std::memory_order_relaxed); });
    for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << i;
    green::parallel_for(5, 5, [](std::size_t) { FAIL(); });
    std::atomic<int> small{0};
    green::parallel_for(10, 13, [&](std::size_t i) { small += static_cast<int>(i); }, {.chunk = 1});
    EXPECT_EQ(small.load(), 33);
  });
}

TEST_P(pool_test, parallel_map_keeps_order_and_uses_workers) {
  run([] {
    std::vector<int> in(static_cast<std::size_t>(scaled(20000)));
    std::iota(in.begin(), in.end(), 0);
    auto out = green::parallel_map([](int v) { return static_cast<long>(v) * v; }, in);
    ASSERT_EQ(out.size(), in.size());
    for (std::size_t i = 0; i < in.size(); ++i) ASSERT_EQ(out[i], static_cast<long>(in[i]) * in[i]);
    auto strs = green::parallel_map([](int v) { return std::to_string(v); }, in, {.chunk = 100});
    ASSERT_EQ(strs.size(), in.size());
    EXPECT_EQ(strs.back(), std::to_string(in.back()));
    auto flags = green::parallel_map([](int v) { return v % 2 == 0; }, in);
    EXPECT_TRUE(flags[0]);
    EXPECT_FALSE(flags[1]);
  });
}

// parallel_map(items, fn) and pool.map(fn, items) took their arguments in
// opposite orders. Both are (fn, items) now; the old order still compiles
// (with a deprecation warning, silenced here) and gives the same result.
TEST_P(pool_test, parallel_map_old_argument_order_still_works) {
  run([] {
    const std::vector<int> in{1, 2, 3, 4, 5};
    auto sq = [](int v) { return v * v; };
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    auto old_order = green::parallel_map(in, sq, {.chunk = 2});
#pragma GCC diagnostic pop
    EXPECT_EQ(old_order, green::parallel_map(sq, in, {.chunk = 2}));
    green::pool p(2);
    EXPECT_EQ(old_order, p.map(sq, in));
    EXPECT_EQ(old_order, (std::vector<int>{1, 4, 9, 16, 25}));
  });
}

TEST_P(pool_test, parallel_reduce_is_deterministic_across_worker_counts) {
  // The same sum of square roots, bit for bit, on this runtime and on 1 worker.
  const std::size_t n = static_cast<std::size_t>(scaled(200000));
  auto sum = [=] {  // [=]: n is a constant expression, so clang calls [n] an unneeded capture
    return green::parallel_reduce(
        1, n + 1, 0.0, [](std::size_t i) { return std::sqrt(static_cast<double>(i)); },
        [](double a, double b) { return a + b; });
  };
  double here = run(sum);
  double one = green::runtime(green::testing::test_config(1)).run(sum);
  EXPECT_EQ(here, one);
  double serial = 0;
  for (std::size_t i = 1; i <= n; ++i) serial += std::sqrt(static_cast<double>(i));
  EXPECT_NEAR(here, serial, 1e-6 * serial);
}

TEST_P(pool_test, parallel_errors_propagate_after_all_chunks) {
  run([] {
    std::atomic<int> done{0};
    expect_throw_with<std::runtime_error>(
        [&] {
          green::parallel_for(0, 100,
                              [&](std::size_t i) {
                                if (i == 42) throw std::runtime_error("index 42");
                                ++done;
                              },
                              {.chunk = 10});
        },
        "index 42");
    EXPECT_EQ(done.load(), 90 + 2);  // the failing chunk stopped at 42; all others ran
  });
  expect_throw_with<std::logic_error>([] { green::parallel_for(0, 1, [](std::size_t) {}); }, "outside a green runtime");
}

// ---------------------------------------------------------------------------
// group and pool: spawn failures and a process out of fds (issue 13)

// out_of_fds lowers RLIMIT_NOFILE so that no new fd can be opened, and
// restores it when it goes.
class out_of_fds {
 public:
  out_of_fds() {
    if (::getrlimit(RLIMIT_NOFILE, &saved_) != 0) throw std::system_error(errno, std::generic_category(), "getrlimit");
    int lowest_free = 0;
    while (::fcntl(lowest_free, F_GETFD) != -1) ++lowest_free;
    rlimit low = saved_;
    low.rlim_cur = static_cast<rlim_t>(lowest_free);
    if (::setrlimit(RLIMIT_NOFILE, &low) != 0) throw std::system_error(errno, std::generic_category(), "setrlimit");
  }
  ~out_of_fds() { ::setrlimit(RLIMIT_NOFILE, &saved_); }
  out_of_fds(const out_of_fds&) = delete;
  out_of_fds& operator=(const out_of_fds&) = delete;

 private:
  rlimit saved_{};
};

// Issue 13: an accept loop at EMFILE whose handlers' results were discarded
// died under UBSan with "member call on address ... which does not point to
// an object of type 'result_state' ... invalid vptr" in store_value. The
// state was alive: UBSan checks a vtable it has not met before by writing
// it into a pipe, and with no fd free it takes a live object for a bad one.
// Results have no vtable since. Here, as in that server, a task of this
// type has run and ended before (one that threw, so UBSan has met the
// fiber's vtable but no stored value), and the first store_value() of the
// type comes while the process has no fd to spare.
TEST_P(pool_test, group_task_stores_its_value_while_the_process_is_out_of_fds) {
  struct reply {  // a result type no other test stores
    int v;
  };
  run([] {
    constexpr int n = 40;
    green::group g;
    green::event go;
    std::atomic<int> started{0};
    auto task = [&](int v) {
      if (v < 0) throw std::runtime_error("warm-up");
      ++started;
      go.wait();
      if (v % 5 == 4) throw std::runtime_error("task " + std::to_string(v));
      return reply{v};
    };
    auto spawn = [&](int v) { return g.spawn(task, v); };  // one fiber type for all
    auto warm_up = spawn(-1);
    expect_throw_with<std::runtime_error>([&] { warm_up.get(); }, "warm-up");
    g.join();
    std::vector<green::async_result<reply>> kept;
    for (int i = 0; i < n; ++i) {
      auto r = spawn(i);
      if (i % 4 == 0) kept.push_back(std::move(r));  // the others are dropped at once
    }
    yield_until([&] { return started.load() == n; });
    {
      out_of_fds no_fds;
      EXPECT_EQ(::dup(0), -1);
      go.set();
      g.join();
    }
    EXPECT_TRUE(g.empty());
    for (std::size_t k = 0; k < kept.size(); ++k) {
      int v = static_cast<int>(k) * 4;
      if (v % 5 == 4) expect_throw_with<std::runtime_error>([&] { kept[k].get(); }, "task " + std::to_string(v));
      else EXPECT_EQ(kept[k].get().v, v);
    }
  });
}

// A spawn that fails before its fiber exists (here: copying an argument
// throws) raised std::logic_error("async_result: already set") instead of
// the failure: the function object's guard had published "never ran", then
// spawn tried to store the real exception in the same result.
TEST_P(pool_test, group_spawn_that_fails_raises_its_own_error) {
  struct bomb {
    bomb() = default;
    bomb(const bomb&) { throw std::runtime_error("bomb copied"); }
  };
  run([] {
    green::group g;
    green::pool p(2);
    const bomb b;
    for (int i = 0; i < 3; ++i) {
      expect_throw_with<std::runtime_error>([&] { g.spawn([](const bomb&) { return 1; }, b); }, "bomb copied");
      expect_throw_with<std::runtime_error>([&] { p.spawn([](const bomb&) {}, b); }, "bomb copied");
      expect_throw_with<std::runtime_error>([&] { p.try_spawn([](const bomb&) {}, b); }, "bomb copied");
    }
    EXPECT_TRUE(g.empty());
    EXPECT_TRUE(p.empty());
    EXPECT_EQ(p.free_count(), 2u);  // every failed spawn gave its slot back
    EXPECT_EQ(g.spawn([] { return 7; }).get(), 7);
    EXPECT_EQ(p.spawn([] { return 8; }).get(), 8);
  });
}

// A task whose stack cannot be mapped ends without running; its result
// holds the std::system_error of the mapping, not a vaguer "never ran".
TEST_P(pool_test, group_task_without_a_stack_holds_the_stack_error) {
  auto cfg = green::testing::test_config(GetParam());
  cfg.stack_size = std::size_t{1} << 50;  // 1 PiB: more than the address space
  green::runtime rt(cfg);
  auto main = rt.spawn(green::spawn_options{"main", 64 * 1024}, [] {
    green::group g;
    std::atomic<int> ran{0};
    std::vector<green::async_result<int>> rs;
    for (int i = 0; i < 20; ++i) {
      auto r = g.spawn([&] { return ++ran; });
      if (i % 2 == 0) rs.push_back(std::move(r));
    }
    g.join();
    EXPECT_TRUE(g.empty());
    EXPECT_EQ(ran.load(), 0);
    for (auto& r : rs) expect_throw_with<std::system_error>([&] { r.get(); }, "cannot map");
  });
  main.join();
}

}  // namespace

// Regression (kill before start, issue 13): a member killed before its fiber
// first ran never runs its body, and its result says it was killed (not
// "never ran"). One worker and no monitor: nothing can start it first.
TEST(pool_kill, group_member_killed_before_start_reports_fiber_killed_error) {
  auto c = green::testing::test_config(1);
  c.monitor_limit = std::chrono::milliseconds(0);
  green::run(
      [] {
        green::group g;
        bool ran = false;
        auto r = g.spawn([&] { ran = true; });
        g.kill();
        EXPECT_THROW(r.get(), green::fiber_killed_error);
        EXPECT_FALSE(ran);
        EXPECT_EQ(g.size(), 0u);
      },
      c);
}

// Regression (found by LeakSanitizer after kill-before-start): as_completed
// watches a fiber through a watcher fiber that held a reference to it and
// released it in its body; a watcher killed before it started (the loop was
// left at once) never ran its body and leaked the watched fiber's control
// block. On one worker with no monitor, the loop surely ends first: fs[1] is
// done before as_completed starts, so its first step does not park. The
// fibers return `tracked` values: a control block that is never freed never
// destroys the (moved-from) result it holds, so `live` stays above zero.
TEST(pool_kill, as_completed_left_before_its_watchers_start_leaks_nothing) {
  static std::atomic<int> live{0};
  struct tracked {
    int v;
    explicit tracked(int x) : v(x) { live.fetch_add(1); }
    tracked(tracked&& o) noexcept : v(o.v) { live.fetch_add(1); }
    ~tracked() { live.fetch_sub(1); }
  };
  auto c = green::testing::test_config(1);
  c.monitor_limit = std::chrono::milliseconds(0);
  green::run(
      [] {
        green::event go;
        std::vector<green::fiber<tracked>> fs;
        fs.push_back(green::spawn([&] {
          go.wait();
          return tracked(0);
        }));
        fs.push_back(green::spawn([] { return tracked(1); }));
        green::testing::yield_until([&] { return fs[1].done(); });
        int first = -1;
        for (auto& f : green::as_completed(fs)) {
          first = f.join().v;
          break;  // the watcher of fs[0] is killed before it starts
        }
        EXPECT_EQ(first, 1);
        go.set();
        EXPECT_EQ(fs[0].join().v, 0);
      },
      c);
  EXPECT_EQ(live.load(), 0) << "a fiber's control block (and the result it holds) was never freed";
}
