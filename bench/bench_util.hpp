// bench_util.hpp: helpers shared by the benchmarks in bench/.
//
// - process CPU time and resident-set readings (Linux: getrusage, /proc/self);
// - run_in_child(): run one case in a forked child and bring back its result and
//   its own peak RSS, so cases cannot contaminate each other's high-water mark;
// - child_server: a long-lived forked child that answers requests, for
//   per-iteration work that must live in a fresh process (Boost.Fiber's
//   work_stealing can be installed only once per process, see boost_pool.hpp).
//
// Both fork from the benchmark's thread. Call them while this process runs no
// other threads that hold locks the child needs (glibc's malloc is fork-safe);
// the child leaves with _exit(), so it never flushes the parent's stdio buffers
// or runs its atexit handlers. One child at a time: a second child would
// inherit, and keep open, the first one's socket.
#pragma once

#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>

namespace green_bench {

// process_cpu_seconds() returns the user + system CPU time consumed so far by
// all threads of this process. Any thread.
inline double process_cpu_seconds() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  auto secs = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec * 1e-6; };
  return secs(ru.ru_utime) + secs(ru.ru_stime);
}

// peak_rss_kib() returns getrusage(RUSAGE_SELF).ru_maxrss (KiB on Linux): the
// largest resident set this process has had since it started, or since the
// last successful reset_peak_rss(). Any thread.
inline long peak_rss_kib() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

// current_rss_kib() returns the resident set size now, or -1 if /proc is not
// readable. Any thread.
inline long current_rss_kib() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return -1;
  long size = 0, resident = -1;
  if (std::fscanf(f, "%ld %ld", &size, &resident) != 2) resident = -1;
  std::fclose(f);
  return resident < 0 ? -1 : resident * (::sysconf(_SC_PAGESIZE) / 1024);
}

// hwm_rss_kib() returns the kernel's RSS high-water mark (VmHWM) for this
// address space, or -1. Unlike ru_maxrss it ignores threads that already
// exited, so after reset_peak_rss() it is the peak since the reset. Any thread.
inline long hwm_rss_kib() {
  std::ifstream in("/proc/self/status");
  std::string key;
  long v = -1;
  while (in >> key) {
    if (key == "VmHWM:") {
      in >> v;
      return v;
    }
    in.ignore(1 << 20, '\n');
  }
  return -1;
}

// release_free_memory() returns malloc's free memory to the kernel
// (malloc_trim), so a measurement that follows starts from touched-and-
// freed pages being gone rather than reused for free. Any thread.
inline void release_free_memory() { ::malloc_trim(0); }

// reset_peak_rss() lowers the kernel's RSS high-water mark to the current RSS
// (writes "5" to /proc/self/clear_refs, Linux >= 4.0) and returns true, or
// returns false if that is not permitted here. A forked child needs it: fork
// copies the parent's high-water mark into the child. Any thread.
inline bool reset_peak_rss() {
  int fd = ::open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::write(fd, "5", 1) == 1;
  ::close(fd);
  return ok;
}

// read_sysctl_long("vm/max_map_count") returns /proc/sys/<name> as a number, or -1.
inline long read_sysctl_long(const char* name) {
  std::ifstream in(std::string("/proc/sys/") + name);
  long v = -1;
  in >> v;
  return in ? v : -1;
}

// mapping_count() returns the number of memory mappings (lines of
// /proc/self/maps), to compare with vm.max_map_count, or -1. Any thread.
inline long mapping_count() {
  std::ifstream in("/proc/self/maps");
  if (!in) return -1;
  long n = 0;
  for (std::string line; std::getline(in, line);) ++n;
  return n;
}

// What run_in_child() measured in the child besides fn's value.
struct child_stats {
  long peak_rss_kib = -1;   // ru_maxrss at the end of the child
  long start_rss_kib = -1;  // RSS right after fork (pages shared with the parent count)
  bool peak_reset = false;  // false: peak_rss_kib may include the parent's peak
};

template <class T>
struct child_outcome {
  T value{};
  child_stats stats{};
};

