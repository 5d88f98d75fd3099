// green::parallel_for, parallel_map, parallel_reduce — CPU-bound work over
// every worker of the runtime (multiprocessing.Pool.map,
// ProcessPoolExecutor.map), in chunks.
//
// Chunking. The index range is cut into chunks and each chunk runs on its own
// fiber; the work-stealing scheduler spreads the fibers over the workers. A
// fiber costs about a microsecond to spawn, run and join, so a chunk must
// hold much more work than that; and there must be several chunks per worker
// so that a worker finishing early steals the rest. The default aims at
// kDefaultChunks = 256 chunks: 4 per worker on 64 workers, and for 50M cheap
// items (the squares example) ~195k items, ~1 ms, per chunk (>1000x the
// spawn cost). Chunk boundaries depend only on the item count and
// options.chunk, never on the worker count, so parallel_reduce, which
// combines the chunks' partial results in chunk order, gives bit-identical
// results on 1 worker and on 64.
#pragma once

#include <algorithm>
#include <cstddef>
#include <exception>
#include <iterator>
#include <optional>
#include <ranges>
#include <type_traits>
#include <utility>
#include <vector>

#include "green/detail/map_check.hpp"
#include "green/fiber.hpp"

namespace green {

// parallel_options tunes the chunking.
struct parallel_options {
  // Items per chunk; 0 picks ceil(n / kDefaultChunks). Smaller chunks
  // balance uneven work better, larger ones cost less to schedule.
  std::size_t chunk = 0;
};

namespace detail {

inline constexpr std::size_t kDefaultChunks = 256;

inline std::size_t chunk_size(std::size_t n, const parallel_options& o) noexcept {
  if (o.chunk) return o.chunk;
  return std::max<std::size_t>(1, (n + kDefaultChunks - 1) / kDefaultChunks);
}

// run_chunks() calls body(chunk_index, begin, end) for every chunk of [0, n)
// on fibers of the current runtime and waits for all of them. If any threw,
// rethrows the exception of the first failed chunk (in chunk order) once
// all have ended. Fiber context.
template <class Body>
void run_chunks(std::size_t n, const parallel_options& o, Body& body) {
  if (n == 0) return;
  sched::scheduler* s = sched::current_scheduler();
  if (!s) throw_no_runtime("green::parallel_*");
  std::size_t chunk = chunk_size(n, o);
  std::size_t chunks = (n + chunk - 1) / chunk;
  std::vector<fiber<void>> fs;
  fs.reserve(chunks);
  std::exception_ptr first;
  try {
    for (std::size_t c = 0; c < chunks; ++c) {
      std::size_t b = c * chunk, e = std::min(n, b + chunk);
      fs.push_back(spawn_on(*s, spawn_options{}, [&body, c, b, e] { body(c, b, e); }));
    }
  } catch (...) {
    first = std::current_exception();  // spawning failed: still wait for those started
  }
  std::exception_ptr failed;
  for (auto& f : fs) {
    try {
      f.join();
    } catch (...) {
      if (!failed) failed = std::current_exception();
    }
  }
  if (failed) std::rethrow_exception(failed);
  if (first) std::rethrow_exception(first);
}

}  // namespace detail

// parallel_for() calls fn(i) for every i in [first, last), in chunks spread
// over the runtime's workers, and returns when all are done. Rethrows the
// first failing chunk's exception after all chunks ended. Fiber context
// (std::logic_error otherwise).
template <class F>
void parallel_for(std::size_t first, std::size_t last, F&& fn, parallel_options o = {}) {
  auto body = [&](std::size_t, std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i) fn(first + i);
  };
  detail::run_chunks(last > first ? last - first : 0, o, body);
}

namespace detail {
// old_map_order<A, B>: a call parallel_map(a, b) in the old (items, fn)
// order: a is a range and b is not. The two overloads below split on it, so
// exactly one of them is viable for any arguments (never ambiguous), and a
// misuse reaches the (fn, items) one, whose static_asserts explain it.
template <class A, class B>
concept old_map_order = std::ranges::range<A> && !std::ranges::range<B>;

// parallel_map_() is parallel_map() once the arguments are checked.
template <class F, class R>
auto parallel_map_(F& fn, R& range, const parallel_options& o) {
  using Out = map_result_t<F, R, false>;
  auto first = std::ranges::begin(range);
  std::size_t n = static_cast<std::size_t>(std::ranges::distance(range));
  // vector<bool> packs bits: concurrent writes to neighbours would race.
  if constexpr (std::is_default_constructible_v<Out> && std::is_move_assignable_v<Out> && !std::is_same_v<Out, bool>) {
    std::vector<Out> out(n);
    auto body = [&](std::size_t, std::size_t b, std::size_t e) {
      for (std::size_t i = b; i < e; ++i) out[i] = fn(first[static_cast<std::ptrdiff_t>(i)]);
    };
    run_chunks(n, o, body);
    return out;
  } else {
    std::vector<std::optional<Out>> tmp(n);
    auto body = [&](std::size_t, std::size_t b, std::size_t e) {
      for (std::size_t i = b; i < e; ++i) tmp[i].emplace(fn(first[static_cast<std::ptrdiff_t>(i)]));
    };
    run_chunks(n, o, body);
    std::vector<Out> out;
    out.reserve(n);
    for (auto& v : tmp) out.push_back(std::move(*v));
    return out;
  }
}
}  // namespace detail

// parallel_map() returns fn(x) for every x of the random-access range
// `items`, in input order (a std::vector), computed in chunks over the
// runtime's workers. Function first, like Python's map() and pool::map().
// Errors and context as parallel_for. A non-range, a fn that cannot take
// an element, or a fn returning void is a compile error saying so.
template <class F, class R>
auto parallel_map(F&& fn, R&& items, parallel_options o = {}) requires(!detail::old_map_order<F, R>) {
  if constexpr (detail::map_args_ok<std::remove_reference_t<F>, R, false, true>()) {
    return detail::parallel_map_(fn, items, o);
  }
}

// parallel_map(items, fn) is the old argument order.
template <class R, class F>
[[deprecated("green::parallel_map(items, fn) is deprecated: call parallel_map(fn, items), function first")]] auto
parallel_map(R&& items, F&& fn, parallel_options o = {}) requires detail::old_map_order<R, F> {
  return parallel_map(std::forward<F>(fn), std::forward<R>(items), o);
}

// parallel_reduce() folds map(i) for i in [first, last) with `reduce`:
// each chunk folds its items left to right, then the chunks' partials are
// folded in chunk order onto `init`. `reduce` must be associative; the
// result does not depend on the worker count (see the chunking note).
// Errors and context as parallel_for.
template <class T, class Map, class Reduce>
T parallel_reduce(std::size_t first, std::size_t last, T init, Map&& map, Reduce&& reduce, parallel_options o = {}) {
  std::size_t n = last > first ? last - first : 0;
  if (n == 0) return init;
  std::size_t chunk = detail::chunk_size(n, o);
  std::vector<std::optional<T>> partial((n + chunk - 1) / chunk);
  auto body = [&](std::size_t c, std::size_t b, std::size_t e) {
    T acc = map(first + b);
    for (std::size_t i = b + 1; i < e; ++i) acc = reduce(std::move(acc), map(first + i));
    partial[c].emplace(std::move(acc));
  };
  detail::run_chunks(n, o, body);
  for (auto& p : partial) init = reduce(std::move(init), std::move(*p));
  return init;
}

}  // namespace green
