// green/testing.hpp — hooks for greenfiber's own tests and benchmarks.
//
// NOT part of the stable API: everything here exposes the runtime behind
// the public types and may change or disappear in any release. Programs
// use green/green.hpp; the runtime's statistics and a fiber's control
// block are reachable only through this header.
#pragma once

#include <cstdint>

#include "green/detail/fiber_ext.hpp"
#include "green/fiber.hpp"
#include "green/runtime.hpp"
#include "green/sched/scheduler.hpp"

namespace green::testing {

// native() is the control block behind a fiber handle (null if the handle
// is empty): state, wait reason, kill. Any thread.
template <class T>
sched::fiber_base* native(const fiber<T>& f) noexcept {
  return detail::access::native(f);
}

// scheduler() is the runtime's scheduler: statistics, dump. Any thread.
inline sched::scheduler& scheduler(runtime& rt) noexcept { return detail::access::scheduler(rt); }

// has_extension() is true once fiber f has allocated the public layer's
// per-fiber state (a timeout scope, a fiber_local, a pthread lock under the
// patch library did it). Owner fiber, or any thread once f is done()
// (it is null then: the fiber frees it at exit).
inline bool has_extension(const sched::fiber_base* f) noexcept { return f->ext != nullptr; }

// thread_locks() is how many pthread locks the patch library counts fiber f
// as holding. Owner fiber only.
inline std::uint32_t thread_locks(const sched::fiber_base* f) noexcept {
  const detail::fiber_ext* e = detail::ext_peek(f);
  return e ? e->thread_locks : 0;
}

}  // namespace green::testing
