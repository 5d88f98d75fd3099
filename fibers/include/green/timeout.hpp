// green::timeout — a scoped deadline (gevent.Timeout, asyncio.wait_for).
#pragma once

#include <chrono>
#include <concepts>
#include <functional>
#include <type_traits>
#include <utility>

#include "green/detail/deadline.hpp"
#include "green/errors.hpp"

namespace green::sched {
class fiber_base;
}

namespace green {

// While a timeout object is alive, every blocking call of the library made
// by this fiber (sleep, lock, channel, queue, event, join, socket I/O) raises
// green::timeout_error once the deadline has passed; e.owner() == &t names
// the scope that expired. Nested scopes work: the earliest deadline wins.
// Leaving the scope cancels it. Fiber context only; on a plain thread it
// has no effect. Code that never blocks is not interrupted (cooperative).
// A duration too long for the clock never expires (it saturates).
//
// Name the scope and use braces: `green::timeout t{10ms};`. An unnamed
// `green::timeout{10ms};` is a temporary that ends at the semicolon and
// guards nothing: the constructors are [[nodiscard]], so g++ and clang warn
// (-Wunused-result / -Wunused-value, on by default). With parentheses and a
// named argument, `green::timeout t(std::chrono::milliseconds(ms));`
// declares a function `t` (the "most vexing parse"); both compilers warn
// (-Wvexing-parse, on by default), and braces avoid it.
class timeout {
 public:
  template <class Rep, class Period>
  [[nodiscard("a temporary timeout guards nothing: name it, green::timeout t{10ms};")]] explicit timeout(
      std::chrono::duration<Rep, Period> d)
      : timeout(detail::deadline_after(d)) {}
  [[nodiscard("a temporary timeout guards nothing: name it, green::timeout t{deadline};")]] explicit timeout(
      sched::time_point deadline);
  ~timeout();
  timeout(const timeout&) = delete;
  timeout& operator=(const timeout&) = delete;

  sched::time_point deadline() const noexcept { return deadline_; }
  // expired() is true once the deadline has passed.
  bool expired() const noexcept { return sched::clock::now() >= deadline_; }

 private:
  friend const void* detail::expired_scope() noexcept;
  sched::fiber_base* fiber_;
  sched::time_point deadline_;
  sched::time_point saved_;  // the fiber's scope deadline before this one
  timeout* outer_;
};

namespace detail {
// fallback_for<T, F>: fn returns a value (not void, not a reference) that T converts to.
template <class T, class F>
concept fallback_for = std::is_object_v<std::invoke_result_t<F>> && std::convertible_to<T, std::invoke_result_t<F>>;
}  // namespace detail

// with_timeout() runs fn() inside a green::timeout scope of `d` and returns
// its result (gevent.with_timeout, asyncio.wait_for). Raises
// green::timeout_error if a blocking call of fn is still waiting when `d`
// has passed; fn's own exceptions pass through. Fiber context (on a plain
// thread the scope has no effect, as for timeout).
//   std::string page = green::with_timeout(2s, [&] { return fetch(url); });
template <class Rep, class Period, std::invocable F>
std::invoke_result_t<F> with_timeout(std::chrono::duration<Rep, Period> d, F&& fn) {
  timeout t{d};
  return std::invoke(std::forward<F>(fn));
}

// with_timeout(d, fn, fallback) returns `fallback` instead of raising when
// this scope expires (gevent's timeout_value). A timeout_error of an
// enclosing scope, or of one inside fn, still propagates. fn must return a
// value (not void, not a reference) that `fallback` converts to.
//   int n = green::with_timeout(100ms, [&] { return ch.recv(); }, -1);
template <class Rep, class Period, std::invocable F, detail::fallback_for<F> T>
std::invoke_result_t<F> with_timeout(std::chrono::duration<Rep, Period> d, F&& fn, T&& fallback) {
  timeout t{d};
  try {
    return std::invoke(std::forward<F>(fn));
  } catch (const timeout_error& e) {
    if (e.owner() != &t) throw;
  }
  return std::forward<T>(fallback);
}

}  // namespace green
