// green::channel<T> — Go's channels for fibers and threads.
#pragma once

#include <chrono>
#include <concepts>
#include <cstddef>
#include <optional>
#include <stop_token>

#include "green/detail/pipe.hpp"
#include "green/detail/ring.hpp"
#include "green/detail/wait.hpp"
#include "green/op_status.hpp"
#include "green/stop.hpp"

namespace green {

namespace detail {
extern const pipe_names channel_names;
}

// channel<T> carries values of a movable T from senders to receivers, FIFO.
// channel<T>(0) (the default) is unbuffered: send() waits until a receiver
// takes the value (a rendezvous). channel<T>(n) buffers up to n values.
// Any mix of fibers and threads may send and receive; a fiber that must wait
// parks, a thread blocks. Use it in green::select (select.hpp).
//
// Closing: close() ends the stream. Every send on a closed channel (and every
// sender waiting when it closes) raises green::closed_error; receivers still
// get what is buffered, then recv() returns std::nullopt, try_recv /
// recv_for return op_status::closed, and range-for ends.
//
// Every blocking call raises fiber_exit if the fiber is killed and
// timeout_error when a green::timeout scope expires; a value handed to a
// receiver that is being killed goes to another receiver instead (never
// lost, never duplicated). Destroying a channel while fibers wait on it
// terminates, with a message.
template <class T>
class channel : public detail::pipe_front<T, detail::fifo_store<T>> {
  static_assert(std::movable<T>, "green::channel<T> needs a movable T");
  using detail::pipe_front<T, detail::fifo_store<T>>::p_;

 public:
  // channel(capacity) makes an unbuffered (0) or buffered channel.
  explicit channel(std::size_t capacity = 0)
      : detail::pipe_front<T, detail::fifo_store<T>>(capacity, detail::channel_names,
                                                     detail::fifo_store<T>(capacity < 1024 ? capacity : 1024)) {}

  // send() delivers v: to a waiting receiver, else into the buffer, else it
  // waits. Throws closed_error if the channel is (or gets) closed.
  void send(T&& v) { p_.put(v, sched::no_deadline, true); }
  void send(const T& v) requires std::copy_constructible<T> {
    T c(v);
    p_.put(c, sched::no_deadline, true);
  }
  // try_send() sends only if it need not wait; false leaves v untouched.
  bool try_send(T&& v) { return p_.put(v, sched::no_deadline, false) == op_status::success; }
  bool try_send(const T& v) requires std::copy_constructible<T> {
    T c(v);
    return try_send(std::move(c));
  }
  // send_for() / send_until() wait at most until the deadline; false (v
  // untouched) if it passed. The const T& forms send a copy, as send().
  template <class Rep, class Period>
  bool send_for(T&& v, std::chrono::duration<Rep, Period> d) {
    return p_.put(v, detail::deadline_after(d), true) == op_status::success;
  }
  template <class Rep, class Period>
  bool send_for(const T& v, std::chrono::duration<Rep, Period> d) requires std::copy_constructible<T> {
    T c(v);
    return send_for(std::move(c), d);
  }
  template <class Clock, class Duration>
  bool send_until(T&& v, std::chrono::time_point<Clock, Duration> tp) {
    return p_.put(v, detail::to_deadline(tp), true) == op_status::success;
  }
  template <class Clock, class Duration>
  bool send_until(const T& v, std::chrono::time_point<Clock, Duration> tp) requires std::copy_constructible<T> {
    T c(v);
    return send_until(std::move(c), tp);
  }

  // recv() takes the next value, waiting for one; std::nullopt once the
  // channel is closed and drained.
  std::optional<T> recv() { return p_.get_one(); }
  // recv(stop) is recv() that a stop request on `stop` (any thread) also
  // ends, with std::nullopt and no exception (stop.stop_requested() tells
  // it from closed). A value already there is still taken after a stop.
  std::optional<T> recv(const std::stop_token& stop) {
    return detail::stoppable(
        stop, [&] { return p_.get_one(); },
        [&] {
          std::optional<T> v;
          p_.get(v, sched::no_deadline, false);
          return v;
        });
  }
  // try_recv() takes a value only if one is ready: success (moved into
  // out), empty, or closed.
  op_status try_recv(T& out) { return p_.get_into(out, sched::no_deadline, false); }
  // recv_for() / recv_until(): success, timeout, or closed.
  template <class Rep, class Period>
  op_status recv_for(T& out, std::chrono::duration<Rep, Period> d) {
    return p_.get_into(out, detail::deadline_after(d), true);
  }
  template <class Clock, class Duration>
  op_status recv_until(T& out, std::chrono::time_point<Clock, Duration> tp) {
    return p_.get_into(out, detail::to_deadline(tp), true);
  }

  // close(), closed(), size() and range-for: see detail::pipe_front.
  // capacity() is the buffer's size (0: unbuffered).
  std::size_t capacity() const noexcept { return p_.capacity(); }
};

}  // namespace green
