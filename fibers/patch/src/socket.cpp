// Socket calls: recv, recvfrom, recvmsg, send, sendto, sendmsg, connect,
// accept, accept4 (and __recv_chk, __recvfrom_chk).
//
// Roles. On a fiber, each does the operation without blocking and parks on
// the reactor while the socket is not ready, so the worker runs other
// fibers. Outside a fiber (or disabled) each is libc's own.
//
// Protocol.
//   recv/send family  the call with MSG_DONTWAIT added (sock_op in
//       patch_io.hpp). EAGAIN: if the program set O_NONBLOCK itself, return
//       EAGAIN; else wait_ready() with the SO_RCVTIMEO/SO_SNDTIMEO deadline
//       (read from the kernel when the wait starts) and retry. A short send
//       on a blocking socket goes on until everything is sent (send_rest),
//       as the blocking call would; MSG_WAITALL receives until n bytes, EOF,
//       an error or the timeout (recv_all). A call that passes MSG_DONTWAIT
//       itself is libc's.
//   connect/accept    have no per-call non-blocking flag: O_NONBLOCK is set
//       for the one syscall (nonblock_scope, fd_state.cpp), then the fiber
//       waits for writability (connect: SO_ERROR says how it ended) or
//       readability (accept) and retries. A connect that outlives
//       SO_SNDTIMEO fails with EINPROGRESS, as Linux's does; an AF_UNIX
//       connect that finds the backlog full (EAGAIN) is retried when the
//       socket turns writable.
//
// Rejected: setting O_NONBLOCK on the socket for good (patch.cpp's header:
// the flag belongs to the shared open file description).
//
// No state: everything here is per call, apart from fd_state.cpp's slots.
// Fiber context on the slow path.
#include <poll.h>
#include <sys/socket.h>

#include "patch_io.hpp"

namespace green::patch::detail {

GREEN_DEFINE_REAL(recv);
GREEN_DEFINE_REAL(recvfrom);
GREEN_DEFINE_REAL(recvmsg);
GREEN_DEFINE_REAL(send);
GREEN_DEFINE_REAL(sendto);
GREEN_DEFINE_REAL(sendmsg);
GREEN_DEFINE_REAL(connect);
GREEN_DEFINE_REAL(accept);
GREEN_DEFINE_REAL(accept4);

std::size_t iov_total(const iovec* iov, int n) noexcept {
  std::size_t t = 0;
  for (int k = 0; k < n; ++k) t += iov[k].iov_len;
  return t;
}

ssize_t send_rest(int fd, iov_cursor& cur, ssize_t sent, int flags, const sockaddr* to, socklen_t tolen) {
  if (user_nonblocking(fd)) return sent;
  time_point deadline = sock_deadline(fd, SO_SNDTIMEO);
  int e0 = get_errno();
  while (!cur.done()) {
    msghdr m{};
    m.msg_name = const_cast<sockaddr*>(to);
    m.msg_namelen = tolen;
    m.msg_iov = cur.data();
    m.msg_iovlen = static_cast<std::size_t>(cur.count());
    ssize_t r = GREEN_REAL(sendmsg)(fd, &m, flags | MSG_DONTWAIT);
    if (r >= 0) {
      sent += r;
      cur.advance(static_cast<std::size_t>(r));
      continue;
    }
    if (get_errno() != EAGAIN || wait_ready(fd, io_dir::write, deadline) != 0) break;
  }
  set_errno(e0);
  return sent;
}

ssize_t send_rest_of(int fd, const void* buf, std::size_t n, ssize_t r, int flags, const sockaddr* to,
                     socklen_t tolen) {
  iovec v{const_cast<void*>(buf), n};
  iov_cursor cur(&v, 1);
  cur.advance(static_cast<std::size_t>(r));
  return send_rest(fd, cur, r, flags, to, tolen);
}

namespace {

// recv_all() is a blocking MSG_WAITALL receive: until n bytes, EOF, an
// error or the timeout (then what arrived, or -1). Fiber context only.
ssize_t recv_all(int fd, char* buf, size_t n, int flags, sockaddr* from, socklen_t* fromlen) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = sock_op(fd, SO_RCVTIMEO, [&](int f) {
      return GREEN_REAL(recvfrom)(fd, buf + got, n - got, (flags & ~MSG_WAITALL) | f, got ? nullptr : from,
                                  got ? nullptr : fromlen);
    });
    if (r < 0) return got ? static_cast<ssize_t>(got) : -1;
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  return static_cast<ssize_t>(got);
}

}  // namespace

}  // namespace green::patch::detail

