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

  // One readiness event: the fd table's key and epoll's event bits.
  struct ready_event {
    std::uint64_t key;
    std::uint32_t events;
  };
  static constexpr int max_events = 256;  // per call (the hand-written epoll server in bench/ takes 256)

  // wait() blocks until `deadline`, until wake() is called, or until an
  // event arrives, and stores up to max_events fd events in `out`; returns
  // how many. One thread at a time (the worker holding the poller role).
  // The caller hands them on with dispatch() once it is no longer idle, so
  // the fibers they wake count it as busy (no wake-up of itself).
  int wait(time_point deadline, ready_event* out);
  // wake() interrupts a wait() in progress, or makes the next one return at
  // once. Any thread.
  void wake() noexcept;
  // poll_now() is wait() without blocking.
  int poll_now(ready_event* out);
  // dispatch() hands events to the fd table, which wakes their waiters.
  static void dispatch(const ready_event* ev, int n) noexcept;

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
  int harvest(int timeout_ms, const void* ts, ready_event* out);
  int epfd_ = -1;
  int evfd_ = -1;
  std::atomic<clock::rep> last_poll_{0};
};

}  // namespace green::sched
