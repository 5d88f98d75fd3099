// fiber_parts: the runtime's private parts of a fiber control block.
//
// fiber_base (green/sched/scheduler.hpp, installed) keeps the fiber's
// context, stack and park timer as opaque bytes, so a program that includes
// the public headers sees none of context.hpp, stack.hpp or timer.hpp. Here
// those bytes get their types: fiber_base's constructor builds them
// (construct) and its destructor ends them (destroy); the runtime reaches
// them through the accessors below, which compile to a plain member access.
// The static_asserts keep the byte counts in scheduler.hpp honest.
//
// Rejected: a pointer to a separately allocated part (one more allocation
// and one more cache miss per fiber on the switch path); the typed members
// in the public header (the installed tree would carry the runtime's
// context, stack allocator and timer heap).
#pragma once

#include <new>

#include "context.hpp"
#include "green/sched/scheduler.hpp"
#include "stack.hpp"
#include "timer.hpp"

namespace green::sched {

struct fiber_machine {
  context ctx;
  stack stk;
};

// The park deadline's timer node; `owner` is the fiber it wakes.
struct fiber_park_timer : timer_node {
  fiber_base* owner = nullptr;
};

struct fiber_parts {
  static_assert(sizeof(fiber_machine) <= fiber_base::machine_bytes && alignof(fiber_machine) <= 8,
                "fiber_base::machine_bytes is too small for fiber_machine");
  static_assert(sizeof(fiber_park_timer) <= fiber_base::park_timer_bytes && alignof(fiber_park_timer) <= 8,
                "fiber_base::park_timer_bytes is too small for fiber_park_timer");

  static fiber_machine& machine(fiber_base* f) noexcept {
    return *std::launder(reinterpret_cast<fiber_machine*>(f->machine_));
  }
  static const fiber_machine& machine(const fiber_base* f) noexcept {
    return *std::launder(reinterpret_cast<const fiber_machine*>(f->machine_));
  }
  static context& ctx(fiber_base* f) noexcept { return machine(f).ctx; }
  static stack& stk(fiber_base* f) noexcept { return machine(f).stk; }
  static const stack& stk(const fiber_base* f) noexcept { return machine(f).stk; }
  static fiber_park_timer& park_timer(fiber_base* f) noexcept {
    return *std::launder(reinterpret_cast<fiber_park_timer*>(f->park_timer_));
  }

  // construct() / destroy(): fiber_base's constructor and destructor only.
  static void construct(fiber_base* f) noexcept {
    new (f->machine_) fiber_machine();
    new (f->park_timer_) fiber_park_timer();
  }
  static void destroy(fiber_base* f) noexcept {
    park_timer(f).~fiber_park_timer();
    machine(f).~fiber_machine();
  }
};

}  // namespace green::sched
