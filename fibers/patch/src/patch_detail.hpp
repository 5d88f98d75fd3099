// Internals shared by the patch library's translation units.
#pragma once

#include <dlfcn.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "green/sched/io.hpp"
#include "green/sched/patch_seam.hpp"
#include "green/sched/scheduler.hpp"

// The runtime's symbols are weak references: the executable exports them
// (greenfiber::patch adds the link options), and a process without a
// greenfiber runtime, say a child that inherited LD_PRELOAD, still loads
// this library and gets libc's behaviour everywhere.
namespace green::sched {
__attribute__((weak)) fiber_base* current_fiber() noexcept;
__attribute__((weak)) wake_reason wait_fd(int fd, io_dir dir, time_point deadline) noexcept;
__attribute__((weak)) void notify_close(int fd) noexcept;
__attribute__((weak)) ticket prepare_park() noexcept;
__attribute__((weak)) wake_reason park(ticket t, const char* what, time_point deadline, after_switch_fn after,
                                       void* after_arg) noexcept;
__attribute__((weak)) bool wake(ticket t, wake_reason r) noexcept;
__attribute__((weak)) void rearm_kill() noexcept;
}  // namespace green::sched

// After the weak declarations: the inline scope helpers (scoped_park,
// scoped_wait_fd) and the per-fiber extension (the lock count) call them.
#include "green/detail/fiber_ext.hpp"
#include "green/detail/wait.hpp"

namespace green::patch::detail {

// decltype(&::read) carries glibc's access/nonnull attributes, which a
// function-pointer template argument drops; that is all the warning says.
#pragma GCC diagnostic ignored "-Wignored-attributes"

// real<F>() is libc's own F: the next definition after this library in the
// lookup order (dlsym(RTLD_NEXT)). Resolved on first use, because other
// libraries' constructors may call an interposed function before ours runs.
template <class Fn>
struct real_fn {
  const char* name;
  std::atomic<Fn> fn{nullptr};
  Fn get() noexcept {
    Fn f = fn.load(std::memory_order_relaxed);  // relaxed: every thread resolves the same value
    if (__builtin_expect(f != nullptr, 1)) return f;
    f = reinterpret_cast<Fn>(::dlsym(RTLD_NEXT, name));
    if (f == nullptr) {
      std::fprintf(stderr, "green::patch: dlsym(RTLD_NEXT, \"%s\") failed: %s\n", name, ::dlerror());
      std::abort();
    }
    fn.store(f, std::memory_order_relaxed);
    return f;
  }
};
#define GREEN_REAL(name) ::green::patch::detail::real_##name.get()
#define GREEN_DECLARE_REAL(name) extern ::green::patch::detail::real_fn<decltype(&::name)> real_##name
#define GREEN_DEFINE_REAL(name) \
  ::green::patch::detail::real_fn<decltype(&::name)> real_##name { #name }

// on_fiber() is true when an interposed call must cooperate: patching is
// enabled, the greenfiber runtime is in the process, and the caller is a
// fiber that holds no thread-owned lock (locks.cpp: such a fiber behaves
// like a thread, so it never leaves its thread mid-critical-section and no
// other fiber runs there meanwhile). Any thread.
bool runtime_present() noexcept;
extern std::atomic<bool> enabled_flag;
inline bool on_fiber() noexcept {
  // relaxed: a switch that races a call may apply to it or not; either is fine
  if (!enabled_flag.load(std::memory_order_relaxed) || !runtime_present()) return false;
  sched::fiber_base* f = sched::current_fiber();
  return f != nullptr && !green::detail::holds_thread_lock(f);  // one load and a branch
}

// ended_by() passes on why a park ended. A kill is delivered once: the
// caller turns it into ECANCELED (or an early return) for C code, which
// cannot take an exception, so it is re-armed here for the fiber's next
// green suspension point to raise fiber_exit. A scope timeout needs no
// re-arming: the scope's deadline stays in the past. Fiber context only.
inline sched::wake_reason ended_by(sched::wake_reason r) noexcept {
  if (r == sched::wake_reason::killed) sched::rearm_kill();
  return r;
}

// errno after a park: the fiber may resume on another worker, and
// __errno_location() is declared const, so the compiler may reuse the old
// thread's address across the switch. These fetch it fresh every time.
// GCC's noipa keeps callers from learning anything from the body; clang
// has no noipa, and optnone (with noinline) does the same there.
#if defined(__clang__)
#define GREEN_PATCH_OPAQUE __attribute__((noinline, optnone))
#else
#define GREEN_PATCH_OPAQUE __attribute__((noinline, noipa))
#endif
GREEN_PATCH_OPAQUE int get_errno() noexcept;
GREEN_PATCH_OPAQUE void set_errno(int e) noexcept;
GREEN_PATCH_OPAQUE void set_h_errno(int e) noexcept;

// Counters (relaxed: statistics only).
extern std::atomic<std::uint64_t> n_parks, n_sleeps, n_offloads;

}  // namespace green::patch::detail
