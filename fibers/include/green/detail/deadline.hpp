// green::detail deadlines: every duration and time point the public API takes
// becomes a deadline on the scheduler's clock here, and only here.
//
// Invariant: conversion saturates. A duration too long for the clock, or a
// time point past its range, becomes no_deadline ("forever"), never an
// overflowed value in the past; a zero or negative duration means "now".
// (Before this, sleep_for(nanoseconds::max()) computed now() + d, a signed
// overflow that returned at once: regression tests in timer_test.cpp.)
#pragma once

#include <chrono>
#include <type_traits>

#include "green/sched/clock.hpp"

namespace green::detail {

// deadline_after() is now + d, rounded up to the clock's tick; saturates.
template <class Rep, class Period>
sched::time_point deadline_after(std::chrono::duration<Rep, Period> d) {
  using sched::clock;
  auto now = clock::now();
  if (!(d > d.zero())) return now;  // also a NaN floating-point duration
  // Compare in long double seconds: exact enough at these magnitudes, and no
  // integer type of either side can overflow in the comparison.
  using secs = std::chrono::duration<long double>;
  if (std::chrono::duration_cast<secs>(d) >= std::chrono::duration_cast<secs>(sched::no_deadline - now))
    return sched::no_deadline;
  auto step = std::chrono::ceil<clock::duration>(d);
  if (step >= sched::no_deadline - now) return sched::no_deadline;  // rounding reached the end
  return now + step;
}

// to_deadline() converts a time point of any clock to the scheduler's
// clock; saturates (a time point before now is "now", one past the clock's
// range is no_deadline).
template <class Clock, class Duration>
sched::time_point to_deadline(std::chrono::time_point<Clock, Duration> tp) {
  using sched::clock;
  if constexpr (std::is_same_v<Clock, clock>) {
    if (tp == std::chrono::time_point<Clock, Duration>::max()) return sched::no_deadline;
    using secs = std::chrono::duration<long double>;
    auto s = std::chrono::duration_cast<secs>(tp.time_since_epoch());
    if (s >= std::chrono::duration_cast<secs>(sched::no_deadline.time_since_epoch())) return sched::no_deadline;
    if (s <= std::chrono::duration_cast<secs>(clock::time_point::min().time_since_epoch()))
      return clock::time_point::min();
    return std::chrono::ceil<clock::duration>(tp);
  } else {
    auto now = Clock::now();
    if (tp <= now) return clock::now();
    if (tp == std::chrono::time_point<Clock, Duration>::max()) return sched::no_deadline;
    // tp > now, so tp - now is positive; it can still overflow Duration's
    // signed range only if now is negative, which a clock's now() is not.
    return deadline_after(tp - now);
  }
}

}  // namespace green::detail
