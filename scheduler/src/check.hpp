// GREEN_DCHECK(cond, msg): an invariant of the runtime (Go's
// throw("bad g status"), marl's MARL_ASSERT). Active in Debug and sanitizer
// builds (CMake defines GREEN_DCHECKS=1 for them) and whenever NDEBUG is not
// defined; compiles to nothing in Release, so the switch path pays nothing.
// On failure it prints the condition, file:line and `msg` with write(2)
// (it may fire on a fiber stack or with a lock held: no allocation, no
// stdio lock) and aborts.
#pragma once

#if !defined(GREEN_DCHECKS)
#if defined(NDEBUG)
#define GREEN_DCHECKS 0
#else
#define GREEN_DCHECKS 1
#endif
#endif

namespace green::sched {
[[noreturn]] __attribute__((cold)) void dcheck_failed(const char* cond, const char* file, int line,
                                                      const char* msg) noexcept;
}  // namespace green::sched

#if GREEN_DCHECKS
#define GREEN_DCHECK(cond, msg)                                                                      \
  do {                                                                                               \
    if (__builtin_expect(!(cond), 0)) ::green::sched::dcheck_failed(#cond, __FILE__, __LINE__, msg); \
  } while (0)
#else
// sizeof: the condition is still parsed and type-checked, never evaluated.
#define GREEN_DCHECK(cond, msg) static_cast<void>(sizeof(!(cond)))
#endif
