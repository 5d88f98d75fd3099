// green::upgrade_lock — RAII owner of a shared_mutex's upgrade ownership
// (Boost.Thread's upgrade_lock), the missing third of std::unique_lock /
// std::shared_lock.
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <system_error>
#include <utility>

namespace green {

// upgrade_lock<M> holds upgrade ownership of an M (green::shared_mutex, or
// anything with lock_upgrade / try_lock_upgrade[_for] / unlock_upgrade /
// unlock_upgrade_and_lock) and releases it when destroyed. upgrade() turns
// it into exclusive ownership held by a std::unique_lock; if that wait is
// interrupted (kill, green::timeout) the exception propagates and this lock
// still owns the upgrade, so unwinding releases it. Errors are
// std::unique_lock's: lock() while owning throws std::system_error
// (resource_deadlock_would_occur); unlock() or upgrade() without owning
// throws std::system_error(operation_not_permitted). Move-only; used by one
// fiber or thread at a time.
template <class Mutex>
class upgrade_lock {
 public:
  using mutex_type = Mutex;

  upgrade_lock() noexcept = default;
  explicit upgrade_lock(Mutex& m) : m_(&m) {
    m.lock_upgrade();
    owns_ = true;
  }
  upgrade_lock(Mutex& m, std::try_to_lock_t) : m_(&m), owns_(m.try_lock_upgrade()) {}
  upgrade_lock(Mutex& m, std::defer_lock_t) noexcept : m_(&m) {}
  upgrade_lock(Mutex& m, std::adopt_lock_t) noexcept : m_(&m), owns_(true) {}
  template <class Rep, class Period>
  upgrade_lock(Mutex& m, std::chrono::duration<Rep, Period> d) : m_(&m), owns_(m.try_lock_upgrade_for(d)) {}
  ~upgrade_lock() {
    if (owns_) m_->unlock_upgrade();
  }
  upgrade_lock(upgrade_lock&& o) noexcept : m_(std::exchange(o.m_, nullptr)), owns_(std::exchange(o.owns_, false)) {}
  upgrade_lock& operator=(upgrade_lock&& o) {
    upgrade_lock(std::move(o)).swap(*this);
    return *this;
  }
  void swap(upgrade_lock& o) noexcept {
    std::swap(m_, o.m_);
    std::swap(owns_, o.owns_);
  }

  void lock() {
    check_can_lock("green::upgrade_lock::lock");
    m_->lock_upgrade();
    owns_ = true;
  }
  bool try_lock() {
    check_can_lock("green::upgrade_lock::try_lock");
    return owns_ = m_->try_lock_upgrade();
  }
  void unlock() {
    check_owns("green::upgrade_lock::unlock");
    m_->unlock_upgrade();
    owns_ = false;
  }
  // upgrade() waits for the other readers to leave and returns exclusive
  // ownership; this lock then owns nothing. Raises like M::lock().
  std::unique_lock<Mutex> upgrade() {
    check_owns("green::upgrade_lock::upgrade");
    m_->unlock_upgrade_and_lock();
    owns_ = false;
    return std::unique_lock<Mutex>(*m_, std::adopt_lock);
  }

  bool owns_lock() const noexcept { return owns_; }
  explicit operator bool() const noexcept { return owns_; }
  Mutex* mutex() const noexcept { return m_; }
  // release() disassociates the mutex without unlocking it.
  Mutex* release() noexcept {
    owns_ = false;
    return std::exchange(m_, nullptr);
  }

 private:
  void check_can_lock(const char* what) const {
    if (m_ == nullptr)
      throw std::system_error(std::make_error_code(std::errc::operation_not_permitted),
                              std::string(what) + ": no mutex");
    if (owns_)
      throw std::system_error(std::make_error_code(std::errc::resource_deadlock_would_occur),
                              std::string(what) + ": already owns the upgrade");
  }
  void check_owns(const char* what) const {
    if (!owns_)
      throw std::system_error(std::make_error_code(std::errc::operation_not_permitted),
                              std::string(what) + ": does not own the upgrade");
  }

  Mutex* m_ = nullptr;
  bool owns_ = false;
};

}  // namespace green
