// The test watchdog (see watchdog.hpp for why it is a signal, not a thread).
//
// Protocol: the whole program is always under one alarm(2). A gtest listener
// re-arms it at each phase change (program start, each test's start, each
// test's end), first formatting the message that names the phase into
// `message` and only then publishing it through `armed` and calling alarm().
// If a phase outlives the limit, SIGALRM runs on_alarm(), which only does
// async-signal-safe things: an atomic load, write(2) of the preformatted
// message, _exit(2), the last two as raw syscalls. No dump: green::dump() takes the runtime's locks, which
// the hung threads may hold (a handler that waits on them would turn a
// named failure back into a silent hang).
//
// The handler is installed with libc's own sigaction(), past the
// sanitizers' interceptors: TSan defers a signal that arrives outside an
// intercepted call until the thread makes one, and a thread parked in a raw
// futex syscall never does, so the watchdog never fired under TSan. For the
// same reason the handler is not instrumented and calls no intercepted (or
// patched) function: syscall(2) is neither.
//
// Rejected: a static library (the linker drops an archive member nothing
// references, so no test binary had the watchdog; tests/CMakeLists.txt links
// it as an OBJECT library, and each binary's `<name>.watchdog_is_linked`
// CTest entry proves it is there).
#include "watchdog.hpp"

#include <dlfcn.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

unsigned limit_s = 120;  // GREEN_WATCHDOG_S; 0 switches the watchdog off

// Invariants: `message` and `message_len` are written only by the thread
// running the gtest listener, while `armed` is false; on_alarm() reads them
// only after seeing `armed` true.
char message[512];
std::size_t message_len = 0;
std::atomic<bool> armed{false};
static_assert(std::atomic<bool>::is_always_lock_free, "on_alarm() loads `armed` inside a signal handler");

// on_alarm() is the SIGALRM handler. Async-signal-safe, uninstrumented,
// raw syscalls only (see the header comment).
// (__attribute__ spelling: GCC and clang both accept it; clang ignores the
// [[gnu::no_sanitize]] spelling.)
__attribute__((no_sanitize("thread", "address", "undefined"))) void on_alarm(int) {
  if (!armed.load(std::memory_order_acquire)) return;  // acquire: pairs with the release in arm()
  const char* p = message;
  std::size_t left = message_len;
  while (left > 0) {
    long n = ::syscall(SYS_write, STDERR_FILENO, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  ::syscall(SYS_exit_group, green::testing::watchdog_exit_code);
}

// libc_sigaction() is libc's sigaction(), not a sanitizer's interceptor
// (the sanitizer runtime is loaded before libc, so RTLD_NEXT would find the
// interceptor: ask libc itself).
int libc_sigaction(int sig, const struct sigaction* sa, struct sigaction* old) {
  using fn = int (*)(int, const struct sigaction*, struct sigaction*);
  fn real = nullptr;
  if (void* libc = ::dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD)) {
    real = reinterpret_cast<fn>(::dlsym(libc, "sigaction"));
    ::dlclose(libc);
  }
  return real ? real(sig, sa, old) : ::sigaction(sig, sa, old);
}

// arm() starts a fresh limit for the phase `what` names. Listener thread only.
void arm(const char* what) {
  if (limit_s == 0) return;
  ::alarm(0);
  armed.store(false, std::memory_order_relaxed);  // relaxed: the alarm is off, no handler can be reading
  int n = std::snprintf(message, sizeof message,
                        "\nwatchdog: %s did not finish within %u s (GREEN_WATCHDOG_S); a lost wake-up or a hang\n",
                        what, limit_s);
  message_len = n < 0 ? 0 : std::min(static_cast<std::size_t>(n), sizeof message - 1);
  armed.store(true, std::memory_order_release);  // release: the handler sees the whole message
  ::alarm(limit_s);
}

class watchdog_listener : public ::testing::EmptyTestEventListener {
  void OnTestProgramStart(const ::testing::UnitTest&) override { arm("the test program (before its first test)"); }
  void OnTestStart(const ::testing::TestInfo& info) override {
    std::snprintf(name_, sizeof name_, "test %s.%s", info.test_suite_name(), info.name());
    arm(name_);
  }
  void OnTestEnd(const ::testing::TestInfo& info) override {
    // Suite tear-down, the next set-up, or static destructors after the last test.
    std::snprintf(name_, sizeof name_, "the test program after test %s.%s", info.test_suite_name(), info.name());
    arm(name_);
  }
  char name_[400] = "";
};

unsigned parse_limit(const char* s) {
  char* end = nullptr;
  errno = 0;
  unsigned long v = std::strtoul(s, &end, 10);
  if (*s == '\0' || *end != '\0' || errno != 0 || v > 86400 || s[0] == '-') {
    std::fprintf(stderr, "watchdog: GREEN_WATCHDOG_S=\"%s\" is not a number of seconds in 0..86400\n", s);
    std::exit(2);
  }
  return static_cast<unsigned>(v);
}

struct installer {
  installer() {
    if (const char* s = std::getenv("GREEN_WATCHDOG_S")) limit_s = parse_limit(s);
    struct sigaction sa {};
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (libc_sigaction(SIGALRM, &sa, nullptr) != 0) {
      std::perror("watchdog: sigaction(SIGALRM)");
      std::exit(2);
    }
    ::testing::UnitTest::GetInstance()->listeners().Append(new watchdog_listener);
    if (std::getenv("GREEN_WATCHDOG_PROBE")) std::printf("green watchdog: armed, limit %u s\n", limit_s);
  }
} install;

}  // namespace

unsigned green::testing::watchdog_limit_s() { return limit_s; }
