// async_result's shared state, completion hubs, wait_all / wait_any.
//
// Roles. result_core is an event (the waiters park there: the library's one
// waiting mechanism, scheduler.hpp's park/wake through detail::park_waiter)
// plus a list of listeners. completion_hub turns "one of these finished"
// into values on a green::queue<std::size_t>, which its owner pops; so
// wait_any and as_completed are a queue get with a deadline.
//
// Protocol. Completing a result: claim() (one CAS; a second set() fails with
// std::logic_error), store the value or exception, then publish(): set the
// event (release: the value is visible to whoever sees ready()), then under
// lmu_ mark published and hand every listener to its hub. listen() checks
// published under lmu_, so a listener is either linked before publication
// (and posted) or told "already done" (and the hub posts it itself): no
// completion is missed. publish() reads a listener's `next` before posting
// it and never touches it afterwards, because the hub's owner may free it as
// soon as the index arrives; unlisten() takes lmu_, so once it returns no
// publish() is still walking that listener.
//
// Fibers. The seam offers fiber_base::wait_done() but no "tell me when this
// fiber is done" hook (its joiner list is private to scheduler/), so a hub
// watches a fiber through a watcher fiber that calls wait_done() and posts.
// It costs one spawn per watched fiber; wait_all needs none (it waits on
// each in turn). Rejected: polling done() (burns CPU, adds latency); adding
// the hook to scheduler/ (out of this change's scope: see the report).
//
// Stopping a hub (early exit from as_completed, or wait_any returning): its
// listeners are unlinked, its watchers killed and waited for; the wait is
// uninterruptible (a kill of the owner is re-armed for its next suspension)
// because the watchers point into the hub.
#include <exception>
#include <stdexcept>
#include <utility>

#include "green/completion.hpp"
#include "green/group.hpp"
#include "green/pool.hpp"