namespace detail {

// One message from a child: fn's value or the text of what it threw.
template <class T>
struct frame {
  int ok = 0;
  char error[256] = {};
  T value{};
  child_stats stats{};
};

inline void set_error(char (&buf)[256], const char* what) { std::snprintf(buf, sizeof buf, "%s", what); }

// Writes all of buf; false if the peer is gone. MSG_NOSIGNAL: no SIGPIPE.
inline bool write_all(int fd, const void* buf, std::size_t n, bool socket) {
  auto p = static_cast<const char*>(buf);
  while (n > 0) {
    ssize_t w = socket ? ::send(fd, p, n, MSG_NOSIGNAL) : ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

// Reads exactly n bytes; returns bytes read (< n on EOF or error). With a
// deadline, gives up at it and sets *timed_out.
inline std::size_t read_all(int fd, void* buf, std::size_t n,
                            std::optional<std::chrono::steady_clock::time_point> deadline = {},
                            bool* timed_out = nullptr) {
  auto p = static_cast<char*>(buf);
  std::size_t got = 0;
  while (got < n) {
    if (deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        if (timed_out) *timed_out = true;
        return got;
      }
      pollfd pfd{fd, POLLIN, 0};
      int rc = ::poll(&pfd, 1, static_cast<int>(std::min<long long>(left.count(), 1 << 30)));
      if (rc < 0 && errno == EINTR) continue;
      if (rc <= 0) continue;  // re-check the deadline
    }
    ssize_t r = ::read(fd, p + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return got;
    got += static_cast<std::size_t>(r);
  }
  return got;
}

// Reaps pid, giving it until `grace` to exit on its own, then SIGKILL.
// Returns a description of an abnormal end, or "" for exit status 0.
inline std::string reap(pid_t pid, std::chrono::milliseconds grace) {
  auto deadline = std::chrono::steady_clock::now() + grace;
  int status = 0;
  for (;;) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) return "waitpid failed";
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      return "child did not exit in time and was killed";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (WIFSIGNALED(status)) return "child killed by signal " + std::to_string(WTERMSIG(status));
  if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
    return "child exited with status " + std::to_string(WEXITSTATUS(status));
  return "";
}

}  // namespace detail

// run_in_child(fn) forks; the child trims malloc's free memory, resets its
// peak RSS, runs fn(), sends back fn's value with getrusage(RUSAGE_SELF)
// .ru_maxrss through a pipe and _exit()s. Returns the value and the child's stats.
// Preconditions: fn's result type is trivially copyable and default-constructible.
// Throws std::runtime_error with the child's message if fn threw, or if the
// child crashed or did not answer within `timeout` (it is then killed).
template <class Fn>
auto run_in_child(Fn&& fn, std::chrono::seconds timeout = std::chrono::seconds(300))
    -> child_outcome<std::invoke_result_t<Fn&>> {
  using T = std::invoke_result_t<Fn&>;
  static_assert(std::is_trivially_copyable_v<T>, "run_in_child: result must be trivially copyable");
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    throw std::runtime_error("fork failed");
  }
  if (pid == 0) {  // child
    ::close(fds[0]);
    detail::frame<T> out;
    release_free_memory();  // the parent's freed heap would otherwise serve the child's allocations
    out.stats.peak_reset = reset_peak_rss();
    out.stats.start_rss_kib = current_rss_kib();
    try {
      out.value = fn();
      out.ok = 1;
    } catch (const std::exception& e) {
      detail::set_error(out.error, e.what());
    } catch (...) {
      detail::set_error(out.error, "unknown exception");
    }
    out.stats.peak_rss_kib = peak_rss_kib();
    detail::write_all(fds[1], &out, sizeof out, false);
    ::_exit(0);
  }
  ::close(fds[1]);
  auto in = std::make_unique<detail::frame<T>>();
  bool timed_out = false;
  std::size_t got =
      detail::read_all(fds[0], in.get(), sizeof *in, std::chrono::steady_clock::now() + timeout, &timed_out);
  ::close(fds[0]);
  std::string ended = detail::reap(pid, timed_out ? std::chrono::milliseconds(0) : std::chrono::milliseconds(10'000));
  if (got != sizeof *in) throw std::runtime_error(timed_out ? "child timed out" : ("child sent no result: " + ended));
  if (!in->ok) throw std::runtime_error(in->error);
  return {in->value, in->stats};
}

// child_server<Req, Resp> is a forked child that builds a handler once
// (make_handler() runs in the child) and then answers call(req) with
// handler(req) until the server is destroyed. Use it when the state behind the
// handler must not exist in the benchmark process. Benchmark thread only.
// Preconditions: Req and Resp are trivially copyable; Resp default-constructible.
template <class Req, class Resp>
class child_server {
  static_assert(std::is_trivially_copyable_v<Req> && std::is_trivially_copyable_v<Resp>);

 public:
  // Forks and waits until make_handler() has returned in the child.
  // Throws std::runtime_error with the child's message if it threw.
  template <class MakeHandler>
  explicit child_server(MakeHandler make_handler, std::chrono::seconds timeout = std::chrono::seconds(300))
      : timeout_(timeout) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) throw std::runtime_error("socketpair failed");
    pid_ = ::fork();
    if (pid_ < 0) {
      ::close(sv[0]);
      ::close(sv[1]);
      throw std::runtime_error("fork failed");
    }
    if (pid_ == 0) serve_(sv[1], sv[0], make_handler);  // never returns
    ::close(sv[1]);
    fd_ = sv[0];
    detail::frame<Resp> ready;
    receive_(ready);  // throws, after reaping, if the child failed to start
  }

