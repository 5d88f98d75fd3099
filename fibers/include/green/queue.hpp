// green::queue<T> — a joinable FIFO queue (Python's queue.Queue, gevent's
// JoinableQueue); green::basic_queue, which lifo_queue and priority_queue
// share.
#pragma once

#include <chrono>
#include <concepts>
#include <cstddef>
#include <optional>

#include "green/detail/pipe.hpp"
#include "green/detail/ring.hpp"
#include "green/detail/wait.hpp"
#include "green/op_status.hpp"

namespace green {

namespace detail {
extern const pipe_names queue_names;
}

// basic_queue<T, Store> passes values of a movable T from producers to
// consumers in the order Store gives them back (FIFO, LIFO, priority).
// maxsize 0 (the default) means unbounded; otherwise put() waits while
// maxsize values are queued. Any mix of fibers and threads.
//
// Joining: every value put counts as an unfinished task until a consumer
// calls task_done(); join() waits until none is unfinished. task_done()
// more often than values were put throws std::logic_error.
//
// Closing (an addition to Python's API, to end consumers cleanly): put on a
// closed queue raises green::closed_error; consumers drain what is queued,
// then get() returns std::nullopt (try_get / get_for: op_status::closed)
// and range-for ends.
//
// Blocking calls raise fiber_exit if the fiber is killed and timeout_error
// when a green::timeout scope expires; a value handed to a consumer that is
// being killed stays for another. Destroying a queue while fibers wait on it
// terminates, with a message.
template <class T, class Store>
class basic_queue : public detail::pipe_front<T, Store> {
  static_assert(std::movable<T>, "green queues need a movable T");
  using detail::pipe_front<T, Store>::p_;

 public:
  explicit basic_queue(std::size_t maxsize = 0, Store store = Store())
      : detail::pipe_front<T, Store>(maxsize == 0 ? detail::unbounded : maxsize, detail::queue_names,
                                     std::move(store)) {}

  // put() queues v, waiting while the queue is full. Throws closed_error.
  void put(T&& v) { p_.put(v, sched::no_deadline, true); }
  void put(const T& v) requires std::copy_constructible<T> {
    T c(v);
    put(std::move(c));
  }
  // try_put() queues v only if there is room now; false leaves v untouched.
  bool try_put(T&& v) { return p_.put(v, sched::no_deadline, false) == op_status::success; }
  // put_for() / put_until(): false (v untouched) if the time passed first.
  template <class Rep, class Period>
  bool put_for(T&& v, std::chrono::duration<Rep, Period> d) {
    return p_.put(v, detail::deadline_after(d), true) == op_status::success;
  }
  template <class Clock, class Duration>
  bool put_until(T&& v, std::chrono::time_point<Clock, Duration> tp) {
    return p_.put(v, detail::to_deadline(tp), true) == op_status::success;
  }

  // get() removes and returns the next value, waiting for one; std::nullopt
  // once the queue is closed and drained.
  std::optional<T> get() { return p_.get_one(); }
  // try_get(): success (moved into out), empty or closed.
  op_status try_get(T& out) { return p_.get_into(out, sched::no_deadline, false); }
  // get_for() / get_until(): success, timeout or closed.
  template <class Rep, class Period>
  op_status get_for(T& out, std::chrono::duration<Rep, Period> d) {
    return p_.get_into(out, detail::deadline_after(d), true);
  }
  template <class Clock, class Duration>
  op_status get_until(T& out, std::chrono::time_point<Clock, Duration> tp) {
    return p_.get_into(out, detail::to_deadline(tp), true);
  }

  // task_done() marks one value taken by get() as processed. Any thread.
  void task_done() { p_.task_done(); }
  // join() waits until every value put has been marked task_done().
  void join() { p_.join(sched::no_deadline); }
  template <class Rep, class Period>
  bool join_for(std::chrono::duration<Rep, Period> d) {
    return p_.join(detail::deadline_after(d));
  }
  // unfinished() is the number of tasks not yet marked done (a snapshot).
  std::size_t unfinished() const noexcept { return p_.unfinished(); }

  // close(), closed(), size() and range-for: see detail::pipe_front.
  // empty() / full() are snapshots (Python's empty, full); maxsize() is 0
  // for an unbounded queue.
  bool empty() const noexcept { return this->size() == 0; }
  bool full() const noexcept { return maxsize() != 0 && this->size() >= maxsize(); }
  std::size_t maxsize() const noexcept { return p_.capacity() == detail::unbounded ? 0 : p_.capacity(); }
};

// queue<T> is first in, first out.
template <class T>
using queue = basic_queue<T, detail::fifo_store<T>>;

}  // namespace green
