// green::net sockets: fd ownership, the EAGAIN-then-wait loop, close.
//
// Roles. A socket owns one fd, always SOCK_NONBLOCK | SOCK_CLOEXEC. Every
// blocking call tries its syscall first; on EAGAIN it parks in
// sched::wait_fd() (the reactor's seam, io.hpp) and tries again (Go's
// netFD: one epoll registration per fd, edge-triggered, never re-armed).
// Timeouts, green::timeout scopes and kill all arrive as wait_fd()'s
// wake_reason; socket::wait() turns them into timed_out, timeout_error or
// fiber_exit, the same mapping every green primitive uses (raise_interrupt).
//
// Close while another fiber waits (gevent crashed on this for years). Two
// dangers: the waiter must wake, and the fd number must not be reused while
// a call still holds it (it would then wait on, or read, someone else's
// file). So, as Go's fdMutex: state_ counts calls in progress (`use`) and
// has a closed bit. close() sets the bit (new calls fail with EBADF) and, if
// calls are in progress, shuts the socket down and calls notify_close():
// notify_close() wakes a fiber already parked; shutdown() makes the socket
// permanently ready, so a fiber that got EAGAIN just before close() and is
// only now registering sees readiness at once instead of parking forever.
// Each call checks the bit after every wait and every failure and reports
// operation_canceled. Whoever drops the count to zero (close() itself, or
// the last call to return) does notify_close() + ::close(), so the reactor
// forgets the fd before its number can be reused.
//
// Cost: two uncontended atomic RMWs per call (~10 ns each here), against
// ~5 µs for a loopback round trip.
//
// Raw syscalls for the data path (sys_recvfrom / sys_sendto below). glibc's
// recvfrom()/sendto() are cancellation points: in a multi-threaded process
// each one switches asynchronous cancellation on and off around the
// syscall, two locked RMWs on the thread's cancel word, ~60 instructions per
// call (callgrind on bench/echo_bench, 10 connections: 120 of the ~1,170
// user-space instructions per round trip, while the single-threaded epoll
// server skips them). Nobody pthread_cancel()s a worker thread, and the
// patch library, when loaded, would interpose these calls too, on fds that
// are non-blocking already. syscall() is not a cancellation point.
//
// Rejected: closing at once and letting waiters see EBADF (the number may
// already belong to a new socket: the classic close/reuse race); a lock per
// socket (readers and writers of one socket must not exclude each other);
// dup2() of a dead fd over the closing one (Python's trick: an extra fd and
// syscall on every close).
#include "green/net/socket.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>
#include <utility>

namespace green::net {

namespace {
// See "Raw syscalls" in the header. Same results and errno as the libc calls.
long sys_recvfrom(int fd, void* buf, std::size_t n, sockaddr* from, socklen_t* len) noexcept {
  return ::syscall(SYS_recvfrom, fd, buf, n, 0, from, len);
}
long sys_sendto(int fd, const void* buf, std::size_t n, const sockaddr* to, socklen_t len) noexcept {
  return ::syscall(SYS_sendto, fd, buf, n, MSG_NOSIGNAL, to, len);
}

class net_error_category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "green.net"; }
  std::string message(int c) const override {
    switch (static_cast<error>(c)) {
      case error::eof:
        return "end of stream (the peer closed the connection)";
      case error::too_long:
        return "no delimiter within max_line bytes (they stay buffered)";
    }
    return "unknown green.net error";
  }
};
}  // namespace

const std::error_category& net_category() noexcept {
  static const net_error_category c;
  return c;
}

bool is_fd_exhaustion(std::error_code ec) noexcept {
  return ec == std::errc::too_many_files_open || ec == std::errc::too_many_files_open_in_system;
}

void throw_error(std::error_code ec, const char* op, const address& where) {
  std::string what = std::string("green::net: ") + op;
  if (!where.empty()) {
    what += ' ';
    what += where.to_string();
  }
  throw std::system_error(ec, what);
}

socket::socket(socket&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)),
      state_(o.state_.exchange(closed_bit, std::memory_order_relaxed)) {}  // relaxed: moves are not concurrent

