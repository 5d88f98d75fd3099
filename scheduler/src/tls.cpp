// Per-thread state: which worker the calling thread is, and the parker of a
// plain OS thread. The lowest room: everything else finds its worker here.
//
// Protocol. A worker's thread binds itself at its start and unbinds at its
// end (set_this_worker()); nothing else writes the slot. Readers go through
// this_worker(), which is out of line with a compiler barrier: a fiber may
// resume on another OS thread, and an inlined TLS read could reuse an
// address computed before the switch (the thread_local itself is never
// exposed to other files for the same reason).
//
// Rejected: one TLS read per call site (the fiber-migration bug above);
// a global map from thread id to worker (a lookup per park).
#include "worker.hpp"

namespace green::sched {

namespace {
struct thread_state {
  worker* w = nullptr;
  parker thread_parker;  // parks of a plain OS thread
};
thread_local thread_state tls;
}  // namespace

GREEN_NOINLINE worker* this_worker() noexcept {
  asm volatile("" ::: "memory");
  return tls.w;
}
GREEN_NOINLINE parker* this_thread_parker() noexcept {
  asm volatile("" ::: "memory");
  return &tls.thread_parker;
}
void set_this_worker(worker* w) noexcept { tls.w = w; }

fiber_base* current_fiber() noexcept {
  worker* w = this_worker();
  return w ? w->current : nullptr;
}
scheduler* current_scheduler() noexcept {
  worker* w = this_worker();
  return w ? w->s : nullptr;
}
bool local_work_queued() noexcept {
  worker* w = this_worker();
  if (w == nullptr) return false;
  // relaxed: a hint; a stale answer only spins or parks once more or less
  return w->runnext.load(std::memory_order_relaxed) != nullptr ||
         w->tail.load(std::memory_order_relaxed) != w->head.load(std::memory_order_relaxed);
}
int current_worker_index() noexcept {
  worker* w = this_worker();
  return w ? static_cast<int>(w->index) : -1;
}

}  // namespace green::sched
