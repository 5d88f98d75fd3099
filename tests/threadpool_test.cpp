// The OS-thread fallback: to_thread results and exceptions, the worker
// keeps running fibers while a call blocks its pool thread, timeout and kill
// of the waiting side, threadpool spawn / map / join, the size bound, idle
// threads exiting, and clear errors. Parameterized over worker counts.
#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <green/green.hpp>
#include <green/threadpool.hpp>

#include "test_util.hpp"
#include "watchdog.hpp"

using namespace std::chrono_literals;

namespace {

GREEN_WORKER_SUITE(threadpool_test);

// gate: a plain-thread latch the pool's calls block on (std::atomic wait,
// so a call really holds its OS thread, as a blocking syscall would).
struct gate {
  std::atomic<bool> open{false};
  void release() {
    open.store(true);
    open.notify_all();
  }
  void wait() { open.wait(false); }
};

TEST_P(threadpool_test, to_thread_returns_the_result) {
  run([] {
    EXPECT_EQ(green::to_thread([](int a, int b) { return a * b; }, 6, 7), 42);
    std::string s = green::to_thread([](std::string x) { return x + "!"; }, std::string("hi"));
    EXPECT_EQ(s, "hi!");
    green::to_thread([] {});  // void
  });
}

TEST_P(threadpool_test, to_thread_runs_on_another_os_thread) {
  run([] {
    auto me = std::this_thread::get_id();
    EXPECT_NE(green::to_thread([] { return std::this_thread::get_id(); }), me);
  });
}

TEST_P(threadpool_test, to_thread_rethrows_the_calls_exception) {
  run([] {
    green::testing::expect_throw_with<std::runtime_error>(
        [] { green::to_thread([]() -> int { throw std::runtime_error("boom on a pool thread"); }); },
        "boom on a pool thread");
  });
}

TEST(threadpool_plain, to_thread_from_a_plain_thread_runs_inline) {
  auto me = std::this_thread::get_id();
  EXPECT_EQ(green::to_thread([] { return std::this_thread::get_id(); }), me);
  EXPECT_THROW(green::to_thread([] { throw std::out_of_range("x"); }), std::out_of_range);
}

// A call that blocks its OS thread until a fiber opens the gate, which it
// does only once the call is inside: if to_thread blocked the worker, that
// fiber could never run (one worker) and the watchdog would fire.
TEST_P(threadpool_test, worker_runs_other_fibers_while_a_call_blocks) {
  run([] {
    gate g;
    std::atomic<bool> in_call{false};
    auto opener = green::spawn([&] {
      while (!in_call.load()) green::this_fiber::sleep_for(1ms);
      g.release();
    });
    int r = green::to_thread([&] {
      in_call = true;
      g.wait();
      return 7;
    });
    EXPECT_EQ(r, 7);
    opener.join();
  });
}

TEST_P(threadpool_test, timeout_scope_ends_the_wait_not_the_call) {
  run([] {
    auto g = std::make_shared<gate>();
    auto finished = std::make_shared<std::atomic<bool>>(false);
    try {
      green::timeout t(20ms);
      green::to_thread([g, finished] {
        g->wait();
        finished->store(true);
      });
      ADD_FAILURE() << "to_thread did not time out";
    } catch (const green::timeout_error&) {
    }
    EXPECT_FALSE(finished->load());
    g->release();
    // The call runs on to its end. (Polled, not a green::event set by the
    // pool thread: a fiber woken by a plain thread's set() may finish, and
    // the runtime be destroyed, while set() is still inside the scheduler.)
    while (!finished->load()) green::this_fiber::sleep_for(1ms);
  });
}

TEST_P(threadpool_test, kill_ends_the_wait) {
  run([] {
    auto g = std::make_shared<gate>();
    auto f = green::spawn([g] { green::to_thread([g] { g->wait(); }); });
    green::testing::wait_parked(f, "event");
    f.kill();
    green::testing::expect_killed(f);
    g->release();
  });
}

TEST_P(threadpool_test, spawn_get_and_join) {
  run([] {
    green::threadpool pool(4);
    EXPECT_EQ(pool.size(), 4u);
    std::vector<green::thread_result<int>> rs;
    for (int i = 0; i < 20; ++i) rs.push_back(pool.spawn([](int x) { return x * x; }, i));
    pool.join();
    EXPECT_EQ(pool.pending(), 0u);
    for (int i = 0; i < 20; ++i) {
      EXPECT_TRUE(rs[i].ready());
      EXPECT_EQ(rs[i].get(), i * i);
      EXPECT_FALSE(rs[i].valid());
    }
    EXPECT_THROW(rs[0].get(), std::logic_error);
  });
}

TEST_P(threadpool_test, wait_for_times_out_then_succeeds) {
  run([] {
    green::threadpool pool(1);
    auto g = std::make_shared<gate>();
    auto r = pool.spawn([g] {
      g->wait();
      return 5;
    });
    EXPECT_FALSE(r.wait_for(5ms));
    EXPECT_FALSE(pool.join_for(1ms));
    g->release();
    EXPECT_EQ(r.get(), 5);
    EXPECT_TRUE(pool.join_for(1h));
  });
}

TEST_P(threadpool_test, map_returns_results_in_order_and_rethrows_the_first_error) {
  run([] {
    green::threadpool pool(3);
    std::vector<int> in{1, 2, 3, 4, 5, 6, 7};
    auto out = pool.map([](int x) { return x * 10; }, in);
    EXPECT_EQ(out, (std::vector<int>{10, 20, 30, 40, 50, 60, 70}));
    std::atomic<int> ran{0};
    try {
      pool.map(
          [&ran](int x) {
            ran.fetch_add(1);
            if (x % 3 == 0) throw std::runtime_error("item " + std::to_string(x));
            return x;
          },
          in);
      ADD_FAILURE() << "map did not throw";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "item 3");
    }
    EXPECT_EQ(ran.load(), 7);  // every call ran before map() rethrew
  });
}

