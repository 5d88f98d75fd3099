// green::pool — a group that runs at most `size` fibers at once
// (gevent.pool.Pool, concurrent.futures.ThreadPoolExecutor, multiprocessing
// Pool's apply / map / imap / imap_unordered).
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <ranges>
#include <stdexcept>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "green/completion.hpp"
#include "green/detail/map_check.hpp"
#include "green/group.hpp"

namespace green {

// pool_full_error is what try_spawn() raises when every slot is busy.
class pool_full_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class pool;

namespace detail {
[[noreturn]] void throw_pool_full(std::size_t capacity);

// imap_view is pool::imap (Ordered) and pool::imap_unordered. It keeps at
// most 2 * capacity tasks in flight or finished-but-unconsumed (one pool's
// worth running while one waits to be consumed), so it is lazy over a
// long or endless input. Owner: the fiber or thread iterating.
template <class F, class R, bool Ordered>
class imap_view {
  using It = std::ranges::iterator_t<R>;
  using Sent = std::ranges::sentinel_t<R>;
  using In = std::ranges::range_reference_t<R>;
  // pool::imap checked F and R (map_args_ok): fn takes a copy of an element.
  using Out = map_result_t<F, R, true>;

 public:
  imap_view(pool& p, F fn, R& range);
  // Leaving the loop early (or an exception) kills the tasks still in
  // flight and waits for them to end.
  ~imap_view();
  imap_view(const imap_view&) = delete;
  imap_view& operator=(const imap_view&) = delete;

  class iterator {
   public:
    using value_type = Out;
    using difference_type = std::ptrdiff_t;
    Out& operator*() const { return *v_->cur_; }
    iterator& operator++() {
      if (!v_->advance()) v_ = nullptr;
      return *this;
    }
    void operator++(int) { ++*this; }
    bool operator==(std::default_sentinel_t) const noexcept { return v_ == nullptr; }

   private:
    friend class imap_view;
    imap_view* v_ = nullptr;
  };
  // begin() runs the first item (its exception surfaces here); each ++ the
  // next. Call it once.
  iterator begin() {
    iterator it;
    if (advance()) it.v_ = this;
    return it;
  }
  std::default_sentinel_t end() const noexcept { return {}; }

 private:
  bool advance();
  void fill();
  void launch(bool wait);

  pool& p_;
  std::shared_ptr<F> fn_;  // shared with the tasks, which may outlive a view left early
  It it_;
  Sent end_;
  std::size_t limit_;
  std::size_t next_index_ = 0;
  std::optional<Out> cur_;
  // Ordered: results in input order. Unordered: results by index, and a hub
  // that says which finished first.
  std::deque<async_result<Out>> fifo_;
  std::unordered_map<std::size_t, async_result<Out>> by_index_;
  std::optional<completion_hub> hub_;
};

}  // namespace detail

// pool is a group that never runs more than `size` of its fibers at once.
// spawn() waits for a free slot (back-pressure); try_spawn() fails at once
// with pool_full_error. A task's exception surfaces where its result is
// consumed: get(), apply(), map(), or the imap iteration. The calls are
// those of group plus the ones below. ~pool() kills and waits like ~group().
class pool : public group {
 public:
  // pool() makes a pool of `size` slots. Throws std::invalid_argument if
  // size < 1.
  explicit pool(std::ptrdiff_t size);

  // capacity() is the number of slots; free_count() how many are free (a
  // snapshot); full() is free_count() == 0. Any thread.
  std::size_t capacity() const noexcept { return capacity_; }
  std::size_t free_count() const noexcept { return slots_->value(); }
  bool full() const noexcept { return free_count() == 0; }

  // wait_available() waits until a slot is free (it may be taken again by the
  // time the caller acts). wait_available_for(): false if none came free in
  // time. Fiber or thread context.
  void wait_available();
  template <class Rep, class Period>
  bool wait_available_for(std::chrono::duration<Rep, Period> d) {
    if (!slots_->try_acquire_for(d)) return false;
    slots_->release();
    return true;
  }

  // spawn() waits for a free slot, then starts fn(args...) on a new fiber and
  // returns its result. Fiber context.
  template <class F, class... Args>
  auto spawn(F&& fn, Args&&... args) {
    return start_(slot::wait, std::forward<F>(fn), std::forward<Args>(args)...);
  }
  // try_spawn() is spawn() that never waits: it throws pool_full_error
  // ("green::pool: all N slots are busy") if no slot is free.
  template <class F, class... Args>
  auto try_spawn(F&& fn, Args&&... args) {
    if (!slots_->try_acquire()) detail::throw_pool_full(capacity_);
    return start_(slot::held, std::forward<F>(fn), std::forward<Args>(args)...);
  }

  // apply() runs fn(args...) in the pool and returns its result (or rethrows
  // its exception). Called from a member fiber of a full pool it runs fn
  // inline instead (waiting for a slot held by the caller would deadlock).
  template <class F, class... Args>
  decltype(auto) apply(F&& fn, Args&&... args) {
    if (full() && member_of_()) return std::invoke(std::forward<F>(fn), std::forward<Args>(args)...);
    return spawn(std::forward<F>(fn), std::forward<Args>(args)...).take();
  }

