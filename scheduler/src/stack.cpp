// Fiber stacks.
//
// Roles: stack_allocator (process-wide) maps and unmaps; stack_cache (one
// per worker) recycles without system calls.
//
// Policy (docs/stacks.md has the arithmetic): a guarded stack is one mmap
// plus one mprotect'd page, i.e. two VMAs, and Linux caps a process at
// vm.max_map_count VMAs (65530 by default), which is where allocators that
// guard every stack fail near 32,700 fibers. We guard stacks while fewer than
// max_map_count/4 are live (16,382 by default: half the budget, the other
// half left to malloc, libraries and the program), then carve stacks from
// 64-stack slabs: one mapping per 64 stacks, no guard page. A slab stack's
// lowest 32 bytes are a zero canary (fresh anonymous memory reads as zero);
// the scheduler checks the stack pointer at every switch and the canary when
// the fiber is deep in its stack, and reports an overflow with the fiber's
// id and name.
//
// Freed stacks are pooled with their memory committed and reused first;
// trim() returns the memory (at runtime teardown): a munmap or madvise per
// fiber exit costs a TLB-shootdown IPI to every core (measured: 7.6 s of
// 100k-sleeper time went there).
//
// Rejected: a guard page per slab stack (mprotect splits the slab into two
// VMAs per stack: no saving); a written canary pattern (dirties the lowest
// page of every stack: 4 KiB more RSS per parked fiber).
#include "stack.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <string>
#include <system_error>

#include "sanitizers.hpp"
#ifdef GREEN_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace green::sched {

namespace {
constexpr std::size_t slab_stacks = 64;
constexpr std::size_t min_stack = 16 * 1024;

std::size_t read_max_map_count() {
  std::ifstream in("/proc/sys/vm/max_map_count");
  std::size_t v = 0;
  if (in >> v && v > 0) return v;
  return 65530;
}

[[noreturn]] void throw_map_error(int err, std::size_t size, const char* what) {
  throw std::system_error(err, std::generic_category(),
                          "green: cannot map a " + std::to_string(size) + "-byte fiber stack (" + what + ")");
}
}  // namespace

stack_allocator& stack_allocator::instance() {
  static stack_allocator* a = new stack_allocator();  // never destroyed: stacks may outlive statics
  return *a;
}

stack_allocator::stack_allocator() {
  long p = ::sysconf(_SC_PAGESIZE);
  page_ = p > 0 ? static_cast<std::size_t>(p) : 4096;
  guarded_limit_ = read_max_map_count() / 4;
}

std::size_t stack_allocator::round_size(std::size_t size) noexcept {
  if (size < min_stack) size = min_stack;
  constexpr std::size_t page = 4096;
  return (size + page - 1) / page * page;
}

stack_allocator::bucket& stack_allocator::bucket_for(std::size_t size, stack_kind kind) {
  for (auto& b : buckets_)
    if (b.size == size && b.kind == kind) return b;
  return buckets_.emplace_back(bucket{size, kind, {}, {}});
}

stack stack_allocator::allocate(std::size_t size, guard_policy policy) {
  size = round_size(size);
  {
    // Reuse a pooled stack first: no system call, memory already committed.
    std::lock_guard lk(mu_);
    for (stack_kind kind : {stack_kind::guarded, stack_kind::slab}) {
      if (policy == guard_policy::always && kind != stack_kind::guarded) continue;
      if (policy == guard_policy::never && kind != stack_kind::slab) continue;
      bucket& b = bucket_for(size, kind);
      auto& from = !b.dirty.empty() ? b.dirty : b.clean;
      if (from.empty()) continue;
      char* lo = from.back();
      from.pop_back();
      (kind == stack_kind::guarded ? guarded_live_ : slab_live_).fetch_add(1, std::memory_order_relaxed);
      return stack{lo, size, kind};
    }
  }
  switch (policy) {
    case guard_policy::always:
      return allocate_guarded(size);
    case guard_policy::never:
      return allocate_slab(size);
    case guard_policy::automatic:
      break;
  }
  if (guarded_mapped_.load(std::memory_order_relaxed) < guarded_limit_) return allocate_guarded(size);
  return allocate_slab(size);
}

stack stack_allocator::allocate_guarded(std::size_t size) {
  std::size_t total = size + page_;
  void* p =
      ::mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (p == MAP_FAILED) throw_map_error(errno, size, "mmap of a guarded stack");
  if (::mprotect(p, page_, PROT_NONE) != 0) {
    int err = errno;
    ::munmap(p, total);
    throw_map_error(err, size, "guard page; vm.max_map_count reached? use guard_policy::automatic");
  }
  // relaxed: statistics and a soft budget
  guarded_live_.fetch_add(1, std::memory_order_relaxed);
  guarded_mapped_.fetch_add(1, std::memory_order_relaxed);
  return stack{static_cast<char*>(p) + page_, size, stack_kind::guarded};
}

