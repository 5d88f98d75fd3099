// The fd-readiness seam (green/sched/io.hpp): parking on fds, readiness,
// timeouts, kill, close-while-waiting, stale events for reused fd numbers,
// and the plain-thread path.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <numeric>
#include <vector>

#include <green/sched/io.hpp>

#include "test_util.hpp"

using namespace std::chrono_literals;
using green::sched::io_dir;
using green::sched::wait_fd;
using green::sched::wake_reason;

namespace {

struct sock_pair {
  int fd[2] = {-1, -1};
  sock_pair() {
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fd) != 0)
      throw std::system_error(errno, std::generic_category(), "socketpair");
  }
  ~sock_pair() { close_both(); }
  void close_one(int i) {
    if (fd[i] >= 0) {
      green::sched::notify_close(fd[i]);
      ::close(fd[i]);
      fd[i] = -1;
    }
  }
  void close_both() {
    close_one(0);
    close_one(1);
  }
};

// read_byte() reads one byte the way sockets do: try, wait on EAGAIN, retry.
int read_byte(int fd, green::sched::time_point deadline = green::sched::no_deadline) {
  for (;;) {
    char c;
    ssize_t n = ::read(fd, &c, 1);
    if (n == 1) return static_cast<unsigned char>(c);
    if (n == 0) return -1;  // EOF
    if (errno != EAGAIN) return -2;
    wake_reason r = wait_fd(fd, io_dir::read, deadline);
    if (r == wake_reason::closed) return -3;
    if (r != wake_reason::notified) return -4;
  }
}

int open_fds() {
  int n = 0;
  for (int fd = 0; fd < 4096; ++fd)
    if (::fcntl(fd, F_GETFD) != -1) ++n;
  return n;
}

}  // namespace

GREEN_WORKER_SUITE(io_test);

TEST_P(io_test, reader_parks_until_a_fiber_writes) {
  run([] {
    sock_pair sp;
    auto reader = green::spawn([&] { return read_byte(sp.fd[0]); });
    green::testing::wait_parked(reader, "fd read");
    char c = 'x';
    ASSERT_EQ(::write(sp.fd[1], &c, 1), 1);
    EXPECT_EQ(reader.join(), 'x');
  });
}

TEST_P(io_test, many_fibers_wait_on_many_fds_and_each_gets_its_byte) {
  run([] {
    const int n = green::testing::scaled(200);
    std::vector<sock_pair> pairs(static_cast<std::size_t>(n));
    std::vector<green::fiber<int>> readers;
    for (int i = 0; i < n; ++i) readers.push_back(green::spawn([&, i] { return read_byte(pairs[i].fd[0]); }));
    for (auto& r : readers) green::testing::wait_parked(r, "fd read");
    EXPECT_EQ(green::sched::io_waiters(), static_cast<std::size_t>(n));
    // Write in reverse order from other fibers.
    std::vector<green::fiber<void>> writers;
    for (int i = n - 1; i >= 0; --i)
      writers.push_back(green::spawn([&, i] {
        char c = static_cast<char>(i % 128);
        ASSERT_EQ(::write(pairs[i].fd[1], &c, 1), 1);
      }));
    for (auto& w : writers) w.join();
    for (int i = 0; i < n; ++i) EXPECT_EQ(readers[i].join(), i % 128);
    EXPECT_EQ(green::sched::io_waiters(), 0u);
  });
}

TEST_P(io_test, readiness_before_the_wait_is_not_lost) {
  run([] {
    sock_pair sp;
    // Register the fd (first wait times out), then make it ready with no
    // waiter: the edge is recorded and the next wait returns at once.
    EXPECT_EQ(wait_fd(sp.fd[0], io_dir::read, green::sched::clock::now() + 1ms), wake_reason::timeout);
    char c = 'y';
    ASSERT_EQ(::write(sp.fd[1], &c, 1), 1);
    green::this_fiber::sleep_for(5ms);  // the idle worker polls and harvests the edge meanwhile
    // Edge-triggered: no new event will come, so only the recorded edge can
    // end this wait (no deadline: a lost edge hangs, and the watchdog names
    // the test; a deadline would race the machine's load).
    EXPECT_EQ(wait_fd(sp.fd[0], io_dir::read), wake_reason::notified);
    EXPECT_EQ(read_byte(sp.fd[0]), 'y');
  });
}

