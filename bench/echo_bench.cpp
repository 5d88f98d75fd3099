// echo_bench: the echo comparison of issue 5 — one load generator and three
// servers, run as separate processes by bench/echo_compare (which pins the
// server to CPU 0 and the load generator to CPU 1).
//
//   echo_bench server green   [--port P]   greenfiber, 1 worker, a fiber per connection
//   echo_bench server epoll   [--port P]   hand-written single-threaded epoll loop
//   echo_bench server threads [--port P]   a blocking OS thread per connection
//   echo_bench load --port P --conns N [--seconds S] [--warmup S] [--server-pid PID]
//
// Servers print "port P" once listening and serve until killed. The load
// generator is a single-threaded level-triggered epoll client: N
// connections, each with exactly one 64-byte message in flight; a round
// trip is timed from the send to the last byte of the echo. After the
// warm-up it counts for S seconds and prints one line:
//   conns N rtps R p50_us A p99_us B cpu_ns C busy U
// where, given --server-pid, C is the server's CPU time (all its threads,
// user + system, from /proc/PID/task/*/schedstat) per round trip over the
// measured phase, and U the fraction of one core it used then. C is the
// physical cost of a round trip to the server, less noisy than R on a
// shared machine; U near 1 says the server, not the generator, set R.
// The same generator drives every server, so their ratios are fair; its own
// cost is the same for all (it is not the bottleneck while it has a core to
// itself and the server has one: it does 1 read + 1 write per round trip,
// as the servers do).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <dirent.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <green/green.hpp>
#include <green/net.hpp>

namespace {

using clk = std::chrono::steady_clock;
constexpr std::size_t msg_size = 64;

[[noreturn]] void die(const char* what) {
  std::perror(what);
  std::exit(1);
}

void raise_fd_limit() {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &r);
  }
}

void set_nodelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// A listening socket on 127.0.0.1:port, as the hand-written servers use it.
int plain_listener(int port, bool nonblocking) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0) die("socket");
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) die("bind");
  if (::listen(fd, SOMAXCONN) != 0) die("listen");
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  std::printf("port %d\n", ntohs(a.sin_port));
  std::fflush(stdout);
  return fd;
}

// ---------------------------------------------------------------------------
// servers

void serve_green(int port) {
  namespace net = green::net;
  green::runtime_config cfg;
  cfg.workers = 1;
  green::run(
      [port] {
        auto l = net::tcp_listener::bind(net::address::loopback_v4(static_cast<std::uint16_t>(port)));
        std::printf("port %d\n", l.address().port());
        std::fflush(stdout);
        for (;;) {
          std::error_code ec;
          net::tcp_stream s = l.accept(ec);
          if (ec) continue;
          green::spawn([s = std::move(s)]() mutable {
            s.set_nodelay(true);
            char buf[4096];
            std::error_code e;
            for (;;) {
              std::size_t n = s.read_some(buf, sizeof buf, e);
              if (e || n == 0) return;
              s.write_all(buf, n, e);
              if (e) return;
            }
          }).detach();
        }
      },
      cfg);
}

// The hand-written baseline: one thread, level-triggered epoll, read what
// is there and write it straight back (a 64-byte echo always fits the send
// buffer; a short write would need buffering, which this load never causes).
void serve_epoll(int port) {
  int lfd = plain_listener(port, true);
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = lfd;
  ::epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  epoll_event events[256];
  char buf[4096];
  for (;;) {
    int n = ::epoll_wait(ep, events, 256, -1);
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == lfd) {
        for (;;) {
          int c = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (c < 0) break;
          set_nodelay(c);
          epoll_event ce{};
          ce.events = EPOLLIN;
          ce.data.fd = c;
          ::epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
        }
        continue;
      }
      ssize_t r = ::read(fd, buf, sizeof buf);
      if (r > 0) {
        if (::write(fd, buf, static_cast<std::size_t>(r)) != r) ::close(fd);  // see above: never happens here
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        ::close(fd);
      }
    }
  }
}

void serve_threads(int port) {
  int lfd = plain_listener(port, false);
  for (;;) {
    int c = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    std::thread([c] {
      set_nodelay(c);
      char buf[4096];
      for (;;) {
        ssize_t r = ::read(c, buf, sizeof buf);
        if (r <= 0 || ::write(c, buf, static_cast<std::size_t>(r)) != r) break;
      }
      ::close(c);
    }).detach();
  }
}

// ---------------------------------------------------------------------------
// load generator

