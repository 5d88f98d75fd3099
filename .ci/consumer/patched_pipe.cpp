// patched_pipe: a program that links greenfiber::patch but names none of
// its symbols and makes no blocking libc call from its own code (the shape
// of a program that only calls libcurl or hiredis), built from the
// installed package. It proves the patch library stayed linked and parks a
// plain libc read() (called the way a library calls it: by_name.hpp).
//
// The order is forced, not timed: one worker, no monitor and no spare
// worker, so a fiber runs only when the one before it suspends. Fiber A
// sets `reading` and goes straight into read() on an empty pipe (set()
// wakes B but does not switch to it). B waits for `reading`, then writes
// the byte A waits for. B can therefore run only while A is suspended
// inside read(), which only the patch makes possible: without it, A's read
// blocks the only worker, B never writes, and the program hangs (.ci/test
// runs it under `timeout`).
#include <unistd.h>
#include <green/green.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "by_name.hpp"

int main() {
  if (std::getenv("GREEN_MONITOR_MS")) {
    std::fprintf(stderr, "patched_pipe: unset GREEN_MONITOR_MS; this check needs the monitor off\n");
    return 2;
  }
  auto* libc_read = by_name<ssize_t(int, void*, size_t)>("read");
  auto* libc_write = by_name<ssize_t(int, const void*, size_t)>("write");
  auto* libc_close = by_name<int(int)>("close");
  int fds[2];
  if (::pipe(fds) != 0) {
    std::perror("patched_pipe: pipe");
    return 2;
  }
  green::runtime_config cfg;
  cfg.workers = 1;
  cfg.max_spare_workers = 0;
  cfg.monitor_limit = std::chrono::milliseconds(0);
  char got = 0;
  ssize_t n = green::run(
      [&] {
        green::event reading;
        auto a = green::spawn([&] {
          reading.set();
          return libc_read(fds[0], &got, 1);  // libc's read: parks only if the patch is loaded
        });
        auto b = green::spawn([&] {
          reading.wait();
          return libc_write(fds[1], "x", 1);
        });
        if (b.join() != 1) std::perror("patched_pipe: write");
        return a.join();
      },
      cfg);
  libc_close(fds[0]);
  libc_close(fds[1]);
  if (n != 1 || got != 'x') {
    std::fprintf(stderr, "patched_pipe: read returned %zd, byte '%c'; expected 1, 'x'\n", n, got);
    return 1;
  }
  std::printf("patched_pipe: a plain read() parked its fiber on the only worker; another fiber ran and fed it\n");
  return 0;
}
