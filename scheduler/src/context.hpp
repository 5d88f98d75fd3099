// green::sched::context — a saved execution context (registers + stack).
//
// Exactly one translation unit (src/context.cpp) includes Boost.Context and
// performs the switch; it alone carries the ASan and TSan fiber annotations.
#pragma once

#include <cstddef>

namespace green::sched {

class context;

// The function a new context starts in. `from` is the context that switched
// to it, `arg` the payload given to switch_to(). Must never return.
using context_entry = void (*)(context* from, void* arg);

class context {
 public:
  context() = default;
  context(const context&) = delete;
  context& operator=(const context&) = delete;

  // init_thread() adopts the calling OS thread's own stack as this context.
  // Call once per worker thread before the first switch. Any thread.
  void init_thread() noexcept;

  // init_fiber() prepares a context that starts in `entry` on the stack
  // [stack_lo, stack_lo + size). Any thread.
  void init_fiber(void* stack_lo, std::size_t size, context_entry entry) noexcept;

  // switch_to() saves the calling context into *this and resumes `to`,
  // handing it `arg`. Returns the `arg` of the switch that resumes *this.
  // Calling thread only; *this must be the context running now.
  void* switch_to(context& to, void* arg) noexcept;

  // exit_to() is switch_to() for a context that will never run again: its
  // sanitizer state is released. The stack may be freed by `to` afterwards.
  [[noreturn]] void exit_to(context& to, void* arg) noexcept;

  // release() frees sanitizer bookkeeping of a context that exited. Must be
  // called from another context after exit_to().
  void release() noexcept;

  // resume_point() is where a suspended context's saved registers sit, the
  // lowest address its resumption touches (null before the first switch).
  // For prefetching only. Valid while the context is suspended.
  const void* resume_point() const noexcept { return fctx_; }

 private:
  friend struct context_access;
  void* fctx_ = nullptr;            // Boost.Context fcontext_t of the suspended side
  const void* stack_lo_ = nullptr;  // for ASan: the stack this context runs on
  std::size_t stack_size_ = 0;
  context_entry entry_ = nullptr;  // for a fresh fiber context: where it starts
  void* tsan_fiber_ = nullptr;     // for TSan: its fiber handle
  bool owns_tsan_fiber_ = false;
};

}  // namespace green::sched
