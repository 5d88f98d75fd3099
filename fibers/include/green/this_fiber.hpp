// green::this_fiber — operations on the calling fiber.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "green/sched/scheduler.hpp"

namespace green::this_fiber {

// yield() lets other runnable fibers run first. Fiber context (on a plain
// thread it yields the OS thread).
void yield() noexcept;

// sleep_until() suspends the fiber until `tp` (a plain thread sleeps).
// Raises fiber_exit if killed and timeout_error if a green::timeout expires.
void sleep_until(sched::time_point tp);
template <class Clock, class Duration>
void sleep_until(std::chrono::time_point<Clock, Duration> tp) {
  sleep_until(sched::clock::now() + std::chrono::ceil<sched::clock::duration>(tp - Clock::now()));
}
template <class Rep, class Period>
void sleep_for(std::chrono::duration<Rep, Period> d) {
  sleep_until(sched::clock::now() + std::chrono::ceil<sched::clock::duration>(d));
}

// id() is the fiber's id (unique in the process, never 0); 0 on a plain thread.
std::uint64_t id() noexcept;
// name() is the fiber's name ("" if unnamed); on a plain thread, "".
std::string name();
void set_name(std::string name);

}  // namespace green::this_fiber
