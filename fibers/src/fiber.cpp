// The fiber API's out-of-line parts: errors, this_fiber, fiber_local keys,
// timeout scopes, stop scopes (green/stop.hpp has their protocol).
#include <atomic>
#include <iostream>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>

#include "green/detail/fiber_ext.hpp"
#include "green/detail/wait.hpp"
#include "green/errors.hpp"
#include "green/fiber.hpp"
#include "green/fiber_local.hpp"
#include "green/runtime.hpp"
#include "green/stop.hpp"
#include "green/this_fiber.hpp"
#include "green/timeout.hpp"

namespace green {

namespace {
// A plain thread's counterpart of a fiber's extension (fiber_local values,
// the timeout scope list, scope deadlines having no effect on threads, and
// the stop scope list).
struct thread_ext {
  detail::fiber_ext e;
  ~thread_ext() { detail::destroy_fls(e.fls); }
};
thread_local thread_ext this_thread_ext;
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
    default:  // notified, timeout, closed, stopped: statuses the caller reports
      return;
  }
}

void wait_or_raise(sched::fiber_base& f, sched::time_point deadline, bool* timed_out) {
  scoped_deadline d = with_scope(sched::current_fiber(), deadline);
  sched::wake_reason r = d.reason(f.wait_done(d.when));
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

fls_slot& fls_slot_of(std::size_t key) {
  sched::fiber_base* f = sched::current_fiber();
  std::vector<fls_slot>& slots = f ? ext_make(f).fls : this_thread_ext.e.fls;
  if (slots.size() <= key) slots.resize(key + 1);
  return slots[key];
}

}  // namespace detail

// ---------------------------------------------------------------------------
// timeout scopes: a linked list through the fiber's stack, its head and the
// earliest deadline in the fiber's extension (detail/fiber_ext.hpp). Every
// park and fd wait of fibers/ folds that deadline in (detail::with_scope).

namespace {
// innermost() is the calling fiber's (or thread's) innermost scope, or null.
timeout* innermost() noexcept {
  if (sched::fiber_base* f = sched::current_fiber()) {
    detail::fiber_ext* e = detail::ext_peek(f);
    return e ? e->innermost : nullptr;
  }
  return this_thread_ext.e.innermost;
}
}  // namespace

timeout::timeout(sched::time_point deadline) : fiber_(sched::current_fiber()), deadline_(deadline) {
  detail::fiber_ext& e = fiber_ ? detail::ext_make(fiber_) : this_thread_ext.e;
  outer_ = e.innermost;
  e.innermost = this;
  if (fiber_) {
    saved_ = e.scope_deadline;
    if (deadline_ < e.scope_deadline) e.scope_deadline = deadline_;
  }
}

timeout::~timeout() {
  // A fiber's extension outlives its scopes: it is freed at the fiber's exit.
  detail::fiber_ext* e = fiber_ ? detail::ext_peek(fiber_) : &this_thread_ext.e;
  if (e == nullptr) return;  // a scope inside a fiber_local value, destroyed at exit
  e->innermost = outer_;
  if (fiber_) e->scope_deadline = saved_;
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
// stop scopes (green/stop.hpp) and a fiber's stop source (fiber.hpp)

namespace detail {

void stop_wait::on_stop() noexcept {
  std::lock_guard lk(mu_);
  stopped_ = true;
  // Under mu_: arm() then either sees stopped_ or has published the ticket
  // we wake here. A stale ticket (that park already ended) is a no-op.
  if (t_.p != nullptr) sched::wake(t_, sched::wake_reason::stopped);
}

void stop_wait::arm(sched::ticket t) noexcept {
  bool stopped;
  {
    std::lock_guard lk(mu_);
    t_ = t;
    stopped = stopped_;
  }
  // The stop came first: end the park ourselves (it returns at once, or a
  // hand-over that won the park word meanwhile stands).
  if (stopped) sched::wake(t, sched::wake_reason::stopped);
}

stop_scope::stop_scope(const std::stop_token& stop) : stop_wait(stop), fiber_(sched::current_fiber()) {
  fiber_ext& e = fiber_ ? ext_make(fiber_) : this_thread_ext.e;
  outer_ = e.stop;
  e.stop = this;
}

stop_scope::~stop_scope() {
  // Null: the fiber's extension was released under us (a scope inside a
  // fiber_local value's destructor at the fiber's exit).
  if (fiber_ext* e = fiber_ ? ext_peek(fiber_) : &this_thread_ext.e) e->stop = outer_;
}

stop_scope* thread_stop_scope() noexcept { return this_thread_ext.e.stop; }

void stop_slot::destroy() noexcept { delete p_.load(std::memory_order_relaxed); }

std::stop_source& stop_slot::get() {
  // acquire: pairs with the acq_rel exchange below (a source another thread
  // made is seen fully constructed).
  if (std::stop_source* s = p_.load(std::memory_order_acquire)) return *s;
  auto made = std::make_unique<std::stop_source>();
  std::stop_source* expect = nullptr;
  // acq_rel: release publishes our source; acquire (on failure, in expect)
  // sees the winner's.
  if (p_.compare_exchange_strong(expect, made.get(), std::memory_order_acq_rel, std::memory_order_acquire))
    return *made.release();
  return *expect;
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
    sched::wake_reason r = detail::scoped_park(t, "sleep", tp);
    if (r == sched::wake_reason::timeout) return;
    detail::raise_interrupt(r);
    if (sched::clock::now() >= tp) return;  // a stray wake: keep sleeping
  }
}

bool sleep_until(sched::time_point tp, const std::stop_token& stop) {
  if (!stop.stop_possible()) {
    sleep_until(tp);
    return true;
  }
  if (stop.stop_requested()) return false;
  // Fibers and plain threads alike park here (a thread's park blocks on its
  // futex), so a stop from any thread ends either.
  detail::stop_wait s(stop);
  for (;;) {
    sched::ticket t = sched::prepare_park();
    s.arm(t);
    sched::wake_reason r = detail::scoped_park(t, "sleep", tp);
    if (r == sched::wake_reason::timeout) return true;
    if (r == sched::wake_reason::stopped) return false;
    detail::raise_interrupt(r);
    if (sched::clock::now() >= tp) return true;  // a stray wake: keep sleeping
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
