// futex(2) wrappers: the only way a runtime thread blocks besides the
// reactor. Inline: the wake side sits on the wake path.
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>

#include "timer.hpp"

namespace green::sched {

inline long futex(void* addr, int op, std::uint32_t val, const timespec* ts, std::uint32_t mask) noexcept {
  return ::syscall(SYS_futex, addr, op, val, ts, nullptr, mask);
}

// futex_wait() sleeps while *word == expected, until an absolute monotonic
// deadline. Spurious returns are fine: every caller re-checks.
inline void futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected, time_point deadline) noexcept {
  if (deadline == no_deadline) {
    futex(word, FUTEX_WAIT_BITSET_PRIVATE, expected, nullptr, FUTEX_BITSET_MATCH_ANY);
    return;
  }
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch()).count();
  if (ns < 0) ns = 0;
  timespec ts{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
  // steady_clock is CLOCK_MONOTONIC on Linux, which FUTEX_WAIT_BITSET uses.
  futex(word, FUTEX_WAIT_BITSET_PRIVATE, expected, &ts, FUTEX_BITSET_MATCH_ANY);
}

inline void futex_wake(void* word, int n) noexcept {
  futex(word, FUTEX_WAKE_PRIVATE, static_cast<std::uint32_t>(n), nullptr, 0);
}

// low_word() is the futex word inside a 64-bit park word: its low half,
// which holds the status bits, so every status change changes it.
inline std::uint32_t* low_word(std::atomic<std::uint64_t>* w) noexcept {
  static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "park word futex assumes little endian");
  return reinterpret_cast<std::uint32_t*>(w);
}

}  // namespace green::sched
