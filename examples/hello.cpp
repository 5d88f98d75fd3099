// hello: spawn fibers on every core, join their results.
#include <green/green.hpp>

#include <chrono>
#include <cstdio>
#include <vector>

int main() {
  int total = green::run([] {
    std::vector<green::fiber<int>> fibers;
    for (int i = 1; i <= 10; ++i) {
      fibers.push_back(green::spawn([i] {
        green::this_fiber::sleep_for(std::chrono::milliseconds(10 * i));
        std::printf("fiber %d done\n", i);
        return i * i;
      }));
    }
    int sum = 0;
    for (auto& f : fibers) sum += f.join();
    return sum;
  });
  std::printf("sum of squares 1..10 = %d\n", total);
  return total == 385 ? 0 : 1;
}
