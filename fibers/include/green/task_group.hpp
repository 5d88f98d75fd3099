// green::task_group — structured concurrency: children that cannot outlive
// their scope (asyncio.TaskGroup, trio's nursery, Go's errgroup).
#pragma once

#include <chrono>
#include <exception>
#include <functional>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "green/errors.hpp"
#include "green/group.hpp"
#include "green/timeout.hpp"

namespace green {

// task_group runs child fibers inside a scope:
//
//   green::task_group tg;
//   auto a = tg.spawn(fetch, url_a);
//   auto b = tg.spawn(fetch, url_b);
//   tg.wait();                 // joins both; raises the first failure
//   use(a.get(), b.get());
//
// - Children cannot outlive the scope. wait() joins them all. If the scope is
//   left without wait() (an exception leaving it, or a forgotten wait()),
//   ~task_group() kills the children still running and joins them; it never
//   throws.
// - The first failure cancels the siblings. When a child throws, every other
//   child (grandchildren spawned into this group too) is killed: each raises
//   green::fiber_exit at its current or next suspension point. wait() still
//   joins them all, then rethrows that first exception as itself, so
//   `catch (const my_error&)` around the scope works.
// - Every other failure is kept, not lost: errors() lists each child's
//   exception in the order they were recorded, the one wait() raised first.
//   wait() raises one exception whose type does not depend on how many
//   children happened to fail before the cancellation reached them (a
//   combined error would make `catch (const my_error&)` work or not by
//   race). Each child's exception is also in the async_result its spawn()
//   returned. Cancellation is not an error: a child ended by fiber_exit is
//   not recorded, nor a green::fiber_killed_error raised in a child after the
//   group began cancelling (a child that saw a cancelled sibling's result).
// - A deadline cancels everything: `task_group tg{5s};` opens a
//   green::timeout scope for the calling fiber until the group is destroyed,
//   so wait() (or any other blocking call of the scope's body) raises
//   green::timeout_error when it passes; a green::timeout around wait() does
//   the same. When wait() is interrupted (timeout_error, or the waiting fiber
//   is killed), it kills the children, joins them and rethrows.
// - The parent's body is not interrupted by a child's failure (unlike
//   asyncio); it learns of it at wait(), or at its next spawn(): spawning
//   into a group whose child failed does what wait() does (joins the
//   cancelled children and raises the first error).
//
// Construct, wait and destroy a task_group on one fiber (the main fiber
// under green::run included). Children may spawn into the same group, and
// may open task_groups of their own.
class task_group : private group {
 public:
  task_group();
  // task_group(d) / task_group(deadline) add a deadline for the scope.
  template <class Rep, class Period>
  explicit task_group(std::chrono::duration<Rep, Period> d) : task_group(detail::deadline_after(d)) {}
  explicit task_group(sched::time_point deadline);
  ~task_group() override;
  task_group(const task_group&) = delete;
  task_group& operator=(const task_group&) = delete;

  // spawn() starts fn(args...) on a new child fiber and returns its
  // async_result (get() gives the child's value, or rethrows its exception).
  // Errors: std::logic_error after wait() (the group is closed) or outside
  // fiber context; the group's first error if a child has failed and the
  // caller is not a child (see above). A child spawned while the group is
  // cancelling is killed at once (its result: fiber_killed_error).
  template <class F, class... Args>
  auto spawn(F&& fn, Args&&... args) {
    admit_();
    auto r = group::spawn(child<std::decay_t<F>>{this, std::forward<F>(fn)}, std::forward<Args>(args)...);
    recheck_();
    return r;
  }

  // wait() joins every child, then rethrows the first child's exception if
  // one failed. Raises timeout_error / fiber_exit like every blocking call,
  // after killing and joining the children. Once it returned or threw the
  // group is closed. Throws std::logic_error if called twice or from a child
  // of this group (it would wait for itself).
  void wait();

  // cancel() kills every child without counting it as a failure: wait()
  // then joins them and returns normally (unless a child had failed). For
  // "the first answer wins". Any fiber.
  void cancel() noexcept;

  // errors() is every child failure recorded so far (see above). Any fiber.
  std::vector<std::exception_ptr> errors() const;

 private:
  // child<F> wraps a child's function: a failure is recorded (and cancels
  // the siblings) on the child's fiber, before the group sees it end.
  template <class F>
  struct child {
    task_group* tg;
    F fn;
    template <class... A>
    std::invoke_result_t<F, A...> operator()(A&&... a) {
      try {
        return std::invoke(std::move(fn), std::forward<A>(a)...);
      } catch (const fiber_exit&) {
        throw;  // cancelled: not an error
      } catch (const fiber_killed_error&) {
        tg->fail_(std::current_exception(), true);
        throw;
      } catch (...) {
        tg->fail_(std::current_exception(), false);
        throw;
      }
    }
  };

  void admit_();
  void recheck_() noexcept;
  void fail_(std::exception_ptr e, bool killed_error) noexcept;
  bool begin_cancel_() noexcept;
  void close_() noexcept;

  // Guarded by tmu_: cancelling_ once a child failed or cancel() / an
  // interrupted wait() / the destructor began killing; closed_ once wait()
  // returned or threw; errors_ in the order recorded.
  mutable sched::spinlock tmu_;
  bool cancelling_ = false;
  bool closed_ = false;
  std::vector<std::exception_ptr> errors_;
  std::optional<timeout> scope_;  // the deadline's scope, on the constructing fiber
};

}  // namespace green
