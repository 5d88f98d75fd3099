// green::group — a set of fibers managed together (gevent.pool.Group).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

#include "green/async_result.hpp"
#include "green/event.hpp"
#include "green/fiber.hpp"
#include "green/semaphore.hpp"

namespace green {

namespace detail {

// group_node is a fiber's membership of a group: a link in the group's list,
// the fiber (to kill it), and the result its completion publishes.
struct group_node {
  group_node* prev = nullptr;   // guarded by the group's mu_
  group_node* next = nullptr;   // guarded by the group's mu_
  const void* owner = nullptr;  // the group; set once at link time
  result_core* core = nullptr;
  sched::fiber_base* fiber = nullptr;  // alive while linked (see group.cpp)
  bool owns_fiber_ref = false;         // an added fiber: we hold a reference
  bool linked = false;                 // in the list; guarded by mu_
  bool visible = true;                 // false once discarded; guarded by mu_
  bool slot_held = false;              // a pool slot is held; owner fiber only
  std::exception_ptr error;            // what the task threw, for join(raise_error); set before settling
};

// task_state<T> is the shared state of a group's task: its result plus its
// membership.
template <class T>
class task_state final : public result_state<T>, public group_node {
 public:
  task_state() noexcept : result_state<T>(&destroy_as<task_state>) {
    this->member = this;
    core = this;
  }
};

// The exception a killed task's result holds.
std::exception_ptr killed_task_error();

}  // namespace detail

// group tracks a set of fibers: those it spawns and those added to it. A
// fiber leaves the group when it finishes (or is discarded). Tasks spawned by
// a group never throw out of their fiber: a task's exception is stored in
// the async_result spawn() returned (get() rethrows it), and the group keeps
// the first one for join(raise_error). Any mix of fibers and threads may call
// the observers; spawn needs fiber context.
//
// ~group() kills the fibers still in it (discarded ones too) and waits for
// them to end, so no task outlives the group it refers to.
class group {
 public:
  group();
  virtual ~group();
  group(const group&) = delete;
  group& operator=(const group&) = delete;

  // spawn() starts fn(args...) on a new fiber in this group and returns its
  // result. Fiber context (std::logic_error otherwise). What copying fn or
  // args throws propagates (nothing was spawned); if no stack can be mapped
  // when the fiber would first run, the result holds that std::system_error.
  template <class F, class... Args>
  auto spawn(F&& fn, Args&&... args) {
    return start_(slot::none, std::forward<F>(fn), std::forward<Args>(args)...);
  }
  // add() makes a running fiber a member until it finishes. The handle stays
  // the caller's (join it as usual); its exception is not the group's.
  // Throws std::logic_error if f is not joinable. Any context.
  template <class T>
  void add(const fiber<T>& f) {
    if (!detail::access::native(f)) detail::throw_joined_twice();
    add_(detail::access::native(f));
  }
  // discard() removes a member without killing it (a no-op for a non-member).
  template <class T>
  void discard(const fiber<T>& f) noexcept {
    discard_(find_(detail::access::native(f)));
  }
  template <class T>
  void discard(const async_result<T>& r) noexcept {
    discard_(mine_(r.core()));
  }

  // size() is the number of members (a snapshot). Any thread.
  std::size_t size() const noexcept;
  bool empty() const noexcept { return size() == 0; }

  // join() waits until the group is empty. With raise_error it returns as
  // soon as a spawned task has failed, rethrowing that (the first)
  // exception; each exception is raised by one join. Raises fiber_exit /
  // timeout_error like every blocking call. Fiber or thread context.
  void join(bool raise_error = false) { join_until_(sched::no_deadline, raise_error); }
  // join_for() / join_until(): false if the time passes first.
  template <class Rep, class Period>
  bool join_for(std::chrono::duration<Rep, Period> d, bool raise_error = false) {
    return join_until_(detail::deadline_after(d), raise_error);
  }
  template <class Clock, class Duration>
  bool join_until(std::chrono::time_point<Clock, Duration> tp, bool raise_error = false) {
    return join_until_(detail::to_deadline(tp), raise_error);
  }

  // kill() kills every member (each raises fiber_exit at its next suspension
  // point) and waits until the group is empty. A killed task's get() raises
  // green::fiber_killed_error. kill_for(): false if members remain after d.
  void kill() { kill_until_(sched::no_deadline); }
  template <class Rep, class Period>
  bool kill_for(std::chrono::duration<Rep, Period> d) {
    return kill_until_(detail::deadline_after(d));
  }
  // killone() kills one member and waits for it to end; a no-op for a
  // fiber or result that is not a member.
  template <class T>
  void killone(const async_result<T>& r) {
    kill_wait_(mine_(r.core()));
  }
  template <class T>
  void killone(const fiber<T>& f) {
    kill_wait_(find_(detail::access::native(f)));
  }

 protected:
  enum class slot : std::uint8_t {
    none,  // a group: no slots
    wait,  // a pool: wait for a free slot
    held,  // a pool: the caller already took one
  };
  explicit group(std::size_t slots);

