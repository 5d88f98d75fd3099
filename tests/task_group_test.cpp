// green::task_group: children cannot outlive the scope, the first failure
// cancels the siblings and is rethrown as itself, the others are kept in
// errors(), a deadline or a timeout around wait() cancels all, nested
// groups and children that spawn children. Every ordering is forced by
// events and latches; a timeout ends only a wait that nothing else can end.
// Parameterized over worker counts, under the watchdog.
#include <atomic>
#include <chrono>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <green/green.hpp>

#include "test_util.hpp"

using namespace std::chrono_literals;

namespace {

using green::testing::expect_throw_with;

GREEN_WORKER_SUITE(task_group_test);

struct my_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct other_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Counts the children that unwound (returned or were killed) with it alive.
struct on_unwind {
  std::atomic<int>& n;
  ~on_unwind() { ++n; }
};

// stuck_children spawns children that wait until they are cancelled: each
// counts itself started, then waits on an event nobody sets; `ran` counts
// those whose body began, `unwound` those that have unwound.
struct stuck_children {
  explicit stuck_children(int count) : started(count) {}
  green::latch started;
  green::event never;
  std::atomic<int> ran{0};
  std::atomic<int> unwound{0};

  green::async_result<int> spawn_one(green::task_group& tg) {
    return tg.spawn([this] {
      ++ran;
      on_unwind u{unwound};
      started.count_down();
      never.wait();
      return 0;
    });
  }
  std::vector<green::async_result<int>> spawn(green::task_group& tg, int count) {
    std::vector<green::async_result<int>> rs;
    for (int i = 0; i < count; ++i) rs.push_back(spawn_one(tg));
    return rs;
  }
};

// what_of() is the message of the exception `e` holds.
std::string what_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  }
}

TEST_P(task_group_test, children_values_come_through_their_handles) {
  run([] {
    green::task_group tg;
    auto a = tg.spawn([](int x) { return x * 2; }, 21);
    auto b = tg.spawn([] { return std::string("b"); });
    tg.wait();
    EXPECT_EQ(a.get(), 42);
    EXPECT_EQ(b.get(), "b");
    EXPECT_TRUE(tg.errors().empty());
  });
}

TEST_P(task_group_test, first_failure_cancels_siblings_and_is_rethrown_as_itself) {
  run([] {
    constexpr int n = 5;
    stuck_children stuck(n);
    green::task_group tg;
    std::vector<green::async_result<int>> siblings = stuck.spawn(tg, n);
    tg.spawn([&] {
      stuck.started.wait();  // every sibling is running
      throw my_error("boom");
    });
    try {
      tg.wait();
      ADD_FAILURE() << "wait() returned";
    } catch (const my_error& e) {
      EXPECT_STREQ(e.what(), "boom");
    }
    EXPECT_EQ(stuck.unwound.load(), n);  // wait() joined every cancelled sibling
    for (auto& s : siblings) EXPECT_THROW(s.get(), green::fiber_killed_error);
    ASSERT_EQ(tg.errors().size(), 1u);  // the cancellations are not errors
  });
}

TEST_P(task_group_test, other_children_errors_are_kept_in_errors) {
  run([] {
    green::latch parked(1);
    green::event never;
    green::task_group tg;
    // b fails while it unwinds from the cancellation: a real second error.
    auto b = tg.spawn([&] {
      try {
        parked.count_down();
        never.wait();
      } catch (const green::fiber_exit&) {
        throw other_error("cleanup failed");
      }
    });
    tg.spawn([&] {
      parked.wait();
      throw my_error("first");
    });
    EXPECT_THROW(tg.wait(), my_error);
    std::vector<std::exception_ptr> errs = tg.errors();
    ASSERT_EQ(errs.size(), 2u);
    EXPECT_EQ(what_of(errs[0]), "first");
    EXPECT_EQ(what_of(errs[1]), "cleanup failed");
    EXPECT_THROW(b.get(), other_error);
  });
}

TEST_P(task_group_test, a_child_that_sees_a_cancelled_sibling_is_not_an_error) {
  run([] {
    stuck_children stuck(2);  // s, and the child below
    green::task_group tg;
    auto s = stuck.spawn_one(tg);
    tg.spawn([&] {
      try {
        stuck.started.count_down();
        stuck.never.wait();
      } catch (const green::fiber_exit&) {
        // swallowed on purpose: the next wait sees the killed sibling
      }
      s.get();  // fiber_killed_error: the cancellation, second-hand
    });
    tg.spawn([&] {
      stuck.started.wait();
      throw my_error("first");
    });
    EXPECT_THROW(tg.wait(), my_error);
    EXPECT_EQ(tg.errors().size(), 1u);
  });
}

TEST_P(task_group_test, destructor_kills_and_joins_children_when_an_exception_leaves_the_scope) {
  run([] {
    constexpr int n = 4;
    stuck_children stuck(n);
    std::vector<green::async_result<int>> children;
    try {
      green::task_group tg;
      children = stuck.spawn(tg, n);
      stuck.started.wait();
      throw my_error("the body failed");
    } catch (const my_error&) {
      EXPECT_EQ(stuck.unwound.load(), n);  // joined before the exception got here
    }
    for (auto& c : children) EXPECT_THROW(c.get(), green::fiber_killed_error);
  });
}

TEST_P(task_group_test, timeout_around_wait_cancels_all_children) {
  run([] {
    constexpr int n = 3;
    stuck_children stuck(n);
    green::task_group tg;
    stuck.spawn(tg, n);
    stuck.started.wait();
    {
      green::timeout t{1ms};
      EXPECT_THROW(tg.wait(), green::timeout_error);
    }
    EXPECT_EQ(stuck.unwound.load(), n);
    EXPECT_TRUE(tg.errors().empty());
    expect_throw_with<std::logic_error>([&] { tg.spawn([] {}); }, "closed");
  });
}

