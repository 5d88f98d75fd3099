// Waiting: how a patched call parks, C timeouts as deadlines, and sleeps.
//
// Roles. Every patched call that must wait comes here: wait_ready() parks
// the fiber on the reactor through the fd seam (sched::wait_fd) until fd is
// ready for one direction; sleep_until() parks on the timer alone
// (sched::prepare_park / park with a deadline). The sleeps (nanosleep,
// clock_nanosleep, usleep, sleep) are the latter and nothing else.
//
// Protocol. A park ends for one of the wake_reasons; park_error() turns it
// into what a C caller can take: ready -> 0 (probe again), the call's own
// timeout -> the caller's choice (EAGAIN, EINPROGRESS, or -1 for "report
// 0 ready"), a green::timeout scope -> ETIMEDOUT, a kill -> ECANCELED (and
// re-armed by ended_by(), so the fiber raises fiber_exit at its next green
// suspension point), the fd closed under it -> EBADF. Sleeps end early
// (return 0) on a kill or scope timeout: EINTR would make `while
// (nanosleep(&t, &t))` loops spin.
//
// Time. C timeouts become absolute deadlines on sched::clock when the call
// starts: seconds and nanoseconds are added as a long double duration
// (span), so tv_sec near its maximum cannot overflow, and deadline_after()
// saturates to no_deadline, so "very long" never becomes "now".
// clock_nanosleep's TIMER_ABSTIME is converted against the caller's clock
// at the start; CPU-time clocks are not sleeps and stay libc's.
//
// Rejected: returning EINTR from a killed sleep (above).
//
// No state of its own: counters only (n_parks, n_sleeps; relaxed, as
// statistics).
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <chrono>

#include "green/detail/deadline.hpp"
#include "patch_io.hpp"

namespace green::patch::detail {

GREEN_DEFINE_REAL(nanosleep);
GREEN_DEFINE_REAL(clock_nanosleep);
GREEN_DEFINE_REAL(usleep);
GREEN_DEFINE_REAL(sleep);

int park_error(wake_reason r, int on_timeout) noexcept {
  switch (ended_by(r)) {
    case wake_reason::timeout:
      return on_timeout;
    case wake_reason::scope_timeout:
      return ETIMEDOUT;
    case wake_reason::killed:
      return ECANCELED;
    case wake_reason::closed:
      return EBADF;
    default:
      return 0;
  }
}

int wait_ready(int fd, io_dir dir, time_point deadline, int on_timeout) noexcept {
  n_parks.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics only
  return park_error(green::detail::scoped_wait_fd(fd, dir, deadline), on_timeout);
}

span to_span(time_t sec, long nsec) noexcept { return span(static_cast<long double>(sec) + nsec / 1e9L); }

time_point after(const timeval& tv) noexcept {
  if (tv.tv_sec == 0 && tv.tv_usec == 0) return no_deadline;  // 0 means "no timeout"
  return green::detail::deadline_after(to_span(tv.tv_sec, tv.tv_usec * 1000L));
}

time_point deadline_ms(int ms) noexcept {
  return ms < 0 ? no_deadline : green::detail::deadline_after(std::chrono::milliseconds(ms));
}

time_point deadline_ts(const timespec* ts) noexcept {
  if (!ts) return no_deadline;
  return green::detail::deadline_after(to_span(ts->tv_sec, ts->tv_nsec));
}

bool valid_ts(const timespec* ts) noexcept { return ts->tv_sec >= 0 && ts->tv_nsec >= 0 && ts->tv_nsec < 1000000000; }

time_point sock_deadline(int fd, int opt) noexcept {
  timeval tv{};
  socklen_t len = sizeof tv;
  int e = get_errno();
  if (::getsockopt(fd, SOL_SOCKET, opt, &tv, &len) != 0) {
    set_errno(e);
    return no_deadline;
  }
  return after(tv);
}

bool sleep_until(time_point tp) noexcept {
  while (clock::now() < tp) {
    sched::ticket t = sched::prepare_park();
    wake_reason r = ended_by(green::detail::scoped_park(t, "patch:sleep", tp));
    if (r == wake_reason::killed || r == wake_reason::scope_timeout) return false;
  }
  return true;
}

namespace {

// fiber_sleep() sleeps `d` on a fiber (a kill or scope timeout ends it
// early). Fiber context only.
void fiber_sleep(span d) noexcept {
  n_sleeps.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics only
  sleep_until(green::detail::deadline_after(d));
}

}  // namespace

}  // namespace green::patch::detail

// ---------------------------------------------------------------------------
// The interposed sleeps. Any thread; on a fiber, a park.

using namespace green::patch::detail;  // NOLINT: this section is the library's C face

extern "C" {

int nanosleep(const timespec* req, timespec* rem) {
  GREEN_PASS(nanosleep, req, rem);
  if (!req || !valid_ts(req)) return GREEN_REAL(nanosleep)(req, rem);
  fiber_sleep(to_span(req->tv_sec, req->tv_nsec));
  return 0;
}

int clock_nanosleep(clockid_t clk, int flags, const timespec* req, timespec* rem) {
  GREEN_PASS(clock_nanosleep, clk, flags, req, rem);
  bool wall = clk == CLOCK_REALTIME || clk == CLOCK_MONOTONIC || clk == CLOCK_BOOTTIME || clk == CLOCK_TAI;
  if (!wall || !req || !valid_ts(req)) return GREEN_REAL(clock_nanosleep)(clk, flags, req, rem);
  span d = to_span(req->tv_sec, req->tv_nsec);
  if (flags & TIMER_ABSTIME) {
    timespec now{};
    clock_gettime(clk, &now);
    span n = to_span(now.tv_sec, now.tv_nsec);
    if (d <= n) return 0;
    fiber_sleep(d - n);
  } else {
    fiber_sleep(d);
  }
  return 0;
}

int usleep(useconds_t us) {
  GREEN_PASS(usleep, us);
  fiber_sleep(std::chrono::microseconds(us));  // converts exactly to span
  return 0;
}

unsigned int sleep(unsigned int s) {
  GREEN_PASS(sleep, s);
  fiber_sleep(std::chrono::seconds(s));
  return 0;
}

}  // extern "C"
