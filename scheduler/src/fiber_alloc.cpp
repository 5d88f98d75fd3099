// Fiber control blocks: a size-class allocator behind fiber_base's
// class-level operator new/delete.
//
// Why. A fan-out keeps every control block (about 400 bytes) alive until
// its join. From glibc malloc that cost, on a worker thread, one
// mprotect and one page fault per 4 KiB of blocks: a worker's arena is a
// non-main heap that grows a page at a time (sysmalloc -> grow_heap, no
// top_pad), about 30% of a cold 100,000-fiber fan-out (docs/stacks.md).
//
// Roles. Chunks: memory mapped and populated in one go, 64 KiB first,
// doubling to 4 MiB; from 2 MiB on they are huge-page aligned and ask for
// transparent huge pages (a 4 KiB first touch costs ~17 us on this
// project's PVM guests, a 2 MiB one ~0.3 us a 4 KiB page). A program that
// spawns a few fibers maps 64 KiB; a fan-out of 100,000 about 48 MiB in 16
// calls instead of ~10,000 faults and mprotects. Chunks are cut into
// blocks of one size class (multiples of 16 bytes: a 64-byte class would
// keep fibers off each other's cache lines but cost 56 bytes of a typical
// 392-byte block, +1.2% RSS per parked fiber, measured). The shared pool (one per process, under a mutex) holds
// free blocks in batches and the chunk being cut. A thread cache
// (thread_local, no lock) holds each class's free blocks.
//
// Protocol. allocate() pops the thread cache; when it is empty it takes a
// batch from the shared pool, or cuts `batch` fresh blocks from the chunk.
// deallocate() pushes on the thread cache of the thread that drops the last
// reference (a worker, or a plain thread holding a handle); past
// `cache_limit` it hands `batch` blocks back to the shared pool, so a
// thread that only frees (the joiner of a fan-out) feeds the spawner. At
// thread exit the cache goes back whole; a free during or after that goes
// straight to the shared pool.
//
// Invariants: a free block is in exactly one list (one thread cache or one
// shared batch); a thread cache holds at most cache_limit blocks of a class; chunks are never unmapped (they live as
// long as the process, like malloc's arenas: LSan and valgrind do not track
// mmap'd memory, so nothing is reported at exit).
//
// Constants: batch = 64, so the shared pool's lock (~25 ns uncontended) is
// taken once per 64 blocks, under 0.5 ns a block; cache_limit = 128 blocks
// bounds a thread's idle cache to 128 x 1 KiB per class in the worst case.
//
// Sanitizers: under ASan every block comes from ::operator new, so its
// quarantine reports a use after free of a control block (a pool would hand
// the block straight back out). TSan sees the pool as it is: a block moves
// between threads only through the mutex.
//
// Rejected: glibc tunables (M_TOP_PAD does not apply to thread arenas, and
// mallopt is process-wide, the program's choice); an atomic counter of live
// blocks (two workers freeing would share its cache line on every fiber);
// pre-faulting with MADV_POPULATE_WRITE on a reserved range (two calls per
// chunk where MAP_POPULATE does it in one).
#include "fiber_alloc.hpp"

#include <sys/mman.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14
#endif

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <new>

#include "green/sched/scheduler.hpp"
#include "sanitizers.hpp"

namespace green::sched::fiber_alloc {

namespace {
constexpr std::size_t n_classes = max_block / granule;
constexpr std::size_t first_chunk = 64 * 1024;
constexpr std::size_t max_chunk = 4 * 1024 * 1024;
constexpr std::size_t huge_page = 2 * 1024 * 1024;
static_assert(first_chunk >= batch * max_block, "a fresh chunk must hold a whole batch of the largest class");

std::size_t class_of(std::size_t size) noexcept { return (std::max(size, min_block) + granule - 1) / granule - 1; }
std::size_t class_bytes(std::size_t c) noexcept { return (c + 1) * granule; }

// A free block. `next` links a list; the first block of a shared batch also
// carries the next batch and the batch's length.
struct free_block {
  free_block* next;
  free_block* next_batch;
  std::size_t count;
};
static_assert(sizeof(free_block) <= min_block);

// Invariants: every list in `batches` is non-empty and its first block's
// count is its length; shared_free is the sum of those counts.
class shared_pool {
 public:
  // take() returns a list of free blocks of class c (at least one) and its
  // length. Any thread. Throws std::bad_alloc when the kernel refuses a chunk.
  free_block* take(std::size_t c, std::size_t& n) {
    std::lock_guard lk(mu_);
    if (free_block* b = batches_[c]) {
      batches_[c] = b->next_batch;
      n = b->count;
      shared_free_ -= n;
      return b;
    }
    return cut(c, n);
  }
  // give() adds the list [head, n blocks] of class c. Any thread.
  void give(std::size_t c, free_block* head, std::size_t n) noexcept {
    head->count = n;
    std::lock_guard lk(mu_);
    head->next_batch = batches_[c];
    batches_[c] = head;
    shared_free_ += n;
  }
  pool_stats stats() noexcept {
    std::lock_guard lk(mu_);
    return pool_stats{chunk_bytes_, carved_, shared_free_};
  }

