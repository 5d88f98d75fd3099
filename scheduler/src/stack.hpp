// green::sched stacks: mmap'd fiber stacks, guard-paged while the process's
// map budget allows, slab-carved with an overflow canary beyond it.
// The policy and its arithmetic are in docs/stacks.md.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "green/sched/scheduler.hpp"  // guard_policy

namespace green::sched {

// guard_policy says how fiber stacks are protected against overflow.

enum class stack_kind : std::uint8_t { guarded, slab };

struct stack {
  char* lo = nullptr;    // lowest usable byte (just above the guard page, if any)
  std::size_t size = 0;  // usable bytes
  stack_kind kind = stack_kind::guarded;

  explicit operator bool() const noexcept { return lo != nullptr; }
  // canary_intact() is false once something wrote into the lowest bytes of a
  // slab stack: the fiber overflowed. Guarded stacks fault instead. Any thread.
  bool canary_intact() const noexcept {
    if (kind != stack_kind::slab) return true;
    auto* w = reinterpret_cast<const volatile std::uint64_t*>(lo);
    return (w[0] | w[1] | w[2] | w[3]) == 0;
  }
};

// stack_allocator is process-wide: vm.max_map_count is a per-process budget,
// shared by every runtime. Any thread.
class stack_allocator {
 public:
  static stack_allocator& instance();

  // allocate() returns a stack of at least `size` usable bytes.
  // Throws std::system_error naming the size when the kernel refuses.
  stack allocate(std::size_t size, guard_policy policy);
  // deallocate() puts a stack back in the pool, its memory still committed:
  // releasing it (munmap / madvise) costs a TLB shootdown on every core, so
  // that is left to trim().
  void deallocate(stack s) noexcept;
  // trim() releases the memory of pooled stacks beyond `keep`: guarded ones
  // are unmapped, slab ones madvise'd away and kept for reuse.
  void trim(std::size_t keep = 0) noexcept;

  // Stacks in use (allocated and not yet deallocated), and pooled.
  std::size_t guarded_live() const noexcept { return guarded_live_.load(std::memory_order_relaxed); }
  std::size_t slab_live() const noexcept { return slab_live_.load(std::memory_order_relaxed); }
  std::size_t pooled() const noexcept;
  std::size_t guarded_limit() const noexcept { return guarded_limit_; }
  static std::size_t round_size(std::size_t size) noexcept;

  // Only for tests: lower the guarded-stack budget to exercise the slab path.
  void set_guarded_limit_for_testing(std::size_t limit) noexcept { guarded_limit_ = limit; }

 private:
  stack_allocator();
  stack allocate_guarded(std::size_t size);
  stack allocate_slab(std::size_t size);

  std::size_t page_ = 4096;
  std::size_t guarded_limit_ = 0;
  std::atomic<std::size_t> guarded_live_{0};
  std::atomic<std::size_t> guarded_mapped_{0};  // live + pooled: what counts against the map budget
  std::atomic<std::size_t> slab_live_{0};
  mutable std::mutex mu_;
  struct bucket {
    std::size_t size;
    stack_kind kind;
    std::vector<char*> dirty;  // freed, memory still committed: reused first
    std::vector<char*> clean;  // slab stacks whose memory was released
  };
  std::vector<bucket> buckets_;                           // guarded by mu_
  bucket& bucket_for(std::size_t size, stack_kind kind);  // mu_ held
};

// stack_cache keeps recently freed stacks of one worker for reuse, so a
// spawn/exit pair costs no system call. Owner worker only.
class stack_cache {
 public:
  // 64 stacks: a burst of short fibers reuses the same stacks; at 64 KiB of
  // address space each, that is 4 MiB of reserve per worker, of which only
  // the touched pages are resident.
  static constexpr std::size_t capacity = 64;

  stack_cache() = default;
  stack_cache(const stack_cache&) = delete;
  stack_cache& operator=(const stack_cache&) = delete;
  ~stack_cache() { clear(); }

  stack get(std::size_t size, guard_policy policy);
  void put(stack s) noexcept;
  void clear() noexcept;
  std::size_t size() const noexcept { return cached_.size(); }

 private:
  std::vector<stack> cached_;
};

}  // namespace green::sched
