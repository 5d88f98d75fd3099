// green::lifo_queue<T> — a joinable last-in, first-out queue (Python's
// queue.LifoQueue).
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

#include "green/queue.hpp"

namespace green {

namespace detail {
template <class T>
class lifo_store {
 public:
  std::size_t size() const noexcept { return v_.size(); }
  void push(T&& x) { v_.push_back(std::move(x)); }
  T pop() {
    T x(std::move(v_.back()));
    v_.pop_back();
    return x;
  }

 private:
  std::vector<T> v_;
};
}  // namespace detail

// lifo_queue<T> gives back the most recently put value first; otherwise it
// is green::basic_queue (bounded or not, joinable, closable).
template <class T>
using lifo_queue = basic_queue<T, detail::lifo_store<T>>;

}  // namespace green