// ---------------------------------------------------------------------------
// The interposed functions. Any thread; on a fiber, they may park.

using namespace green::patch::detail;  // NOLINT: this section is the library's C face

extern "C" {

ssize_t recv(int fd, void* buf, size_t n, int flags) {
  GREEN_PASS(recv, fd, buf, n, flags);
  if (flags & MSG_DONTWAIT) return GREEN_REAL(recv)(fd, buf, n, flags);
  if ((flags & MSG_WAITALL) && n > 0 && !user_nonblocking(fd))
    return recv_all(fd, static_cast<char*>(buf), n, flags, nullptr, nullptr);
  return sock_op(fd, SO_RCVTIMEO, [&](int f) { return GREEN_REAL(recv)(fd, buf, n, flags | f); });
}

ssize_t recvfrom(int fd, void* buf, size_t n, int flags, sockaddr* from, socklen_t* fromlen) {
  GREEN_PASS(recvfrom, fd, buf, n, flags, from, fromlen);
  if (flags & MSG_DONTWAIT) return GREEN_REAL(recvfrom)(fd, buf, n, flags, from, fromlen);
  if ((flags & MSG_WAITALL) && n > 0 && !user_nonblocking(fd))
    return recv_all(fd, static_cast<char*>(buf), n, flags, from, fromlen);
  return sock_op(fd, SO_RCVTIMEO, [&](int f) { return GREEN_REAL(recvfrom)(fd, buf, n, flags | f, from, fromlen); });
}

ssize_t recvmsg(int fd, msghdr* msg, int flags) {
  GREEN_PASS(recvmsg, fd, msg, flags);
  if (flags & MSG_DONTWAIT) return GREEN_REAL(recvmsg)(fd, msg, flags);
  return sock_op(fd, SO_RCVTIMEO, [&](int f) { return GREEN_REAL(recvmsg)(fd, msg, flags | f); });
}

ssize_t send(int fd, const void* buf, size_t n, int flags) {
  GREEN_PASS(send, fd, buf, n, flags);
  if (flags & MSG_DONTWAIT) return GREEN_REAL(send)(fd, buf, n, flags);
  ssize_t r = sock_op(fd, SO_SNDTIMEO, [&](int f) { return GREEN_REAL(send)(fd, buf, n, flags | f); });
  if (r >= 0 && static_cast<size_t>(r) < n) return send_rest_of(fd, buf, n, r, flags, nullptr, 0);
  return r;
}

ssize_t sendto(int fd, const void* buf, size_t n, int flags, const sockaddr* to, socklen_t tolen) {
  GREEN_PASS(sendto, fd, buf, n, flags, to, tolen);
  if (flags & MSG_DONTWAIT) return GREEN_REAL(sendto)(fd, buf, n, flags, to, tolen);
  ssize_t r = sock_op(fd, SO_SNDTIMEO, [&](int f) { return GREEN_REAL(sendto)(fd, buf, n, flags | f, to, tolen); });
  if (r >= 0 && static_cast<size_t>(r) < n) return send_rest_of(fd, buf, n, r, flags, to, tolen);
  return r;
}

ssize_t sendmsg(int fd, const msghdr* msg, int flags) {
  GREEN_PASS(sendmsg, fd, msg, flags);
  if (flags & MSG_DONTWAIT) return GREEN_REAL(sendmsg)(fd, msg, flags);
  ssize_t r = sock_op(fd, SO_SNDTIMEO, [&](int f) { return GREEN_REAL(sendmsg)(fd, msg, flags | f); });
  std::size_t total = iov_total(msg->msg_iov, static_cast<int>(msg->msg_iovlen));
  if (r >= 0 && static_cast<std::size_t>(r) < total) {
    iov_cursor cur(msg->msg_iov, static_cast<int>(msg->msg_iovlen));
    cur.advance(static_cast<size_t>(r));
    // the ancillary data went with the first part
    return send_rest(fd, cur, r, flags, static_cast<const sockaddr*>(msg->msg_name), msg->msg_namelen);
  }
  return r;
}

int connect(int fd, const sockaddr* addr, socklen_t len) {
  GREEN_PASS(connect, fd, addr, len);
  int r, err;
  {
    nonblock_scope nb(fd);
    r = GREEN_REAL(connect)(fd, addr, len);
    if (nb.user_nonblock) return r;
    err = get_errno();
  }
  if (r == 0) return 0;
  if (err != EINPROGRESS && err != EAGAIN) {  // EAGAIN: a full AF_UNIX backlog
    set_errno(err);
    return -1;
  }
  green::sched::time_point deadline = sock_deadline(fd, SO_SNDTIMEO);
  for (;;) {
    // a connect that outlives SO_SNDTIMEO fails with EINPROGRESS, as Linux's
    if (int e = wait_ready(fd, io_dir::write, deadline, EINPROGRESS)) {
      set_errno(e);
      return -1;
    }
    if (err == EAGAIN) {  // AF_UNIX: try again now that there is room
      nonblock_scope nb(fd);
      r = GREEN_REAL(connect)(fd, addr, len);
      if (r == 0) return 0;
      if (get_errno() != EAGAIN) return -1;
      continue;
    }
    pollfd p{fd, POLLOUT, 0};
    if (GREEN_REAL(poll)(&p, 1, 0) == 0) continue;  // spurious
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0) return -1;
    if (soerr == 0) return 0;
    set_errno(soerr);
    return -1;
  }
}

