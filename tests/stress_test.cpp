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
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
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

// ---------------------------------------------------------------------------
// group tasks whose results are dropped at once (issue 13)

// copy_bomb makes a spawn fail before its fiber exists: copying it throws.
struct copy_bomb {
  copy_bomb() = default;
  copy_bomb(const copy_bomb&) { throw std::runtime_error("copy_bomb copied"); }
};

// What the group stress spawns; a kept result is checked against its kind.
enum class task_kind { value, yield_value, throws, sleeps, spawn_fails, count };

struct group_tally {
  std::atomic<int> returned{0}, threw{0}, asleep{0}, unwound{0};
  int spawned[static_cast<int>(task_kind::count)] = {};  // the spawners', read after they end
};

// spawn_mix() spawns `n` random tasks into g and drops most results at once
// (a server's handlers); it keeps one in 8, with its kind, in `kept`.
void spawn_mix(green::group& g, int n, std::uint64_t seed, group_tally& t,
               std::vector<std::pair<task_kind, green::async_result<std::string>>>& kept) {
  std::minstd_rand rng(static_cast<std::minstd_rand::result_type>(seed));
  const copy_bomb bomb;
  for (int i = 0; i < n; ++i) {
    auto kind = static_cast<task_kind>(rng() % static_cast<unsigned>(task_kind::count));
    std::optional<green::async_result<std::string>> r;
    switch (kind) {
      case task_kind::value:
        r = g.spawn([&t, i] {
          ++t.returned;
          return std::to_string(i);
        });
        break;
      case task_kind::yield_value:
        r = g.spawn([&t, i] {
          green::this_fiber::yield();
          ++t.returned;
          return std::to_string(i);
        });
        break;
      case task_kind::throws:
        r = g.spawn([&t, i]() -> std::string {
          green::this_fiber::yield();
          ++t.threw;
          throw std::runtime_error("task " + std::to_string(i));
        });
        break;
      case task_kind::sleeps:
        r = g.spawn([&t] {
          struct on_unwind {
            std::atomic<int>& n;
            ~on_unwind() { ++n; }
          } u{t.unwound};
          ++t.asleep;
          green::this_fiber::sleep_for(1h);
          return std::string("overslept");
        });
        break;
      default:
        try {
          g.spawn([](const copy_bomb&) { return std::string(); }, bomb);
          ADD_FAILURE() << "a spawn whose argument cannot be copied succeeded";
        } catch (const std::runtime_error& e) {
          EXPECT_STREQ(e.what(), "copy_bomb copied");
        }
        break;
    }
    ++t.spawned[static_cast<int>(kind)];
    if (r && rng() % 8 == 0) {
      kept.emplace_back(kind, std::move(*r));
      if (kind != task_kind::sleeps && rng() % 2 == 0) g.discard(kept.back().second);
    }
    if (rng() % 16 == 0) green::this_fiber::yield();
  }
}

// check_kept() checks each kept result against what its task did.
void check_kept(std::vector<std::pair<task_kind, green::async_result<std::string>>>& kept) {
  for (auto& [kind, r] : kept) {
    switch (kind) {
      case task_kind::value:
      case task_kind::yield_value:
        EXPECT_FALSE(r.get().empty());
        break;
      case task_kind::throws:
        EXPECT_THROW(r.get(), std::runtime_error);
        break;
      default:
        EXPECT_THROW(r.get(), green::fiber_killed_error);
        break;
    }
  }
}

// Issue 13 suspected that a group task's result state could be freed while
// the task still stored its value (the handle dropped at once, the task
// throwing, killed, or its spawn failing). Two spawners fill one group with
// such tasks; the sleepers are killed at the end. Every task is accounted
// for once, every kept result holds what its task did, and ASan sees every
// result state freed once, after its task's last write.
TEST_P(stress_test, group_task_result_discarded_while_task_stores_value) {
  constexpr int group_rounds = green::testing::sanitized ? 10 : 50;
  constexpr int per_spawner = green::testing::sanitized ? 150 : 1000;
  const std::uint64_t base = std::random_device{}();
  std::fprintf(stderr, "group stress seed base %llu\n", static_cast<unsigned long long>(base));
  run([&] {
    for (int round = 0; round < group_rounds; ++round) {
      group_tally t[2];
      std::vector<std::pair<task_kind, green::async_result<std::string>>> kept[2];
      {
        green::group g;
        std::vector<green::fiber<void>> spawners;
        for (int s = 0; s < 2; ++s)
          spawners.push_back(green::spawn([&, s] { spawn_mix(g, per_spawner, base + 2 * round + s, t[s], kept[s]); }));
        for (auto& f : spawners) f.join();
        // Sleepers are all that can remain (discarded ones too, which
        // kill() leaves to the destructor), and every one has started: one
        // killed before it starts never runs its body, so never unwinds.
        green::testing::yield_until([&] {
          int done = 0, expected = 0;
          for (auto& x : t) {
            done += x.returned.load() + x.threw.load() + x.asleep.load();
            expected += x.spawned[int(task_kind::value)] + x.spawned[int(task_kind::yield_value)] +
                        x.spawned[int(task_kind::throws)] + x.spawned[int(task_kind::sleeps)];
          }
          return done == expected;
        });
        g.kill();
      }  // ~group: every member has ended
      for (int s = 0; s < 2; ++s) {
        EXPECT_EQ(t[s].returned.load(),
                  t[s].spawned[int(task_kind::value)] + t[s].spawned[int(task_kind::yield_value)]);
        EXPECT_EQ(t[s].threw.load(), t[s].spawned[int(task_kind::throws)]);
        EXPECT_EQ(t[s].unwound.load(), t[s].spawned[int(task_kind::sleeps)]);
        check_kept(kept[s]);
      }
    }
  });
}

// The same with spawns whose fiber cannot get a stack (mapping fails when
// it would first run): each such task ends without running, on a worker,
// while its spawner drops its result.
TEST_P(stress_test, group_task_without_a_stack_while_its_result_is_dropped) {
  constexpr int group_rounds = green::testing::sanitized ? 10 : 50;
  constexpr int per_round = green::testing::sanitized ? 100 : 500;
  auto cfg = green::testing::test_config(GetParam());
  cfg.stack_size = std::size_t{1} << 50;  // 1 PiB: more than the address space
  green::runtime rt(cfg);
  auto main = rt.spawn(green::spawn_options{"main", 64 * 1024}, [&] {
    std::atomic<int> ran{0};
    for (int round = 0; round < group_rounds; ++round) {
      std::vector<green::async_result<int>> kept;
      green::group g;
      for (int i = 0; i < per_round; ++i) {
        auto r = g.spawn([&ran] { return ++ran; });
        if (i % 10 == 0) kept.push_back(std::move(r));
        if (i % 16 == 0) green::this_fiber::yield();
      }
      g.join();
      for (auto& r : kept) EXPECT_THROW(r.get(), std::system_error);
    }
    EXPECT_EQ(ran.load(), 0);
  });
  main.join();
}

}  // namespace