socket& socket::operator=(socket&& o) noexcept {
  if (this != &o) {
    close();
    fd_ = std::exchange(o.fd_, -1);
    state_.store(o.state_.exchange(closed_bit, std::memory_order_relaxed), std::memory_order_relaxed);
  }
  return *this;
}

void socket::open(int family, int type, std::error_code& ec) noexcept {
  close();
  int fd = ::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ec.assign(errno, std::system_category());
    return;
  }
  adopt(fd);
}

void socket::open_bound(const address& at, int type, const bind_flags& f, std::error_code& ec) noexcept {
  ec.clear();
  if (at.empty()) {
    ec = std::make_error_code(std::errc::address_family_not_supported);
    return;
  }
  open(at.family(), type, ec);
  if (ec) return;
  auto set = [&](int level, int name, int v) {
    if (!ec && ::setsockopt(fd_, level, name, &v, sizeof v) != 0) ec.assign(errno, std::system_category());
  };
  if (f.reuse_address) set(SOL_SOCKET, SO_REUSEADDR, 1);
  if (f.reuse_port) set(SOL_SOCKET, SO_REUSEPORT, 1);
  if (f.v6_only && at.is_v6()) set(IPPROTO_IPV6, IPV6_V6ONLY, *f.v6_only ? 1 : 0);
  if (!ec && ::bind(fd_, at.data(), at.size()) != 0) ec.assign(errno, std::system_category());
  if (ec) close();
}

void socket::adopt(int fd) noexcept {
  fd_ = fd;
  state_.store(0, std::memory_order_release);  // release: publishes fd_ to threads that see it open
}

bool socket::is_open() const noexcept { return (state_.load(std::memory_order_acquire) & closed_bit) == 0; }
bool socket::closed() const noexcept { return !is_open(); }

socket::use::use(const socket& s) noexcept : s_(&s) {
  std::uint32_t st = s.state_.load(std::memory_order_relaxed);
  do {
    if (st & closed_bit) {
      s_ = nullptr;
      return;
    }
    // acquire: pairs with adopt()'s release, so fd_ is the opened one
  } while (!s.state_.compare_exchange_weak(st, st + 1, std::memory_order_acquire, std::memory_order_relaxed));
}

socket::use::~use() {
  if (s_) s_->release();
}

void socket::release() const noexcept {
  // acq_rel: the final closer must see every call's effects, and they its
  if (state_.fetch_sub(1, std::memory_order_acq_rel) == (closed_bit | 1)) final_close();
}

void socket::final_close() const noexcept {
  sched::notify_close(fd_);  // the reactor forgets the fd before its number can be reused
  ::close(fd_);              // errors (EINTR, EIO) leave nothing to retry on Linux: the fd is gone
}

void socket::close() noexcept {
  std::uint32_t st = state_.load(std::memory_order_relaxed);
  do {
    if (st & closed_bit) return;
    // acq_rel: like a use (we hold the fd while we shut it down) and publishes the bit
  } while (
      !state_.compare_exchange_weak(st, (st + 1) | closed_bit, std::memory_order_acq_rel, std::memory_order_relaxed));
  if (st != 0) {  // calls in progress: wake them (see the design header)
    ::shutdown(fd_, SHUT_RDWR);
    sched::notify_close(fd_);
  }
  release();
}

bool socket::wait(sched::io_dir dir, deadline d, std::error_code& ec) const {
  sched::wake_reason r = detail::scoped_wait_fd(fd_, dir, d.when());
  switch (r) {
    case sched::wake_reason::notified:
      if (closed()) return canceled(ec), false;
      return true;
    case sched::wake_reason::timeout:
      ec = std::make_error_code(std::errc::timed_out);
      return false;
    case sched::wake_reason::closed:
      return canceled(ec), false;
    default:
      detail::raise_interrupt(r);  // killed, scope_timeout, deadlock: throws
      return canceled(ec), false;
  }
}

long socket::canceled(std::error_code& ec) noexcept {
  ec = std::make_error_code(std::errc::operation_canceled);
  return -1;
}

long socket::failed(std::error_code& ec, int err) noexcept {
  ec.assign(err, std::system_category());
  return -1;
}

