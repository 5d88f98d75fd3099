// green::group and green::pool.
//
// Roles. A group is a spinlock-guarded intrusive list of group_nodes, one
// per member fiber, and three events that waiters park on (empty_, settled_,
// idle_; their invariants are in group.hpp). A spawned task's node is its
// result's shared state (task_state<T>); the function object that runs on
// the fiber owns a task_guard, and the guard's destructor settles the node:
// gives back the pool slot, publishes a result if none was (a fiber that
// never ran), unlinks the node and updates the events. The guard dies on
// the task's fiber right after the call (fiber_impl::invoke resets its
// function), or, for a fiber that never got a stack, when the runtime frees
// the fiber (the result then holds the runtime's std::system_error), or in
// spawn, if building the function object or the fiber throws (spawn then
// raises that); either way exactly once. An added fiber is watched by a small
// watcher fiber whose guard settles its node when the fiber is done (the
// seam has no completion hook: completion.cpp's design header).
//
// Lifetimes. A spawned member's fiber block is alive while its node is
// linked: the runtime's reference is dropped only after the function object
// (and so the guard, which unlinks under mu_) is gone. So kill() may call
// fiber_base::kill() on linked nodes under mu_ without holding references.
// An added fiber's node holds a reference, since its owner may join and
// release it at any time. The group itself must outlive every guard:
// shutdown_() (the destructor) kills all members and waits on idle_, then
// takes mu_ once so the last settle_() has left its critical section; a
// settle_() touches the group only up to its unlock.
//
// Pools. A pool is a group with a semaphore of `size` permits. spawn takes a
// permit before it creates the fiber (back-pressure on the spawner, not a
// queue of waiting fibers: nothing is allocated for work that cannot run),
// and the task gives it back after its function returned, before publishing
// the result, so a caller that saw the result sees the slot free.
// Rejected: a fixed set of worker fibers pulling from a queue (gevent's Pool
// is not that either): a task then cannot be killed alone, and a blocked
// task would hold a worker fiber that a new fiber would not need.
#include <stdexcept>
#include <string>

#include "green/group.hpp"
#include "green/pool.hpp"

