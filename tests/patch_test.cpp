// green::patch: every interposed call outside and inside fibers, the
// program's own O_NONBLOCK, SO_RCVTIMEO, close and dup under a waiter, the
// resolver fallback, and concurrency proven by a server that holds every
// request until P are in flight at once (no timing).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <green/patch.hpp>

#include "test_util.hpp"

namespace {

using green::testing::wait_parked;

struct outcome {
  long ret;
  int err;
  bool operator==(const outcome&) const = default;
};
std::ostream& operator<<(std::ostream& o, const outcome& x) { return o << x.ret << " errno " << x.err; }

// errno read fresh: after a park the fiber may run on another worker, and
// the compiler may keep __errno_location() (declared const) across the call.
// GCC's noipa keeps callers from learning anything from the body; clang has
// no noipa, and optnone (with noinline) does the same there.
#if defined(__clang__)
__attribute__((noinline, optnone))
#else
__attribute__((noinline, noipa))
#endif
int fresh_errno() {
  asm volatile("" ::: "memory");
  return errno;
}
template <class F>
outcome capture(F&& f) {
  long r = static_cast<long>(f());
  return {r, r < 0 ? fresh_errno() : 0};
}

std::pair<int, int> make_pipe(int flags = 0) {
  int p[2];
  EXPECT_EQ(::pipe2(p, flags | O_CLOEXEC), 0);
  return {p[0], p[1]};
}
std::pair<int, int> make_socketpair(int type = SOCK_STREAM) {
  int s[2];
  EXPECT_EQ(::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, s), 0);
  return {s[0], s[1]};
}
void close_both(std::pair<int, int> p) {
  ::close(p.first);
  ::close(p.second);
}

// A TCP listener on 127.0.0.1 with an ephemeral port.
int listener(sockaddr_in* addr, int flags = 0) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_EQ(::listen(fd, 1024), 0);
  socklen_t l = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &l);
  *addr = a;
  return fd;
}
int closed_port() {
  sockaddr_in a{};
  int fd = listener(&a);
  ::close(fd);
  return ntohs(a.sin_port);
}

// ---------------------------------------------------------------------------
// Cases whose outcome does not depend on waiting: each runs once through
// the interposed function and once through the raw syscall, on fresh fds.

struct exact_case {
  const char* name;
  std::function<outcome(bool raw)> run;
};

