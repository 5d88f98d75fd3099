// Readiness calls: poll, ppoll, select, pselect, epoll_wait, epoll_pwait
// (and __poll_chk).
//
// Roles. A program's own event loop (libcurl's multi interface, a C
// client's select()) asks "which of these fds is ready, waiting at most
// so long". On a fiber the wait parks the fiber instead of the worker.
//
// Protocol, per call on a fiber: probe with the real call and a zero
// timeout, so results and errors are the kernel's own; nothing ready and
// the deadline not passed: wait_any(), then probe again.
//   no fds      a plain sleep until the deadline (no deadline: a park that
//               only a kill or scope timeout ends, as poll(NULL, 0, -1)
//               never returns).
//   one fd, one direction   wait_ready() on it.
//   otherwise   a temporary epoll set holding every fd (an fd listed twice
//               waits for the union of its events), itself waited on with
//               wait_ready() for readability, then closed; notify_close()
//               first, so the reactor forgets its number before reuse.
// epoll_wait waits on the program's epoll fd itself, readable when any
// member is ready. select reports the time not slept in *tv, as Linux's.
// A zero timeout, or a timeout the kernel rejects, is libc's at once.
//
// Why a temporary epoll set: the seam parks a fiber on one fd and one
// direction (sched::wait_fd); an epoll fd turns any set into that one fd.
//
// No state: the temporary epoll set lives for one wait. Fiber context on
// the slow path.
#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>

#include <vector>

#include "patch_io.hpp"

namespace green::patch::detail {

GREEN_DEFINE_REAL(poll);
GREEN_DEFINE_REAL(ppoll);
GREEN_DEFINE_REAL(select);
GREEN_DEFINE_REAL(pselect);
GREEN_DEFINE_REAL(epoll_wait);
GREEN_DEFINE_REAL(epoll_pwait);

namespace {

short to_epoll(short ev) noexcept {
  unsigned e = 0;
  if (ev & (POLLIN | POLLRDNORM | POLLRDBAND)) e |= EPOLLIN;
  if (ev & POLLPRI) e |= EPOLLPRI;
  if (ev & (POLLOUT | POLLWRNORM | POLLWRBAND)) e |= EPOLLOUT;
  if (ev & POLLRDHUP) e |= EPOLLRDHUP;
  return static_cast<short>(e);
}

// wait_any() parks until one of fds may be ready or the deadline passes.
// Returns 0 (probe again), -1 on timeout, or an errno. Fiber context only.
int wait_any(const pollfd* p, nfds_t n, time_point deadline) noexcept {
  const pollfd* only = nullptr;
  nfds_t valid = 0;
  for (nfds_t i = 0; i < n; ++i)
    if (p[i].fd >= 0) {
      ++valid;
      only = &p[i];
    }
  if (valid == 0) {
    n_sleeps.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics only
    if (deadline == no_deadline) {                     // poll(NULL, 0, -1): wait forever, like libc (a kill ends it)
      sched::ticket t = sched::prepare_park();
      return park_error(green::detail::scoped_park(t, "patch:poll", no_deadline), -1);
    }
    return sleep_until(deadline) ? -1 : ECANCELED;
  }
  if (valid == 1) {
    short e = to_epoll(only->events);
    bool rd = e & (EPOLLIN | EPOLLPRI | EPOLLRDHUP), wr = e & EPOLLOUT;
    if (rd != wr || !e) return wait_ready(only->fd, wr ? io_dir::write : io_dir::read, deadline, -1);
  }
  // Several fds (or both directions): a temporary epoll set, readable when
  // any member is ready, waited on like any fd.
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return get_errno();
  for (nfds_t i = 0; i < n; ++i) {
    if (p[i].fd < 0) continue;
    epoll_event ev{};
    ev.events = static_cast<std::uint16_t>(to_epoll(p[i].events));
    ev.data.fd = p[i].fd;
    if (::epoll_ctl(ep, EPOLL_CTL_ADD, p[i].fd, &ev) != 0 && get_errno() == EEXIST) {
      // the same fd twice: wait for the union of its events
      for (nfds_t j = 0; j < i; ++j)
        if (p[j].fd == p[i].fd) ev.events |= static_cast<std::uint16_t>(to_epoll(p[j].events));
      ::epoll_ctl(ep, EPOLL_CTL_MOD, p[i].fd, &ev);
    }
    // other errors (a regular file: EPERM) cannot happen for an fd the
    // probe found not ready; ignoring them is safe (the next probe looks)
  }
  int r = wait_ready(ep, io_dir::read, deadline, -1);
  sched::notify_close(ep);
  GREEN_REAL(close)(ep);
  return r;
}

// fiber_poll() is poll() on a fiber with an absolute deadline. Fiber
// context only.
int fiber_poll(pollfd* pfds, nfds_t n, time_point deadline, const sigset_t* mask) {
  const timespec zero{0, 0};
  int e0 = get_errno();
  for (;;) {
    int r = mask ? GREEN_REAL(ppoll)(pfds, n, &zero, mask) : GREEN_REAL(poll)(pfds, n, 0);
    if (r != 0) return r;
    if (clock::now() >= deadline) return 0;
    int e = wait_any(pfds, n, deadline);
    if (e == -1) {  // the deadline passed
      set_errno(e0);
      return 0;
    }
    if (e) {
      set_errno(e);
      return -1;
    }
  }
}

// fiber_select() is select()/pselect() on a fiber: the sets become a
// pollfd list for waiting; each probe is the real call with a zero timeout
// on copies of the sets, so results and errors are select's own. Fiber
// context only.
int fiber_select(int nfds, fd_set* r, fd_set* w, fd_set* x, time_point deadline, const sigset_t* mask,
                 bool use_pselect) {
  std::vector<pollfd> pl;
  for (int fd = 0; fd < nfds && fd < FD_SETSIZE; ++fd) {
    short ev = 0;
    if (r && FD_ISSET(fd, r)) ev |= POLLIN;
    if (w && FD_ISSET(fd, w)) ev |= POLLOUT;
    if (x && FD_ISSET(fd, x)) ev |= POLLPRI;
    if (ev) pl.push_back(pollfd{fd, ev, 0});
  }
  fd_set r0, w0, x0;
  if (r) r0 = *r;
  if (w) w0 = *w;
  if (x) x0 = *x;
  int e0 = get_errno();
  for (;;) {
    if (r) *r = r0;
    if (w) *w = w0;
    if (x) *x = x0;
    timespec zts{0, 0};
    timeval ztv{0, 0};
    int n = use_pselect ? GREEN_REAL(pselect)(nfds, r, w, x, &zts, mask) : GREEN_REAL(select)(nfds, r, w, x, &ztv);
    if (n != 0) return n;
    if (clock::now() >= deadline) return 0;
    int e = wait_any(pl.data(), pl.size(), deadline);
    if (e == -1) {
      if (r) FD_ZERO(r);
      if (w) FD_ZERO(w);
      if (x) FD_ZERO(x);
      set_errno(e0);
      return 0;
    }
    if (e) {
      set_errno(e);
      return -1;
    }
  }
}

// fiber_epoll_wait() is epoll_wait()/epoll_pwait() on a fiber. Fiber
// context only.
int fiber_epoll_wait(int ep, epoll_event* ev, int max, int timeout, const sigset_t* mask) {
  time_point deadline = deadline_ms(timeout);
  int e0 = get_errno();
  for (;;) {
    int r = mask ? GREEN_REAL(epoll_pwait)(ep, ev, max, 0, mask) : GREEN_REAL(epoll_wait)(ep, ev, max, 0);
    if (r != 0) return r;
    if (clock::now() >= deadline) return 0;
    if (int e = wait_ready(ep, io_dir::read, deadline, -1)) {
      if (e == -1) {
        set_errno(e0);
        return 0;
      }
      set_errno(e);
      return -1;
    }
  }
}

}  // namespace

}  // namespace green::patch::detail

