// The reactor: epoll plus an eventfd.
//
// An idle worker that takes the poller role blocks here instead of on its
// futex; a waker that finds it sleeping in the reactor writes the eventfd.
// Deadlines use epoll_pwait2 (nanosecond timeout, Linux 5.11) so a sleeping
// timer fires on time rather than up to 1 ms late with epoll_wait's
// millisecond timeout; older kernels fall back to epoll_wait rounded up.
// fds are registered once, edge-triggered, keyed by fd and generation; each
// event goes to the fd table (io.cpp), which wakes the fibers waiting on it.
#include "green/sched/reactor.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <algorithm>
#include <system_error>

#include "io_internal.hpp"

namespace green::sched {

reactor::reactor() {
  epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) throw std::system_error(errno, std::generic_category(), "green: epoll_create1");
  evfd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (evfd_ < 0) {
    int err = errno;
    ::close(epfd_);
    throw std::system_error(err, std::generic_category(), "green: eventfd");
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = io_internal::wake_key;
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, evfd_, &ev) != 0) {
    int err = errno;
    ::close(evfd_);
    ::close(epfd_);
    throw std::system_error(err, std::generic_category(), "green: epoll_ctl(eventfd)");
  }
}

reactor::~reactor() {
  ::close(evfd_);
  ::close(epfd_);
}

int reactor::wait(time_point deadline, ready_event* out) {
  if (deadline == no_deadline) return harvest(-1, nullptr, out);
  auto now = clock::now();
  auto left = deadline > now ? deadline - now : clock::duration::zero();
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
  timespec ts{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
  return harvest(static_cast<int>(std::min<long long>((ns + 999999) / 1000000, 1 << 30)), &ts, out);
}

int reactor::poll_now(ready_event* out) { return harvest(0, nullptr, out); }

void reactor::dispatch(const ready_event* ev, int n) noexcept {
  for (int i = 0; i < n; ++i) io_internal::on_ready(ev[i].key, ev[i].events);
}

// harvest() waits (ts: precise timeout; else timeout_ms, -1 forever), drains
// the wake-up eventfd if it fired, and copies the fd events to `out`.
int reactor::harvest(int timeout_ms, const void* tsp, ready_event* out) {
  epoll_event events[max_events];
  int n;
  static std::atomic<bool> have_pwait2{true};  // relaxed: a capability probe, any answer is safe
  if (tsp != nullptr && have_pwait2.load(std::memory_order_relaxed)) {
    n = ::epoll_pwait2(epfd_, events, max_events, static_cast<const timespec*>(tsp), nullptr);
    if (n < 0 && errno == ENOSYS) {
      have_pwait2.store(false, std::memory_order_relaxed);
      n = ::epoll_wait(epfd_, events, max_events, timeout_ms);
    }
  } else {
    n = ::epoll_wait(epfd_, events, max_events, timeout_ms);
  }
  // relaxed: a hint for the monitor (has anyone polled lately?)
  last_poll_.store(clock::now().time_since_epoch().count(), std::memory_order_relaxed);
  int got = 0;
  for (int i = 0; i < n; ++i) {
    if (events[i].data.u64 == io_internal::wake_key) {
      std::uint64_t v;
      while (::syscall(SYS_read, evfd_, &v, sizeof v) > 0) {
      }
    } else {
      out[got++] = ready_event{events[i].data.u64, events[i].events};
    }
  }
  return got;
}

int reactor::watch(int fd, std::uint64_t key) noexcept {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = key;
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) == 0) return 0;
  // EEXIST: this fd number and open file are still registered from before a
  // close that bypassed notify_close() (a dup kept the file open); re-key it.
  if (errno == EEXIST && ::epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) == 0) return 0;
  return errno;
}

void reactor::unwatch(int fd) noexcept {
  epoll_event ev{};
  ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, &ev);  // ENOENT / EBADF: already gone
}

void reactor::wake() noexcept {
  std::uint64_t one = 1;
  // The raw syscall: wake() runs on fibers, and the patch library (which
  // interposes write() for fibers) must not add its readiness probe here.
  long r = ::syscall(SYS_write, evfd_, &one, sizeof one);
  (void)r;  // EAGAIN means the counter is already non-zero: a wake is pending
}

}  // namespace green::sched
