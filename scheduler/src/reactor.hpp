// green::sched::reactor — what an idle worker blocks in. Internal to the
// runtime (the idle path, the monitor and the fd table use it).
//
// The idle path asks two things of it: "wait until this deadline, or until
// something happens" and "interrupt that wait" (Go's netpoll(delta) and
// netpollBreak, tokio's driver park/unpark). Readiness flows one way: the
// reactor returns events, and the caller hands them to the fd table
// (io_internal::dispatch, io.cpp), the sink that wakes the fibers waiting on
// them. The reactor knows nothing of fibers, workers or the fd table, so a
// backend is one file: epoll today (reactor_epoll.cpp); io_uring can be a
// second without touching the worker loop.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "timer.hpp"

namespace green::sched {

class reactor {
 public:
  // make() creates the default backend (epoll). Throws std::system_error.
  static std::unique_ptr<reactor> make();
  virtual ~reactor() = default;
  reactor(const reactor&) = delete;
  reactor& operator=(const reactor&) = delete;

  // Readiness bits of one event, backend-neutral.
  enum : std::uint32_t {
    readable = 1,     // input (or urgent data) is ready
    writable = 2,     // output is ready
    read_closed = 4,  // the peer shut down its side (no more input ever)
    failed = 8,       // an error or a hang-up: both directions are done
  };
  // One readiness event: the key given to watch() and readiness bits.
  struct ready_event {
    std::uint64_t key;
    std::uint32_t events;
  };
  static constexpr int max_events = 256;  // per call (the hand-written epoll server in bench/ takes 256)

  // wait() blocks until `deadline`, until wake() is called, or until an
  // event arrives, and stores up to max_events events in `out`; returns
  // how many. One thread at a time (the holder of impl::poller_busy).
  // The caller hands them to the sink once it is no longer idle, so the
  // fibers they wake count it as busy (no wake-up of itself).
  virtual int wait(time_point deadline, ready_event* out) = 0;
  // poll_now() is wait() without blocking. Same caller rule.
  virtual int poll_now(ready_event* out) = 0;
  // wake() interrupts a wait() in progress, or makes the next one return at
  // once. Any thread.
  virtual void wake() noexcept = 0;
  // watch() registers `fd` edge-triggered for input and output with `key`
  // (keys are fd | generation << 32 with fd < 2^31: never ~0); returns 0
  // or an errno. Any thread.
  virtual int watch(int fd, std::uint64_t key) noexcept = 0;
  // unwatch() removes `fd`. Any thread.
  virtual void unwatch(int fd) noexcept = 0;
  // last_poll() is when a wait or poll last returned. Any thread.
  time_point last_poll() const noexcept {
    return time_point(clock::duration(last_poll_.load(std::memory_order_relaxed)));  // relaxed: a hint
  }

 protected:
  reactor() = default;
  // note_poll() records that a wait or poll returned. The polling thread.
  void note_poll() noexcept {
    last_poll_.store(clock::now().time_since_epoch().count(),
                     std::memory_order_relaxed);  // relaxed: a hint for the monitor
  }

 private:
  std::atomic<clock::rep> last_poll_{0};
};

}  // namespace green::sched
