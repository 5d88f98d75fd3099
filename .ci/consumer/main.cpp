#include <green/green.hpp>

#include <cstdio>

int main() {
  int v = green::run([] { return green::spawn([] { return 41; }).join() + 1; });
  std::printf("consumer: %d\n", v);
  return v == 42 ? 0 : 1;
}
