// queue<T>, lifo_queue<T>, priority_queue<T>: ordering, bounds, timeouts,
// task_done/join, close, fibers mixed with threads, kill and green::timeout.
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <green/green.hpp>
#include <green/lifo_queue.hpp>
#include <green/priority_queue.hpp>
#include <green/queue.hpp>

#include "test_util.hpp"

using namespace std::chrono_literals;
using green::op_status;
using green::testing::expect_killed;
using green::testing::wait_parked;

namespace {

GREEN_WORKER_SUITE(queue_test);

TEST_P(queue_test, fifo_lifo_and_priority_order) {
  run([] {
    green::queue<int> q;
    green::lifo_queue<int> l;
    green::priority_queue<int> p;
    green::priority_queue<int, std::greater<int>> pmax;
    for (int v : {3, 1, 4, 1, 5, 9, 2, 6}) {
      q.put(v);
      l.put(v);
      p.put(v);
      pmax.put(v);
    }
    std::vector<int> fq, fl, fp, fpmax;
    for (int i = 0; i < 8; ++i) {
      fq.push_back(*q.get());
      fl.push_back(*l.get());
      fp.push_back(*p.get());
      fpmax.push_back(*pmax.get());
    }
    EXPECT_EQ(fq, (std::vector<int>{3, 1, 4, 1, 5, 9, 2, 6}));
    EXPECT_EQ(fl, (std::vector<int>{6, 2, 9, 5, 1, 4, 1, 3}));
    EXPECT_EQ(fp, (std::vector<int>{1, 1, 2, 3, 4, 5, 6, 9}));  // lowest first, as Python
    EXPECT_EQ(fpmax, (std::vector<int>{9, 6, 5, 4, 3, 2, 1, 1}));
    EXPECT_TRUE(q.empty());
  });
}

TEST_P(queue_test, bounded_put_waits_and_times_out) {
  run([] {
    green::queue<std::unique_ptr<int>> q(2);
    EXPECT_EQ(q.maxsize(), 2u);
    q.put(std::make_unique<int>(1));
    EXPECT_TRUE(q.try_put(std::make_unique<int>(2)));
    EXPECT_TRUE(q.full());
    auto v = std::make_unique<int>(3);
    EXPECT_FALSE(q.try_put(std::move(v)));
    EXPECT_FALSE(q.put_for(std::move(v), 2ms));
    ASSERT_TRUE(v);  // still ours
    auto blocked = green::spawn([&] { q.put(std::move(v)); });
    wait_parked(blocked, "queue put");
    EXPECT_EQ(**q.get(), 1);
    blocked.join();
    EXPECT_EQ(**q.get(), 2);
    EXPECT_EQ(**q.get(), 3);
    std::unique_ptr<int> out;
    EXPECT_EQ(q.try_get(out), op_status::empty);
    EXPECT_EQ(q.get_for(out, 2ms), op_status::timeout);
    EXPECT_EQ(q.get_until(out, std::chrono::steady_clock::now() + 1ms), op_status::timeout);
  });
}

TEST_P(queue_test, unbounded_never_blocks_put) {
  run([] {
    green::queue<int> q;
    EXPECT_EQ(q.maxsize(), 0u);
    for (int i = 0; i < 10000; ++i) EXPECT_TRUE(q.try_put(std::move(i)));
    EXPECT_FALSE(q.full());
    EXPECT_EQ(q.size(), 10000u);
    for (int i = 0; i < 10000; ++i) ASSERT_EQ(q.get(), i);
  });
}

TEST_P(queue_test, task_done_and_join) {
  run([] {
    green::queue<int> q;
    std::atomic<long> processed{0};
    std::vector<green::fiber<void>> workers;
    for (int w = 0; w < 3; ++w)
      workers.push_back(green::spawn([&] {
        while (auto v = q.get()) {
          green::this_fiber::sleep_for(100us);
          processed += *v;
          q.task_done();
        }
      }));
    std::thread producer([&] {
      for (int i = 1; i <= 200; ++i) q.put(i);
    });
    producer.join();
    q.join();  // every task processed, not just taken
    EXPECT_EQ(processed.load(), 200L * 201 / 2);
    EXPECT_EQ(q.unfinished(), 0u);
    EXPECT_TRUE(q.join_for(0ms));
    q.close();
    for (auto& f : workers) f.join();
    green::testing::expect_throw_with<std::logic_error>([&] { q.task_done(); }, "task_done() called too many times");
  });
}

TEST_P(queue_test, join_waits_and_can_be_interrupted) {
  run([] {
    green::queue<int> q;
    q.put(1);
    EXPECT_FALSE(q.join_for(2ms));
    auto joiner = green::spawn([&] { q.join(); });
    wait_parked(joiner, "queue join");
    joiner.kill();
    expect_killed(joiner);
    {
      green::timeout t(2ms);
      EXPECT_THROW(q.join(), green::timeout_error);
    }
    auto ok = green::spawn([&] { q.join(); });
    wait_parked(ok, "queue join");
    q.get();
    q.task_done();
    ok.join();
  });
}

TEST_P(queue_test, close_semantics_and_range_for) {
  run([] {
    green::lifo_queue<int> q(4);
    q.put(1);
    q.put(2);
    q.close();
    EXPECT_THROW(q.put(3), green::closed_error);
    std::vector<int> got;
    for (int& v : q) got.push_back(v);
    EXPECT_EQ(got, (std::vector<int>{2, 1}));
    EXPECT_EQ(q.get(), std::nullopt);
    int v;
    EXPECT_EQ(q.try_get(v), op_status::closed);

    green::queue<int> q2(1);
    q2.put(1);
    auto blocked_put = green::spawn([&] { EXPECT_THROW(q2.put(2), green::closed_error); });
    wait_parked(blocked_put, "queue put");
    green::queue<int> q3;
    auto blocked_get = green::spawn([&] { return q3.get(); });
    wait_parked(blocked_get, "queue get");
    q2.close();
    q3.close();
    blocked_put.join();
    EXPECT_EQ(blocked_get.join(), std::nullopt);
    EXPECT_EQ(q2.get(), 1);
  });
}

TEST_P(queue_test, killed_getter_leaves_value_for_the_next) {
  run([] {
    green::priority_queue<int> q;
    auto victim = green::spawn([&] { return *q.get(); });
    wait_parked(victim, "queue get");
    victim.kill();
    expect_killed(victim);
    {
      green::timeout t(2ms);
      EXPECT_THROW(q.get(), green::timeout_error);
    }
    auto next = green::spawn([&] { return *q.get(); });
    wait_parked(next, "queue get");
    q.put(5);
    EXPECT_EQ(next.join(), 5);
    EXPECT_EQ(q.size(), 0u);
  });
}

TEST_P(queue_test, killed_putter_keeps_its_value_out) {
  run([] {
    green::queue<int> q(1);
    q.put(1);
    auto victim = green::spawn([&] { q.put(2); });
    wait_parked(victim, "queue put");
    auto keeper = green::spawn([&] { q.put(3); });
    wait_parked(keeper, "queue put");
    victim.kill();
    expect_killed(victim);
    EXPECT_EQ(q.get(), 1);
    EXPECT_EQ(q.get(), 3);
    keeper.join();
    EXPECT_EQ(q.unfinished(), 2u);  // 1 and 3; the killed put never counted
  });
}

TEST_P(queue_test, threads_consume_what_fibers_produce) {
  run([] {
    green::queue<int> q(8);
    constexpr int n = 4000;
    std::atomic<long> sum{0};
    std::vector<std::thread> consumers;
    for (int i = 0; i < 2; ++i)
      consumers.emplace_back([&] {
        while (auto v = q.get()) sum += *v;
      });
    std::vector<green::fiber<void>> producers;
    for (int p = 0; p < 4; ++p)
      producers.push_back(green::spawn([&] {
        for (int i = 1; i <= n; ++i) q.put(i);
      }));
    for (auto& f : producers) f.join();
    q.close();
    for (auto& t : consumers) t.join();
    EXPECT_EQ(sum.load(), 4L * n * (n + 1) / 2);
  });
}

}  // namespace
