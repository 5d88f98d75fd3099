// The control-block allocator (scheduler/src/fiber_alloc.cpp): reuse,
// frees on other threads, the per-thread bound, sizes past the largest
// class, many blocks live at once, and fiber_base's operator new/delete.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include <green/green.hpp>
#include <green/testing.hpp>

#include "fiber_alloc.hpp"  // private runtime header
#include "sanitizers.hpp"
#include "watchdog.hpp"

namespace fa = green::sched::fiber_alloc;

namespace {

constexpr std::size_t block = 400;  // about a control block

#define REQUIRE_POOL() \
  if (!fa::active()) GTEST_SKIP() << "ASan build: blocks come from ::operator new"

TEST(fiber_alloc, freed_block_is_reused_by_the_same_thread) {
  REQUIRE_POOL();
  void* p = fa::allocate(block);
  fa::deallocate(p, block);
  void* q = fa::allocate(block);
  EXPECT_EQ(p, q);
  fa::deallocate(q, block);
}

TEST(fiber_alloc, blocks_are_aligned_to_the_granule) {
  REQUIRE_POOL();
  for (std::size_t size : {std::size_t{1}, std::size_t{64}, std::size_t{65}, block, fa::max_block}) {
    void* p = fa::allocate(size);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % fa::granule, 0u) << size;
    fa::deallocate(p, size);
  }
}

// A plain thread that drops the last reference keeps the block in its cache
// and hands the cache back when it exits; another thread then gets exactly
// those blocks.
TEST(fiber_alloc, blocks_freed_on_another_thread_return_to_the_pool_at_its_exit) {
  REQUIRE_POOL();
  constexpr std::size_t n = 10;
  std::vector<void*> blocks;
  for (std::size_t i = 0; i < n; ++i) blocks.push_back(fa::allocate(block));
  const std::size_t before = fa::stats().shared_free;
  std::thread freer([&] {
    for (void* p : blocks) fa::deallocate(p, block);
    EXPECT_EQ(fa::cached_here(block), n);
  });
  freer.join();
  EXPECT_EQ(fa::stats().shared_free, before + n);

  std::vector<void*> again;
  std::thread taker([&] {
    for (std::size_t i = 0; i < n; ++i) again.push_back(fa::allocate(block));
  });
  taker.join();
  EXPECT_EQ(std::set<void*>(blocks.begin(), blocks.end()), std::set<void*>(again.begin(), again.end()));
  for (void* p : again) fa::deallocate(p, block);
}

TEST(fiber_alloc, a_thread_cache_is_bounded) {
  REQUIRE_POOL();
  constexpr std::size_t n = 1000;
  std::thread t([] {
    std::vector<void*> v;
    for (std::size_t i = 0; i < n; ++i) v.push_back(fa::allocate(block));
    for (void* p : v) {
      fa::deallocate(p, block);
      EXPECT_LE(fa::cached_here(block), fa::cache_limit);
    }
  });
  t.join();
}

TEST(fiber_alloc, sizes_above_the_largest_class_bypass_the_pool) {
  const std::size_t carved = fa::stats().carved;
  const std::size_t size = fa::max_block + 1;
  auto* p = static_cast<unsigned char*>(fa::allocate(size));
  std::memset(p, 0xab, size);
  EXPECT_EQ(fa::stats().carved, carved);
  EXPECT_EQ(fa::cached_here(size), 0u);
  fa::deallocate(p, size);
  EXPECT_EQ(fa::stats().carved, carved);
}

// Many blocks of every class at once: no two overlap, each keeps what was
// written into it, and they can be freed on another thread.
TEST(fiber_alloc, many_live_blocks_are_distinct_and_keep_their_contents) {
  constexpr std::size_t n = 20000;
  std::vector<std::pair<unsigned char*, std::size_t>> v;
  for (std::size_t i = 0; i < n; ++i) {
    std::size_t size = 1 + (i * 37) % fa::max_block;
    auto* p = static_cast<unsigned char*>(fa::allocate(size));
    std::memset(p, static_cast<int>(i & 0xff), size);
    v.emplace_back(p, size);
  }
  auto sorted = v;
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t i = 1; i < sorted.size(); ++i)
    ASSERT_LE(sorted[i - 1].first + sorted[i - 1].second, sorted[i].first) << "blocks overlap";
  for (std::size_t i = 0; i < n; ++i) {
    auto [p, size] = v[i];
    for (std::size_t k = 0; k < size; ++k) ASSERT_EQ(p[k], static_cast<unsigned char>(i & 0xff)) << i;
  }
  std::thread freer([&] {
    for (auto [p, size] : v) fa::deallocate(p, size);
  });
  freer.join();
}

// fiber_base's operator new/delete: every fiber's block comes from the
// pool; one whose function is over-aligned still gets its alignment.
struct alignas(128) wide {
  unsigned char bytes[128] = {};
};

TEST(fiber_alloc, fibers_use_the_pool_and_keep_over_alignment) {
  green::runtime rt(green::testing::test_config(2));
  rt.run([] {
    std::vector<green::fiber<int>> fs;
    for (int i = 0; i < 1000; ++i) fs.push_back(green::spawn([i] { return i; }));
    const std::uintptr_t align = fa::active() ? fa::granule : alignof(std::max_align_t);
    for (auto& f : fs) EXPECT_EQ(reinterpret_cast<std::uintptr_t>(green::testing::native(f)) % align, 0u);
    int sum = 0;
    for (auto& f : fs) sum += f.join();
    EXPECT_EQ(sum, 999 * 1000 / 2);

    wide w;
    w.bytes[5] = 7;
    auto f = green::spawn([w] { return static_cast<int>(w.bytes[5]); });
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(green::testing::native(f)) % alignof(wide), 0u);
    EXPECT_EQ(f.join(), 7);
  });
}

#ifdef GREEN_ASAN
// Under ASan the pool steps aside, so a use of a freed control block is
// reported (a pool would have handed the block straight back out).
TEST(fiber_alloc_death, use_of_a_freed_control_block_is_reported_under_asan) {
  EXPECT_DEATH(
      {
        green::runtime rt(green::testing::test_config(1));
        green::sched::fiber_base* b = nullptr;
        rt.run([&] {
          auto f = green::spawn([] {});
          b = green::testing::native(f);
          f.join();
        });
        volatile std::uint64_t id = b->id();
        (void)id;
      },
      "heap-use-after-free");
}
#endif

}  // namespace