std::size_t socket::receive_(void* buf, std::size_t n, address* from, deadline d, std::error_code& ec) const {
  ec.clear();
  use u(*this);
  if (!u.ok()) {
    bad_fd(ec);
    return 0;
  }
  sockaddr_storage ss;  // filled by the kernel up to `len`; read only then
  socklen_t len = sizeof ss;
  long r = io(sched::io_dir::read, d, ec, [&] {
    len = sizeof ss;
    return sys_recvfrom(fd_, buf, n, from ? reinterpret_cast<sockaddr*>(&ss) : nullptr, from ? &len : nullptr);
  });
  if (r == 0 && n > 0 && closed()) r = canceled(ec);  // close() shut it down: not the peer's end of stream
  if (r < 0) return 0;
  if (from) *from = address::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
  return static_cast<std::size_t>(r);
}

// One use covers the wait and the read (two RMWs per read, not four).
std::size_t socket::stream_receive_(void* buf, std::size_t n, deadline d, std::error_code& ec) const {
  ec.clear();
  use u(*this);
  if (!u.ok()) {
    bad_fd(ec);
    return 0;
  }
  // Zero bytes: done at once. recv() of 0 on a stream socket with nothing
  // queued fails with EAGAIN, and the loop below would wait for data.
  if (n == 0) return 0;
  if (drained_.load(std::memory_order_relaxed) && !wait(sched::io_dir::read, d, ec)) return 0;
  long r = io(sched::io_dir::read, d, ec, [&] { return sys_recvfrom(fd_, buf, n, nullptr, nullptr); });
  if (r == 0 && closed()) r = canceled(ec);  // close() shut it down: not the peer's end of stream
  drained_.store(r > 0 && static_cast<std::size_t>(r) < n, std::memory_order_relaxed);
  return r < 0 ? 0 : static_cast<std::size_t>(r);
}

std::size_t socket::send_(const void* buf, std::size_t n, const address* to, deadline d, std::error_code& ec) const {
  ec.clear();
  use u(*this);
  if (!u.ok()) {
    bad_fd(ec);
    return 0;
  }
  long r = io(sched::io_dir::write, d, ec,
              [&] { return sys_sendto(fd_, buf, n, to ? to->data() : nullptr, to ? to->size() : 0); });
  return r < 0 ? 0 : static_cast<std::size_t>(r);
}

long socket::bad_fd(std::error_code& ec) noexcept {
  ec = std::make_error_code(std::errc::bad_file_descriptor);
  return -1;
}

address socket::local_address() const {
  use u(*this);
  std::error_code ec;
  if (!u.ok()) bad_fd(ec), throw_error(ec, "getsockname", {});
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
    throw_error(std::error_code(errno, std::system_category()), "getsockname", {});
  return address::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
}

void socket::set_option(int level, int name, int value, const char* what) {
  use u(*this);
  if (!u.ok()) throw_error(std::make_error_code(std::errc::bad_file_descriptor), what, {});
  if (::setsockopt(fd_, level, name, &value, sizeof value) != 0)
    throw_error(std::error_code(errno, std::system_category()), what, {});
}

int socket::get_option(int level, int name, const char* what) const {
  use u(*this);
  if (!u.ok()) throw_error(std::make_error_code(std::errc::bad_file_descriptor), what, {});
  int value = 0;
  socklen_t len = sizeof value;
  if (::getsockopt(fd_, level, name, &value, &len) != 0)
    throw_error(std::error_code(errno, std::system_category()), what, {});
  return value;
}

void socket::set_receive_buffer_size(int bytes) { set_option(SOL_SOCKET, SO_RCVBUF, bytes, "setsockopt SO_RCVBUF"); }
int socket::receive_buffer_size() const { return get_option(SOL_SOCKET, SO_RCVBUF, "getsockopt SO_RCVBUF"); }
void socket::set_send_buffer_size(int bytes) { set_option(SOL_SOCKET, SO_SNDBUF, bytes, "setsockopt SO_SNDBUF"); }
int socket::send_buffer_size() const { return get_option(SOL_SOCKET, SO_SNDBUF, "getsockopt SO_SNDBUF"); }

}  // namespace green::net
