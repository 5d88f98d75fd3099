// Cooperative stop and the quiet kill (issue 15): std::stop_token passed to
// a fiber's function, fiber::request_stop, green waits that a stop request
// ends without an exception (sleep_for, event, condition variables,
// channel recv) from fibers and plain threads, the race of a stop with a
// hand-over, and kill_and_join. Parameterized over worker counts.
#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <thread>

#include <gtest/gtest.h>

#include <green/green.hpp>

#include "test_util.hpp"

using namespace std::chrono_literals;
using green::testing::side_thread;
using green::testing::wait_parked;
using green::testing::yield_until;

namespace {

GREEN_WORKER_SUITE(stop_test);

// ---------------------------------------------------------------------------
// The token and the handle

TEST_P(stop_test, stop_token_is_passed_as_the_first_parameter) {
  run([] {
    auto f = green::spawn(
        [](std::stop_token st, int x) {
          while (!st.stop_requested()) green::this_fiber::yield();
          return x * 2;
        },
        21);
    EXPECT_TRUE(f.get_stop_token().stop_possible());
    EXPECT_TRUE(f.request_stop());
    EXPECT_FALSE(f.request_stop()) << "only the first request makes it";
    EXPECT_EQ(f.join(), 42);
  });
}

TEST_P(stop_test, the_token_a_fiber_receives_is_its_handles) {
  run([] {
    green::event go;
    auto f = green::spawn([&](std::stop_token st) {
      go.wait();
      return st;
    });
    std::stop_token mine = f.get_stop_token();
    go.set();
    EXPECT_TRUE(f.join() == mine) << "same stop state";
  });
}

TEST_P(stop_test, a_fiber_without_a_token_gets_its_stop_state_on_first_use) {
  run([] {
    green::event go;
    auto f = green::spawn([&] { go.wait(); });
    std::stop_source src = f.get_stop_source();
    EXPECT_TRUE(src.stop_possible());
    EXPECT_TRUE(f.request_stop());
    EXPECT_TRUE(src.stop_requested()) << "one state, made once";
    go.set();
    f.join();
  });
}

TEST_P(stop_test, an_empty_handle_has_no_stop_state) {
  green::fiber<void> f;
  EXPECT_FALSE(f.request_stop());
  EXPECT_FALSE(f.get_stop_token().stop_possible());
  EXPECT_FALSE(f.get_stop_source().stop_possible());
}

TEST_P(stop_test, a_fiber_spawned_from_a_plain_thread_gets_its_token) {
  green::runtime rt(green::testing::test_config(GetParam()));
  auto f = rt.spawn([](std::stop_token st) { return green::this_fiber::sleep_for(1h, st); });
  wait_parked(f, "sleep");
  f.request_stop();
  EXPECT_FALSE(f.join());
}

// ---------------------------------------------------------------------------
// Waits a stop request ends: false / nullopt / pred(), no exception

TEST_P(stop_test, request_stop_ends_sleep_for_with_false) {
  run([] {
    auto f = green::spawn([](std::stop_token st) { return green::this_fiber::sleep_for(1h, st); });
    wait_parked(f, "sleep");
    f.request_stop();
    EXPECT_FALSE(f.join());
  });
}

TEST_P(stop_test, sleep_for_with_a_token_never_stopped_sleeps_its_time) {
  run([] {
    std::stop_source src;
    EXPECT_TRUE(green::this_fiber::sleep_for(1ms, src.get_token()));
    EXPECT_TRUE(green::this_fiber::sleep_for(1ms, std::stop_token{})) << "no stop state: a plain sleep";
  });
}

TEST_P(stop_test, request_stop_ends_an_event_wait_with_false) {
  run([] {
    green::event ev;
    auto f = green::spawn([&](std::stop_token st) { return ev.wait(st); });
    wait_parked(f, "event");
    f.request_stop();
    EXPECT_FALSE(f.join());
    ev.set();  // the stopped waiter was unlinked: nothing to wake, nothing freed twice
    EXPECT_TRUE(ev.wait(std::stop_token{}));
  });
}

TEST_P(stop_test, request_stop_ends_a_condition_variable_wait_with_pred) {
  run([] {
    green::mutex m;
    green::condition_variable cv;
    bool ready = false;
    auto f = green::spawn([&](std::stop_token st) {
      std::unique_lock lk(m);
      bool r = cv.wait(lk, st, [&] { return ready; });
      EXPECT_TRUE(lk.owns_lock());
      return r;
    });
    wait_parked(f, "condition_variable");
    f.request_stop();
    EXPECT_FALSE(f.join());
  });
}

TEST_P(stop_test, a_notify_still_ends_a_stop_aware_condition_wait) {
  run([] {
    green::mutex m;
    green::condition_variable_any cv;
    bool ready = false;
    auto f = green::spawn([&](std::stop_token st) {
      std::unique_lock lk(m);
      return cv.wait_for(lk, st, 1h, [&] { return ready; });
    });
    wait_parked(f, "condition_variable");
    {
      std::lock_guard lk(m);
      ready = true;
    }
    cv.notify_one();
    EXPECT_TRUE(f.join());
    f = {};
  });
}

TEST_P(stop_test, request_stop_ends_a_condition_variable_any_wait_until) {
  run([] {
    green::mutex m;
    green::condition_variable_any cv;
    auto f = green::spawn([&](std::stop_token st) {
      std::unique_lock lk(m);
      return cv.wait_until(lk, st, std::chrono::steady_clock::now() + 1h, [] { return false; });
    });
    wait_parked(f, "condition_variable_any");
    f.request_stop();
    EXPECT_FALSE(f.join());
  });
}

// The relock at the end of a condition wait is outside the stop's reach: a
// stop that comes while the mutex is held elsewhere ends the wait, and the
// wait still returns with the lock held.
TEST_P(stop_test, a_stop_does_not_cut_the_relock_of_a_condition_wait) {
  run([] {
    green::mutex m;
    green::condition_variable cv;
    auto f = green::spawn([&](std::stop_token st) {
      std::unique_lock lk(m);
      bool r = cv.wait(lk, st, [] { return false; });
      EXPECT_TRUE(lk.owns_lock());
      return r;
    });
    wait_parked(f, "condition_variable");
    std::unique_lock held(m);
    f.request_stop();
    wait_parked(f, "mutex");  // woken by the stop, now relocking behind us
    held.unlock();
    EXPECT_FALSE(f.join());
  });
}

TEST_P(stop_test, request_stop_ends_a_channel_recv_with_nullopt) {
  run([] {
    green::channel<int> ch;  // unbuffered
    auto f = green::spawn([&](std::stop_token st) { return ch.recv(st); });
    wait_parked(f, "channel recv");
    f.request_stop();
    EXPECT_EQ(f.join(), std::nullopt);
    EXPECT_FALSE(ch.try_send(1)) << "the stopped receiver must have left the channel";
  });
}

TEST_P(stop_test, a_stop_from_a_plain_thread_wakes_a_fiber) {
  run([] {
    std::stop_source src;
    auto f = green::spawn([tok = src.get_token()] { return green::this_fiber::sleep_for(1h, tok); });
    side_thread t([&] {
      wait_parked(f, "sleep");
      src.request_stop();
    });
    EXPECT_FALSE(f.join());
  });
}

// A plain thread blocked in a condition wait is woken by a fiber's stop
// request. The order is forced: the thread links itself before it releases
// the mutex, so once the fiber holds the mutex with `waiting` set, the
// thread is (about to be) parked and only the stop can end its wait.
TEST_P(stop_test, a_plain_thread_in_a_condition_wait_is_stopped_by_a_fiber) {
  run([] {
    std::stop_source src;
    green::mutex m;
    green::condition_variable cv;
    bool waiting = false;
    std::atomic<int> result{-1};
    side_thread t([&] {
      std::unique_lock lk(m);
      waiting = true;
      result = cv.wait(lk, src.get_token(), [] { return false; }) ? 1 : 0;
    });
    for (;;) {
      std::unique_lock lk(m);
      if (waiting) break;
      lk.unlock();
      green::this_fiber::yield();
    }
    src.request_stop();
    t.join();
    EXPECT_EQ(result.load(), 0);
  });
}

// Plain threads take the same stop-aware waits: sleep, event, channel.
TEST_P(stop_test, plain_thread_waits_are_stopped_too) {
  run([] {
    std::stop_source src;
    green::event ev;
    green::channel<int> ch;
    std::atomic<int> ended{0};
    auto tok = src.get_token();
    side_thread a([&] {
      EXPECT_FALSE(green::this_fiber::sleep_for(1h, tok));
      ++ended;
    });
    side_thread b([&] {
      EXPECT_FALSE(ev.wait(tok));
      ++ended;
    });
    side_thread c([&] {
      EXPECT_EQ(ch.recv(tok), std::nullopt);
      ++ended;
    });
    src.request_stop();
    a.join();
    b.join();
    c.join();
    EXPECT_EQ(ended.load(), 3);
  });
}

TEST_P(stop_test, a_stop_requested_before_the_wait_returns_at_once) {
  run([] {
    std::stop_source src;
    src.request_stop();
    auto tok = src.get_token();
    green::event ev;
    green::mutex m;
    green::condition_variable cv;
    green::channel<int> ch(1);
    EXPECT_FALSE(green::this_fiber::sleep_for(1h, tok));
    EXPECT_FALSE(ev.wait(tok));
    {
      std::unique_lock lk(m);
      EXPECT_FALSE(cv.wait(lk, tok, [] { return false; }));
      EXPECT_TRUE(cv.wait(lk, tok, [] { return true; })) << "pred() is the answer";
    }
    EXPECT_EQ(ch.recv(tok), std::nullopt);
    ch.send(7);
    EXPECT_EQ(ch.recv(tok), 7) << "a value already there is still taken";
    ev.set();
    EXPECT_TRUE(ev.wait(tok));
  });
}

// A stop and a send race for one parked receiver: the value is received
// exactly once, by the receiver or (if the stop won) left in the channel;
// never lost, never both. No timing: each round's order is whatever the
// race gives, and every order must satisfy the same count.
TEST_P(stop_test, a_stop_racing_a_send_delivers_exactly_one_outcome) {
  run([] {
    constexpr int rounds = 200;
    int received = 0, stopped = 0;
    for (int i = 0; i < rounds; ++i) {
      green::channel<int> ch(1);
      std::stop_source src;
      auto f = green::spawn([&, tok = src.get_token()] { return ch.recv(tok); });
      wait_parked(f, "channel recv");
      std::atomic<bool> go{false};
      std::thread stopper([&] {
        while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
        src.request_stop();
      });
      go.store(true, std::memory_order_release);
      ch.send(i);
      std::optional<int> got = f.join();
      stopper.join();
      int left = -1;
      bool in_channel = ch.try_recv(left) == green::op_status::success;
      if (got) {
        EXPECT_EQ(*got, i);
        EXPECT_FALSE(in_channel) << "delivered twice";
        ++received;
      } else {
        EXPECT_TRUE(in_channel) << "lost";
        EXPECT_EQ(left, i);
        ++stopped;
      }
    }
    EXPECT_EQ(received + stopped, rounds);
  });
}

// A kill still interrupts a stop-aware wait, and its waiter leaves the
// primitive (the event's destructor would terminate otherwise).
TEST_P(stop_test, kill_ends_a_stop_aware_wait_with_fiber_exit) {
  run([] {
    green::event ev;
    std::stop_source src;
    auto f = green::spawn([&, tok = src.get_token()] { ev.wait(tok); });
    wait_parked(f, "event");
    f.kill();
    EXPECT_THROW(f.join(), green::fiber_killed_error);
    src.request_stop();  // the callback was deregistered: nothing to wake
  });
}

// ---------------------------------------------------------------------------
// kill() then join() raises; kill_and_join() is quiet

TEST_P(stop_test, kill_then_join_raises_fiber_killed_error) {
  run([] {
    auto f = green::spawn([] { green::this_fiber::sleep_for(1h); });
    wait_parked(f, "sleep");
    f.kill();
    EXPECT_THROW(f.join(), green::fiber_killed_error);
  });
}

TEST_P(stop_test, kill_and_join_is_quiet) {
  run([] {
    auto f = green::spawn([] {
      green::this_fiber::sleep_for(1h);
      return 1;
    });
    wait_parked(f, "sleep");
    EXPECT_TRUE(f.kill_and_join());
    EXPECT_FALSE(f.joinable());
    EXPECT_THROW(f.kill_and_join(), std::logic_error) << "not joinable any more";
  });
}

TEST_P(stop_test, kill_and_join_right_after_spawn_is_quiet) {
  run([] {
    auto f = green::spawn([] { green::this_fiber::sleep_for(1h); });
    EXPECT_TRUE(f.kill_and_join());  // killed before it started, or in its sleep
  });
}

TEST_P(stop_test, kill_and_join_of_a_finished_fiber_returns_false) {
  run([] {
    auto f = green::spawn([] { return 5; });
    yield_until([&] { return f.done(); });
    EXPECT_FALSE(f.kill_and_join());
  });
}

TEST_P(stop_test, kill_and_join_rethrows_an_error_from_before_the_kill) {
  run([] {
    auto f = green::spawn([] { throw std::runtime_error("boom"); });
    yield_until([&] { return f.done(); });
    EXPECT_THROW(f.kill_and_join(), std::runtime_error);
    EXPECT_FALSE(f.joinable());
  });
}

}  // namespace
