// Timers: one binary min-heap per worker.
//
// A fiber arms its park deadline on the heap of the worker it runs on; the
// worker fires due timers between fibers (every 61 scheduling ticks and
// whenever it looks for work) and sleeps no later than its earliest timer.
// Spinning workers also fire other workers' overdue timers, so a worker busy
// in one long fiber does not hold back everybody's deadlines.
// Cancellation comes from any thread (a fiber woken early by a channel
// cancels its deadline, possibly on another worker), so each heap has a
// spinlock; arming and firing are by the owner, so it is nearly uncontended.
// fire() runs under the heap lock: a cancel() that returns false therefore
// knows the fire has completed, which is what lets the fiber's park free its
// timer node and return.
// Rejected: a global heap (all workers contend on every sleep); a timing
// wheel (O(1) but needs a tick and wakes an idle runtime; heaps let an idle
// worker sleep exactly until its next deadline).
#include "timer.hpp"

#include <mutex>

namespace green::sched {

void timer_heap::arm(timer_node* n, time_point when) {
  std::lock_guard lk(mu_);
  n->when = when;
  n->index = heap_.size();
  heap_.push_back(n);
  sift_up(n->index);
  n->heap.store(this, std::memory_order_release);  // release: pairs with the acquire in cancel()
  publish_locked();
}

bool timer_heap::cancel(timer_node* n) {
  timer_heap* h = n->heap.load(std::memory_order_acquire);
  if (h == nullptr) return false;
  // A node that is firing keeps `heap` set until fire() has returned (both
  // under the lock), so taking the lock here waits for a fire in progress.
  std::lock_guard lk(h->mu_);
  if (n->heap.load(std::memory_order_relaxed) != h) return false;  // fired meanwhile
  bool removed = h->remove_locked(n);
  n->heap.store(nullptr, std::memory_order_relaxed);
  return removed;
}

bool timer_heap::remove_locked(timer_node* n) {
  std::size_t i = n->index;
  if (i == timer_node::npos || i >= heap_.size() || heap_[i] != n) return false;
  std::size_t last = heap_.size() - 1;
  timer_node* moved = heap_[last];
  heap_[i] = moved;
  moved->index = i;
  heap_.pop_back();
  if (i < heap_.size()) {
    sift_up(i);
    sift_down(moved->index);
  }
  n->index = timer_node::npos;
  publish_locked();
  return true;
}

std::size_t timer_heap::fire_expired(time_point now) {
  if (earliest() > now) return 0;
  std::size_t fired = 0;
  std::lock_guard lk(mu_);
  while (!heap_.empty() && heap_[0]->when <= now) {
    timer_node* n = heap_[0];
    remove_locked(n);
    n->fire(n);
    // Only now: a cancel() that saw `heap` set waited for the lock, so it
    // returns after fire() is done and the node may be reused or freed.
    n->heap.store(nullptr, std::memory_order_release);
    ++fired;
  }
  return fired;
}

void timer_heap::sift_up(std::size_t i) {
  timer_node* n = heap_[i];
  while (i > 0) {
    std::size_t parent = (i - 1) / 2;
    if (heap_[parent]->when <= n->when) break;
    heap_[i] = heap_[parent];
    heap_[i]->index = i;
    i = parent;
  }
  heap_[i] = n;
  n->index = i;
}

void timer_heap::sift_down(std::size_t i) {
  std::size_t size = heap_.size();
  timer_node* n = heap_[i];
  for (;;) {
    std::size_t child = 2 * i + 1;
    if (child >= size) break;
    if (child + 1 < size && heap_[child + 1]->when < heap_[child]->when) ++child;
    if (n->when <= heap_[child]->when) break;
    heap_[i] = heap_[child];
    heap_[i]->index = i;
    i = child;
  }
  heap_[i] = n;
  n->index = i;
}

void timer_heap::publish_locked() {
  auto e = heap_.empty() ? no_deadline : heap_[0]->when;
  earliest_.store(e.time_since_epoch().count(), std::memory_order_relaxed);
  size_.store(heap_.size(), std::memory_order_relaxed);
}

}  // namespace green::sched
