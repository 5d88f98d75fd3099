// green::event — a flag fibers and threads can wait for (threading.Event).
#pragma once

#include <atomic>
#include <chrono>
#include <stop_token>

#include "green/detail/wait.hpp"
#include "green/stop.hpp"

namespace green {

// event is a boolean flag, initially clear. set() wakes every waiter and
// lets later waits pass at once until clear(). Any mix of fibers and
// threads. Destroying it while fibers wait terminates, with a message.
class event {
 public:
  event() noexcept = default;
  ~event();
  event(const event&) = delete;
  event& operator=(const event&) = delete;

  // set() sets the flag and wakes all waiters. Any thread.
  void set() noexcept;
  // clear() resets the flag; later waits block until the next set(). Any thread.
  void clear() noexcept;
  // is_set() is the flag. Any thread.
  bool is_set() const noexcept { return set_.load(std::memory_order_acquire); }  // acquire: pairs with set()

  // wait() returns once the flag is set. Raises fiber_exit if killed,
  // timeout_error if a green::timeout scope expires. Fiber or thread context.
  void wait() { wait_until_(sched::no_deadline); }
  // wait_for() / wait_until() return the flag: false if the time passed
  // while it was clear.
  template <class Rep, class Period>
  bool wait_for(std::chrono::duration<Rep, Period> d) {
    return wait_until_(detail::deadline_after(d));
  }
  template <class Clock, class Duration>
  bool wait_until(std::chrono::time_point<Clock, Duration> tp) {
    return wait_until_(detail::to_deadline(tp));
  }
  // wait(stop) / wait_for(d, stop) / wait_until(tp, stop) also end when a
  // stop is requested on `stop` (any thread), and return the flag: false
  // if the stop (or the time) came while it was clear; nothing is raised
  // for the stop. A stop requested before the call returns the flag at
  // once. Kills and green::timeout scopes raise as above.
  bool wait(const std::stop_token& stop) { return wait_until_(sched::no_deadline, stop); }
  template <class Rep, class Period>
  bool wait_for(std::chrono::duration<Rep, Period> d, const std::stop_token& stop) {
    return wait_until_(detail::deadline_after(d), stop);
  }
  template <class Clock, class Duration>
  bool wait_until(std::chrono::time_point<Clock, Duration> tp, const std::stop_token& stop) {
    return wait_until_(detail::to_deadline(tp), stop);
  }

 private:
  bool wait_until_(sched::time_point deadline);
  bool wait_until_(sched::time_point deadline, const std::stop_token& stop) {
    return detail::stoppable(
        stop, [&] { return wait_until_(deadline); }, [&] { return is_set(); });
  }

  std::atomic<bool> set_{false};  // written under mu_
  sched::spinlock mu_;
  sched::wait_queue q_;  // guarded by mu_; empty while set_
};

}  // namespace green
