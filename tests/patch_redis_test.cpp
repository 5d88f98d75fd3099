// A real client library, unmodified and blocking, against a real server:
// hiredis's blocking context on 1,000 fibers against a redis-server this
// test starts itself (skipped, saying why, when redis-server is absent).
#include <hiredis/hiredis.h>

#include <atomic>
#include <string>
#include <vector>

#include <green/patch.hpp>

#include "redis_server.hpp"
#include "test_util.hpp"

namespace {

using reply_ptr = std::unique_ptr<redisReply, decltype(&freeReplyObject)>;
reply_ptr command(redisContext* c, const std::string& cmd) {
  return reply_ptr(static_cast<redisReply*>(redisCommand(c, cmd.c_str())), freeReplyObject);
}

GREEN_WORKER_SUITE(patch_redis);

// Each fiber SETs and GETs its own key, then counts itself in and blocks in
// BLPOP on a gate list that only the last fiber to arrive fills, one item
// per fiber. Until then the early arrivals sit in a blocking hiredis call;
// had that call held its worker, the others could never arrive (on one
// worker the test would hang): concurrency proven without timing.
TEST_P(patch_redis, thousand_fibers_set_get_and_meet_at_a_gate) {
  green::testing::redis_server server;
  if (!server.ok()) GTEST_SKIP() << "redis-server not found or did not start (Debian: apt-get install redis-server)";
  const int n = green::testing::scaled(1000);
  auto before = green::patch::get_stats().parks;
  int good = run([&] {
    std::atomic<int> ok{0};
    std::vector<green::fiber<void>> fs;
    for (int i = 0; i < n; ++i)
      fs.push_back(green::spawn([&, i] {
        redisContext* c = redisConnect("127.0.0.1", server.port());
        ASSERT_TRUE(c && !c->err) << (c ? c->errstr : "no context");
        std::string key = "key:" + std::to_string(i), val = "value:" + std::to_string(i);
        auto set = command(c, "SET " + key + " " + val);
        auto get = command(c, "GET " + key);
        bool match = get && get->type == REDIS_REPLY_STRING && val == get->str;
        auto arrived = command(c, "INCR arrived");
        if (arrived && arrived->integer == n) {
          std::string push = "RPUSH gate";
          for (int k = 0; k < n; ++k) push += " go";
          command(c, push);
        }
        auto go = command(c, "BLPOP gate 0");
        if (set && match && go && go->type == REDIS_REPLY_ARRAY) ok.fetch_add(1);
        redisFree(c);
      }));
    for (auto& f : fs) f.join();
    return ok.load();
  });
  EXPECT_EQ(good, n);
  EXPECT_GE(green::patch::get_stats().parks, before + static_cast<std::uint64_t>(n) - 1);
}

}  // namespace
