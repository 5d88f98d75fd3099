// Stack-overflow reports: the guard-page SIGSEGV handler, the alternate
// signal stack it runs on, and the report itself (check_stack() in
// switch-inl.hpp calls it too).
//
// Protocol. A fault whose address lies within 64 KiB below the running
// fiber's stack is reported as that fiber's overflow, with write(2) only
// (async-signal-safe), then abort(). Any other fault goes to the handler
// installed before ours, or to the default action. Off under a sanitizer,
// which reports overflows itself and owns SIGSEGV.
//
// Rejected: reporting from the faulting stack (no room left on it: hence
// the alternate stack); a handler per runtime (signals are per process).
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>

#include "sanitizers.hpp"
#include "worker.hpp"

namespace green::sched {

void report_overflow(const fiber_base* f, const char* how) noexcept {
  char buf[256];
  int len = std::snprintf(buf, sizeof buf, "green: stack overflow in fiber #%" PRIu64 " '%s' (%s)\n", f->id(),
                          f->name().c_str(), how);
  if (len > 0) {
    ssize_t r = ::write(2, buf, static_cast<std::size_t>(std::min<int>(len, sizeof buf - 1)));
    (void)r;
  }
  std::abort();
}

namespace {
#ifndef GREEN_SANITIZED  // the sanitizers report overflows themselves
std::once_flag segv_once;
struct sigaction old_segv;

void segv_handler(int sig, siginfo_t* info, void* uctx) {
  worker* w = this_worker();
  if (w && w->current) {
    auto addr = reinterpret_cast<std::uintptr_t>(info->si_addr);
    auto lo = reinterpret_cast<std::uintptr_t>(worker::stack_lo(w->current));
    if (addr < lo && addr + 65536 >= lo) report_overflow(w->current, "hit the guard page");
  }
  // Not ours: hand it to whoever was installed before, or die as usual.
  if (old_segv.sa_flags & SA_SIGINFO) {
    if (old_segv.sa_sigaction) return old_segv.sa_sigaction(sig, info, uctx);
  } else if (old_segv.sa_handler != SIG_DFL && old_segv.sa_handler != SIG_IGN && old_segv.sa_handler) {
    return old_segv.sa_handler(sig);
  }
  signal(sig, SIG_DFL);
  raise(sig);
}
#endif
}  // namespace

// Lifecycle (each runtime's constructor); once per process.
void install_segv_handler() {
#ifndef GREEN_SANITIZED
  std::call_once(segv_once, [] {
    struct sigaction sa {};
    sa.sa_sigaction = segv_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &old_segv);
  });
#endif
}

// A worker's own thread, at its start.
void install_altstack() {
#ifndef GREEN_SANITIZED
  // An alternate signal stack, so a guard-page fault can still be reported.
  static thread_local std::unique_ptr<char[]> altstack(new char[64 * 1024]);
  stack_t ss{};
  ss.ss_sp = altstack.get();
  ss.ss_size = 64 * 1024;
  sigaltstack(&ss, nullptr);
#endif
}

}  // namespace green::sched
