// green::op_status — how a non-blocking or timed channel/queue operation ended.
#pragma once

#include <cstdint>

namespace green {

// op_status is what try_recv / recv_for (channel) and try_get / get_for
// (queue) return. Blocking receives return std::optional<T> instead (empty:
// closed and drained); sends report "closed" by throwing green::closed_error.
enum class op_status : std::uint8_t {
  success,  // a value was received (or sent)
  empty,    // try_*: nothing to receive right now
  full,     // try_*: no room and no receiver right now
  timeout,  // the call's own deadline passed first
  closed,   // closed and drained: nothing will ever arrive
};

const char* to_string(op_status s) noexcept;

}  // namespace green