 private:
  // cut() makes up to `batch` fresh blocks of class c. mu_ held.
  free_block* cut(std::size_t c, std::size_t& n) {
    const std::size_t bytes = class_bytes(c);
    if (static_cast<std::size_t>(end_ - bump_) < bytes) map_chunk();
    n = std::min(batch, static_cast<std::size_t>(end_ - bump_) / bytes);
    auto* head = reinterpret_cast<free_block*>(bump_);
    for (std::size_t i = 0; i < n; ++i) {
      auto* b = reinterpret_cast<free_block*>(bump_ + i * bytes);
      b->next = i + 1 < n ? reinterpret_cast<free_block*>(bump_ + (i + 1) * bytes) : nullptr;
    }
    bump_ += n * bytes;
    carved_ += n;
    return head;
  }
  // map_chunk() replaces the chunk being cut (its tail, less than one block,
  // is abandoned). mu_ held.
  void map_chunk() {
    const std::size_t size = next_chunk_;
    char* p = size >= huge_page ? map_huge(size) : nullptr;
    if (p == nullptr) {
      void* m = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
      if (m == MAP_FAILED) throw std::bad_alloc();
      p = static_cast<char*>(m);
    }
    bump_ = p;
    end_ = p + size;
    chunk_bytes_ += size;
    if (next_chunk_ < max_chunk) next_chunk_ *= 2;
  }
  // map_huge() maps `size` bytes aligned to a huge page and asks for
  // transparent huge pages (THP "madvise" mode, this project's VMs' default):
  // one fault then fills 2 MiB, where 4 KiB pages cost one fault each (about
  // 17 us apiece on a PVM guest, 0.3 us a page with huge pages; docs/stacks.md).
  // Null if the kernel refuses the mapping. mu_ held.
  static char* map_huge(std::size_t size) noexcept {
    void* m = ::mmap(nullptr, size + huge_page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return nullptr;
    auto* raw = static_cast<char*>(m);
    auto addr = reinterpret_cast<std::uintptr_t>(raw);
    char* p = raw + ((huge_page - addr % huge_page) % huge_page);
    if (p > raw) ::munmap(raw, static_cast<std::size_t>(p - raw));
    if (p + size < raw + size + huge_page)
      ::munmap(p + size, static_cast<std::size_t>(raw + size + huge_page - (p + size)));
    ::madvise(p, size, MADV_HUGEPAGE);        // a hint: without THP the pages are 4 KiB
    ::madvise(p, size, MADV_POPULATE_WRITE);  // Linux >= 5.14; older kernels fault on first use
    return p;
  }

  std::mutex mu_;
  free_block* batches_[n_classes] = {};
  char* bump_ = nullptr;
  char* end_ = nullptr;
  std::size_t next_chunk_ = first_chunk;
  std::size_t chunk_bytes_ = 0;
  std::size_t carved_ = 0;
  std::size_t shared_free_ = 0;
};

shared_pool& shared() {
  static shared_pool* p = new shared_pool();  // never destroyed: threads free blocks after static destructors
  return *p;
}

// The calling thread's free blocks. Trivially destructible and constinit,
// so a TLS access costs no guard check; exit_flusher (armed on the first
// slow path) hands the blocks back when the thread ends. Only ever touched
// inside one call of allocate()/deallocate(), which never switches fibers,
// so a fiber that moves between threads never reuses another thread's
// cache address.
struct thread_cache {
  free_block* head[n_classes];
  std::uint32_t count[n_classes];
  bool armed;  // exit_flusher registered
  bool dead;   // flushed at thread exit: use the shared pool directly
};
constinit thread_local thread_cache tc{};

struct exit_flusher {
  exit_flusher() noexcept {}  // user-provided: a function-local thread_local with a destructor registers it
  ~exit_flusher() {
    for (std::size_t c = 0; c < n_classes; ++c) {
      if (tc.head[c] != nullptr) shared().give(c, tc.head[c], tc.count[c]);
      tc.head[c] = nullptr;
      tc.count[c] = 0;
    }
    tc.dead = true;
  }
};

void arm() noexcept {
  static thread_local exit_flusher flusher;
  (void)&flusher;
  tc.armed = true;
}

[[gnu::noinline]] void* refill(std::size_t c) {
  if (!tc.armed) arm();
  std::size_t n = 0;
  free_block* head = shared().take(c, n);
  free_block* rest = head->next;
  if (tc.dead) {
    if (rest != nullptr) shared().give(c, rest, n - 1);
  } else {
    tc.head[c] = rest;
    tc.count[c] = static_cast<std::uint32_t>(n - 1);
  }
  return head;
}

[[gnu::noinline]] void spill(std::size_t c) noexcept {
  // Keep the `batch` newest blocks (warm in this core's cache); give the
  // older ones back.
  free_block* first = tc.head[c];
  free_block* last = first;
  for (std::size_t i = 1; i < batch; ++i) last = last->next;
  free_block* give = last->next;
  std::size_t n = tc.count[c] - batch;
  last->next = nullptr;
  tc.count[c] = static_cast<std::uint32_t>(batch);
  shared().give(c, give, n);
}

void free_slow(void* p, std::size_t c) noexcept {
  if (!tc.armed) arm();
  auto* b = static_cast<free_block*>(p);
  b->next = nullptr;
  shared().give(c, b, 1);
}
}  // namespace

bool active() noexcept {
#ifdef GREEN_ASAN
  return false;
#else
  return true;
#endif
}

void* allocate(std::size_t size) {
  if (!active() || size > max_block) return ::operator new(size);
  const std::size_t c = class_of(size);
  if (free_block* b = tc.head[c]) [[likely]] {
    tc.head[c] = b->next;
    --tc.count[c];
    return b;
  }
  return refill(c);
}

void deallocate(void* p, std::size_t size) noexcept {
  if (p == nullptr) return;
  if (!active() || size > max_block) {
    ::operator delete(p);
    return;
  }
  const std::size_t c = class_of(size);
  if (!tc.armed || tc.dead) [[unlikely]] {
    if (tc.dead) return free_slow(p, c);
    arm();
  }
  auto* b = static_cast<free_block*>(p);
  b->next = tc.head[c];
  tc.head[c] = b;
  if (++tc.count[c] > cache_limit) [[unlikely]]
    spill(c);
}

pool_stats stats() noexcept { return shared().stats(); }

std::size_t cached_here(std::size_t size) noexcept {
  if (size == 0 || size > max_block) return 0;
  return tc.count[class_of(size)];
}

}  // namespace green::sched::fiber_alloc

namespace green::sched {

// fiber_base's class-level allocation (scheduler.hpp). The aligned forms
// use the pool only when its 16-byte granule alignment suffices.
void* fiber_base::operator new(std::size_t size) { return fiber_alloc::allocate(size); }
void* fiber_base::operator new(std::size_t size, std::align_val_t al) {
  if (fiber_alloc::active() && size <= fiber_alloc::max_block && static_cast<std::size_t>(al) <= fiber_alloc::granule)
    return fiber_alloc::allocate(size);
  return ::operator new(size, al);
}
void fiber_base::operator delete(void* p, std::size_t size) noexcept { fiber_alloc::deallocate(p, size); }
void fiber_base::operator delete(void* p, std::size_t size, std::align_val_t al) noexcept {
  if (fiber_alloc::active() && size <= fiber_alloc::max_block && static_cast<std::size_t>(al) <= fiber_alloc::granule)
    return fiber_alloc::deallocate(p, size);
  ::operator delete(p, al);
}

}  // namespace green::sched
