// channel<T>: rendezvous and buffered semantics, move-only values, FIFO
// order, close, try/timed operations, range-for, fibers mixed with threads,
// and kill / green::timeout at each suspension point without losing a value.
#include <atomic>
#include <chrono>
#include <memory>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <green/channel.hpp>
#include <green/event.hpp>
#include <green/green.hpp>

#include "test_util.hpp"

using namespace std::chrono_literals;
using green::op_status;
using green::testing::expect_killed;
using green::testing::wait_parked;

namespace {

GREEN_WORKER_SUITE(channel_test);

TEST_P(channel_test, unbuffered_send_waits_for_a_receiver) {
  run([] {
    green::channel<int> ch;
    std::atomic<bool> sent{false};
    auto sender = green::spawn([&] {
      ch.send(7);
      sent = true;
    });
    wait_parked(sender, "channel send");
    EXPECT_FALSE(sent.load());
    EXPECT_FALSE(ch.try_send(8));  // no receiver waits
    EXPECT_EQ(ch.recv(), 7);
    sender.join();
    EXPECT_TRUE(sent.load());
  });
}

TEST_P(channel_test, unbuffered_recv_waits_for_a_sender) {
  run([] {
    green::channel<std::string> ch;
    auto receiver = green::spawn([&] { return *ch.recv(); });
    wait_parked(receiver, "channel recv");
    EXPECT_TRUE(ch.try_send("direct"));  // a receiver waits: no blocking
    EXPECT_EQ(receiver.join(), "direct");
  });
}

TEST_P(channel_test, buffered_holds_capacity_values_in_order) {
  run([] {
    green::channel<int> ch(3);
    EXPECT_EQ(ch.capacity(), 3u);
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(ch.try_send(i));
    EXPECT_FALSE(ch.try_send(99));
    EXPECT_EQ(ch.size(), 3u);
    auto late = green::spawn([&] { ch.send(3); });
    wait_parked(late, "channel send");
    for (int i = 0; i < 4; ++i) EXPECT_EQ(ch.recv(), i);
    late.join();
    int v = -1;
    EXPECT_EQ(ch.try_recv(v), op_status::empty);
  });
}

TEST_P(channel_test, fifo_per_sender_across_workers) {
  run([] {
    green::channel<std::pair<int, int>> ch(8);
    constexpr int senders = 4, n = 2000;
    std::vector<green::fiber<void>> fs;
    for (int s = 0; s < senders; ++s)
      fs.push_back(green::spawn([&ch, s] {
        for (int i = 0; i < n; ++i) ch.send({s, i});
      }));
    std::vector<int> next(senders, 0);
    for (int k = 0; k < senders * n; ++k) {
      auto [s, i] = *ch.recv();
      EXPECT_EQ(i, next[s]++);
    }
    for (auto& f : fs) f.join();
  });
}

TEST_P(channel_test, move_only_values) {
  run([] {
    green::channel<std::unique_ptr<int>> ch(1);
    ch.send(std::make_unique<int>(1));
    auto sender = green::spawn([&] { ch.send(std::make_unique<int>(2)); });
    EXPECT_EQ(**ch.recv(), 1);
    EXPECT_EQ(**ch.recv(), 2);
    sender.join();
    auto p = std::make_unique<int>(3);
    EXPECT_TRUE(ch.send_for(std::move(p), 0ms));  // room in the buffer
    std::unique_ptr<int> out;
    EXPECT_EQ(ch.try_recv(out), op_status::success);
    EXPECT_EQ(*out, 3);
    auto q = std::make_unique<int>(4);
    EXPECT_TRUE(ch.try_send(std::move(q)));
    auto r = std::make_unique<int>(5);
    EXPECT_FALSE(ch.try_send(std::move(r)));
    ASSERT_TRUE(r) << "a failed try_send must leave the value with the caller";
    EXPECT_EQ(*r, 5);
  });
}

TEST_P(channel_test, close_drains_then_reports_closed) {
  run([] {
    green::channel<int> ch(4);
    ch.send(1);
    ch.send(2);
    EXPECT_TRUE(ch.close());
    EXPECT_FALSE(ch.close());
    EXPECT_TRUE(ch.closed());
    EXPECT_THROW(ch.send(3), green::closed_error);
    EXPECT_THROW(ch.try_send(3), green::closed_error);
    EXPECT_EQ(ch.recv(), 1);
    int v = 0;
    EXPECT_EQ(ch.try_recv(v), op_status::success);
    EXPECT_EQ(v, 2);
    EXPECT_EQ(ch.recv(), std::nullopt);
    EXPECT_EQ(ch.try_recv(v), op_status::closed);
    EXPECT_EQ(ch.recv_for(v, 1s), op_status::closed);
  });
}

TEST_P(channel_test, close_wakes_blocked_receivers_and_senders) {
  run([] {
    green::channel<int> in, out;
    std::vector<green::fiber<bool>> receivers;
    for (int i = 0; i < 3; ++i) receivers.push_back(green::spawn([&] { return !in.recv().has_value(); }));
    std::vector<green::fiber<bool>> senders;
    for (int i = 0; i < 3; ++i)
      senders.push_back(green::spawn([&] {
        try {
          out.send(1);
          return false;
        } catch (const green::closed_error& e) {
          EXPECT_NE(std::string(e.what()).find("closed"), std::string::npos);
          return true;
        }
      }));
    for (auto& f : receivers) wait_parked(f, "channel recv");
    for (auto& f : senders) wait_parked(f, "channel send");
    std::thread([&] {
      in.close();
      out.close();
    }).join();
    for (auto& f : receivers) EXPECT_TRUE(f.join());
    for (auto& f : senders) EXPECT_TRUE(f.join());
  });
}

TEST_P(channel_test, range_for_until_closed) {
  run([] {
    green::channel<int> ch(2);
    auto producer = green::spawn([&] {
      for (int i = 1; i <= 100; ++i) ch.send(i);
      ch.close();
    });
    long sum = 0;
    for (int& v : ch) sum += v;
    EXPECT_EQ(sum, 5050);
    producer.join();
  });
}

TEST_P(channel_test, timed_operations) {
  run([] {
    green::channel<int> ch(1);
    int v = 0;
    EXPECT_EQ(ch.recv_for(v, 2ms), op_status::timeout);
    EXPECT_EQ(ch.recv_until(v, std::chrono::steady_clock::now() + 1ms), op_status::timeout);
    EXPECT_TRUE(ch.send_for(1, 2ms));
    EXPECT_FALSE(ch.send_for(2, 2ms));
    EXPECT_FALSE(ch.send_until(2, std::chrono::system_clock::now() + 1ms));
    EXPECT_EQ(ch.recv_for(v, 1s), op_status::success);
    EXPECT_EQ(v, 1);
    // A plain thread's timed receive.
    std::thread([&] {
      int x = 0;
      EXPECT_EQ(ch.recv_for(x, 2ms), op_status::timeout);
    }).join();
  });
}

// send_for / send_until took only T&&: an lvalue did not compile, as it
// does with send(). They copy it, and the caller's value stays as it was.
TEST_P(channel_test, send_for_and_send_until_copy_an_lvalue) {
  run([] {
    green::channel<std::string> ch(2);
    std::string s = "a string long enough to live on the heap, not in SSO";
    const std::string c = "const";
    EXPECT_TRUE(ch.send_for(s, 0ms));
    EXPECT_TRUE(ch.send_until(c, std::chrono::steady_clock::now()));
    EXPECT_FALSE(ch.send_for(s, 1ms));  // full: a timeout, s untouched
    EXPECT_FALSE(ch.send_until(s, std::chrono::system_clock::now() + 1ms));
    EXPECT_EQ(s, "a string long enough to live on the heap, not in SSO");
    EXPECT_EQ(c, "const");
    EXPECT_EQ(*ch.recv(), s);
    EXPECT_EQ(*ch.recv(), "const");
  });
}

TEST_P(channel_test, threads_and_fibers_share_a_channel) {
  run([] {
    green::channel<int> ch(4);
    constexpr int per = 5000;
    std::thread tp([&] {
      for (int i = 0; i < per; ++i) ch.send(i);
    });
    auto fp = green::spawn([&] {
      for (int i = 0; i < per; ++i) ch.send(i);
    });
    std::atomic<long> sum{0};
    std::atomic<int> count{0};
    std::thread tc([&] {
      while (count.load() < 2 * per) {
        int v;
        if (ch.recv_for(v, 1ms) == op_status::success) {
          sum += v;
          ++count;
        }
      }
    });
    auto fc = green::spawn([&] {
      while (count.load() < 2 * per) {
        int v;
        if (ch.recv_for(v, 1ms) == op_status::success) {
          sum += v;
          ++count;
        }
      }
    });
    fp.join();
    fc.join();
    tp.join();
    tc.join();
    EXPECT_EQ(count.load(), 2 * per);
    EXPECT_EQ(sum.load(), 2L * per * (per - 1) / 2);
  });
}

TEST_P(channel_test, killed_receiver_does_not_swallow_a_value) {
  run([] {
    green::channel<int> ch;
    auto victim = green::spawn([&] { return *ch.recv(); });
    wait_parked(victim, "channel recv");
    victim.kill();
    expect_killed(victim);
    auto other = green::spawn([&] { return *ch.recv(); });
    wait_parked(other, "channel recv");
    ch.send(42);
    EXPECT_EQ(other.join(), 42);
  });
}

TEST_P(channel_test, killed_sender_takes_its_value_away) {
  run([] {
    green::channel<int> ch;
    auto victim = green::spawn([&] { ch.send(1); });
    wait_parked(victim, "channel send");
    auto keeper = green::spawn([&] { ch.send(2); });
    wait_parked(keeper, "channel send");
    victim.kill();
    expect_killed(victim);
    EXPECT_EQ(ch.recv(), 2);
    keeper.join();
    int v;
    EXPECT_EQ(ch.try_recv(v), op_status::empty);
  });
}

TEST_P(channel_test, scope_timeout_interrupts_send_and_recv) {
  run([] {
    green::channel<int> ch;
    {
      green::timeout t(3ms);
      EXPECT_THROW(ch.recv(), green::timeout_error);
    }
    {
      green::timeout t(3ms);
      EXPECT_THROW(ch.send(1), green::timeout_error);
    }
    // Neither left a waiter behind.
    EXPECT_FALSE(ch.try_send(1));
    int v;
    EXPECT_EQ(ch.try_recv(v), op_status::empty);
    // Nested: the inner scope wins when it is earlier.
    green::timeout outer(1h);
    try {
      green::timeout inner(2ms);
      ch.recv();
      ADD_FAILURE();
    } catch (const green::timeout_error& e) {
      EXPECT_NE(e.owner(), &outer);
    }
  });
}

TEST_P(channel_test, kill_race_with_sender_loses_nothing) {
  // Kill receivers while a sender hands them values: every value sent is
  // received exactly once, by a survivor or by the final drain.
  run([] {
    constexpr int rounds = green::testing::sanitized ? 200 : 1000;
    long sent = 0, got = 0;
    for (int r = 0; r < rounds; ++r) {
      green::channel<int> ch;
      std::atomic<long> received{0};
      std::vector<green::fiber<void>> rs;
      for (int i = 0; i < 3; ++i)
        rs.push_back(green::spawn([&] {
          while (auto v = ch.recv()) received += *v;
        }));
      auto sender = green::spawn([&] {
        long s = 0;
        for (int i = 1; i <= 4; ++i) {
          ch.send(i);
          s += i;
        }
        return s;
      });
      rs[r % 3].kill();
      sent += sender.join();
      ch.close();
      green::testing::join_all(rs);
      got += received.load();
    }
    EXPECT_EQ(got, sent);
  });
}

}  // namespace
