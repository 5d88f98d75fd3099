// The watchdog's self-test. Not run test by test: watchdog_selftest.cmake
// runs this binary under GREEN_WATCHDOG_S=2 and requires the watchdog to end
// it in a_lost_wake_up_hangs, naming that test, with watchdog_exit_code.
// Run by hand, it hangs for the limit (120 s by default) and then fails.
#include <cstdlib>

#include <gtest/gtest.h>

#include <green/green.hpp>

#include "watchdog.hpp"

// Runs first (gtest keeps declaration order): a test that ends in time is
// not named, and the limit is the one the environment gave.
TEST(watchdog_selftest, the_limit_comes_from_the_environment) {
  const char* s = std::getenv("GREEN_WATCHDOG_S");
  ASSERT_NE(s, nullptr) << "run through watchdog_selftest.cmake";
  EXPECT_EQ(green::testing::watchdog_limit_s(), static_cast<unsigned>(std::atoi(s)));
}

// The shape the watchdog exists for: the main fiber waits for a wake-up that
// never comes, and the deadlock detector is off (as it is, in effect, while
// any outside thread exists), so nothing but the watchdog can end it.
TEST(watchdog_selftest, a_lost_wake_up_hangs) {
  green::runtime_config cfg = green::testing::test_config(2);
  cfg.on_deadlock = green::deadlock_policy::ignore;
  green::runtime rt(cfg);
  rt.run([] {
    green::event never;
    never.wait();
  });
  ADD_FAILURE() << "the wait ended";
}
