// A throwaway redis-server for tests and examples: started on a free
// loopback port with persistence off, killed by the destructor.
#pragma once

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

namespace green::testing {

class redis_server {
 public:
  // path: the redis-server binary. ok() is false if it could not start.
  explicit redis_server(const char* path = "/usr/bin/redis-server") {
    if (::access(path, X_OK) != 0) return;
    port_ = free_port();
    std::string port = std::to_string(port_);
    pid_ = ::fork();
    if (pid_ == 0) {
      int null = ::open("/dev/null", O_WRONLY);
      ::dup2(null, 1);  // its start-up banner is not ours to print
      ::execl(path, path, "--port", port.c_str(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
              "--loglevel", "warning", "--maxclients", "10000", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    // Up when it answers PING (a plain thread: no fiber here).
    for (int i = 0; i < 500 && !ok_; ++i) {
      if (redisContext* c = redisConnect("127.0.0.1", port_)) {
        if (!c->err) {
          auto* r = static_cast<redisReply*>(redisCommand(c, "PING"));
          ok_ = r != nullptr;
          if (r) freeReplyObject(r);
        }
        redisFree(c);
      }
      if (!ok_) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  ~redis_server() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  redis_server(const redis_server&) = delete;
  redis_server& operator=(const redis_server&) = delete;
  bool ok() const { return ok_; }
  int port() const { return port_; }

 private:
  static int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t l = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &l);
    ::close(fd);
    return ntohs(a.sin_port);
  }
  pid_t pid_ = -1;
  int port_ = 0;
  bool ok_ = false;
};

}  // namespace green::testing
