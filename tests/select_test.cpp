// green::select: ready cases, default, timeout, blocking until a sender or
// receiver comes, fairness among ready cases (chi-square), unchosen cases
// have no effect, close, kill and green::timeout, fibers and threads.
#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <green/channel.hpp>
#include <green/green.hpp>
#include <green/queue.hpp>
#include <green/select.hpp>

#include "test_util.hpp"

using namespace std::chrono_literals;
using green::on_default;
using green::on_recv;
using green::on_send;
using green::on_timeout;
using green::op_status;
using green::testing::expect_killed;
using green::testing::wait_parked;

namespace {

GREEN_WORKER_SUITE(select_test);

TEST_P(select_test, takes_the_ready_case_only) {
  run([] {
    green::channel<int> a(1), b(1);
    b.send(2);
    int got = 0;
    std::size_t i = green::select(on_recv(a, [&](std::optional<int> v) { got = 100 + *v; }),
                                  on_recv(b, [&](std::optional<int> v) { got = *v; }));
    EXPECT_EQ(i, 1u);
    EXPECT_EQ(got, 2);
    EXPECT_EQ(a.size(), 0u);
  });
}

TEST_P(select_test, default_when_nothing_is_ready) {
  run([] {
    green::channel<int> a, b(1);
    b.send(1);  // b is full: a send case on it is not ready
    bool dflt = false;
    std::size_t i = green::select(on_recv(a, [](std::optional<int>) { ADD_FAILURE(); }),
                                  on_send(b, 5, [] { ADD_FAILURE(); }), on_default([&] { dflt = true; }));
    EXPECT_EQ(i, 2u);
    EXPECT_TRUE(dflt);
    EXPECT_EQ(b.recv(), 1);
    int v;
    EXPECT_EQ(b.try_recv(v), op_status::empty);  // the unchosen send did nothing
  });
}

TEST_P(select_test, timeout_case) {
  run([] {
    green::channel<int> a;
    bool timed_out = false;
    std::size_t i = green::select(on_recv(a, [](std::optional<int>) { ADD_FAILURE(); }),
                                  on_timeout(2ms, [&] { timed_out = true; }));
    EXPECT_EQ(i, 1u);
    EXPECT_TRUE(timed_out);
    // The waiter was unlinked: a sender finds no receiver.
    EXPECT_FALSE(a.try_send(1));
    // A timeout alone is a sleep.
    EXPECT_EQ(green::select(on_timeout(1ms)), 0u);
  });
}

TEST_P(select_test, blocks_until_one_channel_is_ready_and_leaves_the_others) {
  run([] {
    green::channel<int> a, b, c;
    std::string v = "unset";
    auto waiter = green::spawn([&] {
      return green::select(on_recv(a, [&](std::optional<int> x) { v = "a" + std::to_string(*x); }),
                           on_recv(b, [&](std::optional<int> x) { v = "b" + std::to_string(*x); }),
                           on_send(c, 9, [&] { v = "c"; }));
    });
    wait_parked(waiter, "select");
    b.send(7);
    EXPECT_EQ(waiter.join(), 1u);
    EXPECT_EQ(v, "b7");
    // select's waiters on a and c are gone.
    EXPECT_FALSE(a.try_send(1));
    int x;
    EXPECT_EQ(c.try_recv(x), op_status::empty);
  });
}

TEST_P(select_test, send_case_moves_only_if_chosen) {
  run([] {
    green::channel<std::unique_ptr<int>> a, b(1);
    auto pa = std::make_unique<int>(1);
    auto pb = std::make_unique<int>(2);
    std::size_t i = green::select(on_send(a, std::move(pa)), on_send(b, std::move(pb)));
    EXPECT_EQ(i, 1u);  // only b has room
    EXPECT_TRUE(pa) << "the unchosen case moved its value";
    EXPECT_FALSE(pb);
    EXPECT_EQ(**b.recv(), 2);
    // Blocking send case picked up by a receiver.
    auto receiver = green::spawn([&] { return **a.recv(); });
    green::select(on_send(a, std::move(pa)), on_timeout(1h, [] { ADD_FAILURE(); }));
    EXPECT_EQ(receiver.join(), 1);
  });
}

TEST_P(select_test, closed_channels) {
  run([] {
    green::channel<int> a, b;
    a.close();
    bool saw_closed = false;
    green::select(on_recv(a, [&](std::optional<int> v) { saw_closed = !v; }));
    EXPECT_TRUE(saw_closed);
    EXPECT_THROW(green::select(on_send(a, 1)), green::closed_error);
    // Closing wakes a blocked select.
    auto waiter = green::spawn([&] {
      bool closed = false;
      green::select(on_recv(b, [&](std::optional<int> v) { closed = !v; }));
      return closed;
    });
    wait_parked(waiter, "select");
    b.close();
    EXPECT_TRUE(waiter.join());
  });
}

TEST_P(select_test, fairness_among_ready_cases) {
  // Every case is always ready; each is chosen with probability 1/k. The
  // chi-square statistic over `trials` picks has k-1 degrees of freedom;
  // with k = 4 the 0.9999 quantile is 21.1, so a fair select fails this
  // one run in 10^4 (seeded per thread, so in practice never), and Go's
  // "first ready case" bias would score in the thousands.
  run([] {
    constexpr int k = 4, trials = 40000;
    std::array<green::channel<int>, k> chs{green::channel<int>(1), green::channel<int>(1), green::channel<int>(1),
                                           green::channel<int>(1)};
    for (auto& c : chs) c.send(0);
    std::array<long, k> hits{};
    for (int t = 0; t < trials; ++t) {
      std::size_t i =
          green::select(on_recv(chs[0], [](std::optional<int>) {}), on_recv(chs[1], [](std::optional<int>) {}),
                        on_recv(chs[2], [](std::optional<int>) {}), on_recv(chs[3], [](std::optional<int>) {}));
      ++hits[i];
      chs[i].send(0);  // ready again
    }
    double expected = double(trials) / k, chi2 = 0;
    for (long h : hits) chi2 += (h - expected) * (h - expected) / expected;
    EXPECT_LT(chi2, 21.1) << hits[0] << " " << hits[1] << " " << hits[2] << " " << hits[3];
  });
}

TEST_P(select_test, same_channel_twice_and_queue_cases) {
  run([] {
    green::channel<int> a(2);
    green::queue<int> q;
    a.send(1);
    int sum = 0;
    green::select(on_recv(a, [&](std::optional<int> v) { sum += *v; }),
                  on_recv(a, [&](std::optional<int> v) { sum += *v; }));
    EXPECT_EQ(sum, 1);
    q.put(5);
    green::select(on_recv(q, [&](std::optional<int> v) { sum += *v; }), on_send(a, 3));
    EXPECT_TRUE(sum == 6 || a.size() == 1);
  });
}

TEST_P(select_test, kill_and_scope_timeout_leave_no_trace) {
  run([] {
    green::channel<int> a, b;
    auto victim = green::spawn([&] {
      green::select(on_recv(a, [](std::optional<int>) { ADD_FAILURE(); }), on_send(b, 1, [] { ADD_FAILURE(); }));
    });
    wait_parked(victim, "select");
    victim.kill();
    expect_killed(victim);
    {
      green::timeout t(2ms);
      EXPECT_THROW(green::select(on_recv(a, [](std::optional<int>) {})), green::timeout_error);
    }
    EXPECT_FALSE(a.try_send(1));
    int v;
    EXPECT_EQ(b.try_recv(v), op_status::empty);
  });
}

TEST_P(select_test, competing_selects_lose_nothing) {
  // Several selecting receivers over two unbuffered channels against
  // senders on both (fibers and a thread): every value sent arrives exactly
  // once, although each select has a waiter on both channels.
  run([] {
    constexpr int per = green::testing::sanitized ? 500 : 3000;
    green::channel<int> a, b;
    std::atomic<long> sum{0};
    std::atomic<int> count{0};
    std::vector<green::fiber<void>> rs;
    for (int r = 0; r < 4; ++r)
      rs.push_back(green::spawn([&] {
        bool open_a = true, open_b = true;
        while (open_a || open_b) {
          auto take = [&](bool& open) {
            return [&](std::optional<int> v) {
              if (!v) open = false;
              else {
                sum += *v;
                ++count;
              }
            };
          };
          if (open_a && open_b) green::select(on_recv(a, take(open_a)), on_recv(b, take(open_b)));
          else if (open_a) green::select(on_recv(a, take(open_a)));
          else green::select(on_recv(b, take(open_b)));
        }
      }));
    auto fa = green::spawn([&] {
      for (int i = 1; i <= per; ++i) a.send(i);
    });
    green::testing::side_thread tb([&] {
      for (int i = 1; i <= per; ++i) b.send(i);
    });
    fa.join();
    tb.join();
    a.close();
    b.close();
    for (auto& f : rs) f.join();
    EXPECT_EQ(count.load(), 2 * per);
    EXPECT_EQ(sum.load(), 2L * per * (per + 1) / 2);
  });
}

TEST_P(select_test, plain_thread_selects) {
  run([] {
    green::channel<int> a, b;
    auto sender = green::spawn([&] { b.send(4); });
    int got = 0;
    green::testing::side_thread t([&] {
      green::select(on_recv(a, [](std::optional<int>) { ADD_FAILURE(); }),
                    on_recv(b, [&](std::optional<int> v) { got = *v; }));
      EXPECT_EQ(green::select(on_recv(a, [](std::optional<int>) {}), on_timeout(2ms)), 1u);
    });
    t.join();
    EXPECT_EQ(got, 4);
  });
}

}  // namespace
