// green::select — Go's selectgo (runtime/select.go) on the park/wake seam.
//
// Protocol. (1) Lock every distinct pipe of the channel cases in address
// order (one global order, so two selects over the same channels cannot
// deadlock). (2) Poll the cases in a uniformly random permutation and
// complete the first ready one: the first ready case of a random permutation
// is uniformly distributed over the ready cases, which is Go's fairness.
// (3) None ready: take the default case if any. (4) Else open one park
// (prepare_park), link one waiter per case, all sharing that ticket, unlock
// everything and park (deadline: the timeout case). A waker on any of the
// channels completes its transfer into or out of the case's slot and then
// calls wake() on the shared ticket: only the first such wake succeeds (the
// seam allows one wake per park), so exactly one case is completed; a waker
// whose wake fails takes its value back and moves on (pipe.hpp). (5) After
// the park, lock everything again, unlink every waiter still linked, and find
// the one marked `chosen` by the winning waker. No chosen waiter means the
// park ended by timeout, kill, green::timeout scope or deadlock, and no case
// had any effect.
//
// Rejected: polling all cases in argument order (biased towards the first
// ready case); a per-select atomic "done" flag as in Go's sudog.isSelect:
// the seam's ticket generation already makes the first wake the only one.
#include "green/select.hpp"

#include <algorithm>

namespace green::detail {

namespace {
struct locker {
  sched::spinlock** locks;
  std::size_t n;
  void lock_all() noexcept {
    for (std::size_t i = 0; i < n; ++i) locks[i]->lock();
  }
  void unlock_all() noexcept {
    for (std::size_t i = n; i > 0; --i) locks[i - 1]->unlock();
  }
};
}  // namespace

std::size_t run_select(select_case* const* cs, std::size_t n, sched::waiter* ws, std::uint32_t* order,
                       sched::spinlock** locks) {
  constexpr std::size_t npos = static_cast<std::size_t>(-1);
  std::size_t otherwise = npos, timeout = npos;
  time_point deadline = no_deadline;
  std::size_t m = 0, nlocks = 0;
  for (std::size_t i = 0; i < n; ++i) {
    switch (cs[i]->kind_) {
      case select_case::kind::channel:
        order[m++] = static_cast<std::uint32_t>(i);
        locks[nlocks++] = cs[i]->lock();
        break;
      case select_case::kind::otherwise:
        if (otherwise == npos) otherwise = i;
        break;
      case select_case::kind::timeout:
        if (timeout == npos || cs[i]->deadline_ < deadline) {
          timeout = i;
          deadline = cs[i]->deadline_;
        }
        break;
    }
  }
  std::sort(locks, locks + nlocks, std::less<>());
  nlocks = static_cast<std::size_t>(std::unique(locks, locks + nlocks) - locks);
  locker all{locks, nlocks};
  // Fisher-Yates over the channel cases.
  for (std::size_t k = m; k > 1; --k) std::swap(order[k - 1], order[random_below(static_cast<std::uint32_t>(k))]);

  for (;;) {
    all.lock_all();
    for (std::size_t k = 0; k < m; ++k) {
      if (cs[order[k]]->ready_locked()) {
        all.unlock_all();
        return order[k];
      }
    }
    if (otherwise != npos) {
      all.unlock_all();
      return otherwise;
    }
    sched::ticket t = sched::prepare_park();
    for (std::size_t k = 0; k < m; ++k) {
      sched::waiter& w = ws[order[k]];
      w.t = t;
      w.tag = order[k];
      w.chosen = false;
      cs[order[k]]->enqueue_locked(&w);
    }
    all.unlock_all();
    wake_reason r = scoped_park(t, "select", deadline);
    all.lock_all();
    std::size_t won = npos;
    for (std::size_t k = 0; k < m; ++k) {
      std::size_t i = order[k];
      cs[i]->dequeue_locked(&ws[i]);
      if (ws[i].chosen) won = i;
    }
    all.unlock_all();
    if (won != npos) {
      if (r == wake_reason::closed) cs[won]->closed_ = true;
      return won;
    }
    if (r == wake_reason::timeout && timeout != npos) return timeout;
    raise_interrupt(r);
    // Not reached for the reasons park() returns without a waker; go again.
  }
}

}  // namespace green::detail
