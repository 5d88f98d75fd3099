// The epoll backend of the reactor (reactor.hpp): epoll plus an eventfd.
//
// An idle worker that takes the poller role blocks here instead of on its
// futex; a waker that finds it sleeping in the reactor writes the eventfd.
// Deadlines use epoll_pwait2 (nanosecond timeout, Linux 5.11) so a sleeping
// timer fires on time rather than up to 1 ms late with epoll_wait's
// millisecond timeout; older kernels fall back to epoll_wait rounded up.
// fds are registered once, edge-triggered, under the fd table's key; each
// event is translated to reactor's neutral bits and returned to the caller,
// which hands it to the fd table (io.cpp). Nothing here calls back up.
//
// Rejected: EPOLLONESHOT re-armed per wait (one epoll_ctl per wait);
// a pipe for wake-ups (two fds where one eventfd does).
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <system_error>

#include "reactor.hpp"

namespace green::sched {

namespace {

// The key of the eventfd that interrupts a wait; fd keys have fd < 2^31
// in their low half, so they never equal it.
constexpr std::uint64_t wake_key = ~std::uint64_t{0};

std::uint32_t neutral(std::uint32_t ev) noexcept {
  std::uint32_t r = 0;
  if (ev & (EPOLLIN | EPOLLPRI)) r |= reactor::readable;
  if (ev & EPOLLOUT) r |= reactor::writable;
  if (ev & EPOLLRDHUP) r |= reactor::read_closed;
  if (ev & (EPOLLERR | EPOLLHUP)) r |= reactor::failed;
  return r;
}

class epoll_reactor final : public reactor {
 public:
  epoll_reactor();
  ~epoll_reactor() override;
  int wait(time_point deadline, ready_event* out) override;
  int poll_now(ready_event* out) override { return harvest(0, nullptr, out); }
  void wake() noexcept override;
  int watch(int fd, std::uint64_t key) noexcept override;
  void unwatch(int fd) noexcept override;

 private:
  int harvest(int timeout_ms, const timespec* ts, ready_event* out);
  int epfd_ = -1;
  int evfd_ = -1;
};

epoll_reactor::epoll_reactor() {
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
  ev.data.u64 = wake_key;
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, evfd_, &ev) != 0) {
    int err = errno;
    ::close(evfd_);
    ::close(epfd_);
    throw std::system_error(err, std::generic_category(), "green: epoll_ctl(eventfd)");
  }
}

epoll_reactor::~epoll_reactor() {
  ::close(evfd_);
  ::close(epfd_);
}

int epoll_reactor::wait(time_point deadline, ready_event* out) {
  if (deadline == no_deadline) return harvest(-1, nullptr, out);
  auto now = clock::now();
  auto left = deadline > now ? deadline - now : clock::duration::zero();
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
  timespec ts{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
  return harvest(static_cast<int>(std::min<long long>((ns + 999999) / 1000000, 1 << 30)), &ts, out);
}

// harvest() waits (ts: precise timeout; else timeout_ms, -1 forever), drains
// the wake-up eventfd if it fired, and copies the fd events to `out`.
int epoll_reactor::harvest(int timeout_ms, const timespec* tsp, ready_event* out) {
  epoll_event events[max_events];
  int n;
  static std::atomic<bool> have_pwait2{true};  // relaxed: a capability probe, any answer is safe
  if (tsp != nullptr && have_pwait2.load(std::memory_order_relaxed)) {
    n = ::epoll_pwait2(epfd_, events, max_events, tsp, nullptr);
    if (n < 0 && errno == ENOSYS) {
      have_pwait2.store(false, std::memory_order_relaxed);
      n = ::epoll_wait(epfd_, events, max_events, timeout_ms);
    }
  } else {
    n = ::epoll_wait(epfd_, events, max_events, timeout_ms);
  }
  note_poll();
  int got = 0;
  for (int i = 0; i < n; ++i) {
    if (events[i].data.u64 == wake_key) {
      std::uint64_t v;
      while (::syscall(SYS_read, evfd_, &v, sizeof v) > 0) {
      }
    } else {
      out[got++] = ready_event{events[i].data.u64, neutral(events[i].events)};
    }
  }
  return got;
}

int epoll_reactor::watch(int fd, std::uint64_t key) noexcept {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = key;
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) == 0) return 0;
  // EEXIST: this fd number and open file are still registered from before a
  // close that bypassed notify_close() (a dup kept the file open); re-key it.
  if (errno == EEXIST && ::epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) == 0) return 0;
  return errno;
}

void epoll_reactor::unwatch(int fd) noexcept {
  epoll_event ev{};
  ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, &ev);  // ENOENT / EBADF: already gone
}

void epoll_reactor::wake() noexcept {
  std::uint64_t one = 1;
  // The raw syscall: wake() runs on fibers, and the patch library (which
  // interposes write() for fibers) must not add its readiness probe here.
  long r = ::syscall(SYS_write, evfd_, &one, sizeof one);
  (void)r;  // EAGAIN means the counter is already non-zero: a wake is pending
}

}  // namespace

std::unique_ptr<reactor> reactor::make() { return std::make_unique<epoll_reactor>(); }

}  // namespace green::sched
