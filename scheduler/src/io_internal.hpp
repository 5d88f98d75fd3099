// Internal links between the reactor, the fd table (io.cpp) and the
// scheduler. Not installed.
#pragma once

#include <cstdint>

#include "green/sched/scheduler.hpp"

namespace green::sched {

class reactor;

namespace io_internal {
// The key the reactor stores for the eventfd that interrupts a wait; fd
// keys are fd | generation << 32 with fd < 2^31, so they never equal it.
constexpr std::uint64_t wake_key = ~std::uint64_t{0};
// on_ready() hands one readiness event to the fd table. The polling thread.
void on_ready(std::uint64_t key, std::uint32_t events) noexcept;
// forget() drops every registration with `r` (its runtime is going away).
void forget(reactor* r) noexcept;
// current_reactor() is the reactor of the calling fiber's runtime, or null
// on a plain thread (scheduler.cpp). One TLS read instead of two.
reactor* current_reactor() noexcept;
// park_io() is park() counted as an fd wait of the calling fiber's runtime
// (io_waiters(), the deadlock check, the monitor's polls). Fiber context.
wake_reason park_io(ticket t, const char* what, time_point deadline) noexcept;
}  // namespace io_internal

}  // namespace green::sched
