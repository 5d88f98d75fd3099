// green::sched::wake_reason — why a park ended. The one piece of the
// park/wake seam that the public API's error mapping needs
// (green::detail::raise_interrupt), kept apart so that green/errors.hpp
// does not pull in the runtime's control block.
#pragma once

#include <cstdint>

namespace green::sched {

// Why a park ended.
enum class wake_reason : std::uint8_t {
  none = 0,           // not woken yet
  notified = 1,       // a waker chose this ticket
  timeout = 2,        // the park's own deadline passed
  scope_timeout = 3,  // a green::timeout scope's deadline passed (the public
                      // layer reports it; the runtime's park never does)
  killed = 4,         // the fiber was killed
  deadlock = 5,       // the runtime found every fiber asleep (main fiber only)
  closed = 6,         // the fd the fiber waited on was closed
  stopped = 7,        // a std::stop_token's stop request ended a stop-aware
                      // wait (the public layer's green/stop.hpp; the
                      // runtime never wakes with it)
};

}  // namespace green::sched
