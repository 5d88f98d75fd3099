// Helpers shared by the sync, channel, queue, select and stress suites.
#pragma once

#include <string>
#include <thread>
#include <utility>

#include <gtest/gtest.h>

#include <green/green.hpp>

#include "watchdog.hpp"

namespace green::testing {

// rt_param runs a test body as the main fiber of a runtime with
// GetParam() workers (tiny run queues: see test_config()).
class rt_param : public ::testing::TestWithParam<unsigned> {
 protected:
  template <class F>
  auto run(F&& f) {
    green::runtime rt(test_config(GetParam()));
    return rt.run(std::forward<F>(f));
  }
};

// wait_parked() waits (yielding a fiber, or the thread) until `f` is parked
// on something whose dump name contains `what`. A test helper for "X is now
// waiting on Y", not a synchronization tool.
template <class T>
void wait_parked(const green::fiber<T>& f, const char* what) {
  for (;;) {
    auto* b = f.native();
    const char* why = b->wait_reason();
    if (b->state() == green::sched::fiber_state::parked && why && std::string(why).find(what) != std::string::npos)
      return;
    if (green::sched::current_fiber()) green::this_fiber::yield();
    else std::this_thread::yield();
  }
}

// expect_killed() joins a fiber that must have been killed.
template <class T>
void expect_killed(green::fiber<T>& f) {
  EXPECT_THROW(f.join(), green::fiber_killed_error);
}

}  // namespace green::testing
