// The failure half of GREEN_DCHECK (check.hpp): report and abort. Kept out
// of line and cold so a check costs one compare and a not-taken branch.
#include "check.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace green::sched {

void dcheck_failed(const char* cond, const char* file, int line, const char* msg) noexcept {
  char buf[512];
  // snprintf into a local buffer, then one write(2): no allocation and no
  // stdio lock, so it works on a fiber stack and with runtime locks held.
  int len =
      std::snprintf(buf, sizeof buf, "green: invariant violated: %s\n  check: %s\n  at %s:%d\n", msg, cond, file, line);
  if (len > 0) {
    ssize_t r = ::write(2, buf, static_cast<std::size_t>(len < static_cast<int>(sizeof buf) ? len : sizeof buf - 1));
    (void)r;
  }
  std::abort();
}

}  // namespace green::sched
