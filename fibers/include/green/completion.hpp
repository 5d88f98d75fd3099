// green::wait_all, wait_any, as_completed and gather: waiting on many fibers
// or async_results at once (gevent.joinall / wait / iwait,
// concurrent.futures.wait / as_completed, asyncio.gather).
#pragma once

#include <chrono>
#include <cstddef>
#include <iterator>
#include <optional>
#include <ranges>
#include <unordered_map>
#include <utility>
#include <vector>

#include "green/async_result.hpp"
#include "green/fiber.hpp"
#include "green/queue.hpp"

namespace green {

// waitable is a non-owning reference to something that finishes: a
// fiber<T> (finished = done(), not joined) or an async_result<T> (ready()).
// It lets one call wait on handles of different types:
//   std::vector<green::waitable> v{fib, res};  green::wait_any(v);
// The referenced handle must outlive the waitable; a fiber handle must be
// joinable (std::logic_error otherwise).
class waitable {
 public:
  template <class T>
  waitable(const async_result<T>& r) noexcept : result_(&r.core()) {}  // NOLINT: implicit by design
  template <class T>
  waitable(const fiber<T>& f) : fiber_(detail::access::native(f)) {  // NOLINT: implicit by design
    if (!fiber_) detail::throw_joined_twice();
  }

  // done() is true once finished. Any thread.
  bool done() const noexcept { return result_ ? result_->ready() : fiber_->done(); }
  // wait_until() waits for done(); false at the deadline. Raises fiber_exit
  // and timeout_error like every blocking call. Fiber or thread context.
  bool wait_until(sched::time_point deadline) const;

  detail::result_core* result() const noexcept { return result_; }
  sched::fiber_base* fiber() const noexcept { return fiber_; }

 private:
  detail::result_core* result_ = nullptr;
  sched::fiber_base* fiber_ = nullptr;
};

namespace detail {

// completion_hub reports, in the order they finish, which of the sources it
// watches have finished. An async_result tells it through a listener; a
// fiber has no such hook at the scheduler seam, so a small watcher fiber
// waits for it (fiber_base::wait_done) and tells the hub. Owner: the fiber
// or thread that created it; post() is called from any thread.
//
// Invariants: each watched index is posted at most once; an entry exists for
// every watched index not yet returned by next_until(); the hub holds a
// reference on each watched result_core until then.
class completion_hub {
 public:
  completion_hub() : done_(0) {}
  // ~completion_hub() stops watching: unlinks its listeners and stops its
  // watcher fibers, waiting (uninterruptibly) for them to end.
  ~completion_hub();
  completion_hub(const completion_hub&) = delete;
  completion_hub& operator=(const completion_hub&) = delete;

  // watch() starts watching `w` as source `index` (an index not in use).
  // Owner only. Throws std::logic_error for a fiber of no runtime.
  void watch(const waitable& w, std::size_t index);
  // next_until() returns the index of the next finished source, or
  // std::nullopt at the deadline. Raises fiber_exit / timeout_error. Owner only.
  std::optional<std::size_t> next_until(sched::time_point deadline);
  // pending() is the number of watched sources not yet returned. Owner only.
  std::size_t pending() const noexcept { return entries_.size(); }
  // post() reports source `index` finished. Any thread.
  void post(std::size_t index);

