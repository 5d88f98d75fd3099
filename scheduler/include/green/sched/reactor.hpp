// green::sched::reactor — what an idle worker blocks in.
//
// The idle path asks one thing of it: "wait until this deadline, or until
// something happens" (Go's netpoll(delta), tokio's driver park). epoll is the
// implementation; an eventfd interrupts the wait.
#pragma once

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

 private:
  int epfd_ = -1;
  int evfd_ = -1;
};

}  // namespace green::sched
