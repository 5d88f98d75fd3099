// Introspection: dump() (per-worker queues, every fiber's state and what
// it waits on; GREEN_SCHEDTRACE prints it periodically), stats, and the
// process-wide list of live runtimes behind dump_all() and io_waiters().
//
// Everything here reads shared state with relaxed loads or under the
// registry's shard locks: a dump is a snapshot for humans and tests, not a
// consistent cut (Go's schedtrace makes the same trade).
#include <algorithm>
#include <mutex>
#include <ostream>
#include <vector>

#include "runtime_impl.hpp"

namespace green::sched {

namespace {
annotated_mutex all_mu;
std::vector<scheduler*>& all_schedulers() GREEN_REQUIRES(all_mu) {
  static auto* v = new std::vector<scheduler*>();
  return *v;
}
}  // namespace

void add_runtime(scheduler* s) {
  lock_guard_of lk(all_mu);
  all_schedulers().push_back(s);
}

void remove_runtime(scheduler* s) {
  lock_guard_of lk(all_mu);
  auto& v = all_schedulers();
  v.erase(std::remove(v.begin(), v.end(), s), v.end());
}

// Any thread.
const char* to_string(fiber_state s) noexcept {
  switch (s) {
    case fiber_state::created:
      return "created";
    case fiber_state::runnable:
      return "runnable";
    case fiber_state::running:
      return "running";
    case fiber_state::parked:
      return "parked";
    case fiber_state::done:
      return "done";
  }
  return "?";
}

// Any thread.
scheduler::stats scheduler::get_stats() const noexcept {
  stats s;
  s.spawned = impl_->spawned.load(std::memory_order_relaxed);
  s.steals = impl_->steals.load(std::memory_order_relaxed);
  s.global_pushes = impl_->global_pushes.load(std::memory_order_relaxed);
  s.deadlocks = impl_->deadlocks.load(std::memory_order_relaxed);
  s.stuck_reports = impl_->stuck_reports.load(std::memory_order_relaxed);
  s.rescues = impl_->rescues.load(std::memory_order_relaxed);
  s.spares_started = impl_->spares_started.load(std::memory_order_relaxed);
  s.spares_live = impl_->spares_live();
  s.monitor_polls = impl_->monitor_polls.load(std::memory_order_relaxed);
  return s;
}

// dump(): see scheduler.hpp. Any thread.
void scheduler::dump(std::ostream& out) {
  impl& m = *impl_;
  out << "green runtime '" << cfg_.name << "': " << nworkers_ << " workers, " << live_fibers() << " fibers, "
      << m.npidle.load() << " idle, " << m.nmspinning.load() << " spinning, global queue " << m.gsize.load() << "\n";
  static constexpr const char* reports[] = {"off", "blocking", "all"};
  out << "  monitor: ";
  if (cfg_.monitor_limit.count() == 0) out << "off (no rescue, no spares)\n";
  else
    out << "limit " << cfg_.monitor_limit.count() << " ms, reports " << reports[static_cast<int>(cfg_.monitor_reports)]
        << ", " << m.stuck_reports.load(std::memory_order_relaxed) << " reported, "
        << m.rescues.load(std::memory_order_relaxed)
        << " rescues; spare workers: " << m.nslots.load(std::memory_order_relaxed) - m.nworkers << " started ("
        << m.spares_started.load(std::memory_order_relaxed) << " activations), " << m.spares_live() << " live, limit "
        << cfg_.max_spare_workers << "\n";
  for (auto& w : m.workers) {
    if (w->index >= m.nslots.load(std::memory_order_acquire)) break;
    out << "  worker " << w->index << ": queue " << w->queued() << ", timers " << w->timers.size() << ", switches "
        << w->switches.load(std::memory_order_relaxed) << "\n";
  }
  for (auto& sh : m.shards) {
    lock_guard_of lk(sh->mu);
    for (fiber_base* f = sh->head; f; f = f->reg_next_) {
      const char* why = f->wait_reason();
      out << "  fiber #" << f->id() << " '" << f->name() << "': " << to_string(f->state());
      if (f->state() == fiber_state::parked && why) out << " (" << why << ")";
      unsigned lw = f->last_worker_.load(std::memory_order_relaxed);
      if (lw != ~0u) out << " on worker " << lw;
      out << "\n";
    }
  }
}

// Any thread.
void scheduler::dump_all(std::ostream& out) {
  lock_guard_of lk(all_mu);
  for (scheduler* s : all_schedulers()) s->dump(out);
}

// io_waiters(): see io.hpp. Any thread.
std::size_t io_waiters() noexcept {
  lock_guard_of lk(all_mu);
  std::int64_t n = 0;
  for (scheduler* s : all_schedulers()) n += sched_access::im(s)->io_waiting();
  return n > 0 ? static_cast<std::size_t>(n) : 0;
}

}  // namespace green::sched
