// green::sched I/O readiness: the seam sockets (fibers/net) and the patch
// layer build on. A fiber that waits for an fd parks; the runtime's poller
// (the reactor an idle worker sleeps in, see reactor.hpp) makes it runnable
// when the fd is ready, preferably on the worker that polled.
//
// Protocol (Go's netpoll): the caller works on a non-blocking fd; when the
// operation fails with EAGAIN it calls wait_fd() and retries. wait_fd() may
// return `notified` spuriously (a readiness edge that was consumed already),
// so callers always loop. Readiness is exact in one direction: after a
// stream read returned less than asked (the receive queue was emptied), a
// caller may wait_fd() before reading again instead of paying a read that
// fails with EAGAIN: new data makes a new edge, and a peer's close or an
// error seen once keeps every later wait returning at once (sticky until
// notify_close), so a FIN that arrived with the data is not lost.
//
// Closing: call notify_close(fd) BEFORE ::close(fd). It wakes every fiber
// waiting on fd with wake_reason::closed and forgets the fd's registration,
// so a later fd with the same number starts clean and a stale readiness
// event for the old one never wakes a waiter of the new one. An fd closed
// without notify_close() leaves its waiters parked until their deadline
// (green::net and the patch layer always call it).
#pragma once

#include <cstdint>

#include "green/sched/scheduler.hpp"

namespace green::sched {

enum class io_dir : std::uint8_t { read = 1, write = 2 };

// wait_fd() waits until `fd` is ready for `dir`, the deadline (or a
// green::timeout scope) passes, the fiber is killed, or the fd is closed
// through notify_close(). Returns notified (ready, or possibly spurious),
// timeout, scope_timeout, killed or closed.
// Fiber context: parks, costs no CPU while waiting. Plain thread (or a fiber
// of no runtime): blocks in ::poll() until ready or the deadline; there it
// returns notified or timeout only. EBADF / bad fd: returns notified, so the
// caller's retried operation reports the error itself.
wake_reason wait_fd(int fd, io_dir dir, time_point deadline = no_deadline) noexcept;

// notify_close() wakes every waiter on `fd` with wake_reason::closed and
// drops the fd from the poller. Any thread. Call before ::close(fd).
void notify_close(int fd) noexcept;

// io_waiters() counts the fibers of every live runtime parked in wait_fd()
// (tests). Any thread.
std::size_t io_waiters() noexcept;

}  // namespace green::sched