  child_server(const child_server&) = delete;
  child_server& operator=(const child_server&) = delete;

  // Closes the socket; the child destroys its handler and exits.
  ~child_server() {
    if (fd_ >= 0) ::close(fd_);
    if (pid_ > 0) detail::reap(pid_, std::chrono::milliseconds(10'000));
  }

  // call(req) returns the child's handler(req). Throws std::runtime_error if
  // the handler threw (the server stays usable), or if the child died or did
  // not answer in time (it is then unusable).
  Resp call(const Req& req) {
    if (fd_ < 0) throw std::runtime_error("child_server: child is gone");
    if (!detail::write_all(fd_, &req, sizeof req, true))
      fail_("child_server: child is gone", std::chrono::milliseconds(10'000));
    detail::frame<Resp> out;
    receive_(out);
    return out.value;
  }

 private:
  template <class MakeHandler>
  [[noreturn]] static void serve_(int fd, int other, MakeHandler& make_handler) {
    ::close(other);
    release_free_memory();
    using handler_t = std::invoke_result_t<MakeHandler&>;
    std::optional<handler_t> handler;
    detail::frame<Resp> out;
    try {
      handler.emplace(make_handler());
      out.ok = 1;
    } catch (const std::exception& e) {
      detail::set_error(out.error, e.what());
    } catch (...) {
      detail::set_error(out.error, "unknown exception");
    }
    if (!detail::write_all(fd, &out, sizeof out, true) || !out.ok) ::_exit(1);
    Req req;
    while (detail::read_all(fd, &req, sizeof req) == sizeof req) {
      out = {};
      try {
        out.value = (*handler)(req);
        out.ok = 1;
      } catch (const std::exception& e) {
        detail::set_error(out.error, e.what());
      } catch (...) {
        detail::set_error(out.error, "unknown exception");
      }
      if (!detail::write_all(fd, &out, sizeof out, true)) break;
    }
    handler.reset();
    ::_exit(0);
  }

  void receive_(detail::frame<Resp>& out) {
    bool timed_out = false;
    std::size_t got = detail::read_all(fd_, &out, sizeof out, std::chrono::steady_clock::now() + timeout_, &timed_out);
    if (got != sizeof out) {
      if (timed_out) fail_("child_server: child timed out", std::chrono::milliseconds(0));
      fail_("child_server: child died", std::chrono::milliseconds(10'000));
    }
    if (!out.ok) {
      if (!started_) fail_(out.error, std::chrono::milliseconds(10'000));  // it exits after a failed start
      throw std::runtime_error(out.error);
    }
    started_ = true;
  }

  [[noreturn]] void fail_(const std::string& why, std::chrono::milliseconds grace) {
    ::close(fd_);
    fd_ = -1;
    std::string ended = detail::reap(pid_, grace);
    pid_ = -1;
    throw std::runtime_error(ended.empty() ? why : why + " (" + ended + ")");
  }

  std::chrono::seconds timeout_;
  pid_t pid_ = -1;
  int fd_ = -1;
  bool started_ = false;
};

}  // namespace green_bench
