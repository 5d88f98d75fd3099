// The runtime's annotated locks (private): what clang's -Wthread-safety
// needs to check the GREEN_GUARDED_BY fields of scheduler::impl and the fd
// table. libstdc++'s std::mutex and std::lock_guard carry no annotations,
// so a std::lock_guard on a capability is invisible to the analysis (it
// would then report every guarded access as unlocked); the runtime uses
// these instead:
//   annotated_mutex    std::mutex as a capability
//   lock_guard_of<M>   lock_guard for an annotated_mutex or a spinlock
//   cv_lock            a std::unique_lock<std::mutex> on an annotated_mutex,
//                      for std::condition_variable waits
// spinlock's own lock()/unlock() are unannotated (spinlock.hpp says why),
// so a guarded field counts as held only inside a lock_guard_of; the
// fibers/ primitives keep std::lock_guard<spinlock>: their fields are not
// annotated, so the analysis has nothing to check there.
#pragma once

#include <mutex>

#include "green/sched/spinlock.hpp"
#include "green/sched/thread_safety.hpp"

namespace green::sched {

class GREEN_CAPABILITY("mutex") annotated_mutex {
 public:
  void lock() GREEN_ACQUIRE() { mu_.lock(); }
  bool try_lock() GREEN_TRY_ACQUIRE(true) { return mu_.try_lock(); }
  void unlock() GREEN_RELEASE() { mu_.unlock(); }

 private:
  friend class cv_lock;
  std::mutex mu_;
};

template <class M>
class GREEN_SCOPED_CAPABILITY lock_guard_of {
 public:
  explicit lock_guard_of(M& mu) GREEN_ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
  ~lock_guard_of() GREEN_RELEASE() { mu_.unlock(); }
  lock_guard_of(const lock_guard_of&) = delete;
  lock_guard_of& operator=(const lock_guard_of&) = delete;

 private:
  M& mu_;
};

// cv_lock holds an annotated_mutex for its life as the analysis sees it.
// A condition_variable wait on native() drops and retakes the mutex inside
// the wait; since it holds it again on return, "held for the whole scope"
// is what the code after the wait may rely on (a predicate lambda is
// analysed on its own and must not read guarded fields).
class GREEN_SCOPED_CAPABILITY cv_lock {
 public:
  explicit cv_lock(annotated_mutex& mu) GREEN_ACQUIRE(mu) : lk_(mu.mu_) {}
  ~cv_lock() GREEN_RELEASE() {}
  cv_lock(const cv_lock&) = delete;
  cv_lock& operator=(const cv_lock&) = delete;
  std::unique_lock<std::mutex>& native() noexcept { return lk_; }

 private:
  std::unique_lock<std::mutex> lk_;
};

}  // namespace green::sched