std::vector<exact_case> exact_cases() {
  std::vector<exact_case> v;
  auto add = [&](const char* n, std::function<outcome(bool)> f) { v.push_back({n, std::move(f)}); };
  add("read ready", [](bool raw) {
    auto p = make_pipe();
    (void)!::write(p.second, "abc", 3);
    char b[8];
    auto o = capture([&] { return raw ? syscall(SYS_read, p.first, b, 8) : ::read(p.first, b, 8); });
    close_both(p);
    return o;
  });
  add("read EBADF", [](bool raw) {
    char b[8];
    return capture([&] { return raw ? syscall(SYS_read, 1 << 20, b, 8) : ::read(1 << 20, b, 8); });
  });
  add("write pipe", [](bool raw) {
    auto p = make_pipe();
    auto o = capture([&] { return raw ? syscall(SYS_write, p.second, "x", 1) : ::write(p.second, "x", 1); });
    close_both(p);
    return o;
  });
  add("write EPIPE", [](bool raw) {
    auto p = make_pipe();
    ::close(p.first);
    auto o = capture([&] {
      return raw ? syscall(SYS_sendto, p.second, "x", 1, MSG_NOSIGNAL, nullptr, 0)
                 : ::send(p.second, "x", 1, MSG_NOSIGNAL);
    });
    ::close(p.second);
    return o;  // ENOTSOCK both ways
  });
  add("readv/writev", [](bool raw) {
    auto p = make_pipe();
    char a[2] = {'h', 'i'};
    iovec w{a, 2};
    auto o1 = capture([&] { return raw ? syscall(SYS_writev, p.second, &w, 1) : ::writev(p.second, &w, 1); });
    char b[4];
    iovec r{b, 4};
    auto o2 = capture([&] { return raw ? syscall(SYS_readv, p.first, &r, 1) : ::readv(p.first, &r, 1); });
    close_both(p);
    return outcome{o1.ret * 10 + o2.ret, o1.err + o2.err};
  });
  add("recv ENOTSOCK", [](bool raw) {
    auto p = make_pipe();
    char b[4];
    auto o = capture(
        [&] { return raw ? syscall(SYS_recvfrom, p.first, b, 4, 0, nullptr, nullptr) : ::recv(p.first, b, 4, 0); });
    close_both(p);
    return o;
  });
  add("send/recvfrom/recvmsg/sendto/sendmsg", [](bool raw) {
    auto s = make_socketpair(SOCK_DGRAM);
    long acc = 0;
    int errs = 0;
    auto o = capture(
        [&] { return raw ? syscall(SYS_sendto, s.first, "abc", 3, 0, nullptr, 0) : ::send(s.first, "abc", 3, 0); });
    acc = acc * 10 + o.ret;
    o = capture([&] {
      return raw ? syscall(SYS_sendto, s.first, "de", 2, 0, nullptr, 0) : ::sendto(s.first, "de", 2, 0, nullptr, 0);
    });
    acc = acc * 10 + o.ret;
    char b[8];
    iovec io{b, 8};
    msghdr m{};
    m.msg_iov = &io;
    m.msg_iovlen = 1;
    o = capture([&] { return raw ? syscall(SYS_sendmsg, s.first, &m, 0) : ::sendmsg(s.first, &m, 0); });
    acc = acc * 10 + o.ret;
    o = capture([&] {
      return raw ? syscall(SYS_recvfrom, s.second, b, 8, 0, nullptr, nullptr)
                 : ::recvfrom(s.second, b, 8, 0, nullptr, nullptr);
    });
    acc = acc * 10 + o.ret;
    o = capture([&] { return raw ? syscall(SYS_recvmsg, s.second, &m, 0) : ::recvmsg(s.second, &m, 0); });
    acc = acc * 10 + o.ret;
    errs += o.err;
    close_both(s);
    return outcome{acc, errs};
  });
  add("connect ECONNREFUSED", [](bool raw) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(closed_port()));
    auto o = capture([&] {
      return raw ? syscall(SYS_connect, fd, &a, sizeof a) : ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    });
    ::close(fd);
    return o;
  });
  add("accept EINVAL", [](bool raw) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    auto o =
        capture([&] { return raw ? syscall(SYS_accept4, fd, nullptr, nullptr, 0) : ::accept(fd, nullptr, nullptr); });
    ::close(fd);
    return o;
  });
  add("accept4 EBADF", [](bool raw) {
    return capture([&] {
      return raw ? syscall(SYS_accept4, 1 << 20, nullptr, nullptr, 0) : ::accept4(1 << 20, nullptr, nullptr, 0);
    });
  });
  add("poll ready", [](bool raw) {
    auto p = make_pipe();
    (void)!::write(p.second, "x", 1);
    pollfd f[2] = {{p.first, POLLIN, 0}, {p.second, POLLOUT, 0}};
    timespec ts{1, 0};
    auto o = capture([&] { return raw ? syscall(SYS_ppoll, f, 2, &ts, nullptr, 8) : ::poll(f, 2, 1000); });
    close_both(p);
    return outcome{o.ret * 100 + f[0].revents * 10 + f[1].revents, o.err};
  });
  add("ppoll EINVAL", [](bool raw) {
    timespec ts{0, -1};
    pollfd f{0, POLLIN, 0};
    return capture([&] { return raw ? syscall(SYS_ppoll, &f, 1, &ts, nullptr, 8) : ::ppoll(&f, 1, &ts, nullptr); });
  });
  add("select ready", [](bool raw) {
    auto p = make_pipe();
    (void)!::write(p.second, "x", 1);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(p.first, &r);
    timeval tv{1, 0};
    auto o = capture([&] {
      return raw ? syscall(SYS_select, p.first + 1, &r, nullptr, nullptr, &tv)
                 : ::select(p.first + 1, &r, nullptr, nullptr, &tv);
    });
    bool set = FD_ISSET(p.first, &r);
    close_both(p);
    return outcome{o.ret * 10 + set, o.err};
  });
  add("pselect EBADF", [](bool raw) {
    auto p = make_pipe();
    ::close(p.first);  // a closed fd below the table's end
    fd_set r;
    FD_ZERO(&r);
    FD_SET(p.first, &r);
    timespec ts{0, 10000000};
    auto o = capture([&] {
      return raw ? syscall(SYS_pselect6, p.first + 1, &r, nullptr, nullptr, &ts, nullptr)
                 : ::pselect(p.first + 1, &r, nullptr, nullptr, &ts, nullptr);
    });
    ::close(p.second);
    return o;
  });
  add("epoll_wait ready / EBADF", [](bool raw) {
    auto p = make_pipe();
    (void)!::write(p.second, "x", 1);
    int ep = ::epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, p.first, &ev);
    epoll_event out[4];
    auto o1 = capture(
        [&] { return raw ? syscall(SYS_epoll_pwait, ep, out, 4, 1000, nullptr, 8) : ::epoll_wait(ep, out, 4, 1000); });
    auto o2 = capture([&] {
      return raw ? syscall(SYS_epoll_pwait, 1 << 20, out, 4, 1000, nullptr, 8)
                 : ::epoll_pwait(1 << 20, out, 4, 1000, nullptr);
    });
    ::close(ep);
    close_both(p);
    return outcome{o1.ret * 10 + o2.ret, o2.err};
  });
  add("nanosleep EINVAL", [](bool raw) {
    timespec ts{0, 2000000000};
    return capture([&] { return raw ? syscall(SYS_nanosleep, &ts, nullptr) : ::nanosleep(&ts, nullptr); });
  });
  add("clock_nanosleep short / bad clock", [](bool raw) {
    timespec ts{0, 1000};
    // clock_nanosleep returns the error number instead of setting errno
    long a = raw ? syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &ts, nullptr)
                 : ::clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, nullptr);
    const clockid_t bad = 12345;
    long b = raw ? (syscall(SYS_clock_nanosleep, bad, 0, &ts, nullptr) < 0 ? errno : 0)
                 : ::clock_nanosleep(bad, 0, &ts, nullptr);
    return outcome{a, static_cast<int>(b)};
  });
  add("usleep/sleep 0", [](bool raw) {
    if (raw) return outcome{0, 0};
    return outcome{::usleep(1) + static_cast<long>(::sleep(0)), 0};
  });
  add("fcntl/ioctl/dup2/close", [](bool raw) {
    auto p = make_pipe();
    long fl = raw ? syscall(SYS_fcntl, p.first, F_GETFL) : ::fcntl(p.first, F_GETFL);
    int on = 1;
    long io = raw ? syscall(SYS_ioctl, p.first, FIONBIO, &on) : ::ioctl(p.first, FIONBIO, &on);
    long fl2 = raw ? syscall(SYS_fcntl, p.first, F_GETFL) : ::fcntl(p.first, F_GETFL);
    long d = raw ? syscall(SYS_dup2, p.first, 1 << 20) : ::dup2(p.first, 1 << 20);
    int e = errno;
    long c = raw ? syscall(SYS_close, 1 << 20) : ::close(1 << 20);
    close_both(p);
    return outcome{fl * 1000 + fl2 + io + d + c, e + errno};
  });
  return v;
}

