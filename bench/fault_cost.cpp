// fault_cost: what the first touch of a fresh page costs on this machine,
// the number behind docs/stacks.md's choices. Prints one line per way of
// getting n fresh pages, spaced like fiber stacks (one page per 64 KiB):
//
//   touch        first write to each page (what a new fiber's stack pays)
//   populate     MADV_POPULATE_WRITE of each page first, then the write
//   huge         a THP-backed region (MADV_HUGEPAGE), one write per 4 KiB
//
//   bench/fault_cost [n]   (default 20,000 pages)
//
// On a PVM guest (this project's VMs) the first touch costs ~15-20 us and
// populating ahead does not help (the guest fault is paid at the touch);
// inside a huge page it is well under 1 us a 4 KiB page.
#include <sys/mman.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14
#endif

namespace {

using clock_type = std::chrono::steady_clock;
constexpr std::size_t page = 4096;
constexpr std::size_t stride = 64 * 1024;  // the default stack size
constexpr std::size_t huge = 2 * 1024 * 1024;

char* map(std::size_t bytes) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) throw std::runtime_error("fault_cost: mmap failed");
  return static_cast<char*>(p);
}

double us_per(clock_type::duration d, std::size_t n) {
  return std::chrono::duration<double, std::micro>(d).count() / static_cast<double>(n);
}

// touch_each() writes one byte into the top page of each stride; returns
// the time per page.
double touch_each(char* base, std::size_t n, std::size_t step) {
  auto t0 = clock_type::now();
  for (std::size_t i = 0; i < n; ++i) base[i * step + step - 8] = 1;
  return us_per(clock_type::now() - t0, n);
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 20000;
  if (n == 0) {
    std::fprintf(stderr, "usage: fault_cost [pages > 0]\n");
    return 2;
  }
  {
    char* p = map(n * stride);
    std::printf("touch     %6.2f us per fresh 4 KiB page (one per 64 KiB)\n", touch_each(p, n, stride));
    ::munmap(p, n * stride);
  }
  {
    char* p = map(n * stride);
    auto t0 = clock_type::now();
    for (std::size_t i = 0; i < n; ++i) ::madvise(p + i * stride + stride - page, page, MADV_POPULATE_WRITE);
    double populate = us_per(clock_type::now() - t0, n);
    std::printf("populate  %6.2f us per page, then touch %6.2f us\n", populate, touch_each(p, n, stride));
    ::munmap(p, n * stride);
  }
  {
    const std::size_t bytes = (n * page + huge - 1) / huge * huge;
    char* raw = map(bytes + huge);
    char* p = raw + (huge - reinterpret_cast<std::uintptr_t>(raw) % huge) % huge;
    ::madvise(p, bytes, MADV_HUGEPAGE);
    std::printf("huge      %6.2f us per 4 KiB page inside huge pages\n", touch_each(p, n, page));
    ::munmap(raw, bytes + huge);
  }
  return 0;
}
