// Internal links between the reactor, the fd table (io.cpp) and the
// scheduler. Not installed.
#pragma once

#include <cstdint>

namespace green::sched {

class reactor;
class scheduler;

namespace io_internal {
// The key the reactor stores for the eventfd that interrupts a wait; fd
// keys are fd | generation << 32 with fd < 2^31, so they never equal it.
constexpr std::uint64_t wake_key = ~std::uint64_t{0};
// on_ready() hands one readiness event to the fd table. The polling thread.
void on_ready(std::uint64_t key, std::uint32_t events) noexcept;
// forget() drops every registration with `r` (its runtime is going away).
void forget(reactor* r) noexcept;
// reactor_of() is the reactor of runtime `s` (scheduler.cpp).
reactor* reactor_of(scheduler* s) noexcept;
}  // namespace io_internal

}  // namespace green::sched