// compare_all() runs every exact case both ways on the calling context.
void compare_all() {
  for (auto& c : exact_cases()) {
    outcome raw = c.run(true), ours = c.run(false);
    EXPECT_EQ(ours, raw) << c.name;
  }
}

GREEN_WORKER_SUITE(patch);

TEST(patch_api, covers_the_issue_list_and_finds_the_runtime) {
  EXPECT_TRUE(green::patch::runtime_found());
  EXPECT_TRUE(green::patch::enabled());
  std::set<std::string> names(green::patch::covered().begin(), green::patch::covered().end());
  for (const char* n :
       {"read",    "write",      "readv",     "writev",          "recv",         "recvfrom", "recvmsg", "send",
        "sendto",  "sendmsg",    "connect",   "accept",          "accept4",      "poll",     "ppoll",   "select",
        "pselect", "epoll_wait", "nanosleep", "clock_nanosleep", "usleep",       "sleep",    "fcntl",   "ioctl",
        "close",   "dup2",       "dup3",      "getaddrinfo",     "gethostbyname"})
    EXPECT_TRUE(names.count(n)) << n;
}

TEST(patch_outside, every_call_is_libcs_and_never_parks) {
  auto before = green::patch::get_stats();
  compare_all();
  std::thread([] { compare_all(); }).join();
  auto after = green::patch::get_stats();
  EXPECT_EQ(after.parks, before.parks);
  EXPECT_EQ(after.sleeps, before.sleeps);
}

TEST_P(patch, calls_that_need_no_wait_match_libc_inside_fibers) {
  run([] { compare_all(); });
}

// expect_parks() runs `block` on a fiber, waits until it is parked on
// `what`, then runs `unblock` on the main fiber. On one worker this can only
// finish if the blocking call parked the fiber instead of the worker.
template <class B, class U>
void expect_parks(const char* what, B block, U unblock) {
  auto f = green::spawn(block);
  wait_parked(f, what);
  unblock();
  f.join();
}

TEST_P(patch, reads_park_until_data) {
  run([] {
    auto p = make_pipe();
    auto s = make_socketpair();
    char b[8];
    expect_parks(
        "fd read", [&] { EXPECT_EQ(::read(p.first, b, 8), 1); }, [&] { (void)!::write(p.second, "x", 1); });
    expect_parks(
        "fd read",
        [&] {
          iovec v{b, 8};
          EXPECT_EQ(::readv(p.first, &v, 1), 2);
        },
        [&] { (void)!::write(p.second, "xy", 2); });
    expect_parks(
        "fd read", [&] { EXPECT_EQ(::read(s.first, b, 8), 1); }, [&] { (void)!::write(s.second, "x", 1); });
    expect_parks(
        "fd read", [&] { EXPECT_EQ(::recv(s.first, b, 8, 0), 1); }, [&] { (void)!::send(s.second, "x", 1, 0); });
    expect_parks(
        "fd read", [&] { EXPECT_EQ(::recv(s.first, b, 4, MSG_WAITALL), 4); },
        [&] {
          (void)!::send(s.second, "ab", 2, 0);
          green::this_fiber::yield();
          (void)!::send(s.second, "cd", 2, 0);
        });
    expect_parks(
        "fd read", [&] { EXPECT_EQ(::recvfrom(s.first, b, 8, 0, nullptr, nullptr), 1); },
        [&] { (void)!::sendto(s.second, "x", 1, 0, nullptr, 0); });
    expect_parks(
        "fd read",
        [&] {
          iovec v{b, 8};
          msghdr m{};
          m.msg_iov = &v;
          m.msg_iovlen = 1;
          EXPECT_EQ(::recvmsg(s.first, &m, 0), 1);
        },
        [&] { (void)!::write(s.second, "x", 1); });
    close_both(p);
    close_both(s);
  });
}