// process_cpu_ns() is the CPU time of every thread of `pid` so far (the
// first field of each /proc/PID/task/TID/schedstat, in ns); -1 if unknown.
long long process_cpu_ns(int pid) {
  if (pid <= 0) return -1;
  std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return -1;
  long long total = 0;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::string path = dir + "/" + e->d_name + "/schedstat";
    if (FILE* f = std::fopen(path.c_str(), "r")) {
      long long ns = 0;
      if (std::fscanf(f, "%lld", &ns) == 1) total += ns;
      std::fclose(f);
    }
  }
  ::closedir(d);
  return total;
}

struct conn {
  int fd = -1;
  std::size_t got = 0;
  clk::time_point sent;
};

int load(int port, int nconns, double seconds, double warmup, int server_pid) {
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  std::vector<conn> cs(static_cast<std::size_t>(nconns));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  char msg[msg_size], buf[msg_size];
  std::memset(msg, 'x', sizeof msg);
  for (std::size_t i = 0; i < cs.size(); ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);  // blocking connect, then non-blocking I/O
    if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) die("connect");
    set_nodelay(fd);
    cs[i].fd = fd;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
  for (auto& c : cs) {
    c.sent = clk::now();
    if (::write(c.fd, msg, msg_size) != static_cast<ssize_t>(msg_size)) die("write");
  }
  std::vector<std::uint32_t> lat;  // ns, measured phase only
  lat.reserve(1 << 22);
  auto start = clk::now();
  auto measure_from = start + std::chrono::duration_cast<clk::duration>(std::chrono::duration<double>(warmup));
  auto end = measure_from + std::chrono::duration_cast<clk::duration>(std::chrono::duration<double>(seconds));
  long trips = 0;
  long long cpu_from = -1;
  clk::time_point cpu_from_at;
  epoll_event events[256];
  for (;;) {
    auto now = clk::now();
    if (now >= end) break;
    int n = ::epoll_wait(ep, events, 256, 100);
    now = clk::now();
    bool measuring = now >= measure_from;
    if (measuring && cpu_from < 0 && server_pid > 0) {
      cpu_from = process_cpu_ns(server_pid);
      cpu_from_at = clk::now();
    }
    for (int i = 0; i < n; ++i) {
      conn& c = cs[events[i].data.u64];
      ssize_t r = ::read(c.fd, buf, msg_size - c.got);
      if (r <= 0) die("read (the server closed or failed)");
      c.got += static_cast<std::size_t>(r);
      if (c.got < msg_size) continue;
      c.got = 0;
      if (measuring) {
        ++trips;
        lat.push_back(
            static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(now - c.sent).count()));
      }
      c.sent = now;
      if (::write(c.fd, msg, msg_size) != static_cast<ssize_t>(msg_size)) die("write");
    }
  }
  long long cpu_to = process_cpu_ns(server_pid);
  double cpu_per_rt = 0, busy = 0;
  if (cpu_from >= 0 && cpu_to >= cpu_from && trips > 0) {
    cpu_per_rt = static_cast<double>(cpu_to - cpu_from) / static_cast<double>(trips);
    busy = static_cast<double>(cpu_to - cpu_from) /
           static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(clk::now() - cpu_from_at).count());
  }
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double p) { return lat.empty() ? 0.0 : lat[static_cast<std::size_t>(p * (lat.size() - 1))] / 1000.0; };
  std::printf("conns %d rtps %.0f p50_us %.1f p99_us %.1f cpu_ns %.0f busy %.2f\n", nconns, trips / seconds, pct(0.50),
              pct(0.99), cpu_per_rt, busy);
  for (auto& c : cs) ::close(c.fd);
  ::close(ep);
  return 0;
}

int usage() {
  std::fprintf(stderr,
               "usage: echo_bench server green|epoll|threads [--port P]\n"
               "       echo_bench load --port P --conns N [--seconds S] [--warmup S] [--server-pid PID]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  raise_fd_limit();
  std::string mode = argv[1];
  std::string kind = mode == "server" && argc > 2 ? argv[2] : "";
  int port = 0, conns = 10, server_pid = 0;
  double seconds = 5, warmup = 1;
  for (int i = mode == "server" ? 3 : 2; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--port") port = std::atoi(argv[i + 1]);
    else if (a == "--conns") conns = std::atoi(argv[i + 1]);
    else if (a == "--seconds") seconds = std::atof(argv[i + 1]);
    else if (a == "--warmup") warmup = std::atof(argv[i + 1]);
    else if (a == "--server-pid") server_pid = std::atoi(argv[i + 1]);
    else return usage();
  }
  if (mode == "load") return port > 0 ? load(port, conns, seconds, warmup, server_pid) : usage();
  if (kind == "green") serve_green(port);
  else if (kind == "epoll") serve_epoll(port);
  else if (kind == "threads") serve_threads(port);
  else return usage();
  return 0;
}