  // map() runs fn on every element of `range` in the pool and returns the
  // results in input order (a std::vector). Each task gets its own copy of
  // the element. If any task fails, map() rethrows the first failure in
  // input order after the tasks in flight have been killed and have ended.
  // Function first, like parallel_map(). A non-range, a fn that cannot take
  // an element, or a fn returning void is a compile error saying so (see
  // detail/map_check.hpp). Fiber context.
  template <class F, class R>
  auto map(F&& fn, R&& range) {
    if constexpr (detail::map_args_ok<std::decay_t<F>, R, true, false>()) {
      std::vector<detail::map_result_t<std::decay_t<F>, R, true>> out;
      if constexpr (std::ranges::sized_range<R>) out.reserve(std::ranges::size(range));
      for (auto& v : imap(std::forward<F>(fn), range)) out.push_back(std::move(v));
      return out;
    }
  }
  // imap() is a lazy map: an iterable of the results in input order, each
  // task started only when the iteration is at most 2 * capacity() items
  // behind. A failed task's exception is raised by the step that reaches it.
  // `range` must outlive the iteration, so a temporary container is a
  // compile error saying so. Misuse as map(). Fiber context.
  template <class F, class R>
  auto imap(F&& fn, R&& range) {
    return imap_<true, R>(std::forward<F>(fn), range);
  }
  // imap_unordered() is imap() yielding results in the order tasks finish.
  template <class F, class R>
  auto imap_unordered(F&& fn, R&& range) {
    return imap_<false, R>(std::forward<F>(fn), range);
  }

 private:
  template <class, class, bool>
  friend class detail::imap_view;
  // imap_() checks the arguments (Arg: how imap's caller passed the range),
  // then makes the view (a prvalue: the view neither copies nor moves).
  template <bool Ordered, class Arg, class F, class R>
  auto imap_(F&& fn, R& range) {
    if constexpr (detail::map_args_ok<std::decay_t<F>, R, true, false>()) {
      constexpr bool outlives = std::is_lvalue_reference_v<Arg> || std::ranges::borrowed_range<Arg>;
      static_assert(outlives,
                    "green::pool::imap: items is a temporary, destroyed before the iteration ends; "
                    "store it in a variable first (pool::map accepts a temporary)");
      if constexpr (outlives) return detail::imap_view<std::decay_t<F>, R, Ordered>(*this, std::forward<F>(fn), range);
    }
  }
  std::size_t capacity_;
};

namespace detail {

template <class F, class R, bool Ordered>
imap_view<F, R, Ordered>::imap_view(pool& p, F fn, R& range)
    : p_(p),
      fn_(std::make_shared<F>(std::move(fn))),
      it_(std::ranges::begin(range)),
      end_(std::ranges::end(range)),
      limit_(2 * p.capacity()) {
  if constexpr (!Ordered) hub_.emplace();
}

template <class F, class R, bool Ordered>
imap_view<F, R, Ordered>::~imap_view() {
  // The tasks still running were started for this view only: stop them,
  // then wait (not interruptibly: they must be gone before fn_'s last user).
  auto stop = [&](async_result<Out>& r) {
    if (result_core* c = p_.kill_one_(p_.mine_(r.core()))) c->release();
  };
  for (auto& r : fifo_) stop(r);
  for (auto& [i, r] : by_index_) stop(r);
  for (auto& r : fifo_) wait_uninterruptibly(r.core());
  for (auto& [i, r] : by_index_) wait_uninterruptibly(r.core());
}

template <class F, class R, bool Ordered>
void imap_view<F, R, Ordered>::launch(bool wait) {
  auto fn = fn_;
  auto r = p_.start_(
      wait ? pool::slot::wait : pool::slot::held,
      [fn](std::remove_cvref_t<In> v) -> Out { return (*fn)(std::move(v)); }, *it_);
  ++it_;
  if constexpr (Ordered) {
    fifo_.push_back(std::move(r));
  } else {
    hub_->watch(waitable(r), next_index_);
    by_index_.emplace(next_index_, std::move(r));
  }
  ++next_index_;
}

template <class F, class R, bool Ordered>
void imap_view<F, R, Ordered>::fill() {
  auto in_flight = [&] { return Ordered ? fifo_.size() : by_index_.size(); };
  // At least one task, waiting for a slot if need be; then as many as there
  // are free slots, up to the limit.
  if (in_flight() == 0 && it_ != end_) launch(true);
  while (it_ != end_ && in_flight() < limit_ && p_.slots_->try_acquire()) launch(false);
}

template <class F, class R, bool Ordered>
bool imap_view<F, R, Ordered>::advance() {
  cur_.reset();
  fill();
  if constexpr (Ordered) {
    if (fifo_.empty()) return false;
    fifo_.front().wait();
    async_result<Out> r = std::move(fifo_.front());
    fifo_.pop_front();
    cur_.emplace(r.take());
  } else {
    if (by_index_.empty()) return false;
    std::size_t i = *hub_->next_until(sched::no_deadline);
    auto node = by_index_.extract(i);
    cur_.emplace(node.mapped().take());
  }
  return true;
}

}  // namespace detail

}  // namespace green
