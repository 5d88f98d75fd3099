// Thread-owned locks: pthread mutexes and rwlocks held by a fiber.
//
// The problem. A pthread mutex belongs to the OS thread that locked it:
// recursive and error-checking mutexes (SQLite's, for one) refuse an unlock
// from another thread (EPERM), a write-locked rwlock unlocked from another
// thread is taken for a read unlock, and a second fiber on the owner's
// thread gets a recursive mutex at once (two fibers in one critical
// section) or self-deadlocks the worker on a plain one. So a fiber that
// parks in a patched call while it holds one breaks it: it may resume on
// another worker, and other fibers run on its thread meanwhile.
//
// The rule (Go's answer, LockOSThread: such a goroutine stays on its
// thread): while a fiber holds a thread-owned lock it behaves like a
// thread. Every patched call it makes is libc's own and blocks the worker
// (on_fiber() is false), so it neither migrates nor lets another fiber run
// on its thread until it has released every such lock. The worker's queued
// fibers are not stuck behind it: a worker blocked in the kernel for the
// monitor's limit (config::monitor_limit, 10 ms) is handed off (its queue
// goes to the global queue, a spare worker starts if none is idle).
//
// Protocol. These wrappers call libc's function and, when it acquired the
// lock and the caller is a fiber, count it in its fiber_ext::thread_locks (one
// per acquisition, so recursive locking nests); a release counts down. The
// count lives in the fiber, not the thread: a fiber that breaks the rule
// by holding a lock across a green suspension (a channel, green::mutex)
// keeps its own count wherever it resumes and never makes another fiber,
// or another thread, look locked. The runtime's own std::mutex uses on
// fibers lock and unlock without a switch in between, so they net to zero;
// none is released in an after-switch callback (which runs as another
// fiber): green::condition_variable_any releases the caller's lock on the
// caller, before it parks.
//
// Cost: on every lock and unlock, a call to current_fiber() (a TLS read in
// the executable) and, on a fiber, an update of the count in its extension
// (green/detail/fiber_ext.hpp; the first lock a fiber takes allocates it,
// and running out of memory there terminates, as these calls cannot fail
// with ENOMEM). Measured in the commit that adds this file.
//
// Not counted: pthread_spin_* (no owner; a holder must not block anyway),
// C11 mtx_* and glibc's internal locks (they do not go through the PLT),
// and locks taken outside a fiber. pthread_cond_wait keeps the count (the
// mutex is held again when it returns; meanwhile the thread blocks).
//
// Rejected: a per-thread count (a fiber resuming elsewhere would leave its
// old thread "locked" and unlock a count of the new one); pinning the fiber
// to its worker while it parks (another fiber running there would still
// take a recursive mutex it holds, or deadlock the worker on a plain one).
#include <pthread.h>
#include <time.h>

#include <cerrno>

#include "patch_detail.hpp"

