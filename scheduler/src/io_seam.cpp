// The runtime's side of the fd seam: what the fd table (io.cpp) needs from
// the scheduler. Kept below io.cpp: the fd table calls down into here,
// nothing here calls the fd table (readiness reaches it from the worker
// loop and the monitor, which call io_internal::dispatch()).
//
// Accounting. park_io() counts fd waits per worker (worker::io_waits);
// io_waiting() sums them. The deadlock check and the monitor read the sum:
// a fiber waiting on an fd can be woken from outside the runtime, so while
// one exists no deadlock is reported, and someone must poll.
#include "io_internal.hpp"
#include "switch-inl.hpp"

namespace green::sched {

// current_reactor(): see io_internal.hpp. Fiber or thread context.
reactor* io_internal::current_reactor() noexcept {
  worker* w = this_worker();
  return (w && w->current) ? w->im->poller.get() : nullptr;
}

// park_io(): see io_internal.hpp. Fiber or thread context (the park's owner).
wake_reason io_internal::park_io(ticket t, const char* what, time_point deadline) noexcept {
  worker* w = fiber_parker(t);
  if (w == nullptr) return park_thread(t.p, t, deadline, nullptr, nullptr);
  // Owner-only counters (see worker::io_waits): a plain load+store each.
  w->io_waits.store(w->io_waits.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  wake_reason r = worker::park_fiber(w, t, what, deadline, nullptr, nullptr);
  w->io_waits.store(w->io_waits.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);  // w: where we resumed
  return r;
}

// io_waiting() is how many of this runtime's fibers wait on fds. Exact when
// every worker is idle (each worker's writes precede its seq_cst npidle++,
// which the caller has read); a hint otherwise. Any thread.
std::int64_t scheduler::impl::io_waiting() const noexcept {
  std::int64_t n = 0;
  const unsigned started = nslots.load(std::memory_order_acquire);  // acquire: pairs with activate_spare()'s release
  for (unsigned i = 0; i < started; ++i) n += workers[i]->io_waits.load(std::memory_order_relaxed);
  return n;
}

}  // namespace green::sched
