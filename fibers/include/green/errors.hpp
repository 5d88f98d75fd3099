// green errors: what the library's blocking calls raise.
#pragma once

#include <stdexcept>
#include <string>

#include "green/sched/wake_reason.hpp"

namespace green {

// fiber_exit is thrown inside a fiber that was killed, at its current or next
// suspension point. It is not a std::exception, so `catch (std::exception&)`
// does not swallow it; let it propagate (RAII unwinds the fiber).
struct fiber_exit {};

// fiber_killed_error is what join() raises for a fiber that was killed.
class fiber_killed_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// timeout_error is raised by a blocking call when an enclosing green::timeout
// scope expires. owner() is the scope that expired.
class timeout_error : public std::runtime_error {
 public:
  explicit timeout_error(const void* owner = nullptr) : std::runtime_error("green::timeout expired"), owner_(owner) {}
  const void* owner() const noexcept { return owner_; }

 private:
  const void* owner_;
};

// deadlock_error is raised in the main fiber when every fiber is asleep and
// nothing can wake any of them; what() lists each fiber and what it waits on.
// Before it is raised, every other fiber of the runtime is killed and has
// unwound (raised fiber_exit where it waited), so main can unwind its own
// locals and the error reaches `try { green::run(...) } catch`.
class deadlock_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// closed_error is raised by operations on a closed channel or queue.
class closed_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
// raise_interrupt() turns a park's non-notified reason into the exception
// the caller of a blocking call sees: killed -> fiber_exit, scope_timeout ->
// timeout_error, deadlock -> deadlock_error. Returns normally for notified,
// timeout (the call's own deadline: reported as a status) and closed.
void raise_interrupt(sched::wake_reason r);
// The innermost expiring timeout scope of the current fiber (for timeout_error).
const void* expired_scope() noexcept;
}  // namespace detail

}  // namespace green
