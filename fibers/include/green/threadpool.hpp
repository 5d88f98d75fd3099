// green::threadpool and green::to_thread — the OS-thread fallback for calls
// that cannot be made cooperative (getaddrinfo, file I/O, a CPU-heavy
// function): they run on real OS threads while the calling fiber parks.
// gevent.threadpool and asyncio.to_thread are the models.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "green/event.hpp"
#include "green/fiber.hpp"

namespace green {

namespace detail {

// pool_job is one call queued on a threadpool. run() is called once, on a
// pool thread, and must not throw.
struct pool_job {
  virtual ~pool_job() = default;
  virtual void run() noexcept = 0;
};

// thread_state<R> is what a pool thread and the waiting side share: the
// result (or exception) and an event set once it is there. Shared ownership:
// a waiter that gives up (timeout, kill) leaves the call running, and the
// state outlives whichever side finishes last.
template <class R>
struct thread_state : pool_job {
  event done;                // set by run(), after result/error are written
  result_slot<R> result;     // written before done.set(); read after done.wait()
  std::exception_ptr error;  // ditto; the waiter moves it out (see take_result)
  // The waiter's fiber may finish and its runtime be destroyed while set()
  // is still inside the scheduler's wake(): ~scheduler waits for such
  // outside wakes (push_from_outside), so nothing here has to.

  // await() waits for done until `deadline`; true once set.
  bool await(sched::time_point deadline) { return done.wait_until(deadline); }
};

template <class R, class Fn, class Tuple>
class thread_call final : public thread_state<R> {
 public:
  thread_call(Fn fn, Tuple args) { call_.emplace(std::move(fn), std::move(args)); }

 private:
  void run() noexcept override {
    try {
      apply_into(this->result, call_->first, std::move(call_->second));
    } catch (...) {
      this->error = std::current_exception();
    }
    call_.reset();  // release captures on the pool thread, before anyone is woken
    this->done.set();
  }
  std::optional<std::pair<Fn, Tuple>> call_;
};

template <class F, class... Args>
auto make_thread_call(F&& fn, Args&&... args) {
  using R = spawn_result_t<F, Args...>;
  using Tuple = std::tuple<std::decay_t<Args>...>;
  return std::make_shared<thread_call<R, std::decay_t<F>, Tuple>>(std::forward<F>(fn),
                                                                  Tuple(std::forward<Args>(args)...));
}

// take_result() returns the state's value or rethrows its exception. The
// call must have finished (done is set).
// The exception is moved out, so its last reference is dropped on the
// waiter's thread, never by the pool thread releasing the state (libstdc++'s
// exception refcount is invisible to TSan, which then reports a race).
template <class R>
R take_result(thread_state<R>& s) {
  if (s.error) std::rethrow_exception(std::exchange(s.error, nullptr));
  return s.result.take();
}

[[noreturn]] void throw_no_result();
// pool_size_from_env() parses GREEN_THREADPOOL: null or empty -> 64. Throws
// std::invalid_argument unless it is a positive integer.
std::size_t pool_size_from_env(const char* value);

}  // namespace detail

// thread_result<R> is the handle threadpool::spawn() returns: the outcome of
// one call running on a pool thread (gevent's AsyncResult). Move-only.
// Dropping it does not cancel the call.
template <class R>
class thread_result {
 public:
  thread_result() noexcept = default;
  explicit thread_result(std::shared_ptr<detail::thread_state<R>> s) noexcept : s_(std::move(s)) {}

  // valid() is false for a default-constructed handle and after get().
  bool valid() const noexcept { return s_ != nullptr; }
  // ready() is true once the call has finished. Any thread.
  bool ready() const noexcept { return s_ && s_->done.is_set(); }

  // wait() / join() return once the call has finished. Raise fiber_exit if
  // the waiting fiber is killed and timeout_error if a green::timeout scope
  // expires; the call itself runs on. Fiber or thread context.
  void wait() { state().await(sched::no_deadline); }
  void join() { wait(); }
  // wait_for() / wait_until(): false if the time passed first.
  template <class Rep, class Period>
  bool wait_for(std::chrono::duration<Rep, Period> d) {
    return state().await(detail::deadline_after(d));
  }
  template <class Clock, class Duration>
  bool wait_until(std::chrono::time_point<Clock, Duration> tp) {
    return state().await(detail::to_deadline(tp));
  }

  // get() waits, then returns the call's result or rethrows its exception.
  // Once: afterwards valid() is false. Throws std::logic_error if !valid().
  R get() {
    wait();
    auto s = std::move(s_);
    return detail::take_result(*s);
  }

 private:
  detail::thread_state<R>& state() const {
    if (!s_) detail::throw_no_result();
    return *s_;
  }
  std::shared_ptr<detail::thread_state<R>> s_;
};

// threadpool runs calls on at most size() OS threads (gevent.threadpool).
// Threads start on demand, up to size(), and exit after `idle` without work.
// Calls beyond size() queue in FIFO order. spawn(), map(), apply() and
// join() may be used from fibers (which park) and plain threads (which
// block). A call that blocks forever keeps its thread forever: nothing can
// interrupt an OS thread's call.
class threadpool {
 public:
  static constexpr std::chrono::milliseconds default_idle{2000};

