// green::detail::ring — a growable FIFO ring buffer of T (move-only is fine).
#pragma once

#include <cstddef>
#include <memory>
#include <new>
#include <utility>

namespace green::detail {

// ring holds values in insertion order in one contiguous block, doubling it
// when full. Not synchronized. Invariants: size_ <= cap_; the values are
// buf_[(head_ + i) % cap_] for i < size_.
template <class T>
class ring {
 public:
  ring() noexcept = default;
  explicit ring(std::size_t reserve) { grow(reserve); }
  ~ring() {
    while (size_ > 0) pop_front();
    std::allocator<T>().deallocate(buf_, cap_);
  }
  ring(ring&& o) noexcept
      : buf_(std::exchange(o.buf_, nullptr)),
        cap_(std::exchange(o.cap_, 0)),
        head_(std::exchange(o.head_, 0)),
        size_(std::exchange(o.size_, 0)) {}
  ring(const ring&) = delete;
  ring& operator=(const ring&) = delete;

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }

  void push_back(T&& v) {
    if (size_ == cap_) grow(cap_ ? cap_ * 2 : 8);
    ::new (static_cast<void*>(buf_ + wrap(head_ + size_))) T(std::move(v));
    ++size_;
  }
  T pop_front() {
    T* p = buf_ + head_;
    T v(std::move(*p));
    p->~T();
    head_ = wrap(head_ + 1);
    --size_;
    return v;
  }

 private:
  std::size_t wrap(std::size_t i) const noexcept { return i >= cap_ ? i - cap_ : i; }
  void grow(std::size_t cap) {
    if (cap <= cap_) return;
    T* nb = std::allocator<T>().allocate(cap);
    for (std::size_t i = 0; i < size_; ++i) {
      T* p = buf_ + wrap(head_ + i);
      ::new (static_cast<void*>(nb + i)) T(std::move(*p));
      p->~T();
    }
    std::allocator<T>().deallocate(buf_, cap_);
    buf_ = nb;
    cap_ = cap;
    head_ = 0;
  }

  T* buf_ = nullptr;
  std::size_t cap_ = 0;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

// fifo_store: first in, first out (channel, queue).
template <class T>
class fifo_store {
 public:
  explicit fifo_store(std::size_t reserve = 0) : r_(reserve) {}
  std::size_t size() const noexcept { return r_.size(); }
  void push(T&& v) { r_.push_back(std::move(v)); }
  T pop() { return r_.pop_front(); }

 private:
  ring<T> r_;
};

}  // namespace green::detail
