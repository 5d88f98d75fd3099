// Internal links between the fd table (io.cpp), the runtime (io_seam.cpp)
// and the reactor's callers (the worker loop, the monitor, lifecycle).
// Not installed.
//
// Direction: the fd table calls down into the runtime (current_reactor,
// park_io); the runtime hands readiness up to the fd table only through
// dispatch(), called by the worker loop and the monitor, which sit above
// both. So io.o -> io_seam.o, and worker.o/monitor.o -> io.o, never back.
#pragma once

#include <cstdint>

#include "green/sched/scheduler.hpp"
#include "reactor.hpp"

namespace green::sched::io_internal {

// dispatch() hands a batch of readiness events to the fd table (the
// reactor's sink), which wakes the fibers waiting on them. The thread that
// polled, once it is no longer idle (io.cpp).
void dispatch(const reactor::ready_event* ev, int n) noexcept;
// forget() drops every registration with `r` (its runtime is going away).
// Lifecycle only (io.cpp).
void forget(reactor* r) noexcept;
// current_reactor() is the reactor of the calling fiber's runtime, or null
// on a plain thread (io_seam.cpp). One TLS read instead of two.
reactor* current_reactor() noexcept;
// park_io() is park() counted as an fd wait of the calling fiber's runtime
// (io_waiters(), the deadlock check, the monitor's polls). Fiber context
// (io_seam.cpp).
wake_reason park_io(ticket t, const char* what, time_point deadline) noexcept;

}  // namespace green::sched::io_internal