TEST_P(task_group_test, deadline_of_the_group_cancels_all_children) {
  run([] {
    constexpr int n = 3;
    stuck_children stuck(n);
    green::task_group tg{1ms};
    std::vector<green::async_result<int>> children = stuck.spawn(tg, n);
    EXPECT_THROW(tg.wait(), green::timeout_error);
    // The deadline may pass before a child first ran (then it never runs):
    // every child ended killed, and those that ran have unwound.
    for (auto& c : children) {
      EXPECT_TRUE(c.ready());
      EXPECT_THROW(c.get(), green::fiber_killed_error);
    }
    EXPECT_EQ(stuck.unwound.load(), stuck.ran.load());
  });
}

TEST_P(task_group_test, killed_parent_cancels_its_children_in_wait) {
  run([] {
    constexpr int n = 3;
    stuck_children stuck(n);
    auto parent = green::spawn([&] {
      green::task_group tg;
      stuck.spawn(tg, n);
      tg.wait();
    });
    stuck.started.wait();
    parent.kill();
    EXPECT_THROW(parent.join(), green::fiber_killed_error);
    EXPECT_EQ(stuck.unwound.load(), n);
  });
}

TEST_P(task_group_test, nested_group_failure_reaches_the_outer_wait) {
  run([] {
    stuck_children stuck(2 + 3);  // outer siblings + inner siblings
    green::task_group outer;
    stuck.spawn(outer, 2);
    outer.spawn([&] {
      green::task_group inner;
      stuck.spawn(inner, 3);
      inner.spawn([&] {
        stuck.started.wait();
        throw my_error("deep");
      });
      inner.wait();
    });
    try {
      outer.wait();
      ADD_FAILURE() << "wait() returned";
    } catch (const my_error& e) {
      EXPECT_STREQ(e.what(), "deep");
    }
    EXPECT_EQ(stuck.unwound.load(), 5);
    EXPECT_EQ(outer.errors().size(), 1u);
  });
}

// spawn_tree() spawns two children into `tg` down to `depth`; each node counts itself.
void spawn_tree(green::task_group& tg, std::atomic<int>& nodes, int depth) {
  ++nodes;
  if (depth == 0) return;
  for (int i = 0; i < 2; ++i) tg.spawn(spawn_tree, std::ref(tg), std::ref(nodes), depth - 1);
}

TEST_P(task_group_test, children_spawn_children_into_the_same_group) {
  run([] {
    std::atomic<int> nodes{0};
    green::task_group tg;
    tg.spawn(spawn_tree, std::ref(tg), std::ref(nodes), 6);
    tg.wait();
    EXPECT_EQ(nodes.load(), (1 << 7) - 1);
  });
}

TEST_P(task_group_test, spawn_into_a_failed_group_raises_that_failure) {
  run([] {
    green::task_group tg;
    auto r = tg.spawn([] { throw my_error("first"); });
    r.wait();  // the child has failed
    EXPECT_THROW(tg.spawn([] {}), my_error);
    expect_throw_with<std::logic_error>([&] { tg.spawn([] {}); }, "closed");
  });
}

TEST_P(task_group_test, a_child_spawning_into_a_failed_group_gets_a_killed_child) {
  run([] {
    stuck_children stuck(1);
    green::async_result<int> late;
    green::task_group tg;
    tg.spawn([&] {
      try {
        stuck.started.count_down();
        stuck.never.wait();
      } catch (const green::fiber_exit&) {
        // swallowed on purpose: this child spawns after the failure
      }
      late = tg.spawn([&] {  // killed before it runs or at its first suspension point
        stuck.never.wait();
        return 1;
      });
    });
    tg.spawn([&] {
      stuck.started.wait();
      throw my_error("first");
    });
    EXPECT_THROW(tg.wait(), my_error);
    EXPECT_THROW(late.get(), green::fiber_killed_error);
    EXPECT_EQ(tg.errors().size(), 1u);
  });
}

TEST_P(task_group_test, spawn_into_a_cancelled_group_starts_a_killed_child) {
  run([] {
    stuck_children stuck(0);
    green::task_group tg;
    tg.cancel();
    auto r = tg.spawn([&] {  // killed before it runs or at its first suspension point
      stuck.never.wait();
      return 1;
    });
    tg.wait();
    EXPECT_THROW(r.get(), green::fiber_killed_error);
    EXPECT_TRUE(tg.errors().empty());
  });
}

TEST_P(task_group_test, wait_twice_or_from_a_child_is_a_logic_error) {
  run([] {
    {
      green::task_group tg;
      tg.wait();
      expect_throw_with<std::logic_error>([&] { tg.wait(); }, "called twice");
    }
    green::task_group tg;
    tg.spawn([&] { tg.wait(); });
    expect_throw_with<std::logic_error>([&] { tg.wait(); }, "from a child");
  });
}

TEST_P(task_group_test, cancel_ends_the_children_without_an_error) {
  run([] {
    constexpr int n = 3;
    stuck_children stuck(n);
    green::task_group tg;
    stuck.spawn(tg, n);
    auto winner = tg.spawn([&] {
      stuck.started.wait();
      tg.cancel();  // the first answer wins
      return 7;
    });
    tg.wait();
    EXPECT_EQ(winner.get(), 7);
    EXPECT_EQ(stuck.unwound.load(), n);
    EXPECT_TRUE(tg.errors().empty());
  });
}

}  // namespace
