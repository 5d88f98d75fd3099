// green::with_timeout: fn's value, timeout_error on expiry, the fallback
// form, and which scope a timeout_error belongs to. A timeout here only ends
// a wait that nothing else can end (an event nobody sets). The misuse of
// green::timeout that the compiler must flag is checked by
// compile_fail/timeout_misuse.cpp (ctest: compile_fail.timeout_misuse_*).
// Parameterized over worker counts, under the watchdog.
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

#include <green/green.hpp>

#include "test_util.hpp"

using namespace std::chrono_literals;

namespace {

GREEN_WORKER_SUITE(timeout_test);

TEST_P(timeout_test, with_timeout_returns_the_value) {
  run([] {
    EXPECT_EQ(green::with_timeout(1h, [] { return 42; }), 42);
    auto p = green::with_timeout(1h, [] { return std::make_unique<int>(7); });  // move-only results
    EXPECT_EQ(*p, 7);
    int calls = 0;
    green::with_timeout(1h, [&] { ++calls; });  // void
    EXPECT_EQ(calls, 1);
  });
}

TEST_P(timeout_test, with_timeout_raises_timeout_error_on_expiry) {
  run([] {
    green::event never;
    const void* owner = nullptr;
    try {
      green::with_timeout(1ms, [&] { never.wait(); });
      ADD_FAILURE() << "with_timeout returned";
    } catch (const green::timeout_error& e) {
      owner = e.owner();
    }
    EXPECT_NE(owner, nullptr);
  });
}

TEST_P(timeout_test, with_timeout_passes_fn_exceptions_through) {
  run([] {
    EXPECT_THROW(green::with_timeout(1h, []() -> int { throw std::invalid_argument("bad"); }), std::invalid_argument);
  });
}

TEST_P(timeout_test, with_timeout_fallback_is_returned_on_expiry) {
  run([] {
    green::channel<int> ch;  // nobody sends
    EXPECT_EQ(green::with_timeout(
                  1ms, [&] { return ch.recv(); }, -1),
              -1);
    EXPECT_EQ(green::with_timeout(
                  1h, [] { return std::string("v"); }, "fallback"),
              "v");
  });
}

TEST_P(timeout_test, with_timeout_fallback_does_not_swallow_an_enclosing_scope) {
  run([] {
    green::event never;
    green::timeout outer{1ms};
    try {
      // The inner scope is far off: only the outer one can expire.
      (void)green::with_timeout(
          1h,
          [&] {
            never.wait();
            return 1;
          },
          0);
      ADD_FAILURE() << "the fallback swallowed the outer scope's timeout";
    } catch (const green::timeout_error& e) {
      EXPECT_EQ(e.owner(), &outer);
    }
  });
}

TEST_P(timeout_test, with_timeout_fallback_does_not_swallow_an_inner_scope) {
  run([] {
    green::event never;
    int got = green::with_timeout(
        1h,
        [&] {
          try {
            green::timeout inner{1ms};
            never.wait();
          } catch (const green::timeout_error&) {
            return 2;  // fn handled its own scope
          }
          return 1;
        },
        0);
    EXPECT_EQ(got, 2);
    EXPECT_THROW((void)green::with_timeout(
                     1h,
                     [&] {
                       green::timeout inner{1ms};
                       never.wait();
                       return 1;
                     },
                     0),
                 green::timeout_error);
  });
}

}  // namespace