namespace green {

group::group() {
  empty_.set();
  settled_.set();
  idle_.set();
}

group::group(std::size_t slots) : group() { slots_ = std::make_unique<semaphore>(slots); }

group::~group() { shutdown_(); }

void group::shutdown_() noexcept {
  {
    std::lock_guard lk(mu_);
    for (detail::group_node* n = head_; n; n = n->next) n->fiber->kill();
  }
  detail::uninterruptibly([](void* e) { static_cast<event*>(e)->wait(); }, &idle_);
  std::lock_guard lk(mu_);  // the last settle_() has unlocked
}

// Caller holds mu_.
void group::update_events_() noexcept {
  if (visible_ == 0) empty_.set();
  else empty_.clear();
  if (visible_ == 0 || first_error_) settled_.set();
  else settled_.clear();
  if (total_ == 0) idle_.set();
  else idle_.clear();
}

// Spawner only, before the fiber exists.
void group::take_slot_(slot s) {
  if (s == slot::wait) slots_->acquire();
}

// Any thread.
void group::link_(detail::group_node* n) noexcept {
  std::lock_guard lk(mu_);
  n->prev = nullptr;
  n->next = head_;
  if (head_) head_->prev = n;
  head_ = n;
  n->linked = true;
  ++total_;
  if (n->visible) ++visible_;
  update_events_();
}

// The task's fiber (or whoever frees a fiber that never ran).
void group::release_slot_(detail::group_node* n) noexcept {
  if (!n->slot_held) return;
  n->slot_held = false;
  slots_->release();
}

namespace {
// not_run_error() is the outcome of a task whose function never ran: the
// runtime's reason when it has one (no stack could be mapped: that
// std::system_error; killed before it started), else a plain note. Only a
// spawned task's node names its own fiber (an added one names the member,
// whose outcome is not the watcher's).
std::exception_ptr not_run_error(const detail::group_node& n) {
  if (n.fiber && !n.owns_fiber_ref) {
    if (std::exception_ptr e = n.fiber->error()) return e;
    if (n.fiber->was_killed()) return detail::killed_task_error();
  }
  return std::make_exception_ptr(std::runtime_error("green: the task's fiber never ran"));
}
}  // namespace

// The guard's owner: the task's fiber, the spawner whose spawn failed, or
// whoever frees a fiber that never ran (a worker that could not map its
// stack, or the runtime at shutdown).
void group::settle_(detail::group_node* n) noexcept {
  detail::result_core* c = n->core;
  release_slot_(n);
  if (!c->claimed()) {
    try {
      c->store_exception(not_run_error(*n));
    } catch (...) {  // claimed meanwhile: nothing to add
    }
  }
  sched::fiber_base* to_release = nullptr;
  std::exception_ptr error = std::move(n->error);  // released after the unlock
  {
    std::lock_guard lk(mu_);
    // Publishing under mu_ makes "result ready" and "left the group" one
    // step for observers: whoever saw the result and then asks size() (which
    // takes mu_) sees the member gone, and a join that returned sees every
    // result ready. A task's error becomes the group's in the same step, so
    // a join(raise_error) that raises it sees the member gone.
    c->publish();
    if (error && !first_error_) first_error_ = error;
    if (n->linked) {
      if (n->prev) n->prev->next = n->next;
      else head_ = n->next;
      if (n->next) n->next->prev = n->prev;
      n->linked = false;
      --total_;
      if (n->visible) --visible_;
    }
    update_events_();
    if (n->owns_fiber_ref) to_release = n->fiber;
  }  // the group is not touched after this unlock
  if (to_release) to_release->release();
  c->release();  // the guard's reference
}

void group::add_(sched::fiber_base* f) {
  sched::scheduler* s = f->owner();
  if (!s) throw std::logic_error("green::group::add: the fiber belongs to no runtime");
  if (slots_) slots_->acquire();
  detail::task_state<void>* st;
  try {
    st = new detail::task_state<void>();  // the guard's reference
  } catch (...) {
    if (slots_) slots_->release();
    throw;
  }
  st->owner = this;
  st->slot_held = slots_ != nullptr;
  st->fiber = f;
  st->owns_fiber_ref = true;
  f->add_ref();
  task_guard guard(this, st);
  link_(st);
  // The watcher's function object owns the guard from here on.
  auto w = detail::spawn_on(*s, spawn_options{"group watcher"}, [guard = std::move(guard), st, f]() mutable {
    // A kill of the watcher (runtime shutdown) is not the member's end.
    detail::pause_scope_deadline pause;
    while (f->wait_done(sched::no_deadline) != sched::wake_reason::notified) {
    }
    guard.release_slot();
    st->store_value();  // the guard's settle_() publishes it
  });
  w.detach();
}

detail::group_node* group::find_(const sched::fiber_base* f) const noexcept {
  if (!f) return nullptr;
  std::lock_guard lk(mu_);
  for (detail::group_node* n = head_; n; n = n->next)
    if (n->fiber == f && n->visible) return n;
  return nullptr;
}

detail::group_node* group::mine_(const detail::result_core& c) const noexcept {
  detail::group_node* n = c.member;
  return n && n->owner == this ? n : nullptr;
}

void group::discard_(detail::group_node* n) noexcept {
  if (!n) return;
  std::lock_guard lk(mu_);
  if (!n->linked || !n->visible) return;
  n->visible = false;
  --visible_;
  update_events_();
}

detail::result_core* group::kill_one_(detail::group_node* n) noexcept {
  if (!n) return nullptr;
  std::lock_guard lk(mu_);
  if (!n->linked) return nullptr;
  n->fiber->kill();
  n->core->add_ref();
  return n->core;
}

void group::kill_wait_(detail::group_node* n) {
  detail::result_core* c = kill_one_(n);
  if (!c) return;
  struct releaser {
    detail::result_core* c;
    ~releaser() { c->release(); }
  } r{c};
  c->wait_until(sched::no_deadline);  // published with the unlink: it has left the group
}

std::size_t group::size() const noexcept {
  std::lock_guard lk(mu_);
  return visible_;
}

bool group::member_of_() const noexcept { return find_(sched::current_fiber()) != nullptr; }

void group::kill_others_() noexcept {
  const sched::fiber_base* self = sched::current_fiber();
  std::lock_guard lk(mu_);
  for (detail::group_node* n = head_; n; n = n->next)
    if (n->visible && n->fiber != self) n->fiber->kill();
}

bool group::join_until_(sched::time_point deadline, bool raise_error) {
  if (!raise_error) return empty_.wait_until(deadline);
  if (!settled_.wait_until(deadline)) return false;
  std::exception_ptr e;
  {
    std::lock_guard lk(mu_);
    e = std::exchange(first_error_, nullptr);
    update_events_();
  }
  if (e) std::rethrow_exception(e);
  return true;
}

bool group::kill_until_(sched::time_point deadline) {
  {
    std::lock_guard lk(mu_);
    for (detail::group_node* n = head_; n; n = n->next)
      if (n->visible) n->fiber->kill();
  }
  return empty_.wait_until(deadline);
}

// ---------------------------------------------------------------------------
// pool

namespace {
std::size_t checked_size(std::ptrdiff_t size) {
  if (size < 1) throw std::invalid_argument("green::pool: size must be at least 1 (got " + std::to_string(size) + ")");
  return static_cast<std::size_t>(size);
}
}  // namespace

pool::pool(std::ptrdiff_t size) : group(checked_size(size)), capacity_(static_cast<std::size_t>(size)) {}

void pool::wait_available() {
  slots_->acquire();
  slots_->release();
}

}  // namespace green
