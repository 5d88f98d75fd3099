// green::patch — make unmodified blocking code cooperative (gevent's
// monkey.patch_all() for C and C++).
//
// Link greenfiber::patch (libgreenfiber_patch.so), or LD_PRELOAD it into a
// greenfiber program built with -rdynamic, and libc's blocking calls made on
// a fiber — by your code or by a library you did not write (libcurl's easy
// API, a hiredis blocking context) — park the fiber instead of the worker.
// Outside a fiber every call is libc's own. See docs/patch.md for what is
// covered, the exact semantics and the limits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace green::patch {

// enable() turns interposition on for every thread (the default when the
// library is loaded, unless GREEN_PATCH=0 is set in the environment).
// disable() turns it off: from then on every interposed call is libc's, in
// fibers too (calls already parked finish their wait). Any thread.
void enable() noexcept;
void disable() noexcept;
// enabled() is true if calls made on a fiber are patched. Any thread.
bool enabled() noexcept;

// runtime_found() is true if the greenfiber runtime was found in the
// process (its green::sched symbols are exported by the executable, which
// linking greenfiber::patch arranges). Without it every call is libc's.
bool runtime_found() noexcept;

// covered() names every libc function this library interposes, in a fixed
// order (docs/patch.md says what each does on a fiber). Any thread.
std::span<const char* const> covered() noexcept;

// Counters since the process started (relaxed; for tests and examples).
struct stats {
  std::uint64_t parks = 0;     // times a patched call parked its fiber on an fd
  std::uint64_t sleeps = 0;    // sleep-family calls turned into fiber sleeps
  std::uint64_t offloads = 0;  // resolver calls run on the OS-thread fallback
};
stats get_stats() noexcept;

}  // namespace green::patch
