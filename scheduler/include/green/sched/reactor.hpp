// green::sched::reactor — what an idle worker blocks in.
//
// The idle path asks one thing of it: "wait until this deadline, or until
// something happens" (Go's netpoll(delta), tokio's driver park). epoll is the
// implementation; an eventfd interrupts the wait. Readiness of registered fds
// is handed to the fd table (io.cpp), which wakes the fibers waiting on them.
#pragma once

#include <atomic>
#include <cstdint>

#include "green/sched/timer.hpp"

namespace green::sched {

class reactor {
 public:
  reactor();
  ~reactor();
  reactor(const reactor&) = delete;
  reactor& operator=(const reactor&) = delete;

  // wait() blocks until `deadline`, until wake() is called, or until an
  // event arrives. One thread at a time (the worker holding the poller role).
  void wait(time_point deadline);
  // wake() interrupts a wait() in progress, or makes the next one return at
  // once. Any thread.
  void wake() noexcept;
  // poll_now() harvests ready fds without blocking; returns how many events
  // it handed on. One thread at a time, like wait().
  int poll_now();

  // watch() registers `fd` edge-triggered for input and output with `key`
  // (io.cpp's fd number and generation); returns 0 or an errno. Any thread.
  int watch(int fd, std::uint64_t key) noexcept;
  // unwatch() removes `fd`. Any thread.
  void unwatch(int fd) noexcept;
  // last_poll() is when a wait or poll last returned. Any thread.
  time_point last_poll() const noexcept {
    return time_point(clock::duration(last_poll_.load(std::memory_order_relaxed)));  // relaxed: a hint
  }

 private:
  int harvest(int timeout_ms, const void* ts);
  int epfd_ = -1;
  int evfd_ = -1;
  std::atomic<clock::rep> last_poll_{0};
};

}  // namespace green::sched