TEST_P(threadpool_test, never_runs_more_than_size_calls_at_once) {
  run([] {
    green::threadpool pool(2);
    std::atomic<int> now{0}, peak{0};
    std::vector<green::thread_result<void>> rs;
    // Each call stays inside until two ran at once (a pool that ran fewer
    // than its size would hang here), so a third thread, if the pool
    // started one, would be seen overlapping.
    for (int i = 0; i < 8; ++i) {
      rs.push_back(pool.spawn([&] {
        int n = now.fetch_add(1) + 1;
        int p = peak.load();
        while (n > p && !peak.compare_exchange_weak(p, n)) {
        }
        while (peak.load() < 2) std::this_thread::yield();
        now.fetch_sub(1);
      }));
    }
    EXPECT_LE(pool.threads(), 2u);
    pool.join();
    EXPECT_LE(pool.threads(), 2u);
    EXPECT_EQ(peak.load(), 2);
  });
}

TEST_P(threadpool_test, idle_threads_exit) {
  run([] {
    green::threadpool pool(3, 10ms);
    pool.map([](int x) { return x; }, std::vector<int>{1, 2, 3});
    EXPECT_GE(pool.threads(), 1u);
    // No give-up time: threads that never exit hang the test for the watchdog.
    while (pool.threads() != 0) green::this_fiber::sleep_for(5ms);
    EXPECT_EQ(pool.apply([] { return 3; }), 3);  // and new ones start on demand
  });
}

TEST_P(threadpool_test, destructor_waits_for_spawned_calls) {
  run([] {
    std::atomic<int> done{0};
    {
      green::threadpool pool(2);
      for (int i = 0; i < 6; ++i) {
        pool.spawn([&done] {
          std::this_thread::sleep_for(1ms);
          done.fetch_add(1);
        });
      }
    }
    EXPECT_EQ(done.load(), 6);
  });
}

TEST_P(threadpool_test, many_fibers_share_the_default_pool) {
  run([] {
    const int n = green::testing::scaled(200) + 5;
    std::vector<green::fiber<int>> fs;
    for (int i = 0; i < n; ++i) fs.push_back(green::spawn([i] { return green::to_thread([i] { return i + 1; }); }));
    long sum = 0;
    for (auto& f : fs) sum += f.join();
    EXPECT_EQ(sum, static_cast<long>(n) * (n + 1) / 2);
  });
}

TEST(threadpool_plain, plain_threads_use_a_pool_too) {
  green::threadpool pool(2);
  EXPECT_EQ(pool.apply([](int x) { return x + 1; }, 1), 2);
  auto r = pool.spawn([] { return std::string("ok"); });
  EXPECT_EQ(r.get(), "ok");
}

TEST(threadpool_plain, bad_sizes_are_clear_errors) {
  green::testing::expect_throw_with<std::invalid_argument>([] { green::threadpool p(0); }, "at least 1");
  green::testing::expect_throw_with<std::invalid_argument>([] { green::threadpool p(1, -1ms); }, "negative");
  EXPECT_EQ(green::detail::pool_size_from_env(nullptr), 64u);
  EXPECT_EQ(green::detail::pool_size_from_env(""), 64u);
  EXPECT_EQ(green::detail::pool_size_from_env("8"), 8u);
  for (const char* bad : {"0", "-3", "x", "12abc", "99999999999999999999999"})
    green::testing::expect_throw_with<std::invalid_argument>([bad] { green::detail::pool_size_from_env(bad); },
                                                             "GREEN_THREADPOOL");
}

}  // namespace