// fill() writes to a non-blocking view of fd until the buffer is full.
std::size_t fill(int fd) {
  int fl = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  std::vector<char> junk(65536, 'j');
  std::size_t n = 0;
  for (ssize_t r; (r = ::write(fd, junk.data(), junk.size())) > 0;) n += static_cast<std::size_t>(r);
  ::fcntl(fd, F_SETFL, fl);
  return n;
}
void drain(int fd, std::size_t n) {
  std::vector<char> b(65536);
  while (n > 0) {
    ssize_t r = ::read(fd, b.data(), std::min(n, b.size()));
    ASSERT_GT(r, 0);
    n -= static_cast<std::size_t>(r);
  }
}

TEST_P(patch, writes_park_until_room_and_send_everything) {
  run([] {
    std::vector<char> big(200000, 'b');  // more than a pipe or socket buffer: blocking writes send it all
    auto p = make_pipe();
    std::size_t full = fill(p.second);
    expect_parks(
        "fd write", [&] { EXPECT_EQ(::write(p.second, big.data(), big.size()), ssize_t(big.size())); },
        [&] { drain(p.first, full + big.size()); });
    full = fill(p.second);
    expect_parks(
        "fd write",
        [&] {
          iovec v[2] = {{big.data(), 100000}, {big.data(), 100000}};
          EXPECT_EQ(::writev(p.second, v, 2), 200000);
        },
        [&] { drain(p.first, full + big.size()); });
    close_both(p);
    auto s = make_socketpair();
    using sender = std::function<ssize_t()>;
    for (sender send : std::vector<sender>{[&] { return ::send(s.second, big.data(), big.size(), 0); },
                                           [&] { return ::sendto(s.second, big.data(), big.size(), 0, nullptr, 0); },
                                           [&] {
                                             iovec v{big.data(), big.size()};
                                             msghdr m{};
                                             m.msg_iov = &v;
                                             m.msg_iovlen = 1;
                                             return ::sendmsg(s.second, &m, 0);
                                           },
                                           [&] { return ::write(s.second, big.data(), big.size()); }}) {
      full = fill(s.second);
      expect_parks(
          "fd write", [&] { EXPECT_EQ(send(), ssize_t(big.size())); }, [&] { drain(s.first, full + big.size()); });
    }
    close_both(s);
  });
}

