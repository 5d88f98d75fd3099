// spawn_many: 100,000 fibers each sleep 100 ms and add to a counter.
// Prints the count, the wall time and the peak resident memory.
#include <sys/resource.h>
#include <green/green.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 100000;
  std::atomic<int> counter{0};
  auto start = std::chrono::steady_clock::now();
  green::run([&] {
    std::vector<green::fiber<void>> fibers;
    fibers.reserve(n);
    for (int i = 0; i < n; ++i) {
      fibers.push_back(green::spawn([&] {
        green::this_fiber::sleep_for(std::chrono::milliseconds(100));
        counter.fetch_add(1, std::memory_order_relaxed);
      }));
    }
    for (auto& f : fibers) f.join();
  });
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  double rss_mib = ru.ru_maxrss / 1024.0;
  std::printf("fibers: %d, counter: %d\n", n, counter.load());
  std::printf("wall time: %.3f s (each fiber slept 100 ms)\n", wall);
  std::printf("peak RSS: %.1f MiB (%.2f KiB per fiber)\n", rss_mib, ru.ru_maxrss / static_cast<double>(n));
  return counter.load() == n ? 0 : 1;
}