  template <class F, class... Args>
  auto start_(slot s, F&& fn, Args&&... args);
  // shutdown_() kills every fiber and waits for all to end. Idempotent.
  void shutdown_() noexcept;
  // member_of_() is true if the calling fiber is a member. Any context.
  bool member_of_() const noexcept;
  // kill_others_() kills every member but the calling fiber and returns at
  // once (task_group cancels the siblings of a failed child). Any context.
  void kill_others_() noexcept;

  detail::group_node* mine_(const detail::result_core& c) const noexcept;
  // kill_one_() kills n's fiber if n is a member and returns n's result
  // with a reference for the caller; null if n is not a member.
  detail::result_core* kill_one_(detail::group_node* n) noexcept;

  std::unique_ptr<semaphore> slots_;  // pools only; never null there

 private:
  // task_guard settles a node exactly once: when the task's function object
  // is destroyed, on its fiber after the call or, for a fiber that never
  // ran, when the runtime frees it.
  class task_guard {
   public:
    task_guard(group* g, detail::group_node* n) noexcept : g_(g), n_(n) {}
    task_guard(task_guard&& o) noexcept : g_(o.g_), n_(std::exchange(o.n_, nullptr)) {}
    task_guard& operator=(task_guard&&) = delete;
    ~task_guard() {
      if (n_) g_->settle_(n_);
    }
    void release_slot() noexcept { g_->release_slot_(n_); }
    group* owner() const noexcept { return g_; }

   private:
    group* g_;
    detail::group_node* n_;
  };

  template <class R, class Call>
  static void run_task_(task_guard& guard, detail::task_state<R>& st, Call& call);

  void take_slot_(slot s);
  void link_(detail::group_node* n) noexcept;
  void settle_(detail::group_node* n) noexcept;
  void release_slot_(detail::group_node* n) noexcept;
  void add_(sched::fiber_base* f);
  detail::group_node* find_(const sched::fiber_base* f) const noexcept;
  void discard_(detail::group_node* n) noexcept;
  void kill_wait_(detail::group_node* n);
  bool join_until_(sched::time_point deadline, bool raise_error);
  bool kill_until_(sched::time_point deadline);
  void update_events_() noexcept;

  // Invariants (all under mu_): the list holds every node not yet settled;
  // visible_ counts those not discarded; empty_ is set iff visible_ == 0,
  // settled_ iff visible_ == 0 or first_error_, idle_ iff the list is empty.
  mutable sched::spinlock mu_;
  detail::group_node* head_ = nullptr;
  std::size_t visible_ = 0;
  std::size_t total_ = 0;
  std::exception_ptr first_error_;
  event empty_;
  event settled_;
  event idle_;
};

template <class R, class Call>
void group::run_task_(task_guard& guard, detail::task_state<R>& st, Call& call) {
  std::exception_ptr err;
  bool killed = false;
  std::optional<std::conditional_t<std::is_void_v<R>, char, R>> value;
  try {
    if constexpr (std::is_void_v<R>) {
      std::apply(std::move(std::get<0>(call)), std::move(std::get<1>(call)));
      value.emplace();
    } else {
      value.emplace(std::apply(std::move(std::get<0>(call)), std::move(std::get<1>(call))));
    }
  } catch (const fiber_exit&) {
    killed = true;
  } catch (...) {
    err = std::current_exception();
  }
  // The slot goes back before the result is published (by the guard's
  // settle_()), so a caller that sees the result also sees the slot free.
  guard.release_slot();
  if (killed) {
    st.store_exception(detail::killed_task_error());
    throw fiber_exit{};
  }
  if (err) {
    st.error = err;  // the group's first error once settle_() unlinks the member
    st.store_exception(std::move(err));
    return;
  }
  try {
    if constexpr (std::is_void_v<R>) {
      st.store_value();
    } else {
      st.store_value(std::move(*value));
    }
  } catch (...) {
    st.store_exception(std::current_exception());  // moving the value threw
  }
}

template <class F, class... Args>
auto group::start_(slot s, F&& fn, Args&&... args) {
  using R = detail::spawn_result_t<F, Args...>;
  sched::scheduler* sch = sched::current_scheduler();
  if (!sch) detail::throw_no_runtime("green::group::spawn");
  take_slot_(s);  // may wait; a held slot is ours from here
  detail::task_state<R>* st;
  try {
    st = new detail::task_state<R>();
  } catch (...) {
    if (s != slot::none) slots_->release();
    throw;
  }
  st->owner = this;
  st->slot_held = s != slot::none;
  async_result<R> handle(st);  // the handle's reference
  st->add_ref();               // the guard's reference, dropped by settle_()
  using Call = std::pair<std::decay_t<F>, std::tuple<std::decay_t<Args>...>>;
  task_guard guard(this, st);
  // If building the call or the fiber throws, the guard settles the node
  // where it dies, and the exception leaves with `handle`, the only one who
  // could see the result: nothing more to store (a second store would fail
  // with "already set" and hide the error).
  sched::fiber_base* f = detail::make_fiber(
      [guard = std::move(guard), st,
       call = Call(std::forward<F>(fn), std::tuple<std::decay_t<Args>...>(std::forward<Args>(args)...))]() mutable {
        run_task_(guard, *st, call);
      });
  st->fiber = f;
  link_(st);
  try {
    sch->spawn(f);
  } catch (...) {
    f->release();  // frees the function object: its guard settles the node
    throw;
  }
  return handle;
}

}  // namespace green
