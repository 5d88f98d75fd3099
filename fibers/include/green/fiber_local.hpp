// green::fiber_local<T> — a variable with one instance per fiber.
//
// thread_local is unsafe in fibers: a fiber that suspends may resume on
// another worker thread, and then sees that thread's instance (and the
// compiler may even keep using the old thread's address). fiber_local<T>
// follows the fiber. On a plain thread it acts as thread_local.
//
// errno is kept per fiber: the runtime saves it when a fiber suspends and
// restores it on whichever worker resumes it. Read it right after the call
// that failed, as usual; glibc declares errno's accessor `const`, so code
// inlined into one function may reuse the old thread's errno address across
// a suspension point in that same function.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <utility>

namespace green {

namespace detail {
// fls_slot: one fiber_local's value in one fiber (or plain thread);
// destroy frees it when the fiber (thread) ends.
struct fls_slot {
  void* value = nullptr;
  void (*destroy)(void*) = nullptr;
};
std::size_t new_fls_key() noexcept;
// fls_slot_of() is the calling fiber's (or plain thread's) slot for `key`,
// empty until first set. Throws std::bad_alloc. Fiber or thread context.
fls_slot& fls_slot_of(std::size_t key);
}  // namespace detail

template <class T>
class fiber_local {
 public:
  // Each fiber's instance is created on first use by init() (default: T{}).
  fiber_local() : key_(detail::new_fls_key()), init_([] { return T{}; }) {}
  explicit fiber_local(std::function<T()> init) : key_(detail::new_fls_key()), init_(std::move(init)) {}
  fiber_local(const fiber_local&) = delete;
  fiber_local& operator=(const fiber_local&) = delete;

  // get() is the calling fiber's instance. Destroyed when the fiber ends.
  T& get() {
    detail::fls_slot& slot = detail::fls_slot_of(key_);
    if (slot.value == nullptr) {
      slot.value = new T(init_());
      slot.destroy = [](void* p) { delete static_cast<T*>(p); };
    }
    return *static_cast<T*>(slot.value);
  }
  T& operator*() { return get(); }
  T* operator->() { return &get(); }

 private:
  std::size_t key_;
  std::function<T()> init_;
};

}  // namespace green
