// green::this_fiber — operations on the calling fiber.
#pragma once

#include <chrono>
#include <cstdint>
#include <stop_token>
#include <string>

#include "green/detail/deadline.hpp"

namespace green::this_fiber {

// yield() lets other runnable fibers run first. It is a cancellation point
// (gevent's sleep(0)): a fiber with a pending kill raises green::fiber_exit
// here, so a loop that only yields can still be killed. Fiber context (on a
// plain thread it yields the OS thread and never throws).
void yield();

// sleep_until() suspends the fiber until `tp` (a plain thread sleeps).
// Raises fiber_exit if killed and timeout_error if a green::timeout expires.
// sleep_for(d): a d too long for the clock sleeps forever (it saturates);
// sleep_for(0) and negative durations still switch, and raise fiber_exit
// for a pending kill, like yield().
void sleep_until(sched::time_point tp);
template <class Clock, class Duration>
void sleep_until(std::chrono::time_point<Clock, Duration> tp) {
  sleep_until(detail::to_deadline(tp));
}
template <class Rep, class Period>
void sleep_for(std::chrono::duration<Rep, Period> d) {
  sleep_until(detail::deadline_after(d));
}

// sleep_until(tp, stop) / sleep_for(d, stop) sleep like the forms above
// but end early when a stop is requested on `stop` (std::stop_source::
// request_stop, or fiber::request_stop, from any fiber or thread): true if
// the time passed, false if the stop ended the sleep, never an exception
// for it. A stop requested before the call returns false at once. Kills and
// green::timeout scopes raise as above. Fiber or thread context (a plain
// thread blocks, and a stop wakes it too).
bool sleep_until(sched::time_point tp, const std::stop_token& stop);
template <class Clock, class Duration>
bool sleep_until(std::chrono::time_point<Clock, Duration> tp, const std::stop_token& stop) {
  return sleep_until(detail::to_deadline(tp), stop);
}
template <class Rep, class Period>
bool sleep_for(std::chrono::duration<Rep, Period> d, const std::stop_token& stop) {
  return sleep_until(detail::deadline_after(d), stop);
}

// id() is the fiber's id (unique in the process, never 0); 0 on a plain thread.
std::uint64_t id() noexcept;
// name() is the fiber's name ("" if unnamed); on a plain thread, "".
std::string name();
void set_name(std::string name);

}  // namespace green::this_fiber
