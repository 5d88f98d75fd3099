// The fiber registry: every live fiber of a runtime, for dumps, deadlock
// reports, the monitor's reports and shutdown (which kills what is left).
//
// Invariants: a fiber is in exactly one shard's list from spawn until
// finish_fiber(), linked by reg_prev_/reg_next_ under that shard's lock;
// reg_shard_ names the shard. One shard per worker slot plus one for spawns
// from outside, so spawns on different workers do not share a lock.
// Holding a shard's lock keeps its fibers alive (unregister_fiber() takes
// it before the runtime drops its reference).
//
// Rejected: one global list (every spawn and exit of every worker on one
// lock); no registry (dumps and shutdown could not find parked fibers).
#include <mutex>
#include <sstream>

#include "runtime_impl.hpp"

namespace green::sched {

// register_fiber(): spawn only (any thread).
void scheduler::impl::register_fiber(fiber_base* f, unsigned shard) noexcept {
  registry_shard& r = *shards[shard];
  f->reg_shard_ = shard;
  lock_guard_of lk(r.mu);
  f->reg_prev_ = nullptr;
  f->reg_next_ = r.head;
  if (r.head) r.head->reg_prev_ = f;
  r.head = f;
}

// unregister_fiber(): finish_fiber() only (a worker).
void scheduler::impl::unregister_fiber(fiber_base* f) noexcept {
  registry_shard& r = *shards[f->reg_shard_];
  lock_guard_of lk(r.mu);
  if (f->reg_prev_) f->reg_prev_->reg_next_ = f->reg_next_;
  else r.head = f->reg_next_;
  if (f->reg_next_) f->reg_next_->reg_prev_ = f->reg_prev_;
  f->reg_prev_ = f->reg_next_ = nullptr;
}

// describe() names a fiber and who spawned it for a report, if it is
// still alive (the registry lock keeps it so while we read), and stores its
// id in *id. Empty if it is gone. Any thread (the monitor).
std::string scheduler::impl::describe(fiber_base* f, std::uint64_t* id) {
  std::uint64_t parent = 0;
  std::ostringstream out;
  for (auto& sh : shards) {
    lock_guard_of lk(sh->mu);
    for (fiber_base* g = sh->head; g; g = g->reg_next_) {
      if (g != f) continue;
      out << "fiber #" << g->id() << " '" << g->name() << "'";
      if (id) *id = g->id();
      parent = g->parent_id_;
    }
  }
  if (out.tellp() == 0) return {};
  if (parent == 0) {
    out << " (spawned by a plain thread)";
    return out.str();
  }
  // The spawner by name, if it is still alive; one lock at a time.
  for (auto& sh : shards) {
    lock_guard_of lk(sh->mu);
    for (fiber_base* g = sh->head; g; g = g->reg_next_)
      if (g->id() == parent) {
        out << " (spawned by fiber #" << parent << " '" << g->name() << "')";
        return out.str();
      }
  }
  out << " (spawned by fiber #" << parent << ", since finished)";
  return out.str();
}

}  // namespace green::sched
