// green::net — what every socket type shares: the per-call deadline, the
// library's own error codes, and the fd owner (net::socket) with its common
// options. tcp_stream, tcp_listener and udp_socket derive from socket.
//
// Outcomes every blocking call documents (throwing form / error_code form):
//   the per-call deadline passed   std::errc::timed_out
//   closed by another fiber        std::errc::operation_canceled
//   used after close()/moved-from  std::errc::bad_file_descriptor
//   a green::timeout scope expired green::timeout_error (both forms: it is
//                                  the scope's exception, not the call's)
//   the fiber was killed           green::fiber_exit (both forms)
// Thrown errors are std::system_error whose what() names the operation and
// the address ("green::net: connect 127.0.0.1:9: Connection refused").
#pragma once

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <optional>
#include <system_error>
#include <type_traits>

#include "green/detail/wait.hpp"
#include "green/net/address.hpp"
#include "green/sched/io.hpp"

namespace green::net {

// deadline is a blocking call's own time limit: none (the default), a
// duration from the call's start, or a time point of any clock. It covers
// the whole call (read_exact, write_all and connect included), not each
// syscall. Converts implicitly: s.read_some(buf, n, 50ms).
class deadline {
 public:
  deadline() noexcept = default;
  deadline(sched::time_point tp) noexcept : tp_(tp) {}
  template <class Clock, class Duration>
  deadline(std::chrono::time_point<Clock, Duration> tp) : tp_(detail::to_deadline(tp)) {}
  template <class Rep, class Period>
  deadline(std::chrono::duration<Rep, Period> d) : tp_(detail::deadline_after(d)) {}

  sched::time_point when() const noexcept { return tp_; }

 private:
  sched::time_point tp_ = sched::no_deadline;
};

// error: outcomes that have no errno. Category "green.net".
enum class error {
  eof = 1,       // the peer closed the stream before read_exact() got every byte
  too_long = 2,  // buffered_reader: no delimiter within max_line bytes
};
const std::error_category& net_category() noexcept;
inline std::error_code make_error_code(error e) noexcept { return {static_cast<int>(e), net_category()}; }

// is_fd_exhaustion() is true for EMFILE / ENFILE: the process or the system
// is out of file descriptors. An accept loop that sees it should pause and
// retry (the pending connection stays queued); nothing is wrong with the
// listener.
bool is_fd_exhaustion(std::error_code ec) noexcept;

// socket owns one non-blocking, close-on-exec socket fd. Move-only; moving
// or destroying a socket while another fiber uses it is a bug. Other
// operations may run concurrently from several fibers or threads: one
// reading, one writing, one closing.
class socket {
 public:
  socket() noexcept = default;
  socket(socket&& o) noexcept;
  socket& operator=(socket&& o) noexcept;
  ~socket() { close(); }

  // is_open() is false before open and after close(). Any thread.
  bool is_open() const noexcept;
  // close() closes the socket. A fiber blocked in a call on it wakes with
  // operation_canceled; the fd itself is released once the last call in
  // progress returns, so its number is never reused under a running call.
  // Idempotent; never fails. Any thread.
  void close() noexcept;
  // native_handle() is the fd while open, else -1.
  int native_handle() const noexcept { return is_open() ? fd_ : -1; }

  // local_address() is the address the socket is bound to (getsockname).
  address local_address() const;

  // Buffer sizes (SO_RCVBUF / SO_SNDBUF). Linux doubles what is set and
  // reports the doubled value.
  void set_receive_buffer_size(int bytes);
  int receive_buffer_size() const;
  void set_send_buffer_size(int bytes);
  int send_buffer_size() const;

  // set_option() / get_option() for any int-valued option.
  void set_option(int level, int name, int value, const char* what);
  int get_option(int level, int name, const char* what) const;

 protected:
  // open() creates the fd: socket(family, type | SOCK_NONBLOCK |
  // SOCK_CLOEXEC). Sets ec on failure.
  void open(int family, int type, std::error_code& ec) noexcept;
  // open_bound() is open() of at's family, then the options, then bind().
  // On failure the socket is closed and ec names what failed in *step.
  struct bind_flags {
    bool reuse_address = false;
    bool reuse_port = false;
    std::optional<bool> v6_only;
  };
  void open_bound(const address& at, int type, const bind_flags& f, std::error_code& ec) noexcept;
  // adopt() takes ownership of an already non-blocking, close-on-exec fd.
  void adopt(int fd) noexcept;