int accept4(int fd, sockaddr* addr, socklen_t* len, int flags) {
  GREEN_PASS(accept4, fd, addr, len, flags);
  green::sched::time_point deadline = green::sched::no_deadline;
  bool have_deadline = false;
  for (;;) {
    int r, err;
    {
      nonblock_scope nb(fd);
      r = GREEN_REAL(accept4)(fd, addr, len, flags);
      if (nb.user_nonblock) return r;
      err = get_errno();
    }
    if (r >= 0) return r;
    if (err != EAGAIN) {
      set_errno(err);
      return -1;
    }
    if (!have_deadline) {
      deadline = sock_deadline(fd, SO_RCVTIMEO);
      have_deadline = true;
    }
    if (int e = wait_ready(fd, io_dir::read, deadline)) {
      set_errno(e);
      return -1;
    }
  }
}

int accept(int fd, sockaddr* addr, socklen_t* len) {
  GREEN_PASS(accept, fd, addr, len);
  return accept4(fd, addr, len, 0);
}

// _FORTIFY_SOURCE entry points: checked, then the patched call.
[[noreturn]] void __chk_fail() noexcept;
ssize_t __recv_chk(int fd, void* buf, size_t n, size_t buflen, int flags) {
  if (n > buflen) __chk_fail();
  return recv(fd, buf, n, flags);
}
ssize_t __recvfrom_chk(int fd, void* buf, size_t n, size_t buflen, int flags, sockaddr* from, socklen_t* fromlen) {
  if (n > buflen) __chk_fail();
  return recvfrom(fd, buf, n, flags, from, fromlen);
}

}  // extern "C"
