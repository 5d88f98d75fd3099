// green::detail::fiber_ext — the public layer's per-fiber state, attached to
// the runtime's control block through its uninterpreted hook
// (sched::fiber_base::ext / ext_free).
//
// What lives here: the earliest active green::timeout deadline and the
// innermost scope (timeout.hpp), the innermost stop_scope of a stop-aware
// wait (stop.hpp), the fiber_local slots (fiber_local.hpp), and the patch
// library's count of pthread locks the fiber holds
// (fibers/patch/src/locks.cpp). None of it is the runtime's business, so the
// control block carries one pointer for all of it.
//
// Lifetime. Allocated on first use by the fiber itself (ext_make), so a
// fiber that never uses a timeout scope, a fiber_local or a pthread lock
// pays nothing but the null pointer. Freed by the fiber at its exit
// (release_ext(), from fiber_impl::invoke(), on its own thread, before
// joiners see done()), which is when fiber_local values are destroyed; the
// runtime's ext_free call when the control block dies covers an extension
// that is still attached then (a destructor that re-creates one too often).
//
// The low bit of fiber_base::ext is set while thread_locks > 0, so the
// patch library's check on every interposed call ("does this fiber hold a
// pthread lock?") is one load and a branch whether or not the extension
// exists. Every other access masks it off (ext_peek).
//
// Header-only on purpose: the patch library is a separate shared object that
// reaches the runtime only through weak green::sched symbols, so what it
// uses here must be inline.
//
// Who may call what: everything here is owner-fiber only (the fiber whose
// extension it is), except free_ext, which the runtime calls with the last
// reference.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "green/fiber_local.hpp"
#include "green/sched/scheduler.hpp"

namespace green {
class timeout;
}

namespace green::detail {

class stop_scope;

struct fiber_ext {
  sched::time_point scope_deadline = sched::no_deadline;  // earliest active green::timeout deadline
  timeout* innermost = nullptr;                           // innermost timeout scope (a list on the stack)
  stop_scope* stop = nullptr;                             // innermost stop_scope (a list on the stack)
  std::vector<fls_slot> fls;                              // slot i belongs to fiber_local key i
  std::uint32_t thread_locks = 0;                         // pthread locks held (patch library)
};

inline constexpr std::uintptr_t ext_locked_bit = 1;

// destroy_fls() runs the destructors of the values in `slots` and empties
// it. A destructor may use a fiber_local again (it then lands in a new
// extension or slot: callers loop). Any thread (the values' destructors
// decide where they may run; the fiber's exit runs them on the fiber).
inline void destroy_fls(std::vector<fls_slot>& slots) noexcept {
  std::vector<fls_slot> v;
  v.swap(slots);  // a destructor that calls get() must not resize what we walk
  for (fls_slot& s : v)
    if (s.value && s.destroy) s.destroy(s.value);
}

// untag() is the extension that a tagged `ext` value points to (null for
// null). Pointer arithmetic, not an integer-to-pointer cast, so the
// compiler keeps the pointer's provenance.
inline fiber_ext* untag(void* p) noexcept {
  auto* c = static_cast<char*>(p);
  return reinterpret_cast<fiber_ext*>(c - (reinterpret_cast<std::uintptr_t>(p) & ext_locked_bit));
}

// free_ext() is the ext_free the runtime calls: destroys what is left.
inline void free_ext(void* p) noexcept {
  fiber_ext* e = untag(p);
  destroy_fls(e->fls);
  delete e;
}

// ext_peek() is f's extension, or null if it has none yet.
inline fiber_ext* ext_peek(const sched::fiber_base* f) noexcept { return untag(f->ext); }

// ext_make() is f's extension, allocated on first use. Throws
// std::bad_alloc.
inline fiber_ext& ext_make(sched::fiber_base* f) {
  if (fiber_ext* e = ext_peek(f)) return *e;
  auto* e = new fiber_ext;
  f->ext = e;
  f->ext_free = &free_ext;
  return *e;
}

// holds_thread_lock() is true while f holds a pthread lock: one load.
inline bool holds_thread_lock(const sched::fiber_base* f) noexcept {
  return (reinterpret_cast<std::uintptr_t>(f->ext) & ext_locked_bit) != 0;
}

// set_thread_locks() stores f's lock count and keeps the low bit of f->ext
// equal to "count > 0". Precondition: the extension exists.
inline void set_thread_locks(sched::fiber_base* f, std::uint32_t n) noexcept {
  fiber_ext* e = ext_peek(f);
  e->thread_locks = n;
  f->ext = reinterpret_cast<char*>(e) + (n != 0 ? ext_locked_bit : 0);
}

// release_ext() destroys the fiber's fiber_local values and frees its
// extension at the fiber's exit. A value's destructor that uses a
// fiber_local again re-creates an extension; that is destroyed in the next
// round, up to four rounds like PTHREAD_DESTRUCTOR_ITERATIONS; what is left
// then goes when the control block does (free_ext). Owner fiber only.
inline void release_ext(sched::fiber_base* f) noexcept {
  for (int round = 0; round < 4 && f->ext != nullptr; ++round) {
    void* p = f->ext;
    f->ext = nullptr;
    free_ext(p);
  }
}

}  // namespace green::detail
