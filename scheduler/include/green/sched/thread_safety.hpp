// Clang thread-safety annotations (-Wthread-safety), spelled GREEN_* so they
// cannot clash with a user's or another library's macros of the same names.
// On compilers without the attributes (g++) they expand to nothing, so they
// document there and are checked by the clang build.
//
//   GREEN_CAPABILITY(name)     a class whose objects are locks
//   GREEN_SCOPED_CAPABILITY    an RAII class that holds a lock for its life
//   GREEN_GUARDED_BY(mu)       a field read or written only with mu held
//   GREEN_PT_GUARDED_BY(mu)    what a pointer field points to, likewise
//   GREEN_REQUIRES(mu...)      a function its caller calls with mu held
//   GREEN_ACQUIRE / _RELEASE   a function that takes / drops the lock
//   GREEN_TRY_ACQUIRE(ok, mu)  takes the lock when it returns `ok`
//   GREEN_EXCLUDES(mu...)      a function its caller calls without mu
//   GREEN_RETURN_CAPABILITY(x) a function that returns a reference to lock x
//   GREEN_NO_THREAD_SAFETY_ANALYSIS  an escape; each use says why
#pragma once

#if defined(__clang__) && defined(__has_attribute)
#if __has_attribute(capability)
#define GREEN_THREAD_ANNOTATION(x) __attribute__((x))
#endif
#endif
#ifndef GREEN_THREAD_ANNOTATION
#define GREEN_THREAD_ANNOTATION(x)
#endif

#define GREEN_CAPABILITY(name) GREEN_THREAD_ANNOTATION(capability(name))
#define GREEN_SCOPED_CAPABILITY GREEN_THREAD_ANNOTATION(scoped_lockable)
#define GREEN_GUARDED_BY(x) GREEN_THREAD_ANNOTATION(guarded_by(x))
#define GREEN_PT_GUARDED_BY(x) GREEN_THREAD_ANNOTATION(pt_guarded_by(x))
#define GREEN_REQUIRES(...) GREEN_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define GREEN_ACQUIRE(...) GREEN_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define GREEN_RELEASE(...) GREEN_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define GREEN_TRY_ACQUIRE(...) GREEN_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define GREEN_EXCLUDES(...) GREEN_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define GREEN_RETURN_CAPABILITY(x) GREEN_THREAD_ANNOTATION(lock_returned(x))
#define GREEN_NO_THREAD_SAFETY_ANALYSIS GREEN_THREAD_ANNOTATION(no_thread_safety_analysis)
