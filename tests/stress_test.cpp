// Stress: P producers x C consumers (fibers and plain threads) over channels
// and queues of random capacity, each operation a random mix of blocking,
// timed, select and green::timeout forms, while a controller kills random
// fibers and sometimes closes early. Checks that every value sent is
// received exactly once: a per-value "seen" flag, counts and checksums.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <green/channel.hpp>
#include <green/green.hpp>
#include <green/queue.hpp>
#include <green/select.hpp>

#include "test_util.hpp"

using namespace std::chrono_literals;
using green::op_status;

namespace {

GREEN_WORKER_SUITE(stress_test);

constexpr int fiber_producers = 4, fiber_consumers = 4;
constexpr int per_producer = green::testing::sanitized ? 300 : 2000;
constexpr int producers = fiber_producers + 1;  // + one plain thread
constexpr int rounds = green::testing::sanitized ? 8 : 24;

// The tally of one round. Producers count a value once send returned (a
// kill or timeout inside send means it was not sent); consumers as soon as
// recv returned it (no suspension point in between, so a kill cannot fall
// there).
struct tally {
  std::vector<std::atomic<std::uint8_t>> seen;
  std::atomic<std::uint64_t> sent{0}, sent_sum{0}, got{0}, got_sum{0}, dups{0};
  tally() : seen(producers * per_producer) {}
  void on_sent(std::uint64_t v) {
    sent.fetch_add(1);
    sent_sum.fetch_add(v * 2654435761u);
  }
  void on_got(std::uint64_t v) {
    std::uint64_t idx = (v >> 32) * per_producer + (v & 0xffffffffu);
    if (idx >= seen.size() || seen[idx].exchange(1) != 0) dups.fetch_add(1);
    got.fetch_add(1);
    got_sum.fetch_add(v * 2654435761u);
  }
};

// Ops over a channel or a queue, with random forms.
template <class C>
struct ops {
  static void send(C& c, std::uint64_t v) {
    if constexpr (requires { c.send(std::move(v)); }) c.send(std::move(v));
    else c.put(std::move(v));
  }
  static bool send_for(C& c, std::uint64_t v) {
    if constexpr (requires { c.send_for(std::move(v), 1ms); }) return c.send_for(std::move(v), 1ms);
    else return c.put_for(std::move(v), 1ms);
  }
  static std::optional<std::uint64_t> recv(C& c) {
    if constexpr (requires { c.recv(); }) return c.recv();
    else return c.get();
  }
  static op_status recv_for(C& c, std::uint64_t& out) {
    if constexpr (requires { c.recv(); }) return c.recv_for(out, 1ms);
    else return c.get_for(out, 1ms);
  }
};

// produce() sends value v by a random form until it is sent; returns false
// if the pipe was closed (v not sent). A kill propagates (fiber_exit).
template <class C>
bool produce(C& c, std::uint64_t v, std::minstd_rand& rng, tally& t) {
  for (;;) {
    try {
      switch (rng() % 4) {
        case 0:
          ops<C>::send(c, v);
          break;
        case 1:
          if (!ops<C>::send_for(c, v)) continue;
          break;
        case 2: {
          bool sent = false;
          green::select(green::on_send(c, std::uint64_t(v), [&] { sent = true; }), green::on_timeout(1ms));
          if (!sent) continue;
          break;
        }
        default: {
          green::timeout scope(1ms);
          ops<C>::send(c, v);
          break;
        }
      }
      t.on_sent(v);
      return true;
    } catch (const green::timeout_error&) {
      continue;  // not sent: try again
    } catch (const green::closed_error&) {
      return false;
    }
  }
}

// consume() receives by a random form; false once closed and drained.
template <class C>
bool consume(C& c, std::minstd_rand& rng, tally& t) {
  for (;;) {
    try {
      switch (rng() % 4) {
        case 0: {
          auto v = ops<C>::recv(c);
          if (!v) return false;
          t.on_got(*v);
          return true;
        }
        case 1: {
          std::uint64_t v = 0;  // set by recv_for when it returns ok (GCC -O1 cannot see that)
          op_status s = ops<C>::recv_for(c, v);
          if (s == op_status::closed) return false;
          if (s == op_status::timeout) continue;
          t.on_got(v);
          return true;
        }
        case 2: {
          bool closed = false, got = false;
          green::select(green::on_recv(c,
                                       [&](std::optional<std::uint64_t> v) {
                                         if (!v) {
                                           closed = true;
                                         } else {
                                           t.on_got(*v);
                                           got = true;
                                         }
                                       }),
                        green::on_timeout(1ms));
          if (closed) return false;
          if (!got) continue;
          return true;
        }
        default: {
          green::timeout scope(1ms);
          auto v = ops<C>::recv(c);
          if (!v) return false;
          t.on_got(*v);
          return true;
        }
      }
    } catch (const green::timeout_error&) {
      continue;
    }
  }
}

template <class C>
void round(C& c, std::uint64_t seed) {
  tally t;
  std::minstd_rand ctl(static_cast<std::uint32_t>(seed));
  const bool early_close = ctl() % 4 == 0;

  std::vector<green::fiber<void>> prods, cons;
  for (int p = 0; p < fiber_producers; ++p)
    prods.push_back(green::spawn([&, p] {
      std::minstd_rand rng(static_cast<std::uint32_t>(seed * 31 + p));
      for (std::uint64_t i = 0; i < per_producer; ++i)
        if (!produce(c, std::uint64_t(p) << 32 | i, rng, t)) return;
    }));
  green::testing::side_thread tprod([&] {
    std::minstd_rand rng(static_cast<std::uint32_t>(seed * 37));
    for (std::uint64_t i = 0; i < per_producer; ++i) {
      std::uint64_t v = std::uint64_t(fiber_producers) << 32 | i;
      try {
        if (rng() % 2) ops<C>::send(c, v);
        else if (!ops<C>::send_for(c, v)) ops<C>::send(c, v);
        t.on_sent(v);
      } catch (const green::closed_error&) {
        return;
      }
    }
  });
  for (int k = 0; k < fiber_consumers; ++k)
    cons.push_back(green::spawn([&, k] {
      std::minstd_rand rng(static_cast<std::uint32_t>(seed * 41 + k));
      while (consume(c, rng, t)) {
      }
    }));
  green::testing::side_thread tcons([&] {
    std::minstd_rand rng(static_cast<std::uint32_t>(seed * 43));
    for (;;) {
      std::uint64_t v;
      op_status s = ops<C>::recv_for(c, v);
      if (s == op_status::closed) return;
      if (s == op_status::success) t.on_got(v);
    }
  });

  // The controller: kill a random producer and a random consumer at random
  // moments, maybe close early.
  green::this_fiber::sleep_for(std::chrono::microseconds(ctl() % 2000));
  prods[ctl() % fiber_producers].kill();
  green::this_fiber::sleep_for(std::chrono::microseconds(ctl() % 2000));
  cons[ctl() % fiber_consumers].kill();
  if (early_close) {
    green::this_fiber::sleep_for(std::chrono::microseconds(ctl() % 3000));
    c.close();
  }
  green::testing::join_all(prods);
  tprod.join();
  c.close();
  green::testing::join_all(cons);
  tcons.join();
  // Drain whatever the killed consumers left (the thread consumer stops at
  // "closed and drained", so normally nothing is left).
  while (auto v = ops<C>::recv(c)) t.on_got(*v);

  EXPECT_EQ(t.dups.load(), 0u) << "seed " << seed;
  EXPECT_EQ(t.got.load(), t.sent.load()) << "seed " << seed;
  EXPECT_EQ(t.got_sum.load(), t.sent_sum.load()) << "seed " << seed;
  if (std::getenv("GREEN_STRESS_VERBOSE"))
    std::fprintf(stderr, "round seed %llu: sent %llu (early close %d)\n", static_cast<unsigned long long>(seed),
                 static_cast<unsigned long long>(t.sent.load()), early_close);
  if (!early_close) {
    EXPECT_GE(t.sent.load(), std::uint64_t(per_producer) * (producers - 1)) << "seed " << seed;
  }
}

TEST_P(stress_test, channels_every_value_exactly_once) {
  const std::uint64_t base = std::random_device{}();
  std::fprintf(stderr, "stress seed base %llu\n", static_cast<unsigned long long>(base));
  run([&] {
    const std::size_t caps[] = {0, 1, 4, 64};
    for (int r = 0; r < rounds; ++r) {
      green::channel<std::uint64_t> ch(caps[r % 4]);
      round(ch, base + r);
    }
  });
}

TEST_P(stress_test, queues_every_value_exactly_once) {
  const std::uint64_t base = std::random_device{}();
  std::fprintf(stderr, "stress seed base %llu\n", static_cast<unsigned long long>(base));
  run([&] {
    const std::size_t caps[] = {1, 3, 0};
    for (int r = 0; r < rounds; ++r) {
      green::queue<std::uint64_t> q(caps[r % 3]);
      round(q, base + r);
    }
  });
}

}  // namespace
