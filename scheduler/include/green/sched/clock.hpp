// green::sched clock — the runtime's time base: every deadline of the park
// seam is a time_point of this clock, and no_deadline means "forever". Kept
// apart from the timer heap (timer.hpp) so that the public headers that only
// take deadlines do not pull in the runtime's timers.
#pragma once

#include <chrono>

namespace green::sched {

using clock = std::chrono::steady_clock;
using time_point = clock::time_point;
inline constexpr time_point no_deadline = time_point::max();

}  // namespace green::sched
