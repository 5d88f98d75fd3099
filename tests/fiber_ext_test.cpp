// The public layer's per-fiber state behind the runtime's uninterpreted hook
// (green/detail/fiber_ext.hpp): fiber_local values destroyed at the fiber's
// exit, on the fiber, before joiners see done(); green::timeout scopes folded
// into parks by the public layer (the runtime's park and wait_fd know only
// their own deadline); and no extension at all for a fiber that needs none.
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>

#include <green/detail/wait.hpp>
#include <green/sched/io.hpp>

#include "test_util.hpp"

using namespace std::chrono_literals;
using green::sched::wake_reason;

namespace {

GREEN_WORKER_SUITE(fiber_ext_test);

// exit_log records how a fiber_local value was destroyed.
struct exit_log {
  std::atomic<int> destroyed{0};
  std::uint64_t on_fiber = 0;  // this_fiber::id() in the destructor
  bool owner_was_done = true;  // the owner's done() in the destructor
};

// probe is a fiber_local value that writes to an exit_log when destroyed.
// then(), if set, runs in its destructor (a destructor that uses a
// fiber_local again).
struct probe {
  exit_log* log = nullptr;
  green::sched::fiber_base* owner = nullptr;
  void (*then)() = nullptr;
  void arm(exit_log* l) {
    log = l;
    owner = green::sched::current_fiber();
  }
  probe() = default;
  probe(const probe&) = delete;
  probe& operator=(const probe&) = delete;
  probe(probe&& o) noexcept : log(std::exchange(o.log, nullptr)), owner(o.owner), then(o.then) {}
  ~probe() {
    if (log == nullptr) return;
    log->on_fiber = green::this_fiber::id();
    log->owner_was_done = owner != nullptr && owner->done();
    if (then) then();
    log->destroyed.fetch_add(1);
  }
};

enum class ending { returns, throws, killed };

// A fiber that stores a fiber_local value and then ends as `how` says: its
// value is destroyed once, on that fiber, before done() is true.
void check_value_destroyed_at_exit(ending how) {
  green::fiber_local<probe> local;
  exit_log log;
  green::event never;
  std::uint64_t id = 0;
  auto f = green::spawn([&] {
    local->arm(&log);
    id = green::this_fiber::id();
    if (how == ending::throws) throw std::runtime_error("thrown");
    if (how == ending::killed) never.wait();
  });
  if (how == ending::killed) {
    green::testing::wait_parked(f, "event");
    f.kill();
    EXPECT_THROW(f.join(), green::fiber_killed_error);
  } else if (how == ending::throws) {
    EXPECT_THROW(f.join(), std::runtime_error);
  } else {
    f.join();
  }
  EXPECT_EQ(log.destroyed.load(), 1);
  EXPECT_EQ(log.on_fiber, id);
  EXPECT_FALSE(log.owner_was_done);
}

TEST_P(fiber_ext_test, fiber_local_values_are_destroyed_when_a_killed_fiber_exits) {
  run([] { check_value_destroyed_at_exit(ending::killed); });
}

TEST_P(fiber_ext_test, fiber_local_values_are_destroyed_when_a_fiber_throws_or_returns) {
  run([] {
    check_value_destroyed_at_exit(ending::throws);
    check_value_destroyed_at_exit(ending::returns);
  });
}

// A value's destructor that stores a value in another fiber_local: that one
// is destroyed at the exit too (the old runtime loop resized the slots it
// was walking).
green::fiber_local<probe>* second_local = nullptr;
exit_log* second_log = nullptr;

TEST_P(fiber_ext_test, fiber_local_destructor_that_uses_a_fiber_local_is_cleaned_up_too) {
  run([] {
    green::fiber_local<probe> first, second;
    exit_log log1, log2;
    second_local = &second;
    second_log = &log2;
    std::uint64_t id = 0;
    auto f = green::spawn([&] {
      id = green::this_fiber::id();
      first->arm(&log1);
      first->then = [] { (*second_local)->arm(second_log); };
    });
    f.join();
    EXPECT_EQ(log1.destroyed.load(), 1);
    EXPECT_EQ(log2.destroyed.load(), 1);
    EXPECT_EQ(log2.on_fiber, id);
    EXPECT_FALSE(log2.owner_was_done);
  });
}

// fiber_local on a plain thread still acts as thread_local, destroyed at
// the thread's exit.
TEST(fiber_ext, fiber_local_on_a_plain_thread_is_destroyed_at_thread_exit) {
  green::fiber_local<probe> local;
  exit_log log;
  std::thread([&] { local->arm(&log); }).join();
  EXPECT_EQ(log.destroyed.load(), 1);
  EXPECT_EQ(log.on_fiber, 0u);
}

// What a fiber that uses no timeout scope, no fiber_local and no pthread
// lock pays: nothing but the null pointer. The first scope allocates the
// extension; the fiber's exit frees it.
TEST_P(fiber_ext_test, a_fiber_that_needs_no_extension_allocates_none) {
  run([] {
    green::event go;
    auto f = green::spawn([&] {
      green::sched::fiber_base* self = green::sched::current_fiber();
      green::mutex m;
      { std::lock_guard lk(m); }
      green::this_fiber::sleep_for(1ms);
      green::this_fiber::yield();
      green::channel<int> ch(1);
      ch.send(1);
      EXPECT_EQ(ch.recv(), 1);
      go.wait();
      bool before = green::testing::has_extension(self);
      {
        green::timeout t(1h);
        EXPECT_TRUE(green::testing::has_extension(self));
      }
      EXPECT_TRUE(green::testing::has_extension(self));  // kept until the exit
      return before;
    });
    green::testing::wait_parked(f, "event");
    go.set();
    EXPECT_TRUE(f.wait_for(1h));
    EXPECT_FALSE(green::testing::has_extension(green::testing::native(f)));  // freed at the exit
    EXPECT_FALSE(f.join());
  });
}

// The runtime's park knows only its own deadline; scoped_park folds the
// scope in and reports which deadline ended the park.
TEST_P(fiber_ext_test, timeout_scope_ends_a_park_only_through_the_public_layer) {
  run([] {
    {
      green::timeout t(1ms);
      green::sched::ticket tk = green::sched::prepare_park();
      EXPECT_EQ(green::detail::scoped_park(tk, "test"), wake_reason::scope_timeout);
      // Expired now; the seam's own park with its own deadline ignores it.
      tk = green::sched::prepare_park();
      EXPECT_EQ(green::sched::park(tk, "test", green::sched::clock::now() + 1ms), wake_reason::timeout);
      EXPECT_THROW(green::this_fiber::sleep_for(1h), green::timeout_error);
    }
    green::timeout far(1h);
    green::sched::ticket tk = green::sched::prepare_park();
    EXPECT_EQ(green::detail::scoped_park(tk, "test", green::sched::clock::now() + 1ms), wake_reason::timeout);
  });
}

// join() parks inside the runtime (wait_done); the public layer folds the
// scope in there too. The interrupted join leaves the handle joinable.
TEST_P(fiber_ext_test, timeout_scope_interrupts_join_and_the_handle_stays_joinable) {
  run([] {
    green::event go;
    auto f = green::spawn([&] {
      go.wait();
      return 7;
    });
    {
      green::timeout t(2ms);
      try {
        f.join();
        ADD_FAILURE() << "join did not time out";
      } catch (const green::timeout_error& e) {
        EXPECT_EQ(e.owner(), &t);
      }
    }
    EXPECT_TRUE(f.joinable());
    go.set();
    EXPECT_EQ(f.join(), 7);
  });
}

// On a plain thread a timeout scope has no effect (timeout.hpp): every wait
// ends by its own deadline, and nested scopes unwind cleanly.
TEST(fiber_ext, timeout_scope_on_a_plain_thread_has_no_effect) {
  int sp[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sp), 0);
  std::thread([&] {
    green::timeout outer(0ms);
    green::timeout inner(1h);
    green::event ev;
    EXPECT_FALSE(ev.wait_for(1ms));  // no timeout_error
    green::sched::ticket tk = green::sched::prepare_park();
    EXPECT_EQ(green::detail::scoped_park(tk, "test", green::sched::clock::now() + 1ms), wake_reason::timeout);
    EXPECT_EQ(green::detail::scoped_wait_fd(sp[0], green::sched::io_dir::read, green::sched::clock::now() + 1ms),
              wake_reason::timeout);
    green::this_fiber::sleep_for(1ms);  // returns
  }).join();
  ::close(sp[0]);
  ::close(sp[1]);
}

// A scope around an fd wait in a fiber: green::net and the patch library
// use scoped_wait_fd, so the scope ends it (net_test and patch_test check
// their own error mapping).
TEST_P(fiber_ext_test, timeout_scope_ends_an_fd_wait_in_a_fiber) {
  run([] {
    int sp[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sp), 0);
    {
      green::timeout t(1ms);
      EXPECT_EQ(green::detail::scoped_wait_fd(sp[0], green::sched::io_dir::read), wake_reason::scope_timeout);
    }
    EXPECT_EQ(green::sched::io_waiters(), 0u);
    green::sched::notify_close(sp[0]);
    green::sched::notify_close(sp[1]);
    ::close(sp[0]);
    ::close(sp[1]);
  });
}

}  // namespace
