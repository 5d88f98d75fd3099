// The fiber API's out-of-line parts: errors, this_fiber, fiber_local keys,
// timeout scopes.
#include <atomic>
#include <iostream>
#include <string>
#include <thread>

#include "green/errors.hpp"
#include "green/fiber.hpp"
#include "green/fiber_local.hpp"
#include "green/runtime.hpp"
#include "green/this_fiber.hpp"
#include "green/timeout.hpp"

namespace green {

namespace {
// The innermost timeout scope of each fiber, kept beside scope_deadline.
// fiber_local would do, but this is on every blocking call's error path.
thread_local timeout* thread_scope = nullptr;  // plain threads only
}  // namespace

namespace detail {

void throw_joined_twice() { throw std::logic_error("green::fiber: not joinable (already joined or detached)"); }

void throw_killed(const sched::fiber_base& f) {
  throw fiber_killed_error("green: fiber #" + std::to_string(f.id()) + " '" + f.name() + "' was killed");
}

void throw_no_runtime(const char* what) {
  throw std::logic_error(std::string(what) +
                         " called outside a green runtime; use runtime::spawn or green::run from a plain thread");
}

void raise_interrupt(sched::wake_reason r) {
  switch (r) {
    case sched::wake_reason::killed:
      throw fiber_exit{};
    case sched::wake_reason::scope_timeout:
      throw timeout_error(expired_scope());
    case sched::wake_reason::deadlock: {
      // Unwind the deadlocked fibers first: main's locals (the mutexes and
      // channels they wait on) must outlive their waiters. Regression test:
      // deadlock_error_is_caught_around_run_with_the_locks_local_to_main.
      sched::scheduler* s = sched::current_scheduler();
      std::string report = s ? s->deadlock_report() : std::string("green: deadlock");
      if (s) s->unwind_deadlocked(sched::current_fiber());
      throw deadlock_error(report);
    }
    default:
      return;
  }
}

void wait_or_raise(sched::fiber_base& f, sched::time_point deadline, bool* timed_out) {
  sched::wake_reason r = f.wait_done(deadline);
  if (r == sched::wake_reason::timeout) {
    if (timed_out) *timed_out = true;
    return;
  }
  raise_interrupt(r);
}

std::size_t new_fls_key() noexcept {
  static std::atomic<std::size_t> next{0};
  return next.fetch_add(1, std::memory_order_relaxed);
}

std::vector<sched::fiber_base::fls_slot>& fls_slots() {
  if (sched::fiber_base* f = sched::current_fiber()) return f->fls;
  struct thread_slots {
    std::vector<sched::fiber_base::fls_slot> v;
    ~thread_slots() {
      for (auto& s : v)
        if (s.value && s.destroy) s.destroy(s.value);
    }
  };
  thread_local thread_slots slots;
  return slots.v;
}

}  // namespace detail

// ---------------------------------------------------------------------------
// timeout scopes: a linked list through the fiber's stack. The head is kept
// in a fiber_local-like slot of the fiber (fls is overkill: one pointer).

namespace {
struct scope_key {
  std::size_t key = detail::new_fls_key();
};
scope_key& scope_slot_key() {
  static scope_key k;
  return k;
}
timeout*& innermost() {
  if (sched::current_fiber() == nullptr) return thread_scope;
  auto& slots = detail::fls_slots();
  std::size_t k = scope_slot_key().key;
  if (slots.size() <= k) slots.resize(k + 1);
  return *reinterpret_cast<timeout**>(&slots[k].value);  // no destroy: scopes live on the stack
}
}  // namespace

timeout::timeout(sched::time_point deadline) : fiber_(sched::current_fiber()), deadline_(deadline) {
  timeout*& head = innermost();
  outer_ = head;
  head = this;
  if (fiber_) {
    saved_ = fiber_->scope_deadline;
    if (deadline_ < fiber_->scope_deadline) fiber_->scope_deadline = deadline_;
  }
}

timeout::~timeout() {
  innermost() = outer_;
  if (fiber_) fiber_->scope_deadline = saved_;
}

namespace detail {
const void* expired_scope() noexcept {
  // The outermost expired scope is the one whose deadline fired first among
  // those that passed; report the earliest deadline, which is what woke us.
  timeout* best = nullptr;
  for (timeout* t = innermost(); t; t = t->outer_)
    if (!best || t->deadline_ <= best->deadline_) best = t;
  return best;
}
}  // namespace detail

// ---------------------------------------------------------------------------
// this_fiber

namespace this_fiber {

void yield() {
  // A cancellation point: a kill that arrived before or during the switch
  // (it found no park to end) is raised here.
  // Regression test: a_fiber_that_loops_on_yield_can_be_killed.
  if (sched::fiber_base* f = sched::yield(); f && f->take_kill()) [[unlikely]]
    throw fiber_exit{};
}

void sleep_until(sched::time_point tp) {
  if (sched::current_fiber() == nullptr) {
    std::this_thread::sleep_until(tp);
    return;
  }
  for (;;) {
    sched::ticket t = sched::prepare_park();
    sched::wake_reason r = sched::park(t, "sleep", tp);
    if (r == sched::wake_reason::timeout) return;
    detail::raise_interrupt(r);
    if (sched::clock::now() >= tp) return;  // a stray wake: keep sleeping
  }
}

std::uint64_t id() noexcept {
  sched::fiber_base* f = sched::current_fiber();
  return f ? f->id() : 0;
}

std::string name() {
  sched::fiber_base* f = sched::current_fiber();
  return f ? f->name() : std::string();
}

void set_name(std::string name) {
  if (sched::fiber_base* f = sched::current_fiber()) f->set_name(std::move(name));
}

}  // namespace this_fiber

void dump(std::ostream& out) { sched::scheduler::dump_all(out); }

}  // namespace green
