// green::sched::spinlock — a test-and-test-and-set lock for the short
// critical sections of wait lists, timer heaps and registries.
#pragma once

#include <atomic>
#include <thread>

#include "green/sched/thread_safety.hpp"

namespace green::sched {

inline void cpu_pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Invariants: locked_ is true exactly while one thread is inside a critical
// section. Critical sections never park or switch fibers.
//
// A capability for clang's -Wthread-safety: a field it guards says
// GREEN_GUARDED_BY(mu), and the analysis counts it held inside an annotated
// scoped guard (the runtime's sched::lock_guard_of, scheduler/src/locks.hpp).
// lock()/unlock()/try_lock() themselves are deliberately not annotated:
// select (fibers/src/select.cpp) takes a run-time-sized set of them in a
// loop, which the analysis cannot follow, and std::lock_guard/unique_lock
// (unannotated in libstdc++) keep working unseen, as for any std mutex.
class GREEN_CAPABILITY("spinlock") spinlock {
 public:
  void lock() noexcept {
    for (unsigned spins = 0;; ++spins) {
      // acquire: pairs with the release in unlock()
      if (!locked_.exchange(true, std::memory_order_acquire)) return;
      while (locked_.load(std::memory_order_relaxed)) {
        // 64 pauses (~2 µs) cover any critical section here; past that the
        // holder was preempted, so give its OS thread the core.
        if (++spins > 64) std::this_thread::yield();
        else cpu_pause();
      }
    }
  }
  bool try_lock() noexcept {
    return !locked_.load(std::memory_order_relaxed) && !locked_.exchange(true, std::memory_order_acquire);
  }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }  // release: publishes the section

 private:
  std::atomic<bool> locked_{false};
};

}  // namespace green::sched
