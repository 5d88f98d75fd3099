// The context switch. The only file that includes Boost.Context.
//
// Protocol: jump_fcontext() hands the resumed side the fcontext of the side
// that just suspended. Every jump carries a `handoff` record {from, to, arg}
// (on the suspending side's stack, alive until it is resumed) so the resumed
// side can store that fcontext into `from`. One context object per stack,
// no hidden "previous context" globals. A fresh fiber starts in trampoline(),
// which finds its entry function in `to`.
//
// Sanitizers: ASan must be told before every switch which stack is about to
// run (__sanitizer_start_switch_fiber) and, after it, that the switch is done
// (__sanitizer_finish_switch_fiber); a context that exits passes a null
// fake-stack slot so ASan frees its fake frames. TSan models each fiber as a
// separate thread of happens-before: one TSan fiber per context, switched to
// just before the jump, destroyed once the fiber has exited.
//
// Rejected: boost::context::fiber (callcc). It keeps its control record on
// the stack and owns the stack's lifetime; the scheduler needs stacks from its
// own pool and direct fiber-to-fiber switches with a post-switch hook, which
// the raw fcontext API gives at no extra cost (one jump, ~20 instructions).
#include "context.hpp"

#include <boost/context/detail/fcontext.hpp>

#include "sanitizers.hpp"

#ifdef GREEN_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef GREEN_TSAN
#include <sanitizer/tsan_interface.h>
#endif

namespace bc = boost::context::detail;

namespace green::sched {

struct context_access {
  static void set_fctx(context& c, void* f) { c.fctx_ = f; }
  static context_entry entry(context& c) { return c.entry_; }
  // A thread context learns its stack bounds from ASan on the first switch
  // away from it (it was adopted, not created, so we never knew them).
  static void learn_stack(context& c, const void* lo, std::size_t size) {
    if (c.stack_lo_ == nullptr) {
      c.stack_lo_ = lo;
      c.stack_size_ = size;
    }
  }
};

namespace {

// jump() is bc::jump_fcontext() entered without a `call`. jump_fcontext
// saves the return address its caller pushed and resumes the other side with
// `jmp *%r8`, never `ret`; so a `call` pushes a return-stack-buffer entry
// that no `ret` pops. The RSB is then one entry off on every switch, and
// every return the resumed fiber makes on its way back out of park() (5-6 of
// them) mispredicts. Pushing the return address by hand and jumping keeps
// the RSB balanced (measured, one worker pinned to a core: unbuffered channel
// ping-pong 180 -> 140 ns per round trip). The asm is an ordinary call in
// every other respect: jump_fcontext preserves the callee-saved registers
// (and MXCSR / the x87 control word), so the caller-saved ones are clobbered;
// the 128-byte red zone below %rsp, where the compiler may keep locals of
// this leaf-looking frame, is skipped first.
#if defined(__AVX512F__)
#define GREEN_AVX512_CLOBBERS                                                                                   \
  , "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", \
      "xmm28", "xmm29", "xmm30", "xmm31", "k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"
#else
#define GREEN_AVX512_CLOBBERS
#endif
#if defined(__x86_64__) && defined(__ELF__)
inline bc::transfer_t jump(bc::fcontext_t to, void* data) noexcept {
  void* fctx;
  void* out;
  asm volatile(
      "lea -128(%%rsp), %%rsp\n\t"
      "lea 1f(%%rip), %%rcx\n\t"
      "push %%rcx\n\t"
      "jmp jump_fcontext@PLT\n"
      "1:\n\t"
      "lea 128(%%rsp), %%rsp\n\t"
      : "=a"(fctx), "=d"(out), "+D"(to), "+S"(data)
      :
      : "rcx", "r8", "r9", "r10", "r11", "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
        "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15" GREEN_AVX512_CLOBBERS);
  return bc::transfer_t{fctx, out};
}
#else
inline bc::transfer_t jump(bc::fcontext_t to, void* data) noexcept { return bc::jump_fcontext(to, data); }
#endif

struct handoff {
  context* from;
  context* to;
  void* arg;
};

// Runs on the resumed side right after a jump lands.
inline handoff* land(bc::transfer_t t, [[maybe_unused]] void* fake_stack) {
  auto* h = static_cast<handoff*>(t.data);
#ifdef GREEN_ASAN
  const void* from_lo = nullptr;
  std::size_t from_size = 0;
  __sanitizer_finish_switch_fiber(fake_stack, &from_lo, &from_size);
  context_access::learn_stack(*h->from, from_lo, from_size);
#endif
  context_access::set_fctx(*h->from, t.fctx);
  return h;
}

[[noreturn]] void trampoline(bc::transfer_t t) {
  handoff* h = land(t, nullptr);
  context_access::entry (*h->to)(h->from, h->arg);
  __builtin_trap();  // entries never return: they leave through exit_to()
}

}  // namespace

void context::init_thread() noexcept {
  fctx_ = nullptr;
  stack_lo_ = nullptr;
  stack_size_ = 0;
  entry_ = nullptr;
#ifdef GREEN_TSAN
  tsan_fiber_ = __tsan_get_current_fiber();
  owns_tsan_fiber_ = false;
#endif
}

void context::init_fiber(void* stack_lo, std::size_t size, context_entry entry) noexcept {
#ifdef GREEN_ASAN
  // A fiber that left through exit_to() never unwound its last frames, so
  // their redzones are still poisoned; a reused stack must start clean.
  __asan_unpoison_memory_region(stack_lo, size);
#endif
  stack_lo_ = stack_lo;
  stack_size_ = size;
  entry_ = entry;
  fctx_ = bc::make_fcontext(static_cast<char*>(stack_lo) + size, size, trampoline);
#ifdef GREEN_TSAN
  tsan_fiber_ = __tsan_create_fiber(0);
  owns_tsan_fiber_ = true;
#endif
}

void* context::switch_to(context& to, void* arg) noexcept {
  handoff h{this, &to, arg};
#ifdef GREEN_ASAN
  void* fake_stack = nullptr;
  __sanitizer_start_switch_fiber(&fake_stack, to.stack_lo_, to.stack_size_);
#else
  void* fake_stack = nullptr;
#endif
#ifdef GREEN_TSAN
  __tsan_switch_to_fiber(to.tsan_fiber_, 0);
#endif
  bc::transfer_t t = jump(to.fctx_, &h);
  return land(t, fake_stack)->arg;
}

void context::exit_to(context& to, void* arg) noexcept {
  handoff h{this, &to, arg};
#ifdef GREEN_ASAN
  __sanitizer_start_switch_fiber(nullptr, to.stack_lo_, to.stack_size_);
#endif
#ifdef GREEN_TSAN
  __tsan_switch_to_fiber(to.tsan_fiber_, 0);
#endif
  bc::jump_fcontext(to.fctx_, &h);
  __builtin_trap();  // an exited context is never resumed
}

void context::release() noexcept {
#ifdef GREEN_TSAN
  if (owns_tsan_fiber_ && tsan_fiber_) __tsan_destroy_fiber(tsan_fiber_);
#endif
  tsan_fiber_ = nullptr;
  owns_tsan_fiber_ = false;
  fctx_ = nullptr;
}

}  // namespace green::sched
