// The switch path's hot half: switch_out(), after_switch(), park_fiber()
// and the stack check, inlined into the rooms that switch (park, yield,
// fiber exit, the worker loop). fiber_exit.cpp's header has the protocol.
//
// Thread state that belongs to the fiber: errno and the C++ runtime's
// exception-handling globals (worker.hpp's eh_globals) are per OS thread, but
// a fiber may stop inside a catch block or a destructor run by unwinding and
// resume on another worker, or meet another fiber doing the same on this
// one. So switch_out() copies both into the outgoing fiber and copies them
// back when it resumes (`throw;`, std::current_exception() and
// std::uncaught_exceptions() then see the fiber's own); a new fiber starts
// with errno 0 and no exceptions (fiber_entry()), and the worker loop with no
// exceptions (run_fiber()). Cost: three loads and two stores each way,
// 10 instructions per yield (callgrind, two fibers yielding on one worker:
// 191 -> 201). Rejected: switching only when the state is not empty (a
// branch per field for the same stores).
#pragma once

#include "run_queue-inl.hpp"
#include "wakep-inl.hpp"

namespace green::sched {

// check_stack() runs at every switch away from a fiber. The stack-pointer
// test is free. The canary read touches the stack's lowest page, which on a
// kernel without the shared zero page makes it resident (measured: +2.7 KiB
// RSS per fiber when read at every exit), so it is made only when the fiber
// is in the lowest quarter of its stack, where those pages are in use anyway.
GREEN_HOT void worker::check_stack(fiber_base* f) noexcept {
  const stack& st = fiber_parts::stk(f);
  char probe;
  // 256 bytes: below that, the next call's frame would already be past the end.
  if (&probe < st.lo + 256) report_overflow(f, "stack pointer below the stack's end");
  if ((&probe < st.lo + st.size / 4) && !st.canary_intact())
    report_overflow(f, "canary at the end of a slab stack overwritten");
}

// save_thread_state() copies the thread state a fiber carries (errno, the
// exception globals) into f as it switches away from w's thread;
// restore_thread_state() copies it back on the thread it resumed on. Each
// address is read into a local once: stores into f might alias w's fields.
// Owner worker only, for its own current fiber.
GREEN_HOT void worker::save_thread_state(worker* w, fiber_base* f) noexcept {
  eh_globals* eh = w->eh_addr;
  f->saved_errno_ = *w->errno_addr;
  f->saved_caught_ = eh->caught;
  f->saved_uncaught_ = eh->uncaught;
}
GREEN_HOT void worker::restore_thread_state(worker* w, fiber_base* f) noexcept {
  eh_globals* eh = w->eh_addr;
  int* err = w->errno_addr;
  void* caught = f->saved_caught_;
  unsigned uncaught = f->saved_uncaught_;
  *err = f->saved_errno_;
  eh->caught = caught;
  eh->uncaught = uncaught;
}

// switch_out() leaves the current fiber: `a` says what after_switch() does
// with it. Fiber context only. Returns when the fiber is resumed (not for
// exit), with the worker it resumed on.
GREEN_HOT worker* worker::switch_out(worker* w, after a, after_switch_fn cb, void* cb_arg) noexcept {
  fiber_base* prev = w->current;
  check_stack(prev);
  fiber_base* next = w->pick_startable();
  if (next == nullptr && a == after::yield) {
    next = w->im->take_global(*w);
    if (next && !w->start(next)) next = nullptr;
    if (next == nullptr) {
      w->count_switch();  // progress for the monitor: this fiber does yield
      return w;           // nothing else to run: keep running
    }
  }
  w->pending = a;
  w->prev = prev;
  w->cb = cb;
  w->cb_arg = cb_arg;
  save_thread_state(w, prev);
  w->count_switch();
  context* to;
  w->running.store(next, std::memory_order_relaxed);
  if (next) {
    w->prefetch_next();
    w->current = next;
    GREEN_DCHECK(next->state_.load(std::memory_order_relaxed) == fiber_state::runnable,
                 "bad fiber state: switch to a fiber not runnable");
    next->state_.store(fiber_state::running, std::memory_order_relaxed);
    next->last_worker_.store(w->index, std::memory_order_relaxed);
    to = &fiber_parts::ctx(next);
  } else {
    w->current = nullptr;
    to = &w->sched_ctx;
  }
  if (a == after::exit) fiber_parts::ctx(prev).exit_to(*to, nullptr);
  fiber_parts::ctx(prev).switch_to(*to, nullptr);
  // Resumed, possibly on another worker: re-read it.
  worker* now = this_worker();
  now->after_switch();
  restore_thread_state(now, prev);
  return now;
}

// after_switch() runs the pending action of the fiber that just switched
// away, on whatever lands next (a fiber or the worker's own stack). Owner
// worker only.
GREEN_HOT void worker::after_switch() noexcept {
  fiber_base* p = prev;
  after a = pending;
  pending = after::none;
  prev = nullptr;
  switch (a) {
    case after::none:
      return;
    case after::yield:
      // A yielded fiber is queued, so runnable (it used to stay `running`
      // in the ring, which dumps showed and GREEN_DCHECK rejects).
      p->state_.store(fiber_state::runnable, std::memory_order_relaxed);
      push_tail(p);
      return;
    case after::park: {
      if (cb) cb(cb_arg);
      cb = nullptr;
      GREEN_DCHECK(p->state_.load(std::memory_order_relaxed) == fiber_state::running,
                   "bad fiber state: park of a fiber not running");
      p->state_.store(fiber_state::parked, std::memory_order_relaxed);
      std::uint64_t expect = parker::make(prev_gen, parker::armed);
      // acq_rel: release publishes the saved context to whoever wakes it;
      // on failure, acquire sees the waker's reason.
      if (!p->parker_.word.compare_exchange_strong(expect, parker::make(prev_gen, parker::parked),
                                                   std::memory_order_acq_rel, std::memory_order_acquire)) {
        push(p, true);  // woken while switching out: run it again
        im->wakep();
      }
      return;
    }
    case after::exit:
      im->finish_fiber(this, p);
      return;
  }
}

// park_fiber() is park() for the fiber `w` runs; on return `w` is the
// worker it resumed on (saves the caller a TLS read). Owner worker only.
GREEN_HOT wake_reason worker::park_fiber(worker*& w, ticket t, const char* what, time_point deadline,
                                         after_switch_fn cb, void* arg) noexcept {
  fiber_base* f = w->current;
  parker* p = &f->parker_;
  GREEN_DCHECK(parker::gen(p->word.load(std::memory_order_relaxed)) == t.gen,
               "park word: park() of a ticket that is not the current park");

  auto self_wake = [&](wake_reason r) {
    std::uint64_t expect = parker::make(t.gen, parker::armed);
    p->word.compare_exchange_strong(expect, parker::make(t.gen, parker::woken, r), std::memory_order_acq_rel);
  };
  if (f->kill_requested_.load(std::memory_order_acquire)) self_wake(wake_reason::killed);

  bool timed = false;
  if (deadline != no_deadline && parker::status(p->word.load(std::memory_order_acquire)) == parker::armed) {
    if (deadline <= clock::now()) {
      self_wake(wake_reason::timeout);
    } else {
      f->park_ticket_ = t;
      w->timers.arm(&fiber_parts::park_timer(f), deadline);
      timed = true;
    }
  }

  if (parker::status(p->word.load(std::memory_order_acquire)) == parker::woken) {
    if (cb) cb(arg);
  } else {
    f->wait_what_.store(what, std::memory_order_relaxed);
    w->prev_gen = t.gen;
    w = switch_out(w, after::park, cb, arg);
    f->wait_what_.store(nullptr, std::memory_order_relaxed);
  }
  if (timed) timer_heap::cancel(&fiber_parts::park_timer(f));
  std::uint64_t word =
      p->word.load(std::memory_order_acquire);  // acquire: pairs with the waker's acq_rel CAS in wake_as()
  GREEN_DCHECK(parker::status(word) == parker::woken && parker::gen(word) == t.gen,
               "park word: park() returned without a wake of its generation");
  p->word.store(parker::make(t.gen, parker::idle),
                std::memory_order_relaxed);  // relaxed: only the owner reads an idle word
  wake_reason r = parker::reason(word);
  if (r == wake_reason::killed) f->kill_requested_.store(false, std::memory_order_relaxed);  // delivered once
  return r;
}

// fiber_parker() is the worker running the fiber that `t` parks, or null
// when `t` is a plain thread's (or the caller runs no fiber): park_thread().
inline worker* fiber_parker(ticket t) noexcept {
  worker* w = this_worker();
  return (w != nullptr && w->current != nullptr && t.p->fiber != nullptr) ? w : nullptr;
}

}  // namespace green::sched
