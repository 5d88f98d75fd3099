// Internals shared by the patch library's I/O files: fd_state.cpp, wait.cpp,
// rw.cpp, socket.cpp and poll.cpp (patch.cpp's header maps them).
//
// Everything declared here is hidden: these are the library's own helpers,
// not part of what it exports (the C face, green::patch's API and the
// symbols patch_detail.hpp declares, whose export predates this split).
// Nothing here holds shared state except fd_state.cpp's table, reached only
// through nonblock_scope and user_nonblocking().
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <vector>

#include "patch_detail.hpp"

// GREEN_PASS(name, args...) starts every interposed function: not on a
// fiber (or disabled) -> libc's own, untouched.
#define GREEN_PASS(name, ...) \
  if (!::green::patch::detail::on_fiber()) return GREEN_REAL(name)(__VA_ARGS__)

// libc's functions that more than one of these files calls. Declared
// before the hidden section: the real_* objects keep their default
// visibility, as every GREEN_DEFINE_REAL's has.
namespace green::patch::detail {
GREEN_DECLARE_REAL(poll);     // poll.cpp; rw.cpp and socket.cpp probe with it
GREEN_DECLARE_REAL(close);    // fd_state.cpp; poll.cpp closes its epoll set
GREEN_DECLARE_REAL(recv);     // socket.cpp; read() on a socket
GREEN_DECLARE_REAL(recvmsg);  // socket.cpp; readv() on a socket
GREEN_DECLARE_REAL(send);     // socket.cpp; write() on a socket
GREEN_DECLARE_REAL(sendmsg);  // socket.cpp; writev() on a socket
}  // namespace green::patch::detail

#pragma GCC visibility push(hidden)

namespace green::patch::detail {

using sched::clock;
using sched::io_dir;
using sched::no_deadline;
using sched::time_point;
using sched::wake_reason;

// ---------------------------------------------------------------------------
// fd_state.cpp: the temporary O_NONBLOCK of connect/accept.

struct fd_slot;

// user_nonblocking() is true when the program itself set O_NONBLOCK on fd
// (the flag connect/accept hold meanwhile is not the program's). Any thread.
bool user_nonblocking(int fd) noexcept;

// nonblock_scope makes fd non-blocking for its lifetime, unless the program
// already did (then user_nonblock is true and nothing changed). Any thread;
// scopes on one fd from several threads nest (fd_state.cpp's invariants).
class nonblock_scope {
 public:
  explicit nonblock_scope(int fd) noexcept;
  ~nonblock_scope();
  nonblock_scope(const nonblock_scope&) = delete;
  nonblock_scope& operator=(const nonblock_scope&) = delete;
  bool user_nonblock = false;

 private:
  int fd_;
  fd_slot* slot_;
  int saved_ = 0;
};

// ---------------------------------------------------------------------------
// wait.cpp: parking, deadlines and sleeps.

// park_error() maps why a wait ended to the errno the call reports, or 0
// when the caller should retry. A kill is re-armed (ended_by()). Fiber
// context only.
int park_error(wake_reason r, int on_timeout) noexcept;

// wait_ready() parks until fd is ready for dir; 0 to retry, or an errno.
// Fiber context only.
int wait_ready(int fd, io_dir dir, time_point deadline, int on_timeout = EAGAIN) noexcept;

// span is a C timeout's seconds and nanoseconds as one duration that cannot
// overflow (tv_sec may be near its maximum); deadlines made from it
// saturate to no_deadline (green/detail/deadline.hpp), so "very long" never
// becomes "now".
using span = std::chrono::duration<long double>;
span to_span(time_t sec, long nsec) noexcept;

// after() is the deadline of a timeval timeout starting now (0: none).
time_point after(const timeval& tv) noexcept;
// deadline_ms() is poll's and epoll_wait's millisecond timeout (< 0: none).
time_point deadline_ms(int ms) noexcept;
// deadline_ts() is a timespec timeout (null: none).
time_point deadline_ts(const timespec* ts) noexcept;
// valid_ts() is false for a timespec the kernel rejects with EINVAL.
bool valid_ts(const timespec* ts) noexcept;

// sock_deadline() is the deadline SO_RCVTIMEO / SO_SNDTIMEO gives a call
// starting now.
time_point sock_deadline(int fd, int opt) noexcept;

// sleep_until() parks until tp; false if a kill or scope timeout ended it.
// Fiber context only.
bool sleep_until(time_point tp) noexcept;

// ---------------------------------------------------------------------------
// socket.cpp: the socket path, which read/write take first.

// sock_op() runs op(MSG_DONTWAIT) until it does not report EAGAIN on a
// blocking socket. op returns ssize_t with get_errno() set on failure.
// Fiber context only.
template <class Op>
ssize_t sock_op(int fd, int timeo_opt, Op&& op) {
  ssize_t r = op(MSG_DONTWAIT);
  if (r >= 0 || get_errno() != EAGAIN) return r;
  if (user_nonblocking(fd)) {
    set_errno(EAGAIN);
    return -1;
  }
  time_point deadline = sock_deadline(fd, timeo_opt);
  const io_dir dir = timeo_opt == SO_RCVTIMEO ? io_dir::read : io_dir::write;
  for (;;) {
    if (int e = wait_ready(fd, dir, deadline)) {
      set_errno(e);
      return -1;
    }
    r = op(MSG_DONTWAIT);
    if (r >= 0 || get_errno() != EAGAIN) return r;
  }
}

// iov_cursor walks an iovec array as bytes are consumed.
struct iov_cursor {
  std::vector<iovec> v;
  std::size_t i = 0;
  iov_cursor(const iovec* iov, int n) : v(iov, iov + std::max(n, 0)) {}
  void advance(std::size_t n) {
    while (n && i < v.size()) {
      std::size_t k = std::min(n, v[i].iov_len);
      v[i].iov_base = static_cast<char*>(v[i].iov_base) + k;
      v[i].iov_len -= k;
      n -= k;
      if (v[i].iov_len == 0) ++i;
    }
    while (i < v.size() && v[i].iov_len == 0) ++i;
  }
  bool done() const { return i >= v.size(); }
  iovec* data() { return v.data() + i; }
  int count() const { return static_cast<int>(v.size() - i); }
};

// iov_total() is the byte count of n iovecs.
std::size_t iov_total(const iovec* iov, int n) noexcept;

// send_rest() finishes a send that went out short on a blocking stream
// socket, as the blocking call would: everything, or what went out before
// an error or timeout. `sent` bytes of `cur` are gone already. Fiber
// context only.
ssize_t send_rest(int fd, iov_cursor& cur, ssize_t sent, int flags, const sockaddr* to, socklen_t tolen);

// send_rest_of() is send_rest() for one buffer of n bytes, r of them sent.
ssize_t send_rest_of(int fd, const void* buf, std::size_t n, ssize_t r, int flags, const sockaddr* to, socklen_t tolen);

}  // namespace green::patch::detail

#pragma GCC visibility pop
