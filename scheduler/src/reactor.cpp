// The reactor: epoll plus an eventfd.
//
// An idle worker that takes the poller role blocks here instead of on its
// futex; a waker that finds it sleeping in the reactor writes the eventfd.
// Deadlines use epoll_pwait2 (nanosecond timeout, Linux 5.11) so a sleeping
// timer fires on time rather than up to 1 ms late with epoll_wait's
// millisecond timeout; older kernels fall back to epoll_wait rounded up.
#include "green/sched/reactor.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <system_error>

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
  ev.data.ptr = nullptr;  // null marks the wake-up eventfd
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

void reactor::wait(time_point deadline) {
  epoll_event events[64];
  int n;
  if (deadline == no_deadline) {
    n = ::epoll_wait(epfd_, events, 64, -1);
  } else {
    auto now = clock::now();
    auto left = deadline > now ? deadline - now : clock::duration::zero();
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
    timespec ts{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
    static std::atomic<bool> have_pwait2{true};  // relaxed: a capability probe, any answer is safe
    n = have_pwait2.load(std::memory_order_relaxed) ? ::epoll_pwait2(epfd_, events, 64, &ts, nullptr) : -1;
    if (n < 0 && errno == ENOSYS) {
      have_pwait2.store(false, std::memory_order_relaxed);
      n = ::epoll_wait(epfd_, events, 64, static_cast<int>((ns + 999999) / 1000000));
    }
  }
  for (int i = 0; i < n; ++i) {
    if (events[i].data.ptr == nullptr) {
      std::uint64_t v;
      while (::read(evfd_, &v, sizeof v) > 0) {
      }
    }
  }
}

void reactor::wake() noexcept {
  std::uint64_t one = 1;
  ssize_t r = ::write(evfd_, &one, sizeof one);
  (void)r;  // EAGAIN means the counter is already non-zero: a wake is pending
}

}  // namespace green::sched