namespace green::patch::detail {

GREEN_DEFINE_REAL(pthread_mutex_lock);
GREEN_DEFINE_REAL(pthread_mutex_trylock);
GREEN_DEFINE_REAL(pthread_mutex_timedlock);
GREEN_DEFINE_REAL(pthread_mutex_clocklock);
GREEN_DEFINE_REAL(pthread_mutex_unlock);
GREEN_DEFINE_REAL(pthread_rwlock_rdlock);
GREEN_DEFINE_REAL(pthread_rwlock_tryrdlock);
GREEN_DEFINE_REAL(pthread_rwlock_timedrdlock);
GREEN_DEFINE_REAL(pthread_rwlock_clockrdlock);
GREEN_DEFINE_REAL(pthread_rwlock_wrlock);
GREEN_DEFINE_REAL(pthread_rwlock_trywrlock);
GREEN_DEFINE_REAL(pthread_rwlock_timedwrlock);
GREEN_DEFINE_REAL(pthread_rwlock_clockwrlock);
GREEN_DEFINE_REAL(pthread_rwlock_unlock);

namespace {

// locking_fiber() is the calling fiber, or null on a plain thread, on a
// worker's own stack, or without the runtime. Not runtime_present(): only
// current_fiber() is needed, and one weak-address test is cheaper than its
// once-initialized static. Any thread.
inline sched::fiber_base* locking_fiber() noexcept {
  return &sched::current_fiber != nullptr ? sched::current_fiber() : nullptr;
}

// acquired() counts a lock call's result: 0, and EOWNERDEAD for a robust
// mutex, mean the caller holds the lock now. Returns r. Any thread.
inline int acquired(int r) noexcept {
  if (r == 0 || r == EOWNERDEAD)
    if (sched::fiber_base* f = locking_fiber())
      green::detail::set_thread_locks(f, green::detail::ext_make(f).thread_locks + 1);
  return r;
}

// released() counts a successful unlock. A lock taken before the count
// started (on a plain thread, by another fiber of a program that hands
// plain mutexes over) must not wrap it. Returns r. Any thread.
inline int released(int r) noexcept {
  if (r == 0)
    if (sched::fiber_base* f = locking_fiber(); f && green::detail::holds_thread_lock(f))
      green::detail::set_thread_locks(f, green::detail::ext_peek(f)->thread_locks - 1);
  return r;
}

}  // namespace
}  // namespace green::patch::detail

using namespace green::patch::detail;  // NOLINT: the library's C face

extern "C" {

int pthread_mutex_lock(pthread_mutex_t* m) { return acquired(GREEN_REAL(pthread_mutex_lock)(m)); }
int pthread_mutex_trylock(pthread_mutex_t* m) { return acquired(GREEN_REAL(pthread_mutex_trylock)(m)); }
int pthread_mutex_timedlock(pthread_mutex_t* m, const timespec* at) {
  return acquired(GREEN_REAL(pthread_mutex_timedlock)(m, at));
}
int pthread_mutex_clocklock(pthread_mutex_t* m, clockid_t c, const timespec* at) {
  return acquired(GREEN_REAL(pthread_mutex_clocklock)(m, c, at));
}
int pthread_mutex_unlock(pthread_mutex_t* m) { return released(GREEN_REAL(pthread_mutex_unlock)(m)); }

int pthread_rwlock_rdlock(pthread_rwlock_t* l) { return acquired(GREEN_REAL(pthread_rwlock_rdlock)(l)); }
int pthread_rwlock_tryrdlock(pthread_rwlock_t* l) { return acquired(GREEN_REAL(pthread_rwlock_tryrdlock)(l)); }
int pthread_rwlock_timedrdlock(pthread_rwlock_t* l, const timespec* at) {
  return acquired(GREEN_REAL(pthread_rwlock_timedrdlock)(l, at));
}
int pthread_rwlock_clockrdlock(pthread_rwlock_t* l, clockid_t c, const timespec* at) {
  return acquired(GREEN_REAL(pthread_rwlock_clockrdlock)(l, c, at));
}
int pthread_rwlock_wrlock(pthread_rwlock_t* l) { return acquired(GREEN_REAL(pthread_rwlock_wrlock)(l)); }
int pthread_rwlock_trywrlock(pthread_rwlock_t* l) { return acquired(GREEN_REAL(pthread_rwlock_trywrlock)(l)); }
int pthread_rwlock_timedwrlock(pthread_rwlock_t* l, const timespec* at) {
  return acquired(GREEN_REAL(pthread_rwlock_timedwrlock)(l, at));
}
int pthread_rwlock_clockwrlock(pthread_rwlock_t* l, clockid_t c, const timespec* at) {
  return acquired(GREEN_REAL(pthread_rwlock_clockwrlock)(l, c, at));
}
int pthread_rwlock_unlock(pthread_rwlock_t* l) { return released(GREEN_REAL(pthread_rwlock_unlock)(l)); }

}  // extern "C"
