// The wait helpers of green/detail/wait.hpp, shared by every primitive.
#include "green/detail/wait.hpp"

#include "green/stop.hpp"

#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <exception>

namespace green::detail {

std::uint64_t self_id() noexcept {
  if (sched::fiber_base* f = sched::current_fiber()) return f->id();
  static std::atomic<std::uint64_t> next{1};
  // relaxed: only uniqueness matters
  thread_local const std::uint64_t token = (std::uint64_t{1} << 63) | next.fetch_add(1, std::memory_order_relaxed);
  return token;
}

bool wake_one(sched::wait_queue& q, wake_reason r) noexcept {
  while (sched::waiter* w = q.pop_front())
    if (try_wake(w, r)) return true;
  return false;
}

std::size_t wake_all(sched::wait_queue& q, wake_reason r) noexcept {
  std::size_t n = 0;
  while (sched::waiter* w = q.pop_front())
    if (try_wake(w, r)) ++n;
  return n;
}

wake_reason park_waiter(std::unique_lock<sched::spinlock>& lk, sched::wait_queue& q, sched::waiter& w, const char* what,
                        time_point deadline, void (*between)(void*), void* arg) {
  w.t = sched::prepare_park();
  w.chosen = false;
  q.push_back(&w);
  lk.unlock();
  if (between) between(arg);
  // Inside a stop-aware wait (green/stop.hpp) a stop request ends this park
  // with wake_reason::stopped, handled below like a timeout.
  if (stop_scope* s = active_stop_scope(w.t.p->fiber)) [[unlikely]]
    s->arm(w.t);
  wake_reason r = scoped_park(w.t, what, deadline);
  if (handed_over(r)) return r;
  lk.lock();
  q.erase(&w);  // a waker may have popped w and then failed to wake it
  return r;
}

void destroyed_with_waiters(const char* type, const void* self, std::size_t n) noexcept {
  std::fprintf(stderr,
               "green: %s at %p destroyed while %zu fiber(s)/thread(s) still wait on it; "
               "they would wake into freed memory. Terminating.\n",
               type, self, n);
  std::fflush(stderr);
  std::terminate();
}

// A fiber without an extension has no scope to pause; one that a scope
// inside the pause creates ends with that scope's deadline restored to
// no_deadline, which is saved_ then.
pause_scope_deadline::pause_scope_deadline() noexcept : f_(sched::current_fiber()) {
  if (fiber_ext* e = f_ ? ext_peek(f_) : nullptr) {
    saved_ = e->scope_deadline;
    e->scope_deadline = no_deadline;
  }
}
pause_scope_deadline::~pause_scope_deadline() {
  if (fiber_ext* e = f_ ? ext_peek(f_) : nullptr) e->scope_deadline = saved_;
}

std::uint32_t random_below(std::uint32_t n) noexcept {
  thread_local std::uint64_t s = [] {
    static std::atomic<std::uint64_t> seed{0x9e3779b97f4a7c15ull};
    // relaxed: any distinct seed will do
    return seed.fetch_add(0x9e3779b97f4a7c15ull, std::memory_order_relaxed) | 1;
  }();
  // xorshift64* (Vigna 2016); Lemire's multiply-shift maps it to [0, n).
  s ^= s >> 12;
  s ^= s << 25;
  s ^= s >> 27;
  std::uint64_t x = s * 0x2545F4914F6CDD1Dull;
  return static_cast<std::uint32_t>(((x >> 32) * n) >> 32);
}

}  // namespace green::detail
