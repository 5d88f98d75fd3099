// The read/write family: read, readv, write, writev (and __read_chk).
//
// Roles. These take any fd. On a fiber each first tries the socket path
// (socket.cpp's sock_op with MSG_DONTWAIT: read/readv/write/writev become
// recv/recvmsg/send/sendmsg, the same operation on a socket); ENOTSOCK
// sends it down the file path here, for pipes, FIFOs, ttys and the like.
//
// Protocol, file path: a zero-timeout poll() probe. Not ready and the
// program's fd is blocking: wait_ready() (no deadline: files have no
// SO_*TIMEO), probe again. Ready, hung up, in error or a bad fd: the real
// call, which no longer blocks (or reports the error itself). A write to a
// blocking FIFO larger than PIPE_BUF goes in PIPE_BUF pieces, each after a
// POLLOUT probe: POLLOUT means a pipe buffer slot is free, so a piece never
// blocks; smaller writes stay one call and keep the kernel's atomicity.
// A short write on a blocking socket goes on until everything is sent
// (send_rest), as the blocking call would.
//
// Order: the socket path goes first, being the hot one; on a file it costs
// one failed syscall (ENOTSOCK), where asking fstat() first would cost one
// on every call. A zero-length call is libc's at once: nothing to wait for.
//
// No state: everything here is per call. Fiber context on the slow path.
#include <sys/stat.h>
#include <sys/uio.h>
#include <climits>

#include "patch_io.hpp"

namespace green::patch::detail {

GREEN_DEFINE_REAL(read);
GREEN_DEFINE_REAL(write);
GREEN_DEFINE_REAL(readv);
GREEN_DEFINE_REAL(writev);

namespace {

// file_op() is the non-socket path: probe readiness with poll(0), wait
// while not ready on a blocking fd, then run the real call. Fiber context
// only.
template <class Op>
ssize_t file_op(int fd, io_dir dir, Op&& op) {
  const short ev = dir == io_dir::read ? POLLIN : POLLOUT;
  bool checked = false;
  int e = get_errno();
  for (;;) {
    pollfd p{fd, ev, 0};
    if (GREEN_REAL(poll)(&p, 1, 0) != 0) break;  // ready, hung up, error or bad fd: the call says which
    if (!checked) {
      checked = true;
      if (user_nonblocking(fd)) break;
    }
    if (int err = wait_ready(fd, dir, no_deadline)) {
      set_errno(err);
      return -1;
    }
  }
  set_errno(e);
  return op();
}

bool is_fifo(int fd) noexcept {
  struct stat st;
  int e = get_errno();
  bool r = ::fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
  set_errno(e);
  return r;
}

// file_write() writes iov to a non-socket fd, in PIPE_BUF pieces when it
// is a large write to a blocking FIFO (the header). Fiber context only.
ssize_t file_write(int fd, const iovec* iov, int n) {
  std::size_t total = iov_total(iov, n);
  if (total <= PIPE_BUF || !is_fifo(fd) || user_nonblocking(fd))
    return file_op(fd, io_dir::write, [&] { return GREEN_REAL(writev)(fd, iov, n); });
  iov_cursor cur(iov, n);
  ssize_t done = 0;
  while (!cur.done()) {
    // a slice of at most PIPE_BUF bytes
    std::vector<iovec> piece;
    std::size_t room = PIPE_BUF;
    for (int k = 0; k < cur.count() && room; ++k) {
      iovec v = cur.data()[k];
      v.iov_len = std::min(v.iov_len, room);
      room -= v.iov_len;
      piece.push_back(v);
    }
    ssize_t r = file_op(fd, io_dir::write,
                        [&] { return GREEN_REAL(writev)(fd, piece.data(), static_cast<int>(piece.size())); });
    if (r < 0) return done > 0 ? done : -1;
    done += r;
    cur.advance(static_cast<std::size_t>(r));
  }
  return done;
}

// as_msg() is a msghdr carrying iov alone, for recvmsg/sendmsg.
msghdr as_msg(const iovec* iov, int cnt) noexcept {
  msghdr m{};
  m.msg_iov = const_cast<iovec*>(iov);
  m.msg_iovlen = static_cast<std::size_t>(cnt);
  return m;
}

}  // namespace

}  // namespace green::patch::detail

// ---------------------------------------------------------------------------
// The interposed functions. Any thread; on a fiber, they may park.

using namespace green::patch::detail;  // NOLINT: this section is the library's C face

extern "C" {

ssize_t read(int fd, void* buf, size_t n) {
  GREEN_PASS(read, fd, buf, n);
  if (n == 0) return GREEN_REAL(read)(fd, buf, n);
  ssize_t r = sock_op(fd, SO_RCVTIMEO, [&](int f) { return GREEN_REAL(recv)(fd, buf, n, f); });
  if (r >= 0 || get_errno() != ENOTSOCK) return r;
  return file_op(fd, io_dir::read, [&] { return GREEN_REAL(read)(fd, buf, n); });
}

ssize_t readv(int fd, const iovec* iov, int cnt) {
  GREEN_PASS(readv, fd, iov, cnt);
  if (cnt <= 0 || iov_total(iov, cnt) == 0) return GREEN_REAL(readv)(fd, iov, cnt);
  ssize_t r = sock_op(fd, SO_RCVTIMEO, [&](int f) {
    msghdr m = as_msg(iov, cnt);
    return GREEN_REAL(recvmsg)(fd, &m, f);
  });
  if (r >= 0 || get_errno() != ENOTSOCK) return r;
  return file_op(fd, io_dir::read, [&] { return GREEN_REAL(readv)(fd, iov, cnt); });
}

ssize_t write(int fd, const void* buf, size_t n) {
  GREEN_PASS(write, fd, buf, n);
  if (n == 0) return GREEN_REAL(write)(fd, buf, n);
  ssize_t r = sock_op(fd, SO_SNDTIMEO, [&](int f) { return GREEN_REAL(send)(fd, buf, n, f); });
  if (r >= 0 && static_cast<size_t>(r) < n) return send_rest_of(fd, buf, n, r, 0, nullptr, 0);
  if (r >= 0 || get_errno() != ENOTSOCK) return r;
  iovec v{const_cast<void*>(buf), n};
  return file_write(fd, &v, 1);
}

ssize_t writev(int fd, const iovec* iov, int cnt) {
  GREEN_PASS(writev, fd, iov, cnt);
  std::size_t total = cnt > 0 ? iov_total(iov, cnt) : 0;
  if (total == 0) return GREEN_REAL(writev)(fd, iov, cnt);
  ssize_t r = sock_op(fd, SO_SNDTIMEO, [&](int f) {
    msghdr m = as_msg(iov, cnt);
    return GREEN_REAL(sendmsg)(fd, &m, f);
  });
  if (r >= 0 && static_cast<std::size_t>(r) < total) {
    iov_cursor cur(iov, cnt);
    cur.advance(static_cast<size_t>(r));
    return send_rest(fd, cur, r, 0, nullptr, 0);
  }
  if (r >= 0 || get_errno() != ENOTSOCK) return r;
  return file_write(fd, iov, cnt);
}

// _FORTIFY_SOURCE entry point: checked, then the patched call.
[[noreturn]] void __chk_fail() noexcept;
ssize_t __read_chk(int fd, void* buf, size_t n, size_t buflen) {
  if (n > buflen) __chk_fail();
  return read(fd, buf, n);
}

}  // extern "C"
