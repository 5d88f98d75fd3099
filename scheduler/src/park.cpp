// park: the parked half of the seam (wake.cpp has the waker's half and the
// protocol of the park word).
//
// Roles. A fiber or a plain thread opens a park (prepare_park), publishes
// its ticket in a primitive's wait list, and parks (park): a fiber switches
// away (park_fiber in switch-inl.hpp) and after_switch() moves its word
// armed -> parked; a thread blocks on the futex in the word's low half
// (park_thread). Either returns when woken, at the deadline (a timer, or a
// green::timeout scope's deadline) or when killed, and closes the park.
// yield() is here too: the other way a fiber leaves the CPU.
//
// Invariants: only the owner opens and closes a park; park() is given the
// ticket of the park its caller opened last (GREEN_DCHECK'd in
// park_fiber()); the word is `woken` when park() returns.
//
// Rejected: a separate "dispatcher" switch per park (two switches instead
// of one); a thread parker built on a mutex and condition variable (the
// 64-bit word already carries the state; the futex needs no lock).
#include <thread>

#include "futex.hpp"
#include "switch-inl.hpp"

namespace green::sched {

namespace {
std::atomic<std::uint64_t> next_fiber_id{1};  // relaxed: ids need only be unique
}  // namespace

fiber_base::fiber_base() noexcept : id_(next_fiber_id.fetch_add(1, std::memory_order_relaxed)) {
  parker_.fiber = this;
  fiber_parts::construct(this);
  fiber_park_timer& pt = fiber_parts::park_timer(this);
  pt.owner = this;
  pt.fire = [](timer_node* n) {
    fiber_base* f = static_cast<fiber_park_timer*>(n)->owner;
    wake(f->park_ticket_, wake_reason::timeout);
  };
}

fiber_base::~fiber_base() {
  if (ext != nullptr && ext_free != nullptr) ext_free(ext);
  fiber_parts::destroy(this);
}

// wait_done(): see scheduler.hpp. Any context.
wake_reason fiber_base::wait_done(time_point deadline) {
  for (;;) {
    if (done()) return wake_reason::notified;
    waiter w;
    w.t = prepare_park();
    {
      std::lock_guard lk(done_mu_);
      if (done_.load(std::memory_order_relaxed)) return wake_reason::notified;
      joiners_.push_back(&w);
    }
    wake_reason r = park(w.t, "join", deadline);
    if (r == wake_reason::notified) return r;
    std::lock_guard lk(done_mu_);
    joiners_.erase(&w);
    if (w.chosen) return wake_reason::notified;
    return r;
  }
}

// detach(): see scheduler.hpp. Any thread.
void fiber_base::detach() noexcept {
  bool report;
  {
    std::lock_guard lk(done_mu_);
    detached_ = true;
    report = done_.load(std::memory_order_relaxed) && error_;
  }
  if (report) get_unhandled_handler()(*this, error_);
}

// prepare_park() opens a park of the calling fiber or thread. Its owner only.
ticket prepare_park() noexcept {
  worker* w = this_worker();
  parker* p = (w && w->current) ? &w->current->parker_ : this_thread_parker();
  std::uint64_t old = p->word.load(std::memory_order_relaxed);  // relaxed: the owner's own word
  // An abandoned park (opened, then not parked: the condition held after
  // all) may be armed or woken; a parked one cannot be running its owner.
  GREEN_DCHECK(parker::status(old) != parker::parked, "park word: prepare_park() by a parked owner");
  std::uint64_t gen = parker::gen(old) + 1;
  // relaxed: the ticket reaches wakers through the primitive's lock (release/acquire)
  p->word.store(parker::make(gen, parker::armed), std::memory_order_relaxed);
  return ticket{p, gen};
}

// park_thread(): see runtime_impl.hpp. The parking thread only.
wake_reason park_thread(parker* p, ticket t, time_point deadline, after_switch_fn cb, void* arg) noexcept {
  if (cb) cb(arg);
  for (;;) {
    std::uint64_t w = p->word.load(std::memory_order_acquire);  // acquire: pairs with the waker's acq_rel CAS
    if (parker::status(w) == parker::woken) break;
    if (deadline != no_deadline && clock::now() >= deadline) {
      std::uint64_t expect = parker::make(t.gen, parker::armed);
      // acq_rel: the same transition a waker makes (pairs with theirs)
      p->word.compare_exchange_strong(expect, parker::make(t.gen, parker::woken, wake_reason::timeout),
                                      std::memory_order_acq_rel);
      continue;
    }
    auto* word32 = reinterpret_cast<std::atomic<std::uint32_t>*>(low_word(&p->word));
    futex_wait(word32, static_cast<std::uint32_t>(w), deadline);
  }
  std::uint64_t w = p->word.load(std::memory_order_acquire);  // acquire: pairs with the waker's acq_rel CAS
  GREEN_DCHECK(parker::status(w) == parker::woken && parker::gen(w) == t.gen,
               "park word: thread park ended without a wake of its generation");
  p->word.store(parker::make(t.gen, parker::idle),
                std::memory_order_relaxed);  // relaxed: only the owner reads an idle word
  return parker::reason(w);
}

// park(): see scheduler.hpp. Fiber or thread context (the park's owner).
wake_reason park(ticket t, const char* what, time_point deadline, after_switch_fn cb, void* arg) noexcept {
  worker* w = fiber_parker(t);
  if (w == nullptr) return park_thread(t.p, t, deadline, cb, arg);
  return worker::park_fiber(w, t, what, deadline, cb, arg);
}

// yield(): see scheduler.hpp. Fiber or thread context.
fiber_base* yield() noexcept {
  worker* w = this_worker();
  if (w == nullptr || w->current == nullptr) {
    std::this_thread::yield();
    return nullptr;
  }
  // switch_out() hands back the worker we resumed on: no second TLS read
  // for the caller's kill check (this_fiber::yield()).
  return worker::switch_out(w, after::yield)->current;
}

}  // namespace green::sched
