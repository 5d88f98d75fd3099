// redis_workers: the Celery-style distributed task queue, with Redis as the
// broker that spans machines. A producer pushes jobs to a Redis list;
// several worker processes (this program re-executed), each a pool of
// fibers making blocking hiredis calls (BRPOP), take and process them and
// push results back. green::patch makes the blocking calls park fibers.
//
//   redis_workers               starts its own redis-server on a free port
//   redis_workers 6379          uses a running server on 127.0.0.1:6379
#include <hiredis/hiredis.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <green/green.hpp>
#include <green/patch.hpp>

#include "../tests/redis_server.hpp"

namespace {

constexpr int kWorkers = 3;  // processes
constexpr int kFibersPerWorker = 8;
constexpr int kJobs = 48;

using reply_ptr = std::unique_ptr<redisReply, decltype(&freeReplyObject)>;
reply_ptr cmd(redisContext* c, const char* fmt, auto... args) {
  return reply_ptr(static_cast<redisReply*>(redisCommand(c, fmt, args...)), freeReplyObject);
}

// One worker process: kFibersPerWorker fibers, each with its own blocking
// connection, BRPOP jobs until a "stop" job.
int worker(int port, int id) {
  green::runtime rt;
  rt.run([&] {
    std::vector<green::fiber<void>> fs;
    for (int f = 0; f < kFibersPerWorker; ++f)
      fs.push_back(green::spawn([=] {
        redisContext* c = redisConnect("127.0.0.1", port);
        if (!c || c->err) return;
        for (;;) {
          auto job = cmd(c, "BRPOP jobs 0");  // blocks this fiber, not the worker
          if (!job || job->type != REDIS_REPLY_ARRAY || job->elements != 2) break;
          std::string what = job->element[1]->str;
          if (what == "stop") break;
          // "processing": a blocking sleep, as a task written for threads would
          usleep(20000);
          int n = std::atoi(what.c_str() + 4);
          cmd(c, "RPUSH results %s",
              ("job " + std::to_string(n) + " -> " + std::to_string(n * n) + " by worker " + std::to_string(id) +
               " (pid " + std::to_string(getpid()) + ") fiber " + std::to_string(f))
                  .c_str());
        }
        redisFree(c);
      }));
    for (auto& f : fs) f.join();
  });
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "worker") return worker(std::atoi(argv[2]), std::atoi(argv[3]));
  std::unique_ptr<green::testing::redis_server> own;
  int port = argc == 2 ? std::atoi(argv[1]) : 0;
  if (port == 0) {
    own = std::make_unique<green::testing::redis_server>();
    if (!own->ok()) {
      std::fprintf(stderr, "redis-server not found (Debian: apt-get install redis-server); or pass a port\n");
      return 1;
    }
    port = own->port();
  }
  std::printf("broker: redis on 127.0.0.1:%d; %d worker processes x %d fibers; %d jobs\n", port, kWorkers,
              kFibersPerWorker, kJobs);
  redisContext* c = redisConnect("127.0.0.1", port);
  if (!c || c->err) return 1;
  cmd(c, "DEL jobs results");

  std::vector<pid_t> pids;
  for (int w = 0; w < kWorkers; ++w) {
    pid_t pid = fork();
    if (pid == 0) {
      std::string p = std::to_string(port), id = std::to_string(w);
      execl("/proc/self/exe", argv[0], "worker", p.c_str(), id.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    pids.push_back(pid);
  }
  auto t0 = std::chrono::steady_clock::now();
  for (int j = 0; j < kJobs; ++j) cmd(c, "LPUSH jobs %s", ("job " + std::to_string(j)).c_str());  // .delay()
  std::map<int, int> per_worker;
  for (int j = 0; j < kJobs; ++j) {
    auto r = cmd(c, "BLPOP results 0");
    std::string line = r->element[1]->str;
    std::printf("  %s\n", line.c_str());
    per_worker[std::atoi(line.c_str() + line.find("by worker ") + 10)]++;
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (int k = 0; k < kWorkers * kFibersPerWorker; ++k) cmd(c, "LPUSH jobs stop");
  for (pid_t p : pids) waitpid(p, nullptr, 0);
  std::printf("%d jobs of 20 ms in %.3f s (serially: %.2f s);", kJobs, s, kJobs * 0.02);
  for (auto [w, n] : per_worker) std::printf(" worker %d: %d", w, n);
  std::printf("\n");
  redisFree(c);
  return 0;
}