TEST_P(patch, accept_parks_until_a_client_connects) {
  run([] {
    sockaddr_in a{};
    int l = listener(&a);
    for (bool four : {false, true}) {
      int c = -1;
      expect_parks(
          "fd read",
          [&] {
            int fd = four ? ::accept4(l, nullptr, nullptr, SOCK_CLOEXEC) : ::accept(l, nullptr, nullptr);
            EXPECT_GE(fd, 0);
            // accept's temporary O_NONBLOCK is neither inherited nor left behind
            EXPECT_EQ(::fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
            EXPECT_EQ(::fcntl(l, F_GETFL) & O_NONBLOCK, 0);
            ::close(fd);
          },
          [&] {
            c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            EXPECT_EQ(::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
            EXPECT_EQ(::fcntl(c, F_GETFL) & O_NONBLOCK, 0);
          });
      ::close(c);
    }
    ::close(l);
  });
}

TEST_P(patch, poll_select_epoll_park_until_ready_or_timeout) {
  run([] {
    auto p = make_pipe();
    auto q = make_pipe();
    char b[8];
    auto unblock = [&] { (void)!::write(p.second, "x", 1); };
    auto consume = [&] { (void)!::read(p.first, b, 8); };
    expect_parks(
        "fd read",
        [&] {
          pollfd f{p.first, POLLIN, 0};
          EXPECT_EQ(::poll(&f, 1, -1), 1);
          EXPECT_EQ(f.revents, POLLIN);
        },
        unblock);
    consume();
    expect_parks(
        "fd read",
        [&] {  // two fds: the temporary epoll set
          pollfd f[2] = {{q.first, POLLIN, 0}, {p.first, POLLIN, 0}};
          timespec ts{30, 0};
          EXPECT_EQ(::ppoll(f, 2, &ts, nullptr), 1);
          EXPECT_EQ(f[1].revents, POLLIN);
          EXPECT_EQ(f[0].revents, 0);
        },
        unblock);
    consume();
    expect_parks(
        "fd read",
        [&] {
          fd_set r;
          FD_ZERO(&r);
          FD_SET(p.first, &r);
          FD_SET(q.first, &r);
          EXPECT_EQ(::select(std::max(p.first, q.first) + 1, &r, nullptr, nullptr, nullptr), 1);
          EXPECT_TRUE(FD_ISSET(p.first, &r));
          EXPECT_FALSE(FD_ISSET(q.first, &r));
        },
        unblock);
    consume();
    expect_parks(
        "fd read",
        [&] {
          fd_set r;
          FD_ZERO(&r);
          FD_SET(p.first, &r);
          EXPECT_EQ(::pselect(p.first + 1, &r, nullptr, nullptr, nullptr, nullptr), 1);
        },
        unblock);
    consume();
    int ep = ::epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = 42;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, p.first, &ev);
    expect_parks(
        "fd read",
        [&] {
          epoll_event out[2];
          EXPECT_EQ(::epoll_wait(ep, out, 2, -1), 1);
          EXPECT_EQ(out[0].data.u64, 42u);
        },
        unblock);
    consume();
    // timeouts: nothing becomes ready
    pollfd f{q.first, POLLIN, 0};
    EXPECT_EQ(::poll(&f, 1, 5), 0);
    timeval tv{0, 5000};
    fd_set r;
    FD_ZERO(&r);
    FD_SET(q.first, &r);
    EXPECT_EQ(::select(q.first + 1, &r, nullptr, nullptr, &tv), 0);
    EXPECT_FALSE(FD_ISSET(q.first, &r));
    epoll_event out[2];
    EXPECT_EQ(::epoll_wait(ep, out, 2, 5), 0);
    EXPECT_EQ(::poll(nullptr, 0, 5), 0);
    ::close(ep);
    close_both(p);
    close_both(q);
  });
}

TEST_P(patch, sleeps_park) {
  run([] {
    auto before = green::patch::get_stats().sleeps;
    using sleeper = std::function<void()>;
    for (sleeper s : std::vector<sleeper>{[] {
                                            timespec ts{0, 20000000};
                                            EXPECT_EQ(::nanosleep(&ts, nullptr), 0);
                                          },
                                          [] {
                                            timespec ts{0, 20000000};
                                            EXPECT_EQ(::clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, nullptr), 0);
                                          },
                                          [] {
                                            timespec now{};
                                            ::clock_gettime(CLOCK_REALTIME, &now);
                                            now.tv_nsec += 20000000;
                                            if (now.tv_nsec >= 1000000000) now.tv_sec += 1, now.tv_nsec -= 1000000000;
                                            EXPECT_EQ(::clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &now, nullptr),
                                                      0);
                                          },
                                          [] { EXPECT_EQ(::usleep(20000), 0); }, [] { EXPECT_EQ(::sleep(1), 0u); }}) {
      // Another fiber (this main one) runs while it sleeps and sees it
      // parked in the sleep: on one worker, only possible if it parked.
      // (Formerly the sleeper also checked a flag main set after seeing
      // it parked, which a main thread descheduled for 20 ms failed.)
      auto f = green::spawn(s);
      wait_parked(f, "patch:sleep");
      f.join();
    }
    EXPECT_EQ(green::patch::get_stats().sleeps, before + 5);
  });
}

TEST_P(patch, program_nonblocking_fds_keep_eagain) {
  run([] {
    auto before = green::patch::get_stats().parks;
    char b[4];
    auto p = make_pipe(O_NONBLOCK);
    EXPECT_EQ(capture([&] { return ::read(p.first, b, 4); }), (outcome{-1, EAGAIN}));
    close_both(p);
    auto s = make_socketpair();
    ::fcntl(s.first, F_SETFL, ::fcntl(s.first, F_GETFL) | O_NONBLOCK);
    EXPECT_EQ(capture([&] { return ::recv(s.first, b, 4, 0); }), (outcome{-1, EAGAIN}));
    int on = 1;
    ::ioctl(s.second, FIONBIO, &on);
    EXPECT_EQ(capture([&] { return ::read(s.second, b, 4); }), (outcome{-1, EAGAIN}));
    close_both(s);
    sockaddr_in a{};
    int l = listener(&a, SOCK_NONBLOCK);
    EXPECT_EQ(capture([&] { return ::accept(l, nullptr, nullptr); }), (outcome{-1, EAGAIN}));
    int c = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    auto o = capture([&] { return ::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a); });
    EXPECT_TRUE(o == (outcome{-1, EINPROGRESS}) || o == (outcome{0, 0})) << o;
    ::close(c);
    ::close(l);
    EXPECT_EQ(green::patch::get_stats().parks, before);
  });
}

