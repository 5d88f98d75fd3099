// green::priority_queue<T> — a joinable priority queue (Python's
// queue.PriorityQueue).
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <utility>
#include <vector>

#include "green/queue.hpp"

namespace green {

namespace detail {
// heap_store keeps a binary min-heap under `Less` (smallest on top).
template <class T, class Less>
class heap_store {
 public:
  explicit heap_store(Less less = Less()) : greater_{std::move(less)} {}
  std::size_t size() const noexcept { return v_.size(); }
  void push(T&& x) {
    v_.push_back(std::move(x));
    std::push_heap(v_.begin(), v_.end(), greater_);
  }
  T pop() {
    std::pop_heap(v_.begin(), v_.end(), greater_);
    T x(std::move(v_.back()));
    v_.pop_back();
    return x;
  }

 private:
  struct greater {
    Less less;
    bool operator()(const T& a, const T& b) const { return less(b, a); }
  };
  greater greater_;
  std::vector<T> v_;
};
}  // namespace detail

// priority_queue<T, Less> gives back the smallest value under Less first
// (lowest first, as Python's PriorityQueue — unlike std::priority_queue,
// whose top is the largest). Equal values come back in no particular order;
// put (priority, sequence) pairs for FIFO among equals. Otherwise it is
// green::basic_queue (bounded or not, joinable, closable).
template <class T, class Less = std::less<T>>
using priority_queue = basic_queue<T, detail::heap_store<T, Less>>;

}  // namespace green
