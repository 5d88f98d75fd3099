// green::sched timers: a binary min-heap per worker, with O(log n)
// cancellation from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "green/sched/clock.hpp"
#include "green/sched/spinlock.hpp"

namespace green::sched {

class timer_heap;

// timer_node is embedded in whatever it times (a fiber's park, a timeout).
struct timer_node {
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);
  time_point when{};
  void (*fire)(timer_node*) = nullptr;     // runs under the heap's lock; must not block
  std::size_t index = npos;                // slot in the heap; guarded by the heap's lock
  std::atomic<timer_heap*> heap{nullptr};  // the heap it is armed on, or null
};

// Invariants: heap_[i]->index == i for every armed node; a node is in at most
// one heap, and node->heap names it exactly while it is there; earliest_ is
// the `when` of heap_[0] (or max when empty).
class timer_heap {
 public:
  timer_heap() = default;
  timer_heap(const timer_heap&) = delete;
  timer_heap& operator=(const timer_heap&) = delete;

  // arm() schedules `n` to fire at `when`. n must not be armed. Any thread.
  void arm(timer_node* n, time_point when);
  // cancel() disarms `n` if it has not fired. Returns true if it removed it;
  // false means it already fired (or was never armed). Any thread.
  static bool cancel(timer_node* n);
  // fire_expired() pops and fires every node due at `now`; returns how many.
  // Any thread (owner worker normally; a stealing worker if the owner is busy).
  std::size_t fire_expired(time_point now);
  // earliest() is the next due time, or no_deadline. Any thread, lock-free.
  time_point earliest() const noexcept {
    // relaxed: a hint; fire_expired() re-checks under the lock.
    return time_point(clock::duration(earliest_.load(std::memory_order_relaxed)));
  }
  std::size_t size() const noexcept { return size_.load(std::memory_order_relaxed); }

 private:
  bool remove_locked(timer_node* n);
  void sift_up(std::size_t i);
  void sift_down(std::size_t i);
  void publish_locked();

  spinlock mu_;
  std::vector<timer_node*> heap_;
  std::atomic<std::int64_t> earliest_{no_deadline.time_since_epoch().count()};
  std::atomic<std::size_t> size_{0};
};

}  // namespace green::sched