  // use is an in-progress call: it keeps the fd number alive (close()
  // defers the ::close until it ends). Check ok() first.
  class use {
   public:
    explicit use(const socket& s) noexcept;
    ~use();
    use(const use&) = delete;
    use& operator=(const use&) = delete;
    bool ok() const noexcept { return s_ != nullptr; }

   private:
    const socket* s_;
  };

  // io() runs op() (a non-blocking syscall returning >= 0 or -1 with errno)
  // until it does not fail with EAGAIN, waiting for `dir` readiness between
  // tries. Returns its result (a read's 0 may mean close() shut the socket
  // down: readers check closed()), or -1 with ec set: timed_out at the
  // deadline, operation_canceled if close() ran meanwhile, the errno
  // otherwise. Raises fiber_exit / timeout_error. Caller holds a use.
  template <class Op>
  long io(sched::io_dir dir, deadline d, std::error_code& ec, Op&& op) const {
    for (;;) {
      long r = op();
      if (r >= 0) return r;
      int err = errno;
      if (err == EINTR) continue;
      if (err != EAGAIN && err != EWOULDBLOCK) return closed() ? canceled(ec) : failed(ec, err);
      if (!wait(dir, d, ec)) return -1;
    }
  }
  // receive_() is one recvfrom() through io(): bytes read (0: end of
  // stream, or an empty datagram), `from` filled if given; 0 with ec set on
  // failure. send_() is one sendto() (to: null for connected sockets) with
  // MSG_NOSIGNAL. Both take their own use.
  std::size_t receive_(void* buf, std::size_t n, address* from, deadline d, std::error_code& ec) const;
  // stream_receive_() is receive_() for a byte stream: after a short read
  // (the kernel's queue was emptied) the next call waits for readiness
  // before reading, saving the read that would fail with EAGAIN (io.hpp's
  // contract makes that safe). One syscall per message in a request/response
  // exchange instead of two.
  std::size_t stream_receive_(void* buf, std::size_t n, deadline d, std::error_code& ec) const;
  std::size_t send_(const void* buf, std::size_t n, const address* to, deadline d, std::error_code& ec) const;

  // wait() waits once for readiness: false with ec set (timed_out,
  // operation_canceled); raises fiber_exit / timeout_error.
  bool wait(sched::io_dir dir, deadline d, std::error_code& ec) const;
  bool closed() const noexcept;
  static long canceled(std::error_code& ec) noexcept;
  static long failed(std::error_code& ec, int err) noexcept;
  static long bad_fd(std::error_code& ec) noexcept;  // bad_file_descriptor, -1

  int fd_ = -1;

 private:
  void acquire_close() noexcept;
  void release() const noexcept;
  void final_close() const noexcept;

  // Invariants: bit 31 = closed; bits 0-30 = calls in progress (uses) plus
  // one for a close() in progress. fd_ is fixed from open to the final
  // ::close, which whoever drops the count to zero with the bit set does.
  static constexpr std::uint32_t closed_bit = 1u << 31;
  mutable std::atomic<std::uint32_t> state_{closed_bit};
  // drained_: the last stream read was short. relaxed: a hint; a stale
  // value costs one EAGAIN read or one wait that returns at once.
  mutable std::atomic<bool> drained_{false};
};

// read_fully() calls read_some(p, k, ec) (a stream's error_code read)
// until n bytes are in buf: the count read, with ec set if it stopped early
// (error::eof at end of stream). read_exact() of every stream type.
template <class ReadSome>
std::size_t read_fully(void* buf, std::size_t n, std::error_code& ec, ReadSome&& read_some) {
  std::size_t got = 0;
  ec.clear();
  while (got < n) {
    std::size_t r = read_some(static_cast<char*>(buf) + got, n - got, ec);
    if (ec) break;
    if (r == 0) {
      ec = make_error_code(error::eof);  // not `= error::eof`: is_error_code_enum is specialized below
      break;
    }
    got += r;
  }
  return got;
}

// throw_error() throws std::system_error(ec, "green::net: <op> <addr>").
[[noreturn]] void throw_error(std::error_code ec, const char* op, const address& where);
// check() is throw_error() if ec is set.
inline void check(std::error_code ec, const char* op, const address& where) {
  if (ec) throw_error(ec, op, where);
}
// or_throw() runs f(ec), an error_code form, and is its throwing form:
// returns what f returns, or throws naming op and where.
template <class F>
auto or_throw(const char* op, const address& where, F&& f) {
  std::error_code ec;
  auto r = f(ec);
  check(ec, op, where);
  return r;
}

}  // namespace green::net

namespace std {
template <>
struct is_error_code_enum<green::net::error> : true_type {};
}  // namespace std
