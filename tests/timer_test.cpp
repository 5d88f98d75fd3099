// Timer heap logic on a virtual clock: no sleeping, no wall-clock asserts.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "timer.hpp"

#include "watchdog.hpp"

using namespace green::sched;

namespace {
struct test_timer : timer_node {
  std::vector<int>* log = nullptr;
  int id = 0;
};
time_point at(int ms) { return time_point(std::chrono::milliseconds(ms)); }
}  // namespace

TEST(timer_heap, fires_in_deadline_order_up_to_now) {
  timer_heap h;
  std::vector<int> log;
  std::vector<test_timer> t(5);
  int when[] = {50, 10, 40, 20, 30};
  for (int i = 0; i < 5; ++i) {
    t[i].log = &log;
    t[i].id = when[i];
    t[i].fire = [](timer_node* n) {
      auto* tt = static_cast<test_timer*>(n);
      tt->log->push_back(tt->id);
    };
    h.arm(&t[i], at(when[i]));
  }
  EXPECT_EQ(h.earliest(), at(10));
  EXPECT_EQ(h.fire_expired(at(25)), 2u);
  EXPECT_EQ(log, (std::vector<int>{10, 20}));
  EXPECT_EQ(h.earliest(), at(30));
  EXPECT_EQ(h.fire_expired(at(1000)), 3u);
  EXPECT_EQ(log, (std::vector<int>{10, 20, 30, 40, 50}));
  EXPECT_EQ(h.size(), 0u);
  EXPECT_EQ(h.earliest(), no_deadline);
}

TEST(timer_heap, cancel_removes_only_unfired_timers) {
  timer_heap h;
  std::vector<int> log;
  std::vector<test_timer> t(3);
  for (int i = 0; i < 3; ++i) {
    t[i].log = &log;
    t[i].id = i;
    t[i].fire = [](timer_node* n) { static_cast<test_timer*>(n)->log->push_back(static_cast<test_timer*>(n)->id); };
    h.arm(&t[i], at(10 * (i + 1)));
  }
  EXPECT_TRUE(timer_heap::cancel(&t[1]));
  EXPECT_FALSE(timer_heap::cancel(&t[1]));  // already removed
  h.fire_expired(at(10));
  EXPECT_FALSE(timer_heap::cancel(&t[0]));  // already fired
  h.fire_expired(at(100));
  EXPECT_EQ(log, (std::vector<int>{0, 2}));
}

TEST(timer_heap, random_arm_cancel_keeps_heap_order) {
  timer_heap h;
  std::mt19937 rng(42);
  std::vector<int> log;
  std::vector<test_timer> t(2000);
  std::vector<int> expected;
  for (int i = 0; i < 2000; ++i) {
    t[i].log = &log;
    t[i].id = static_cast<int>(rng() % 100000);
    t[i].fire = [](timer_node* n) { static_cast<test_timer*>(n)->log->push_back(static_cast<test_timer*>(n)->id); };
    h.arm(&t[i], at(t[i].id));
  }
  for (int i = 0; i < 2000; ++i) {
    if (i % 3 == 0) EXPECT_TRUE(timer_heap::cancel(&t[i]));
    else expected.push_back(t[i].id);
  }
  std::sort(expected.begin(), expected.end());
  h.fire_expired(at(1000000));
  EXPECT_EQ(log, expected);
}
