// Switching and fiber exit: a fiber's first entry, its end, and the
// failure to start one.
//
// Switching (the hot half is in switch-inl.hpp). Fibers switch directly to
// the next runnable fiber; only when the local queue is empty does a fiber
// switch to its worker's own stack (worker.cpp), which looks further and
// sleeps. Whatever must happen after a fiber's context is saved (requeue it
// for yield, publish it as parked, free its stack at exit) is recorded as
// the worker's `pending` action and run by whoever lands next
// (after_switch()).
//
// Thread state. A fiber carries its errno and C++ exception state
// (caught exceptions, std::uncaught_exceptions()) across switches:
// switch-inl.hpp's header.
//
// Exit. A fiber's function returns into fiber_entry(), which runs the
// fiber-local destructors, publishes done (waking joiners), reports an
// exception of a detached fiber, and switches away with after::exit; the
// next fiber (or the worker stack) then calls finish_fiber(): its stack
// goes back to the cache, it leaves the registry, the runtime drops its
// reference, and the last fiber of a stopping runtime wakes the destructor.
// A fiber whose stack cannot be mapped (start_new()) finishes the same way
// without ever running: finish_fiber() is the one copy of those steps.
//
// fiber_state transitions (GREEN_DCHECK'd where they happen):
//   created -> runnable (spawn) -> running (switch_out/run_fiber)
//   running -> runnable (yield) | parked (after_switch) | done (exit)
//   parked -> runnable (wake) ; runnable -> done (start_new failed)
//
// Rejected: a dispatcher switch per schedule (two switches per yield
// instead of one); freeing the stack on the exiting fiber's own stack (it
// is still running on it: hence the pending action).
#include <cinttypes>
#include <cstdio>
#include <exception>
#include <mutex>
#include <string>
#include <utility>

#include "switch-inl.hpp"

namespace green::sched {

namespace {
std::atomic<unhandled_handler> unhandled{nullptr};

void default_unhandled(fiber_base& f, std::exception_ptr e) {
  std::string what = "unknown exception";
  try {
    std::rethrow_exception(std::move(e));
  } catch (const std::exception& ex) {
    what = ex.what();
  } catch (...) {
  }
  std::fprintf(stderr, "green: uncaught exception in detached fiber #%" PRIu64 " '%s': %s\n", f.id(), f.name().c_str(),
               what.c_str());
  std::terminate();
}
}  // namespace

// Any thread.
void set_unhandled_handler(unhandled_handler h) noexcept { unhandled.store(h, std::memory_order_release); }
unhandled_handler get_unhandled_handler() noexcept {
  auto h = unhandled.load(std::memory_order_acquire);
  return h ? h : &default_unhandled;
}

// publish_done() marks f done and wakes its joiners; returns whether an
// exception of a detached f must be reported. f's own fiber, or the worker
// that failed to start it.
bool worker::publish_done(fiber_base* f) noexcept {
  std::lock_guard lk(f->done_mu_);
  f->done_.store(true, std::memory_order_release);  // release: pairs with the acquire in fiber_base::done()
  f->joiners_.wake_all();
  return f->detached_ && f->error_;
}

void worker::fiber_entry(context*, void*) {
  worker* now = this_worker();
  now->after_switch();
  fiber_base* f = now->current;
  *now->errno_addr = 0;
  *now->eh_addr = eh_globals{};  // the last fiber's exceptions are saved in it, not ours
  f->invoke();
  if (publish_done(f)) get_unhandled_handler()(*f, f->error_);
  worker* w = this_worker();
  // invoke() catches everything, so no catch block or unwinding is open here.
  GREEN_DCHECK(w->eh_addr->caught == nullptr && w->eh_addr->uncaught == 0,
               "exception state: a fiber exits with an exception caught or in flight");
  GREEN_DCHECK(f->state_.load(std::memory_order_relaxed) == fiber_state::running,
               "bad fiber state: exit of a fiber not running");
  f->state_.store(fiber_state::done, std::memory_order_relaxed);
  switch_out(w, after::exit);
  __builtin_trap();
}

// finish_fiber() releases what the runtime holds for a fiber that is done:
// its stack (if it got one; `w`'s cache), its registry entry and the
// runtime's reference; the last fiber of a stopping runtime wakes the
// destructor. Owner worker of `w` only, never on f's own stack.
void scheduler::impl::finish_fiber(worker* w, fiber_base* f) noexcept {
  GREEN_DCHECK(f->state_.load(std::memory_order_relaxed) == fiber_state::done,
               "bad fiber state: finish of a fiber not done");
  if (fiber_parts::stk(f)) {
    fiber_parts::ctx(f).release();
    w->stacks.put(fiber_parts::stk(f));
    fiber_parts::stk(f) = stack{};
  }
  unregister_fiber(f);
  f->release();  // the runtime's reference
  // acq_rel: release publishes this fiber's end to the destructor's acquire
  // load of live_; acquire orders the stopping load after it.
  // acquire on stopping: pairs with the destructor's release store.
  if (self->live_.fetch_sub(1, std::memory_order_acq_rel) == 1 && stopping.load(std::memory_order_acquire)) {
    lock_guard_of lk(drain_mu);
    drain_cv.notify_all();
  }
}

// start_new() gives a fiber that never ran its stack (start() checks). If
// none can be mapped, the fiber finishes at once with the std::system_error,
// which its joiner sees. Owner worker only.
bool worker::start_new(fiber_base* f) noexcept {
  try {
    fiber_parts::stk(f) = stacks.get(f->stack_size_, s->cfg().guard);
  } catch (...) {
    f->error_ = std::current_exception();
    publish_done(f);
    f->state_.store(fiber_state::done, std::memory_order_relaxed);
    im->finish_fiber(this, f);
    return false;
  }
  fiber_parts::ctx(f).init_fiber(fiber_parts::stk(f).lo, fiber_parts::stk(f).size, &worker::fiber_entry);
  return true;
}

}  // namespace green::sched
