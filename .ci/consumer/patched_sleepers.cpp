// patched_sleepers: 100 fibers on one worker each call plain libc usleep()
// for 100 ms; the program names no green::patch symbol. With the patch
// linked each usleep parks its fiber and the whole run takes about 100 ms;
// without it the sleeps run one after another on the one worker, 10 s.
// Informational: it prints the time and asserts only that every fiber ran
// (the machine is shared; patched_pipe is the pass/fail check).
#include <unistd.h>
#include <green/green.hpp>

#include <chrono>
#include <cstdio>
#include <vector>

#include "by_name.hpp"

int main() {
  constexpr int kFibers = 100;
  green::runtime_config cfg;
  cfg.workers = 1;
  cfg.max_spare_workers = 0;
  cfg.monitor_limit = std::chrono::milliseconds(0);
  auto* libc_usleep = by_name<int(useconds_t)>("usleep");
  const auto start = std::chrono::steady_clock::now();
  int done = green::run(
      [libc_usleep] {
        std::vector<green::fiber<int>> sleepers;
        for (int i = 0; i < kFibers; ++i)
          sleepers.push_back(green::spawn([libc_usleep] { return libc_usleep(100'000) == 0 ? 1 : 0; }));
        int ok = 0;
        for (auto& f : sleepers) ok += f.join();
        return ok;
      },
      cfg);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  std::printf(
      "patched_sleepers: %d fibers x usleep(100 ms) on 1 worker took %lld ms (about 100 patched, %d unpatched)\n",
      kFibers, static_cast<long long>(ms.count()), kFibers * 100);
  return done == kFibers ? 0 : 1;
}
