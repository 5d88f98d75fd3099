// green::select — wait on several channel operations at once (Go's select).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <utility>

#include "green/detail/pipe.hpp"
#include "green/detail/wait.hpp"

namespace green {

namespace detail {

// select_case is one case of a select. Channel cases are driven under their
// pipe's lock by run_select(); fire() runs the case's callback afterwards.
class select_case {
 public:
  enum class kind : std::uint8_t { channel, otherwise, timeout };
  explicit select_case(kind k, time_point deadline = no_deadline) noexcept : kind_(k), deadline_(deadline) {}
  select_case(const select_case&) = delete;
  select_case& operator=(const select_case&) = delete;

  kind kind_;
  time_point deadline_;  // timeout cases
  bool closed_ = false;  // the channel was closed (set by run_select or ready_locked)

  // Channel cases; the caller holds lock().
  virtual sched::spinlock* lock() noexcept { return nullptr; }
  virtual bool ready_locked() { return false; }  // completes the case now if it can
  virtual void enqueue_locked(sched::waiter*) {}
  virtual void dequeue_locked(sched::waiter*) noexcept {}
  // fire() runs the callback of the chosen case (no lock held).
  virtual void fire() = 0;

 protected:
  ~select_case() = default;
};

// run_select() picks and completes one case; returns its index. The arrays
// are scratch space of n entries each. Fiber or thread context.
std::size_t run_select(select_case* const* cases, std::size_t n, sched::waiter* ws, std::uint32_t* order,
                       sched::spinlock** locks);

struct noop {
  void operator()() const noexcept {}
};

template <class Pipe, class F>
class recv_case final : public select_case {
 public:
  using T = typename Pipe::value_type;
  recv_case(Pipe& p, F fn) : select_case(kind::channel), p_(p), fn_(std::move(fn)) {}
  sched::spinlock* lock() noexcept override { return &p_.mu_; }
  bool ready_locked() override { return p_.try_get_locked(out_) || p_.closed_; }
  void enqueue_locked(sched::waiter* w) override {
    w->data = &out_;
    p_.getq_.push_back(w);
  }
  void dequeue_locked(sched::waiter* w) noexcept override { p_.getq_.erase(w); }
  void fire() override { fn_(std::move(out_)); }

 private:
  Pipe& p_;
  F fn_;
  std::optional<T> out_;  // the value received; empty if closed
};

template <class Pipe, class F>
class send_case final : public select_case {
 public:
  using T = typename Pipe::value_type;
  send_case(Pipe& p, T* v, F fn) : select_case(kind::channel), p_(p), user_(v), fn_(std::move(fn)) {}
  send_case(Pipe& p, const T& v, F fn) : select_case(kind::channel), p_(p), copy_(v), fn_(std::move(fn)) {}
  sched::spinlock* lock() noexcept override { return &p_.mu_; }
  bool ready_locked() override {
    if (p_.closed_) return closed_ = true;
    return p_.try_put_locked(*src());
  }
  void enqueue_locked(sched::waiter* w) override {
    w->data = src();
    p_.putq_.push_back(w);
  }
  void dequeue_locked(sched::waiter* w) noexcept override { p_.putq_.erase(w); }
  void fire() override {
    if (closed_) throw_closed(p_.names_->closed_msg);
    fn_();
  }

 private:
  T* src() noexcept { return copy_ ? &*copy_ : user_; }
  Pipe& p_;
  T* user_ = nullptr;      // the caller's value (moved from only if sent)
  std::optional<T> copy_;  // or our copy of it
  F fn_;
};

template <class F>
class plain_case final : public select_case {
 public:
  plain_case(kind k, time_point deadline, F fn) : select_case(k, deadline), fn_(std::move(fn)) {}
  void fire() override { fn_(); }

 private:
  F fn_;
};

}  // namespace detail

// on_recv(ch, fn) receives from a channel (or queue): fn(std::optional<T>)
// gets the value, or std::nullopt if ch is closed and drained.
template <class C, class F>
auto on_recv(C& ch, F fn) {
  using P = std::remove_reference_t<decltype(detail::pipe_access::of(ch))>;
  return detail::recv_case<P, F>(detail::pipe_access::of(ch), std::move(fn));
}
// on_send(ch, v, fn) sends v, then calls fn(). An rvalue v is moved from
// only if this case is chosen; an lvalue is copied. If ch is closed when
// this case is chosen, select raises green::closed_error.
template <class C, class F = detail::noop>
auto on_send(C& ch, typename std::remove_reference_t<decltype(detail::pipe_access::of(ch))>::value_type&& v,
             F fn = F()) {
  using P = std::remove_reference_t<decltype(detail::pipe_access::of(ch))>;
  return detail::send_case<P, F>(detail::pipe_access::of(ch), &v, std::move(fn));
}
template <class C, class F = detail::noop>
auto on_send(C& ch, const typename std::remove_reference_t<decltype(detail::pipe_access::of(ch))>::value_type& v,
             F fn = F()) {
  using P = std::remove_reference_t<decltype(detail::pipe_access::of(ch))>;
  return detail::send_case<P, F>(detail::pipe_access::of(ch), v, std::move(fn));
}
// on_default(fn): chosen at once if no other case is ready (Go's default).
template <class F = detail::noop>
auto on_default(F fn = F()) {
  return detail::plain_case<F>(detail::select_case::kind::otherwise, sched::no_deadline, std::move(fn));
}
// on_timeout(d, fn): chosen if no case became ready within d.
template <class Rep, class Period, class F = detail::noop>
auto on_timeout(std::chrono::duration<Rep, Period> d, F fn = F()) {
  return detail::plain_case<F>(detail::select_case::kind::timeout, detail::deadline_after(d), std::move(fn));
}

// select() waits until one of its cases can proceed, completes exactly that
// one, runs its callback and returns its index (0-based, argument order).
// Among cases ready at once the choice is uniformly random (Go's fairness);
// a case not chosen has no effect (nothing is received or sent for it).
// With on_default, select never waits; with on_timeout, it waits at most
// that long. Raises fiber_exit if the fiber is killed and timeout_error when
// a green::timeout scope expires (no case completes then), closed_error for a
// chosen send case on a closed channel, and whatever a callback throws.
// Fiber or thread context.
//
//   green::select(
//       green::on_recv(jobs, [&](std::optional<job> j) { ... }),
//       green::on_send(results, std::move(r), [&] { ... }),
//       green::on_timeout(50ms, [&] { ... }));
template <class... Cases>
std::size_t select(Cases&&... cases) {
  constexpr std::size_t n = sizeof...(Cases);
  static_assert(n > 0, "green::select needs at least one case");
  static_assert((std::is_base_of_v<detail::select_case, std::remove_reference_t<Cases>> && ...),
                "green::select takes on_recv / on_send / on_default / on_timeout cases");
  detail::select_case* cs[n] = {static_cast<detail::select_case*>(&cases)...};
  sched::waiter ws[n];
  std::uint32_t order[n];
  sched::spinlock* locks[n];
  std::size_t i = detail::run_select(cs, n, ws, order, locks);
  cs[i]->fire();
  return i;
}

}  // namespace green