// ---------------------------------------------------------------------------
// The interposed functions. Any thread; on a fiber, they may park.

using namespace green::patch::detail;  // NOLINT: this section is the library's C face

extern "C" {

int poll(pollfd* p, nfds_t n, int timeout) {
  GREEN_PASS(poll, p, n, timeout);
  if (timeout == 0) return GREEN_REAL(poll)(p, n, timeout);
  return fiber_poll(p, n, deadline_ms(timeout), nullptr);
}

int ppoll(pollfd* p, nfds_t n, const timespec* ts, const sigset_t* mask) {
  GREEN_PASS(ppoll, p, n, ts, mask);
  if (ts && (!valid_ts(ts) || (ts->tv_sec == 0 && ts->tv_nsec == 0))) return GREEN_REAL(ppoll)(p, n, ts, mask);
  return fiber_poll(p, n, deadline_ts(ts), mask);
}

int select(int nfds, fd_set* r, fd_set* w, fd_set* x, timeval* tv) {
  GREEN_PASS(select, nfds, r, w, x, tv);
  if (nfds < 0 || (tv && (tv->tv_sec < 0 || tv->tv_usec < 0 || (tv->tv_sec == 0 && tv->tv_usec == 0))))
    return GREEN_REAL(select)(nfds, r, w, x, tv);
  green::sched::time_point deadline = tv ? after(*tv) : green::sched::no_deadline;
  int res = fiber_select(nfds, r, w, x, deadline, nullptr, false);
  if (tv) {  // Linux reports the time not slept
    auto left = std::max(deadline - green::sched::clock::now(), green::sched::clock::duration::zero());
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(left).count();
    tv->tv_sec = static_cast<time_t>(us / 1000000);
    tv->tv_usec = static_cast<suseconds_t>(us % 1000000);
  }
  return res;
}

int pselect(int nfds, fd_set* r, fd_set* w, fd_set* x, const timespec* ts, const sigset_t* mask) {
  GREEN_PASS(pselect, nfds, r, w, x, ts, mask);
  if (nfds < 0 || (ts && (!valid_ts(ts) || (ts->tv_sec == 0 && ts->tv_nsec == 0))))
    return GREEN_REAL(pselect)(nfds, r, w, x, ts, mask);
  return fiber_select(nfds, r, w, x, deadline_ts(ts), mask, true);
}

int epoll_wait(int ep, epoll_event* ev, int max, int timeout) {
  GREEN_PASS(epoll_wait, ep, ev, max, timeout);
  if (timeout == 0) return GREEN_REAL(epoll_wait)(ep, ev, max, timeout);
  return fiber_epoll_wait(ep, ev, max, timeout, nullptr);
}

int epoll_pwait(int ep, epoll_event* ev, int max, int timeout, const sigset_t* mask) {
  GREEN_PASS(epoll_pwait, ep, ev, max, timeout, mask);
  if (timeout == 0) return GREEN_REAL(epoll_pwait)(ep, ev, max, timeout, mask);
  return fiber_epoll_wait(ep, ev, max, timeout, mask);
}

// _FORTIFY_SOURCE entry point: checked, then the patched call.
[[noreturn]] void __chk_fail() noexcept;
int __poll_chk(pollfd* p, nfds_t n, int timeout, size_t plen) {
  if (plen / sizeof(pollfd) < n) __chk_fail();
  return poll(p, n, timeout);
}

}  // extern "C"
