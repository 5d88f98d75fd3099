// green::recursive_timed_mutex — a recursive_mutex with try_lock_for /
// try_lock_until under the standard's name.
#pragma once

#include "green/recursive_mutex.hpp"

namespace green {

// recursive_timed_mutex may be locked again by its owner (each lock counts;
// the last matching unlock() releases it) and its acquisition can give up
// at a deadline: try_lock_for() / try_lock_until() return false once the time
// passes, and succeed at once (counting once more) for the owner. Only the
// owner may unlock: anyone else, or the owner past its count, gets
// std::system_error(operation_not_permitted). Fiber or thread context;
// lock() and the timed calls raise fiber_exit if the fiber is killed and
// timeout_error if a green::timeout scope expires. Meets TimedLockable. It is
// recursive_mutex itself (whose deadline costs nothing when unused), as
// green::timed_mutex is green::mutex.
class recursive_timed_mutex : public recursive_mutex {};

}  // namespace green