stack stack_allocator::allocate_slab(std::size_t size) {
  std::size_t total = size * slab_stacks;
  void* p =
      ::mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (p == MAP_FAILED) throw_map_error(errno, size, "mmap of a stack slab");
  std::lock_guard lk(mu_);
  bucket& b = bucket_for(size, stack_kind::slab);
  b.clean.reserve(b.clean.size() + slab_stacks);
  for (std::size_t i = slab_stacks; i-- > 1;) b.clean.push_back(static_cast<char*>(p) + i * size);
  slab_live_.fetch_add(1, std::memory_order_relaxed);
  return stack{static_cast<char*>(p), size, stack_kind::slab};
}

void stack_allocator::deallocate(stack s) noexcept {
  if (!s) return;
  std::lock_guard lk(mu_);
  bucket_for(s.size, s.kind).dirty.push_back(s.lo);
  (s.kind == stack_kind::guarded ? guarded_live_ : slab_live_).fetch_sub(1, std::memory_order_relaxed);
}

void stack_allocator::trim(std::size_t keep) noexcept {
  std::vector<stack> release;
  {
    std::lock_guard lk(mu_);
    for (auto& b : buckets_) {
      while (b.dirty.size() > keep) {
        release.push_back(stack{b.dirty.back(), b.size, b.kind});
        b.dirty.pop_back();
      }
    }
  }
  // One system call per run of adjacent stacks, not per stack: each munmap
  // or madvise is a TLB-shootdown IPI to every core, and consecutive mmaps
  // and a slab's stacks are adjacent (a 100,000-sleeper runtime's teardown
  // made 100,000 such calls, a third of that process's CPU samples).
  std::sort(release.begin(), release.end(), [](const stack& a, const stack& b) { return a.lo < b.lo; });
  const std::size_t guard = page_;
  auto region_lo = [guard](const stack& s) { return s.kind == stack_kind::guarded ? s.lo - guard : s.lo; };
  for (std::size_t i = 0; i < release.size();) {
    const stack& first = release[i];
    char* lo = region_lo(first);
    char* hi = first.lo + first.size;
    std::size_t j = i + 1;
    for (; j < release.size() && release[j].kind == first.kind && region_lo(release[j]) == hi; ++j)
      hi = release[j].lo + release[j].size;
    if (first.kind == stack_kind::guarded) {
#ifdef GREEN_ASAN
      // A fiber that exited never unwound its last frames: their redzones
      // stay poisoned, and ASan's munmap keeps the shadow, so a later
      // uninstrumented mapping at this address (SQLite's WAL index) would be
      // reported as a stack-buffer-underflow.
      for (std::size_t k = i; k < j; ++k) __asan_unpoison_memory_region(release[k].lo, release[k].size);
#endif
      ::munmap(lo, static_cast<std::size_t>(hi - lo));
      guarded_mapped_.fetch_sub(j - i, std::memory_order_relaxed);
    } else {
      ::madvise(lo, static_cast<std::size_t>(hi - lo), MADV_DONTNEED);  // also re-zeroes the canaries
    }
    i = j;
  }
  std::lock_guard lk(mu_);
  for (auto& s : release)
    if (s.kind == stack_kind::slab) bucket_for(s.size, s.kind).clean.push_back(s.lo);
}

std::size_t stack_allocator::pooled() const noexcept {
  std::lock_guard lk(mu_);
  std::size_t n = 0;
  for (auto& b : buckets_) n += b.dirty.size();
  return n;
}

stack stack_cache::get(std::size_t size, guard_policy policy) {
  size = stack_allocator::round_size(size);
  for (std::size_t i = cached_.size(); i-- > 0;) {
    stack& s = cached_[i];
    bool kind_ok =
        policy == guard_policy::automatic || (policy == guard_policy::always) == (s.kind == stack_kind::guarded);
    if (s.size == size && kind_ok) {
      stack out = s;
      cached_[i] = cached_.back();
      cached_.pop_back();
      return out;
    }
  }
  return stack_allocator::instance().allocate(size, policy);
}

void stack_cache::put(stack s) noexcept {
  if (!s) return;
  if (cached_.capacity() == 0) cached_.reserve(capacity);
  if (cached_.size() == capacity) {
    // Full: hand half to the shared pool, so the next puts stay local.
    for (std::size_t i = 0; i < capacity / 2; ++i) {
      stack_allocator::instance().deallocate(cached_.back());
      cached_.pop_back();
    }
  }
  cached_.push_back(s);
}

void stack_cache::clear() noexcept {
  for (auto& s : cached_) stack_allocator::instance().deallocate(s);
  cached_.clear();
}

}  // namespace green::sched