namespace green {

namespace detail {

void result_core::claim() {
  bool expected = false;
  // acq_rel: the claim picks the single writer of error_/value_ (an unclaim
  // after a failed store releases it to the next); readers of the outcome
  // synchronize through the event's set() in publish(), not through this.
  if (!claimed_.compare_exchange_strong(expected, true, std::memory_order_acq_rel))
    throw std::logic_error("green::async_result: already set (set/set_exception may be called once)");
}

void result_core::store_exception(std::exception_ptr e) {
  if (!e) throw std::invalid_argument("green::async_result::set_exception: null exception_ptr");
  claim();
  error_ = std::move(e);
}

void result_core::publish() noexcept {
  done_.set();  // release (inside event::set): the outcome is visible to ready() readers
  result_listener* l;
  std::lock_guard lk(lmu_);
  published_ = true;
  l = std::exchange(listeners_, nullptr);
  while (l) {
    result_listener* next = l->next;
    l->linked = false;
    l->hub->post(l->index);  // l may be freed from here on
    l = next;
  }
}

bool result_core::listen(result_listener& l) noexcept {
  std::lock_guard lk(lmu_);
  if (published_) return false;
  l.prev = nullptr;
  l.next = listeners_;
  if (listeners_) listeners_->prev = &l;
  listeners_ = &l;
  l.linked = true;
  return true;
}

void result_core::unlisten(result_listener& l) noexcept {
  std::lock_guard lk(lmu_);
  if (!l.linked) return;
  if (l.prev) l.prev->next = l.next;
  else listeners_ = l.next;
  if (l.next) l.next->prev = l.prev;
  l.linked = false;
}

void throw_result_timeout() { throw timeout_error(nullptr); }

void uninterruptibly(void (*wait)(void*), void* arg) noexcept {
  pause_scope_deadline pause;
  bool killed = false;
  for (;;) {
    try {
      wait(arg);
      break;
    } catch (const fiber_exit&) {
      killed = true;  // delivered once: the next park waits normally
    }
  }
  if (killed && std::uncaught_exceptions() == 0)
    if (sched::fiber_base* f = sched::current_fiber()) f->kill();
}

void wait_uninterruptibly(result_core& c) noexcept {
  uninterruptibly([](void* p) { static_cast<result_core*>(p)->wait_until(sched::no_deadline); }, &c);
}

std::exception_ptr killed_task_error() {
  return std::make_exception_ptr(fiber_killed_error("green: the task was killed before it finished"));
}

void throw_pool_full(std::size_t capacity) {
  throw pool_full_error("green::pool: all " + std::to_string(capacity) +
                        " slots are busy (try_spawn does not wait; spawn waits for a free slot)");
}

// ---------------------------------------------------------------------------
// completion_hub

void completion_hub::post(std::size_t index) { done_.put(index); }

void completion_hub::watch(const waitable& w, std::size_t index) {
  entry& e = entries_[index];
  if (result_core* c = w.result()) {
    c->add_ref();
    e.result = c;
    e.listener.hub = this;
    e.listener.index = index;
    if (!c->listen(e.listener)) post(index);
    return;
  }
  sched::fiber_base* f = w.fiber();
  if (f->done()) {
    post(index);
    return;
  }
  sched::scheduler* s = f->owner();
  if (!s) throw std::logic_error("green: wait on a fiber that belongs to no runtime");
  // The watcher's reference (the handle may be joined, and released,
  // meanwhile) is owned by its function object, not its body: a watcher
  // killed before it starts never runs its body, and its function object
  // is destroyed all the same (regression test:
  // as_completed_left_before_its_watchers_start_leaks_nothing).
  struct fiber_ref {
    sched::fiber_base* f;
    explicit fiber_ref(sched::fiber_base* p) noexcept : f(p) { f->add_ref(); }
    fiber_ref(fiber_ref&& o) noexcept : f(std::exchange(o.f, nullptr)) {}
    fiber_ref(const fiber_ref&) = delete;
    ~fiber_ref() {
      if (f) f->release();
    }
  };
  e.watcher = detail::spawn_on(*s, spawn_options{"completion watcher"}, [this, ref = fiber_ref(f), index] {
    // Killed: the hub is stopping (or the runtime is); post nothing.
    if (ref.f->wait_done(sched::no_deadline) == sched::wake_reason::notified) post(index);
  });
}

std::optional<std::size_t> completion_hub::next_until(sched::time_point deadline) {
  std::size_t i = 0;
  op_status st = done_.get_until(i, deadline);
  if (st != op_status::success) return std::nullopt;
  auto it = entries_.find(i);
  if (it->second.result) it->second.result->release();             // published: the listener is unlinked
  if (it->second.watcher.joinable()) it->second.watcher.detach();  // it posted and is ending
  entries_.erase(it);
  return i;
}

completion_hub::~completion_hub() {
  for (auto& [i, e] : entries_) {
    if (e.result) {
      e.result->unlisten(e.listener);
      e.result->release();
    }
    e.watcher.kill();
  }
  for (auto& [i, e] : entries_) {
    if (!e.watcher.joinable()) continue;
    uninterruptibly([](void* w) { wait_or_raise(*static_cast<sched::fiber_base*>(w), sched::no_deadline, nullptr); },
                    access::native(e.watcher));
    e.watcher.detach();
  }
}

// ---------------------------------------------------------------------------
// wait_all / wait_any

bool wait_all_until(const std::vector<waitable>& ws, sched::time_point deadline) {
  for (const waitable& w : ws)
    if (!w.wait_until(deadline)) return false;
  return true;
}

std::optional<std::size_t> wait_any_until(const std::vector<waitable>& ws, sched::time_point deadline) {
  if (ws.empty()) throw std::invalid_argument("green::wait_any: nothing to wait for (empty range)");
  for (std::size_t i = 0; i < ws.size(); ++i)
    if (ws[i].done()) return i;
  completion_hub hub;
  for (std::size_t i = 0; i < ws.size(); ++i) hub.watch(ws[i], i);
  return hub.next_until(deadline);
}

}  // namespace detail

bool waitable::wait_until(sched::time_point deadline) const {
  if (result_) return result_->wait_until(deadline);
  bool timed_out = false;
  detail::wait_or_raise(*fiber_, deadline, &timed_out);
  return !timed_out;
}

}  // namespace green