TEST_P(patch, so_rcvtimeo_and_so_sndtimeo_become_eagain) {
  run([] {
    auto s = make_socketpair();
    timeval tv{0, 20000};
    ::setsockopt(s.first, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(s.second, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    auto before = green::patch::get_stats().parks;
    char b[4];
    EXPECT_EQ(capture([&] { return ::recv(s.first, b, 4, 0); }), (outcome{-1, EAGAIN}));
    EXPECT_EQ(capture([&] { return ::read(s.first, b, 4); }), (outcome{-1, EAGAIN}));
    fill(s.second);
    EXPECT_EQ(capture([&] { return ::send(s.second, "x", 1, 0); }), (outcome{-1, EAGAIN}));
    EXPECT_GE(green::patch::get_stats().parks, before + 3);
    close_both(s);
  });
}

TEST_P(patch, close_wakes_a_waiter_with_ebadf) {
  run([] {
    auto s = make_socketpair();
    char b[4];
    expect_parks(
        "fd read",
        [&] {
          EXPECT_EQ(capture([&] { return ::read(s.first, b, 4); }), (outcome{-1, EBADF}));
        },
        [&] { ::close(s.first); });
    ::close(s.second);
  });
}

TEST_P(patch, dup_fds_share_flags_and_wake_on_dup2) {
  run([] {
    auto s = make_socketpair();
    int d = ::dup(s.first);
    char b[4];
    expect_parks(
        "fd read", [&] { EXPECT_EQ(::read(d, b, 4), 1); }, [&] { (void)!::write(s.second, "x", 1); });
    // O_NONBLOCK set through one fd shows (and acts) through its dup
    ::fcntl(s.first, F_SETFL, ::fcntl(s.first, F_GETFL) | O_NONBLOCK);
    EXPECT_NE(::fcntl(d, F_GETFL) & O_NONBLOCK, 0);
    EXPECT_EQ(capture([&] { return ::read(d, b, 4); }), (outcome{-1, EAGAIN}));
    ::fcntl(s.first, F_SETFL, ::fcntl(s.first, F_GETFL) & ~O_NONBLOCK);
    // dup2 onto an fd a fiber waits on closes it: the waiter gets EBADF
    auto p = make_pipe();
    expect_parks(
        "fd read",
        [&] {
          EXPECT_EQ(capture([&] { return ::read(d, b, 4); }), (outcome{-1, EBADF}));
        },
        [&] { ::dup2(p.first, d); });
    ::close(d);
    close_both(p);
    close_both(s);
  });
}

TEST_P(patch, resolver_runs_on_the_thread_fallback) {
  auto addrs = [] {
    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    std::set<std::string> out;
    EXPECT_EQ(::getaddrinfo("localhost", "80", &hints, &res), 0);
    for (addrinfo* a = res; a; a = a->ai_next) {
      char h[64];
      ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr, h, sizeof h);
      out.insert(h);
    }
    ::freeaddrinfo(res);
    hostent he{}, *r = nullptr;
    char buf[1024];
    int herr = 0;
    EXPECT_EQ(::gethostbyname_r("localhost", &he, buf, sizeof buf, &r, &herr), 0);
    if (r) out.insert(std::string("name:") + r->h_name);
    EXPECT_EQ(::getaddrinfo("no-such-host.invalid", nullptr, nullptr, &res) != 0, true);
    return out;
  };
  auto outside = addrs();
  auto before = green::patch::get_stats().offloads;
  auto inside = run(addrs);
  EXPECT_EQ(inside, outside);
  EXPECT_EQ(green::patch::get_stats().offloads, before + 3);
}

TEST_P(patch, disabled_means_libc_in_fibers_too) {
  run([] {
    auto s = make_socketpair();
    timeval tv{0, 10000};
    ::setsockopt(s.first, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    auto before = green::patch::get_stats().parks;
    green::patch::disable();
    char b[4];
    auto o = capture([&] { return ::recv(s.first, b, 4, 0); });  // the kernel's own timeout, on the worker
    green::patch::enable();
    EXPECT_EQ(o, (outcome{-1, EAGAIN}));
    EXPECT_EQ(green::patch::get_stats().parks, before);
    close_both(s);
  });
}

// ---------------------------------------------------------------------------
// Concurrency without timing: a plain-thread server reads one request line
// per connection and answers none until P requests are in flight at once.
// P fibers doing blocking connect/write/read can only all get answers if
// each one parked while the others ran.

class gate_server {
 public:
  explicit gate_server(int p) : p_(p) {
    lfd_ = listener(&addr_);
    t_ = std::thread([this] { loop(); });
  }
  ~gate_server() {
    t_.join();
    ::close(lfd_);
  }
  const sockaddr_in& addr() const { return addr_; }
  int max_in_flight() const { return max_; }

 private:
  void loop() {
    std::vector<int> held;
    std::vector<pollfd> conns;
    int served = 0;
    while (served < p_) {
      std::vector<pollfd> fds{{lfd_, POLLIN, 0}};
      fds.insert(fds.end(), conns.begin(), conns.end());
      ::poll(fds.data(), fds.size(), -1);
      if (fds[0].revents & POLLIN) conns.push_back({::accept(lfd_, nullptr, nullptr), POLLIN, 0});
      for (std::size_t i = 1; i < fds.size(); ++i) {
        if (!(fds[i].revents & (POLLIN | POLLHUP))) continue;
        char b[64];
        if (::read(fds[i].fd, b, sizeof b) <= 0) continue;
        held.push_back(fds[i].fd);
        conns.erase(std::find_if(conns.begin(), conns.end(), [&](const pollfd& x) { return x.fd == fds[i].fd; }));
      }
      max_ = std::max<int>(max_, static_cast<int>(held.size()));
      if (static_cast<int>(held.size()) == p_) {
        for (int fd : held) {
          (void)!::write(fd, "OK\n", 3);
          ::close(fd);
        }
        served += p_;
        held.clear();
      }
    }
  }
  int p_;
  int lfd_;
  sockaddr_in addr_{};
  int max_ = 0;
  std::thread t_;
};

TEST_P(patch, p_fibers_have_p_requests_in_flight_at_once) {
  const int p = green::testing::scaled(200);
  gate_server server(p);
  int answered = run([&] {
    std::atomic<int> ok{0};
    std::vector<green::fiber<void>> fs;
    for (int i = 0; i < p; ++i)
      fs.push_back(green::spawn([&] {
        // plain blocking socket code, as a third-party library writes it
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (::connect(fd, reinterpret_cast<const sockaddr*>(&server.addr()), sizeof(sockaddr_in)) != 0) return;
        if (::write(fd, "GET\n", 4) != 4) return;
        char b[8];
        if (::read(fd, b, sizeof b) == 3) ok.fetch_add(1);
        ::close(fd);
      }));
    for (auto& f : fs) f.join();
    return ok.load();
  });
  EXPECT_EQ(answered, p);
  EXPECT_EQ(server.max_in_flight(), p);
}

// ---------------------------------------------------------------------------
// Issue 13, item 3: a kill a patched call reports to C code as ECANCELED is
// not forgotten; the fiber raises fiber_exit at its next green suspension
// point. The green wait after the call is an event nobody sets: if the kill
// were lost, every fiber would be asleep and main's join() would raise
// deadlock_error instead of fiber_killed_error (no hang, no timing).

TEST_P(patch, kill_during_patched_read_raises_fiber_exit_at_next_green_wait) {
  run([] {
    auto p = make_pipe();  // nobody writes
    outcome got{0, 0};
    bool after_wait = false;
    green::event never;
    auto f = green::spawn([&] {
      char b[4];
      got = capture([&] { return ::read(p.first, b, 4); });
      never.wait();  // must raise fiber_exit
      after_wait = true;
    });
    wait_parked(f, "fd read");
    f.kill();
    green::testing::expect_killed(f);
    EXPECT_EQ(got, (outcome{-1, ECANCELED}));
    EXPECT_FALSE(after_wait);
    close_both(p);
  });
}

TEST_P(patch, kill_during_patched_sleep_raises_fiber_exit_at_next_green_wait) {
  run([] {
    long slept = -1;
    bool after_wait = false;
    green::event never;
    auto f = green::spawn([&] {
      slept = ::usleep(3600u * 1000000u / 4);  // 15 minutes: only the kill ends it
      never.wait();
      after_wait = true;
    });
    wait_parked(f, "patch:sleep");
    f.kill();
    green::testing::expect_killed(f);
    EXPECT_EQ(slept, 0);  // sleeps end early and return 0
    EXPECT_FALSE(after_wait);
  });
}

// The resolver's pool thread cannot be held inside getaddrinfo on demand,
// so the kill arrives first: the fiber kills itself, then calls
// getaddrinfo. Usually the offload's park sees the kill before the pool
// answers and returns `killed` (the path of a kill during the lookup: the
// job is abandoned, EAI_SYSTEM/ECANCELED); if the pool was faster, the
// lookup succeeds and the kill is still pending. Either way the next green
// wait must raise fiber_exit. Repeated, so the first path surely runs.
TEST_P(patch, kill_during_patched_getaddrinfo_raises_fiber_exit_at_next_green_wait) {
  run([] {
    constexpr int n = 20;
    std::vector<int> rc(n, -1), err(n, -1);
    std::vector<char> after_wait(n, 0);
    green::event never;
    std::vector<green::fiber<void>> fs;
    for (int i = 0; i < n; ++i)
      fs.push_back(green::spawn([&, i] {
        green::sched::current_fiber()->kill();
        addrinfo* res = nullptr;
        rc[i] = ::getaddrinfo("localhost", "80", nullptr, &res);
        err[i] = fresh_errno();
        if (rc[i] == 0) ::freeaddrinfo(res);
        never.wait();
        after_wait[i] = 1;
      }));
    int cancelled = 0;
    for (int i = 0; i < n; ++i) {
      green::testing::expect_killed(fs[i]);
      if (rc[i] != 0) {
        EXPECT_EQ(rc[i], EAI_SYSTEM);
        EXPECT_EQ(err[i], ECANCELED);
        ++cancelled;
      }
      EXPECT_FALSE(after_wait[i]);
    }
    std::printf("getaddrinfo: %d of %d lookups were cut short by the kill\n", cancelled, n);
  });
}

// A green::timeout scope that expires during a patched call: ETIMEDOUT for
// the C code, then timeout_error at the next green suspension point (the
// scope's deadline stays in the past). The read can only end by the scope.
TEST_P(patch, scope_timeout_during_patched_read_raises_timeout_error_at_next_green_wait) {
  run([] {
    auto p = make_pipe();  // nobody writes
    green::event never;
    outcome got{0, 0};
    bool raised = false;
    {
      green::timeout scope(std::chrono::milliseconds(1));
      char b[4];
      got = capture([&] { return ::read(p.first, b, 4); });
      try {
        never.wait();
      } catch (const green::timeout_error& e) {
        raised = e.owner() == &scope;
      }
    }
    EXPECT_EQ(got, (outcome{-1, ETIMEDOUT}));
    EXPECT_TRUE(raised);
    close_both(p);
  });
}

// ---------------------------------------------------------------------------
// Issue 13, item 8: a fiber that holds a thread-owned lock behaves like a
// thread. SQLite holds its recursive pthread mutex across the busy
// handler's usleep(); parking there let the fiber resume on another worker
// (the unlock then failed with EPERM and the mutex stayed owned by the old
// thread forever) and let a second fiber on the old thread into the same
// critical section (a recursive mutex admits its owner thread).

// init_recursive() makes *m a recursive pthread mutex, as SQLite's.
void init_recursive(pthread_mutex_t* m) {
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
  pthread_mutex_init(m, &a);
  pthread_mutexattr_destroy(&a);
}

TEST_P(patch, recursive_pthread_mutex_held_across_usleep_is_unlocked_by_its_owner) {
  pthread_mutex_t m;
  init_recursive(&m);
  constexpr int n = 8;
  std::vector<int> lock_rc(n, -1), unlock_rc(n, -1);
  std::atomic<int> inside{0}, overlaps{0}, moved{0};
  auto sleeps_before = green::patch::get_stats().sleeps;
  run([&] {
    std::vector<green::fiber<void>> fs;
    for (int i = 0; i < n; ++i)
      fs.push_back(green::spawn([&, i] {
        lock_rc[i] = ::pthread_mutex_lock(&m);
        int worker = green::sched::current_worker_index();
        if (inside.fetch_add(1) != 0) overlaps.fetch_add(1);
        ::usleep(1000);
        inside.fetch_sub(1);
        if (green::sched::current_worker_index() != worker) moved.fetch_add(1);
        unlock_rc[i] = ::pthread_mutex_unlock(&m);
      }));
    for (auto& f : fs) f.join();
  });
  EXPECT_EQ(lock_rc, std::vector<int>(n, 0));
  EXPECT_EQ(unlock_rc, std::vector<int>(n, 0));
  EXPECT_EQ(overlaps.load(), 0);                               // one fiber at a time in the critical section
  EXPECT_EQ(moved.load(), 0);                                  // none left its thread while holding the lock
  EXPECT_EQ(green::patch::get_stats().sleeps, sleeps_before);  // every usleep was libc's
  int free_rc = -1;
  std::thread([&] {
    free_rc = ::pthread_mutex_trylock(&m);
    if (free_rc == 0) ::pthread_mutex_unlock(&m);
  }).join();
  EXPECT_EQ(free_rc, 0);  // nobody owns it any more
  pthread_mutex_destroy(&m);
}

// The count nests (recursive locking, rwlocks, std::mutex) and returns to
// zero: once every lock is released, patched calls park again.
TEST_P(patch, thread_owned_locks_are_counted_per_fiber_and_released) {
  run([] {
    pthread_mutex_t m;
    init_recursive(&m);
    pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
    std::mutex sm;
    auto* self = green::sched::current_fiber();
    EXPECT_EQ(green::testing::thread_locks(self), 0u);
    EXPECT_EQ(::pthread_mutex_lock(&m), 0);
    EXPECT_EQ(::pthread_mutex_lock(&m), 0);  // recursive: nests
    EXPECT_EQ(::pthread_rwlock_wrlock(&rw), 0);
    sm.lock();
    EXPECT_EQ(green::testing::thread_locks(self), 4u);
    EXPECT_EQ(::pthread_mutex_trylock(&m), 0);
    EXPECT_EQ(::pthread_rwlock_trywrlock(&rw), EBUSY);  // not acquired: not counted
    EXPECT_EQ(green::testing::thread_locks(self), 5u);
    auto sleeps = green::patch::get_stats().sleeps;
    ::usleep(100);  // libc's: the fiber holds locks
    EXPECT_EQ(green::patch::get_stats().sleeps, sleeps);
    sm.unlock();
    EXPECT_EQ(::pthread_rwlock_unlock(&rw), 0);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(::pthread_mutex_unlock(&m), 0);
    EXPECT_EQ(green::testing::thread_locks(self), 0u);
    EXPECT_EQ(::pthread_mutex_unlock(&m), EPERM);  // not held: an error, and no wrap-around
    EXPECT_EQ(green::testing::thread_locks(self), 0u);
    ::usleep(100);  // patched again
    EXPECT_EQ(green::patch::get_stats().sleeps, sleeps + 1);
    pthread_mutex_destroy(&m);
    pthread_rwlock_destroy(&rw);
  });
}

}  // namespace