 private:
  struct entry {
    result_core* result = nullptr;  // one reference held
    result_listener listener;
    fiber<void> watcher;
  };
  queue<std::size_t> done_;
  std::unordered_map<std::size_t, entry> entries_;  // node-based: listener addresses are stable
};

bool wait_all_until(const std::vector<waitable>& ws, sched::time_point deadline);
std::optional<std::size_t> wait_any_until(const std::vector<waitable>& ws, sched::time_point deadline);

template <class R>
std::vector<waitable> waitables(R&& range) {
  std::vector<waitable> ws;
  if constexpr (std::ranges::sized_range<R>) ws.reserve(std::ranges::size(range));
  for (auto&& x : range) ws.emplace_back(x);
  return ws;
}

}  // namespace detail

// wait_all() waits until every element of `range` (fibers, async_results or
// waitables) has finished. It does not join or rethrow: consume each result
// afterwards. Fiber or thread context; raises fiber_exit / timeout_error.
template <class R>
void wait_all(R&& range) {
  detail::wait_all_until(detail::waitables(range), sched::no_deadline);
}
// wait_all_for() / wait_all_until(): false if the time passes first.
template <class R, class Rep, class Period>
bool wait_all_for(R&& range, std::chrono::duration<Rep, Period> d) {
  return detail::wait_all_until(detail::waitables(range), detail::deadline_after(d));
}
template <class R, class Clock, class Duration>
bool wait_all_until(R&& range, std::chrono::time_point<Clock, Duration> tp) {
  return detail::wait_all_until(detail::waitables(range), detail::to_deadline(tp));
}

// wait_any() waits until at least one element has finished and returns the
// index of one that has (the lowest, if several already had). Throws
// std::invalid_argument for an empty range. Fiber or thread context.
template <class R>
std::size_t wait_any(R&& range) {
  return *detail::wait_any_until(detail::waitables(range), sched::no_deadline);
}
// wait_any_for() / wait_any_until(): std::nullopt if the time passes first.
template <class R, class Rep, class Period>
std::optional<std::size_t> wait_any_for(R&& range, std::chrono::duration<Rep, Period> d) {
  return detail::wait_any_until(detail::waitables(range), detail::deadline_after(d));
}
template <class R, class Clock, class Duration>
std::optional<std::size_t> wait_any_until(R&& range, std::chrono::time_point<Clock, Duration> tp) {
  return detail::wait_any_until(detail::waitables(range), detail::to_deadline(tp));
}

// as_completed(range) iterates over the elements of `range` in the order
// they finish (gevent.iwait, concurrent.futures.as_completed), yielding a
// reference to each; get()/join() it in the loop body, where its exception
// surfaces. With a deadline, advancing past it raises green::timeout_error.
// Leaving the loop early stops watching. The range must outlive the loop
// and not change during it. Fiber or thread context.
template <class R>
class as_completed_view {
  using elem_ref = std::ranges::range_reference_t<R>;
  using elem = std::remove_reference_t<elem_ref>;

 public:
  as_completed_view(R& range, sched::time_point deadline) : deadline_(deadline) {
    std::size_t i = 0;
    for (auto& x : range) {
      elems_.push_back(&x);
      hub_.watch(waitable(x), i++);
    }
  }

  class iterator {
   public:
    using value_type = elem;
    using difference_type = std::ptrdiff_t;
    elem& operator*() const { return *v_->elems_[cur_]; }
    iterator& operator++() {
      v_->advance(*this);
      return *this;
    }
    void operator++(int) { ++*this; }
    bool operator==(std::default_sentinel_t) const noexcept { return v_ == nullptr; }

   private:
    friend class as_completed_view;
    as_completed_view* v_ = nullptr;
    std::size_t cur_ = 0;
  };

  iterator begin() {
    iterator it;
    it.v_ = this;
    advance(it);
    return it;
  }
  std::default_sentinel_t end() const noexcept { return {}; }

 private:
  void advance(iterator& it) {
    if (hub_.pending() == 0) {
      it.v_ = nullptr;
      return;
    }
    std::optional<std::size_t> i = hub_.next_until(deadline_);
    if (!i) detail::throw_result_timeout();
    it.cur_ = *i;
  }

  sched::time_point deadline_;
  std::vector<elem*> elems_;
  detail::completion_hub hub_;
};

template <class R>
as_completed_view<R> as_completed(R& range) {
  return as_completed_view<R>(range, sched::no_deadline);
}
template <class R, class Rep, class Period>
as_completed_view<R> as_completed_for(R& range, std::chrono::duration<Rep, Period> d) {
  return as_completed_view<R>(range, detail::deadline_after(d));
}

// gather() waits for every element (fibers or async_results of one type T),
// then returns their values in input order (void for T = void); if any
// failed, rethrows the exception of the first failed one in input order.
// Fibers are joined. Fiber or thread context.
template <class R>
auto gather(R&& range) {
  wait_all(range);
  using E = std::remove_cvref_t<std::ranges::range_reference_t<R>>;
  auto one = [](auto& x) -> decltype(auto) {
    if constexpr (requires { x.join(); }) {
      return x.join();
    } else {
      return x.take();
    }
  };
  using T = decltype(one(std::declval<E&>()));
  if constexpr (std::is_void_v<T>) {
    std::exception_ptr first;
    for (auto& x : range) {
      try {
        one(x);
      } catch (...) {
        if (!first) first = std::current_exception();
      }
    }
    if (first) std::rethrow_exception(first);
  } else {
    std::vector<T> out;
    std::exception_ptr first;
    for (auto& x : range) {
      try {
        out.push_back(one(x));
      } catch (...) {
        if (!first) first = std::current_exception();
      }
    }
    if (first) std::rethrow_exception(first);
    return out;
  }
}

}  // namespace green
