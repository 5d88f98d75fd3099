// fiber_alloc: the allocator of fiber control blocks (fiber_base's
// class-level operator new/delete route here). Design in fiber_alloc.cpp.
#pragma once

#include <cstddef>

namespace green::sched::fiber_alloc {

// Blocks are multiples of `granule` bytes (at least `min_block`), aligned
// to it like malloc's; sizes above `max_block` go to ::operator new.
inline constexpr std::size_t granule = 16;
inline constexpr std::size_t min_block = 32;
inline constexpr std::size_t max_block = 1024;

// allocate() returns a block of at least `size` bytes, aligned to `granule`
// when size <= max_block (else to __STDCPP_DEFAULT_NEW_ALIGNMENT__). Any
// thread. Throws std::bad_alloc.
void* allocate(std::size_t size);
// deallocate() frees a block from allocate(size) with the same `size`, on
// any thread (the block goes to the calling thread's cache).
void deallocate(void* p, std::size_t size) noexcept;

// pooled() reports how the allocator holds its memory; for tests and
// benchmarks (process-wide counters, read under the pool's lock).
struct pool_stats {
  std::size_t chunk_bytes = 0;  // mapped for blocks, ever (never returned)
  std::size_t carved = 0;       // blocks ever cut from chunks
  std::size_t shared_free = 0;  // free blocks in the shared pool
};
pool_stats stats() noexcept;
// cached_here() is how many free blocks of `size`'s class the calling
// thread's cache holds.
std::size_t cached_here(std::size_t size) noexcept;
// active() is false when blocks come from ::operator new directly (ASan
// builds: its quarantine then sees every use after free).
bool active() noexcept;

// Per-thread cache bounds (fiber_alloc.cpp justifies them).
inline constexpr std::size_t batch = 64;               // blocks moved per lock of the shared pool
inline constexpr std::size_t cache_limit = 2 * batch;  // per class and thread

}  // namespace green::sched::fiber_alloc