  // threadpool() makes a pool of at most `size` threads. Throws
  // std::invalid_argument if size is 0 or idle is negative.
  explicit threadpool(std::size_t size, std::chrono::milliseconds idle = default_idle);
  // ~threadpool() waits for every call spawned so far (as join()), then lets
  // its threads exit. If the waiting fiber is killed meanwhile it stops
  // waiting (the kill is re-armed for the fiber's next suspension point) and
  // the remaining calls finish on their threads unobserved.
  ~threadpool();
  threadpool(const threadpool&) = delete;
  threadpool& operator=(const threadpool&) = delete;

  // size() is the most threads the pool runs at once.
  std::size_t size() const noexcept;
  // threads() is how many threads exist now (a snapshot). Any thread.
  std::size_t threads() const noexcept;
  // pending() is how many spawned calls have not finished (a snapshot).
  std::size_t pending() const noexcept;

  // spawn() queues fn(args...) and returns its handle. The function and the
  // arguments are decay-copied, as by std::thread: pass std::ref only for
  // an object that outlives the call itself, not just the wait (a waiter
  // that times out or is killed leaves the call running). Any thread.
  // Throws std::system_error if no thread can be started and none exists.
  template <class F, class... Args>
  auto spawn(F&& fn, Args&&... args) {
    auto s = detail::make_thread_call(std::forward<F>(fn), std::forward<Args>(args)...);
    submit(s);
    using R = detail::spawn_result_t<F, Args...>;
    return thread_result<R>(std::shared_ptr<detail::thread_state<R>>(std::move(s)));
  }

  // apply() runs fn(args...) on the pool and returns its result (or
  // rethrows its exception); the caller parks meanwhile. Raises fiber_exit /
  // timeout_error for the waiting side as thread_result::wait(); the call
  // runs on regardless. Fiber or thread context.
  template <class F, class... Args>
  auto apply(F&& fn, Args&&... args) {
    return spawn(std::forward<F>(fn), std::forward<Args>(args)...).get();
  }

  // map() runs fn(item) for every item on the pool and returns the results
  // in order. It waits for every call; if some threw, it then rethrows the
  // first one's exception (in item order). fn is shared by the calls (one
  // copy); items are copied. Fiber or thread context.
  template <class F, class Range>
  auto map(F&& fn, const Range& items) {
    using Item = std::decay_t<decltype(*std::begin(items))>;
    using R = std::invoke_result_t<std::decay_t<F>&, Item&>;
    auto shared = std::make_shared<std::decay_t<F>>(std::forward<F>(fn));
    std::vector<thread_result<R>> calls;
    for (const auto& item : items) calls.push_back(spawn([shared](Item&& v) -> R { return (*shared)(v); }, item));
    for (auto& c : calls) c.wait();
    if constexpr (std::is_void_v<R>) {
      for (auto& c : calls) c.get();
    } else {
      std::vector<R> out;
      out.reserve(calls.size());
      for (auto& c : calls) out.push_back(c.get());
      return out;
    }
  }

  // join() waits until every call spawned so far has finished. Raises
  // fiber_exit / timeout_error like thread_result::wait(). Fiber or thread
  // context.
  void join();
  // join_for(): false if the time passed first.
  template <class Rep, class Period>
  bool join_for(std::chrono::duration<Rep, Period> d) {
    return join_until_(detail::deadline_after(d));
  }

  // default_pool() is the process-wide pool to_thread() uses, created at
  // first use: 64 threads, or GREEN_THREADPOOL (a positive integer). Throws
  // std::invalid_argument (every call) if GREEN_THREADPOOL is malformed.
  static threadpool& default_pool();

  struct impl;

 private:
  void submit(std::shared_ptr<detail::pool_job> job);
  bool join_until_(sched::time_point deadline);
  std::shared_ptr<impl> impl_;  // shared with the pool's threads
};

// to_thread() runs fn(args...) on the default pool while the calling fiber
// parks, and returns its result or rethrows its exception (asyncio's
// to_thread). Arguments are decay-copied as by threadpool::spawn(). The
// waiting side honours green::timeout (timeout_error) and kill
// (fiber_exit); the call itself cannot be interrupted and runs to its end,
// its result discarded. From a plain thread (not a fiber) it simply calls
// fn(args...) on that thread (so a pool thread's own to_thread() never
// waits for a pool slot). The pool's threads, running or idle (for up to
// 2 s), count as outside threads for the deadlock detector, which stays
// silent while they exist.
template <class F, class... Args>
detail::spawn_result_t<F, Args...> to_thread(F&& fn, Args&&... args) {
  if (sched::current_fiber() == nullptr) return std::invoke(std::forward<F>(fn), std::forward<Args>(args)...);
  return threadpool::default_pool().apply(std::forward<F>(fn), std::forward<Args>(args)...);
}

}  // namespace green
