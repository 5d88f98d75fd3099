// Helpers shared by the sync, channel, queue, select and stress suites.
#pragma once

#include <functional>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <green/event.hpp>

#include <gtest/gtest.h>

#include <green/green.hpp>
#include <green/testing.hpp>

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

// GREEN_WORKER_SUITE(suite) declares a test suite over rt_param,
// instantiated for every worker count of worker_counts(). A suite spread
// over several files of one binary declares its fixture once, in a header
// (GREEN_WORKER_FIXTURE, outside any unnamed namespace, so every file names
// the same class), and instantiates it in exactly one of them
// (GREEN_WORKER_INSTANTIATE), which covers the TEST_Ps of all of them.
#define GREEN_WORKER_FIXTURE(suite) \
  class suite : public ::green::testing::rt_param {}
#define GREEN_WORKER_INSTANTIATE(suite)                                                      \
  INSTANTIATE_TEST_SUITE_P(w, suite, ::testing::ValuesIn(::green::testing::worker_counts()), \
                           ::green::testing::worker_name)
#define GREEN_WORKER_SUITE(suite) \
  GREEN_WORKER_FIXTURE(suite);    \
  GREEN_WORKER_INSTANTIATE(suite)

// wait_parked() waits (yielding a fiber, or the thread) until `f` is parked
// on something whose dump name contains `what`. A test helper for "X is now
// waiting on Y", not a synchronization tool.
template <class T>
void wait_parked(const green::fiber<T>& f, const char* what) {
  for (;;) {
    auto* b = green::testing::native(f);
    const char* why = b->wait_reason();
    if (b->state() == green::sched::fiber_state::parked && why && std::string(why).find(what) != std::string::npos)
      return;
    if (green::sched::current_fiber()) green::this_fiber::yield();
    else std::this_thread::yield();
  }
}

// yield_until() lets other fibers run until `cond` holds (a test helper,
// not a sync tool). Fiber context.
template <class Cond>
void yield_until(Cond cond) {
  while (!cond()) green::this_fiber::yield();
}

// expect_killed() joins a fiber that must have been killed.
template <class T>
void expect_killed(green::fiber<T>& f) {
  EXPECT_THROW(f.join(), green::fiber_killed_error);
}

// join_all() joins every fiber, ignoring those that were killed.
template <class T>
void join_all(std::vector<green::fiber<T>>& fs) {
  for (auto& f : fs) {
    try {
      f.join();
    } catch (const green::fiber_killed_error&) {
    }
  }
}

// expect_throw_with<E>() runs fn, which must throw E with `text` in what().
template <class E, class F>
void expect_throw_with(F&& fn, const std::string& text) {
  try {
    fn();
    ADD_FAILURE() << "expected an exception containing \"" << text << "\"";
  } catch (const E& e) {
    EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
  }
}
// expect_system_error() is expect_throw_with<std::system_error> plus the code.
template <class F>
void expect_system_error(F&& fn, std::errc code, const std::string& text = "") {
  try {
    fn();
    ADD_FAILURE() << "expected std::system_error " << std::make_error_code(code).message();
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
  }
}

// side_thread is a plain OS thread whose join() parks the calling fiber
// (on an event the thread sets as it ends) before std::thread::join(), so a
// fiber that joins it does not block its worker while the thread still
// needs fibers to run (on one worker that would deadlock).
class side_thread {
 public:
  explicit side_thread(std::function<void()> fn)
      : t_([this, fn = std::move(fn)] {
          fn();
          done_.set();
        }) {}
  ~side_thread() {
    if (t_.joinable()) join();
  }
  void join() {
    done_.wait();
    t_.join();
  }

 private:
  green::event done_;
  std::thread t_;
};

}  // namespace green::testing
