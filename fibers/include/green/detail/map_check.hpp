// green::detail::map_args_ok — the compile-time check shared by
// parallel_map (parallel.hpp) and pool::map / imap / imap_unordered
// (pool.hpp): is `items` a range and `fn` a function of its elements that
// returns a value?
//
// Why static_assert and not only a requires-clause: a constraint that fails
// makes the call "no matching function", and the compiler's first error line
// is that, followed by pages of candidates and unsatisfied atoms; the
// library's own sentence never comes first. So the public functions accept
// the call, and their body's first statement is
// `if constexpr (detail::map_args_ok<...>())`, whose static_asserts are the
// first errors the user sees, each a sentence saying what to change; the
// rest of the body is then discarded, so no template noise follows. The
// asserts are ordered and guarded so that one mistake gives one message.
// tests/compile_fail checks the first error line of each misuse.
#pragma once

#include <concepts>
#include <ranges>
#include <type_traits>

namespace green {

namespace detail {
// map_arg_t<R, Copied> is what fn is called with: the element reference
// (parallel_map), or, Copied, a copy of the element passed as an rvalue
// (pool: each task owns its argument).
template <class R, bool Copied>
using map_arg_t = std::conditional_t<Copied, std::remove_cvref_t<std::ranges::range_reference_t<R>>,
                                     std::ranges::range_reference_t<R>>;
}  // namespace detail

// map_callable<F, R, Copied>: R is an input range and an F& can be called
// with its elements (as detail::map_arg_t passes them).
template <class F, class R, bool Copied = false>
concept map_callable = std::ranges::input_range<R> && std::invocable<F&, detail::map_arg_t<R, Copied>>;

// map_function<F, R, Copied>: map_callable, and the call returns a value.
template <class F, class R, bool Copied = false>
concept map_function =
    map_callable<F, R, Copied> && !std::is_void_v<std::invoke_result_t<F&, detail::map_arg_t<R, Copied>>>;

namespace detail {

// map_result_t is fn's result on an element.
template <class F, class R, bool Copied>
using map_result_t = std::invoke_result_t<F&, map_arg_t<R, Copied>>;

// map_args_ok() is true if fn maps items (random access too, if
// RandomAccess); otherwise it fails the static_assert that says why.
template <class F, class R, bool Copied, bool RandomAccess>
constexpr bool map_args_ok() {
  // Named, so that clang's "due to requirement '...'" stays short.
  constexpr bool range = std::ranges::input_range<R>;
  constexpr bool random = std::ranges::random_access_range<R>;
  constexpr bool callable = map_callable<F, R, Copied>;
  constexpr bool returns_value = map_function<F, R, Copied>;
  static_assert(range,
                "green::parallel_map / pool::map / pool::imap: the items argument is not a range; "
                "the call is map(fn, items), function first");
  static_assert(!range || !RandomAccess || random,
                "green::parallel_map: items must be a random-access range (vector, array, span...); "
                "pool::map takes any input range");
  static_assert(!range || callable,
                "green::parallel_map / pool::map / pool::imap: fn cannot be called with an element of items");
  static_assert(!callable || returns_value,
                "green::parallel_map / pool::map / pool::imap: fn returns void, so there is nothing to collect; "
                "use parallel_for or pool::spawn for work without a result");
  return returns_value && (!RandomAccess || random);
}

}  // namespace detail

}  // namespace green
