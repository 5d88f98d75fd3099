// green::task_group: a green::group with a scope's rules.
//
// Roles. The group (group.cpp) owns the children: their results, their
// membership, and the kill-and-join of ~group. task_group adds two flags and
// the error list, under its own spinlock tmu_, and wraps each child's
// function (task_group::child) so that a failure is recorded on the child's
// fiber before the group sees the child end. wait() is then "wait until the
// group is empty" and finds every failure already recorded.
//
// Protocol. A failure (or cancel(), an interrupted wait(), the destructor)
// sets cancelling_ under tmu_, then kills every member but the caller
// (group::kill_others_, under the group's lock). A spawn that races it:
// admit_() checks the flags, the group links the new member, and recheck_()
// reads cancelling_ again; if set, it kills the others once more. Either
// the recheck sees the flag, or its tmu_ section came before the canceller's,
// and then the link (before the recheck) came before the canceller's kill
// sweep (after its tmu_ section): the sweep finds the new member. So no
// child starts after the cancellation and survives it.
//
// Rejected: a combined error (task_group_error with every exception) raised
// by wait() when several children failed. Whether a second child fails
// before the kill reaches it is a race, so `catch (const my_error&)` would
// work or not by scheduling; wait() raises the first as itself, and
// errors() keeps the rest. Rejected: interrupting the parent's body on a
// child's failure (asyncio cancels the parent task): the parent may be the
// main fiber, and a kill is not something a fiber can take back; the
// parent learns at wait() or its next spawn().
#include "green/task_group.hpp"

#include <mutex>
#include <stdexcept>

namespace green {

task_group::task_group() = default;

task_group::task_group(sched::time_point deadline) { scope_.emplace(deadline); }

// The owner fiber. Children use tmu_ and errors_: they must be gone before
// the members are destroyed, so the join happens here, not in ~group().
task_group::~task_group() {
  begin_cancel_();
  shutdown_();  // kills every member and joins them, uninterruptibly
}

// The spawner (owner or a child), before the child is linked. A child
// spawned while the group is cancelling is linked all the same: recheck_()
// kills it (before it runs, or at its first suspension point). Only a
// spawner outside the group is stopped, and only by a failure: it gets that
// failure now rather than after spawning more doomed children.
void task_group::admit_() {
  bool closed;
  bool failed;
  {
    std::lock_guard lk(tmu_);
    closed = closed_;
    failed = !errors_.empty();
  }
  if (closed) throw std::logic_error("green::task_group::spawn: the group is closed (wait() has returned or thrown)");
  if (failed && !member_of_()) wait();  // raises the first error
}

// The spawner, after the child is linked.
void task_group::recheck_() noexcept {
  bool cancelling;
  {
    std::lock_guard lk(tmu_);
    cancelling = cancelling_;
  }
  if (cancelling) kill_others_();
}

// begin_cancel_() sets cancelling_ and kills the other members if it was
// not set. True if this call set it. Any fiber.
bool task_group::begin_cancel_() noexcept {
  {
    std::lock_guard lk(tmu_);
    if (cancelling_) return false;
    cancelling_ = true;
  }
  kill_others_();
  return true;
}

void task_group::cancel() noexcept { begin_cancel_(); }

// A child's fiber, inside the child's catch handler.
void task_group::fail_(std::exception_ptr e, bool killed_error) noexcept {
  bool first;
  {
    std::lock_guard lk(tmu_);
    if (killed_error && cancelling_) return;  // the cancellation seen second-hand
    try {
      errors_.push_back(std::move(e));
    } catch (...) {  // no memory for the record: the child's result still holds it
    }
    first = !cancelling_;
    cancelling_ = true;
  }
  if (first) kill_others_();
}

void task_group::close_() noexcept {
  std::lock_guard lk(tmu_);
  closed_ = true;
}

// The owner fiber.
void task_group::wait() {
  {
    std::lock_guard lk(tmu_);
    if (closed_) throw std::logic_error("green::task_group::wait: called twice (the group is closed)");
  }
  if (member_of_())
    throw std::logic_error("green::task_group::wait: called from a child of the group (it would wait for itself)");
  std::exception_ptr interrupted;  // timeout_error, fiber_exit
  try {
    join();
  } catch (...) {
    // Held, not rethrown with `throw;` after the join below: that join
    // parks, and the fiber may resume on another worker, whose thread does
    // not know this handler's exception (std::terminate). Regression test:
    // timeout_around_wait_cancels_all_children.
    interrupted = std::current_exception();
  }
  if (interrupted) {  // the children go first
    begin_cancel_();
    shutdown_();
    close_();
    std::rethrow_exception(interrupted);
  }
  close_();
  std::exception_ptr first;
  {
    std::lock_guard lk(tmu_);
    if (!errors_.empty()) first = errors_.front();
  }
  if (first) std::rethrow_exception(first);
}

std::vector<std::exception_ptr> task_group::errors() const {
  std::lock_guard lk(tmu_);
  return errors_;
}

}  // namespace green