TEST_P(io_test, writer_waits_for_room) {
  run([] {
    sock_pair sp;
    int small = 4096;
    ::setsockopt(sp.fd[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    const std::size_t total = 1 << 20;
    auto writer = green::spawn([&] {
      std::vector<char> buf(1 << 16, 'z');
      std::size_t sent = 0;
      while (sent < total) {
        ssize_t n = ::write(sp.fd[1], buf.data(), std::min(buf.size(), total - sent));
        if (n > 0) {
          sent += static_cast<std::size_t>(n);
        } else {
          ASSERT_EQ(errno, EAGAIN);
          ASSERT_EQ(wait_fd(sp.fd[1], io_dir::write), wake_reason::notified);
        }
      }
    });
    std::vector<char> buf(1 << 16);
    std::size_t got = 0;
    while (got < total) {
      ssize_t n = ::read(sp.fd[0], buf.data(), buf.size());
      if (n > 0) {
        got += static_cast<std::size_t>(n);
      } else {
        ASSERT_EQ(errno, EAGAIN);
        ASSERT_EQ(wait_fd(sp.fd[0], io_dir::read), wake_reason::notified);
      }
    }
    writer.join();
    EXPECT_EQ(got, total);
  });
}

// The runtime's wait_fd knows only its own deadline; green::timeout scopes
// are folded in by the public layer (green::detail::scoped_wait_fd, which
// green::net and the patch library use).
TEST_P(io_test, deadline_and_timeout_scope_end_the_wait) {
  run([] {
    sock_pair sp;
    EXPECT_EQ(wait_fd(sp.fd[0], io_dir::read, green::sched::clock::now() + 2ms), wake_reason::timeout);
    {
      green::timeout t(2ms);
      EXPECT_EQ(green::detail::scoped_wait_fd(sp.fd[0], io_dir::read), wake_reason::scope_timeout);
      // The scope has expired, but the seam does not interpret it.
      EXPECT_EQ(wait_fd(sp.fd[0], io_dir::read, green::sched::clock::now() + 1ms), wake_reason::timeout);
      // An own deadline earlier than the scope's stays a plain timeout.
      green::timeout later(1h);
      EXPECT_EQ(green::detail::scoped_wait_fd(sp.fd[0], io_dir::read, green::sched::clock::now() + 1ms),
                wake_reason::scope_timeout);  // t's deadline (past) is still the earliest
    }
    {
      green::timeout t(1h);
      EXPECT_EQ(green::detail::scoped_wait_fd(sp.fd[0], io_dir::read, green::sched::clock::now() + 1ms),
                wake_reason::timeout);
    }
    EXPECT_EQ(green::sched::io_waiters(), 0u);
  });
}

TEST_P(io_test, kill_ends_the_wait) {
  run([] {
    sock_pair sp;
    auto f = green::spawn([&] { return wait_fd(sp.fd[0], io_dir::read); });
    green::testing::wait_parked(f, "fd read");
    green::testing::native(f)->kill();
    EXPECT_EQ(f.join(), wake_reason::killed);
  });
}

TEST_P(io_test, close_wakes_every_waiter_with_closed) {
  run([] {
    sock_pair sp;
    auto r1 = green::spawn([&] { return read_byte(sp.fd[0]); });
    auto r2 = green::spawn([&] { return wait_fd(sp.fd[0], io_dir::read); });
    green::testing::wait_parked(r1, "fd read");
    green::testing::wait_parked(r2, "fd read");
    sp.close_one(0);
    EXPECT_EQ(r1.join(), -3);
    EXPECT_EQ(r2.join(), wake_reason::closed);
  });
}

TEST_P(io_test, a_reused_fd_number_is_not_woken_by_the_old_files_events) {
  run([] {
    auto* a = new sock_pair;
    int num = a->fd[0];
    EXPECT_EQ(wait_fd(num, io_dir::read, green::sched::clock::now() + 1ms), wake_reason::timeout);  // registers
    char c = 'a';
    ASSERT_EQ(::write(a->fd[1], &c, 1), 1);  // an edge for the old file, maybe not yet harvested
    a->close_one(0);
    // A new socket pair: its first fd very likely reuses `num`.
    sock_pair b;
    if (b.fd[0] != num && b.fd[1] != num) GTEST_SKIP() << "the fd number was not reused";
    int mine = b.fd[0] == num ? 0 : 1;
    auto r = green::spawn([&] { return wait_fd(b.fd[mine], io_dir::read, green::sched::clock::now() + 50ms); });
    EXPECT_EQ(r.join(), wake_reason::timeout);  // nothing was written to the new one
    delete a;
  });
}

TEST_P(io_test, a_plain_thread_blocks_in_poll) {
  run([] {
    sock_pair sp;
    std::atomic<int> got{0};
    std::atomic<bool> timed_out{false};
    green::testing::side_thread t([&] {
      EXPECT_EQ(wait_fd(sp.fd[0], io_dir::read, green::sched::clock::now() + 1ms), wake_reason::timeout);
      timed_out = true;
      got = read_byte(sp.fd[0]);
    });
    // Write only after the timed wait ended: on a loaded machine the thread
    // may start late, and a byte written before it waits is no timeout.
    while (!timed_out) green::this_fiber::sleep_for(1ms);
    char c = 'q';
    ASSERT_EQ(::write(sp.fd[1], &c, 1), 1);
    t.join();
    EXPECT_EQ(got.load(), 'q');
  });
}

TEST_P(io_test, waiting_on_an_fd_is_not_a_deadlock) {
  run([] {
    sock_pair sp;
    // The peer is another process (no outside thread here, which would
    // disable the detector): only a fiber waiting on an fd and no timers, and
    // the runtime must not report a deadlock.
    pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      timespec ts{0, 20 * 1000 * 1000};
      ::nanosleep(&ts, nullptr);
      char c = 'd';
      ::_exit(::write(sp.fd[1], &c, 1) == 1 ? 0 : 1);
    }
    EXPECT_EQ(read_byte(sp.fd[0]), 'd');
    int status = 0;
    ::waitpid(child, &status, 0);
    EXPECT_EQ(status, 0);
  });
}

TEST_P(io_test, no_fd_leaks_across_runtimes) {
  int before = open_fds();
  for (int i = 0; i < 3; ++i) {
    green::runtime rt(green::testing::test_config(GetParam()));
    rt.run([] {
      sock_pair sp;
      EXPECT_EQ(wait_fd(sp.fd[0], io_dir::read, green::sched::clock::now() + 1ms), wake_reason::timeout);
    });
  }
  EXPECT_EQ(open_fds(), before);
}
