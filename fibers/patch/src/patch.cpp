// green::patch — libc interposition ("monkey patching").
//
// Roles. This shared library defines read, write, poll, connect, ... ahead
// of libc in the symbol lookup order, so calls from the program and from
// every library it loaded land here first. Outside a fiber (or when
// disabled) each one is a tail call to libc's own (dlsym(RTLD_NEXT)). On a
// fiber, a call that would block parks the fiber on the runtime's reactor
// through the fd seam (sched::wait_fd) and retries; the worker runs others.
//
// Protocol, per call on a fiber:
//   sockets     do the operation with MSG_DONTWAIT (read/write/readv/writev
//               become recv/send/recvmsg/sendmsg, the same operation on a
//               socket). EAGAIN: if the program set O_NONBLOCK itself,
//               return EAGAIN; else wait_fd with the SO_RCVTIMEO/SO_SNDTIMEO
//               deadline and retry. A short send on a blocking socket goes on
//               until everything is sent, as the blocking call would.
//   other fds   (pipes, FIFOs, ttys) a zero-timeout poll() probe; not ready
//               and blocking: wait_fd, probe again; ready: do the real call,
//               which no longer blocks (pipe writes go in PIPE_BUF pieces,
//               each of which fits once poll says POLLOUT).
//   connect / accept  need a non-blocking fd: O_NONBLOCK is set for the
//               duration of the one syscall, counted per fd so concurrent
//               callers agree, and hidden from fcntl(F_GETFL) meanwhile.
//   poll / select / epoll_wait  zero-timeout probe; then one fd: wait_fd on
//               it; several: a temporary epoll set waited on with wait_fd.
//   sleeps      a park with a deadline.
// The program's O_NONBLOCK and SO_*TIMEO are read from the kernel at the
// moment they matter (the slow path), so there is no shadow fd table to go
// stale: fds from socket(), pipe(), accept(), dup(), fork(), inheritance or
// raw syscalls all behave the same. close()/dup2()/dup3() call
// sched::notify_close() first, which wakes fibers waiting on the fd (EBADF).
//
// Errors a park adds: a kill -> ECANCELED, a green::timeout scope ->
// ETIMEDOUT (C callers cannot take an exception; the fiber raises at its next
// green suspension point: the kill is re-armed, ended_by(), and the scope's
// deadline stays past), the fd closed under it -> EBADF. Sleeps end early
// (return 0) on kill or scope timeout: EINTR would make retry loops spin.
//
// Thread-owned locks (locks.cpp): while a fiber holds a pthread mutex or
// rwlock, every call here is libc's own (on_fiber() is false): the fiber
// blocks its thread like a thread would, instead of parking, migrating and
// leaving the lock owned by a thread it no longer runs on.
//
// Recursion. The runtime never reaches a patched path while it holds a
// lock: its own blocking calls (futex, epoll_wait, eventfd read) are raw or
// run on the scheduler context, where current_fiber() is null; the one it
// makes on a fiber, the eventfd write in reactor::wake(), is to a
// non-blocking fd, which passes straight through.
//
// Rejected: setting O_NONBLOCK on every fd for good and emulating blocking
// for plain threads (gevent, Go): the flag belongs to the open file
// description, shared with dup'd fds and other processes (a pipe to the
// parent shell), and "outside a fiber exactly libc's" would become an
// emulation. Rejected: a shadow table of flags fed by socket/fcntl/dup:
// every fd that arrives another way (fork, fclose's internal close, raw
// syscalls) makes it lie.
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstdarg>
#include <cstring>
#include <vector>

#include "green/detail/deadline.hpp"
#include "green/patch.hpp"
#include "patch_detail.hpp"

namespace green::patch::detail {

GREEN_DEFINE_REAL(read);
GREEN_DEFINE_REAL(write);
GREEN_DEFINE_REAL(readv);
GREEN_DEFINE_REAL(writev);
GREEN_DEFINE_REAL(recv);
GREEN_DEFINE_REAL(recvfrom);
GREEN_DEFINE_REAL(recvmsg);
GREEN_DEFINE_REAL(send);
GREEN_DEFINE_REAL(sendto);
GREEN_DEFINE_REAL(sendmsg);
GREEN_DEFINE_REAL(connect);
GREEN_DEFINE_REAL(accept);
GREEN_DEFINE_REAL(accept4);
GREEN_DEFINE_REAL(poll);
GREEN_DEFINE_REAL(ppoll);
GREEN_DEFINE_REAL(select);
GREEN_DEFINE_REAL(pselect);
GREEN_DEFINE_REAL(epoll_wait);
GREEN_DEFINE_REAL(epoll_pwait);
GREEN_DEFINE_REAL(nanosleep);
GREEN_DEFINE_REAL(clock_nanosleep);
GREEN_DEFINE_REAL(usleep);
GREEN_DEFINE_REAL(sleep);
GREEN_DEFINE_REAL(fcntl);
GREEN_DEFINE_REAL(fcntl64);
GREEN_DEFINE_REAL(ioctl);
GREEN_DEFINE_REAL(close);
GREEN_DEFINE_REAL(dup2);
GREEN_DEFINE_REAL(dup3);

int get_errno() noexcept {
  asm volatile("" ::: "memory");
  return errno;
}
void set_errno(int e) noexcept {
  asm volatile("" ::: "memory");
  errno = e;
}
void set_h_errno(int e) noexcept {
  asm volatile("" ::: "memory");
  h_errno = e;
}

std::atomic<bool> enabled_flag{true};
std::atomic<std::uint64_t> n_parks{0}, n_sleeps{0}, n_offloads{0};

bool runtime_present() noexcept {
  // The addresses of weak references are fixed at load time.
  static const bool found = &sched::current_fiber != nullptr && &sched::wait_fd != nullptr &&
                            &sched::notify_close != nullptr && &sched::prepare_park != nullptr &&
                            &sched::park != nullptr && &sched::wake != nullptr && &sched::rearm_kill != nullptr;
  return found;
}

namespace {

using sched::clock;
using sched::io_dir;
using sched::no_deadline;
using sched::time_point;
using sched::wake_reason;

__attribute__((constructor)) void init_patch() {
  const char* e = std::getenv("GREEN_PATCH");
  if (e && e[0] == '0') enabled_flag.store(false, std::memory_order_relaxed);
}

// ---------------------------------------------------------------------------
// Temporary O_NONBLOCK for connect/accept.
//
// Invariants: while users > 0 the fd's file description has O_NONBLOCK set
// by us and `saved` holds the flags the program sees (fcntl and ioctl
// FIONBIO read and write `saved`); the last user out restores `saved`.
// Slots are per fd number (fds above the table share no slot: their toggles
// are not counted, a documented limit).

struct fd_slot {
  std::atomic<bool> locked{false};
  unsigned users = 0;  // guarded by locked
  int saved = 0;       // guarded by locked
  void lock() noexcept {
    // acquire: pairs with the release in unlock()
    while (locked.exchange(true, std::memory_order_acquire))
      while (locked.load(std::memory_order_relaxed)) __builtin_ia32_pause();
  }
  void unlock() noexcept { locked.store(false, std::memory_order_release); }
};

class fd_table {
 public:
  // slot() is fd's slot, allocated on first use, or null for fds beyond
  // the table (4 Mi fds). Any thread.
  fd_slot* slot(int fd) noexcept {
    if (fd < 0) return nullptr;
    auto i = static_cast<unsigned>(fd);
    if (i / chunk >= chunks) return nullptr;
    // acquire: pairs with the release that published the chunk
    fd_slot* c = top_[i / chunk].load(std::memory_order_acquire);
    if (!c) {
      auto* fresh = new (std::nothrow) fd_slot[chunk];
      if (!fresh) return nullptr;
      // acq_rel: publish ours, or see the winner's
      if (top_[i / chunk].compare_exchange_strong(c, fresh, std::memory_order_acq_rel)) c = fresh;
      else delete[] fresh;
    }
    return &c[i % chunk];
  }
  // peek() is the slot if its chunk exists (no allocation). Any thread.
  fd_slot* peek(int fd) noexcept {
    if (fd < 0 || static_cast<unsigned>(fd) / chunk >= chunks) return nullptr;
    fd_slot* c = top_[static_cast<unsigned>(fd) / chunk].load(std::memory_order_acquire);
    return c ? &c[static_cast<unsigned>(fd) % chunk] : nullptr;
  }

 private:
  static constexpr unsigned chunk = 4096, chunks = 1024;
  std::array<std::atomic<fd_slot*>, chunks> top_{};
};
fd_table fds;

// user_flags() is fd's F_GETFL as the program set it, or -1 (get_errno() set).
int user_flags(int fd) noexcept {
  if (fd_slot* s = fds.peek(fd)) {
    s->lock();
    int f = s->users ? s->saved : GREEN_REAL(fcntl)(fd, F_GETFL);
    s->unlock();
    return f;
  }
  return GREEN_REAL(fcntl)(fd, F_GETFL);
}
bool user_nonblocking(int fd) noexcept {
  int f = user_flags(fd);
  return f >= 0 && (f & O_NONBLOCK);
}

// nonblock_scope makes fd non-blocking for its lifetime, unless the program
// already did (then user_nonblock is true and nothing changed).
class nonblock_scope {
 public:
  explicit nonblock_scope(int fd) noexcept : fd_(fd), slot_(fds.slot(fd)) {
    if (slot_) slot_->lock();
    int f = slot_ && slot_->users ? slot_->saved : GREEN_REAL(fcntl)(fd, F_GETFL);
    if (f < 0 || (f & O_NONBLOCK)) {
      user_nonblock = true;  // an error: the real call reports it
      if (slot_) slot_->unlock();
      slot_ = nullptr;
      return;
    }
    if (!slot_ || slot_->users++ == 0) GREEN_REAL(fcntl)(fd, F_SETFL, f | O_NONBLOCK);
    if (slot_) {
      slot_->saved = f;
      slot_->unlock();
    } else {
      saved_ = f;
    }
  }
  ~nonblock_scope() {
    if (user_nonblock) return;
    int e = get_errno();
    if (slot_) {
      slot_->lock();
      if (--slot_->users == 0) GREEN_REAL(fcntl)(fd_, F_SETFL, slot_->saved);
      slot_->unlock();
    } else {
      GREEN_REAL(fcntl)(fd_, F_SETFL, saved_);
    }
    set_errno(e);
  }
  nonblock_scope(const nonblock_scope&) = delete;
  nonblock_scope& operator=(const nonblock_scope&) = delete;
  bool user_nonblock = false;

 private:
  int fd_;
  fd_slot* slot_;
  int saved_ = 0;
};

// ---------------------------------------------------------------------------
// Waiting.

// park_error() maps why a wait ended to the get_errno() the call reports, or
// 0 when the caller should retry. A kill is re-armed (ended_by()).
int park_error(wake_reason r, int on_timeout) noexcept {
  switch (ended_by(r)) {
    case wake_reason::timeout: return on_timeout;
    case wake_reason::scope_timeout: return ETIMEDOUT;
    case wake_reason::killed: return ECANCELED;
    case wake_reason::closed: return EBADF;
    default: return 0;
  }
}

// wait_ready() parks until fd is ready for dir; 0 to retry, or an get_errno().
// Fiber context only.
int wait_ready(int fd, io_dir dir, time_point deadline, int on_timeout = EAGAIN) noexcept {
  n_parks.fetch_add(1, std::memory_order_relaxed);
  return park_error(green::detail::scoped_wait_fd(fd, dir, deadline), on_timeout);
}

// span() is a C timeout's seconds and nanoseconds as one duration that
// cannot overflow (tv_sec may be near its maximum); deadlines made from it
// saturate to no_deadline (green/detail/deadline.hpp), so "very long" never
// becomes "now".
using span = std::chrono::duration<long double>;
span to_span(time_t sec, long nsec) noexcept { return span(static_cast<long double>(sec) + nsec / 1e9L); }

time_point after(const timeval& tv) noexcept {
  if (tv.tv_sec == 0 && tv.tv_usec == 0) return no_deadline;  // 0 means "no timeout"
  return green::detail::deadline_after(to_span(tv.tv_sec, tv.tv_usec * 1000L));
}

// sock_deadline() is the deadline SO_RCVTIMEO / SO_SNDTIMEO gives a call
// starting now.
time_point sock_deadline(int fd, int opt) noexcept {
  timeval tv{};
  socklen_t len = sizeof tv;
  int e = get_errno();
  if (::getsockopt(fd, SOL_SOCKET, opt, &tv, &len) != 0) {
    set_errno(e);
    return no_deadline;
  }
  return after(tv);
}

io_dir dir_of(int opt) noexcept { return opt == SO_RCVTIMEO ? io_dir::read : io_dir::write; }

// sock_op() runs op(MSG_DONTWAIT) until it does not report EAGAIN on a
// blocking socket. op returns ssize_t with get_errno() set on failure.
template <class Op>
ssize_t sock_op(int fd, int timeo_opt, Op&& op) {
  ssize_t r = op(MSG_DONTWAIT);
  if (r >= 0 || get_errno() != EAGAIN) return r;
  if (user_nonblocking(fd)) {
    set_errno(EAGAIN);
    return -1;
  }
  time_point deadline = sock_deadline(fd, timeo_opt);
  for (;;) {
    if (int e = wait_ready(fd, dir_of(timeo_opt), deadline)) {
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

std::size_t iov_total(const iovec* iov, int n) {
  std::size_t t = 0;
  for (int k = 0; k < n; ++k) t += iov[k].iov_len;
  return t;
}

// send_rest() finishes a send that went out short on a blocking stream
// socket, as the blocking call would: everything, or what went out before
// an error or timeout. `sent` bytes of `cur` are gone already.
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

// file_op() is the non-socket path: probe readiness with poll(0), wait
// while not ready on a blocking fd, then run the real call.
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

// file_write() writes iov to a non-socket fd. A write to a blocking pipe
// larger than PIPE_BUF goes in PIPE_BUF pieces, each after a POLLOUT
// probe (POLLOUT guarantees a free pipe buffer slot, so a piece never
// blocks); smaller writes stay atomic.
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

// ---------------------------------------------------------------------------
// poll / select

short to_epoll(short ev) noexcept {
  unsigned e = 0;
  if (ev & (POLLIN | POLLRDNORM | POLLRDBAND)) e |= EPOLLIN;
  if (ev & POLLPRI) e |= EPOLLPRI;
  if (ev & (POLLOUT | POLLWRNORM | POLLWRBAND)) e |= EPOLLOUT;
  if (ev & POLLRDHUP) e |= EPOLLRDHUP;
  return static_cast<short>(e);
}

// sleep_until() parks until tp; false if a kill or scope timeout ended it.
bool sleep_until(time_point tp) noexcept {
  while (clock::now() < tp) {
    sched::ticket t = sched::prepare_park();
    wake_reason r = ended_by(green::detail::scoped_park(t, "patch:sleep", tp));
    if (r == wake_reason::killed || r == wake_reason::scope_timeout) return false;
  }
  return true;
}

// wait_any() parks until one of fds may be ready or the deadline passes.
// Returns 0 (probe again), -1 on timeout, or an get_errno(). Fiber context only.
int wait_any(const pollfd* p, nfds_t n, time_point deadline) noexcept {
  const pollfd* only = nullptr;
  nfds_t valid = 0;
  for (nfds_t i = 0; i < n; ++i)
    if (p[i].fd >= 0) {
      ++valid;
      only = &p[i];
    }
  if (valid == 0) {
    n_sleeps.fetch_add(1, std::memory_order_relaxed);
    if (deadline == no_deadline) {  // poll(NULL, 0, -1): wait forever, like libc (a kill ends it)
      sched::ticket t = sched::prepare_park();
      return park_error(green::detail::scoped_park(t, "patch:poll", no_deadline), -1);
    }
    return sleep_until(deadline) ? -1 : ECANCELED;
  }
  if (valid == 1) {
    short e = to_epoll(only->events);
    bool rd = e & (EPOLLIN | EPOLLPRI | EPOLLRDHUP), wr = e & EPOLLOUT;
    if (rd != wr || !e) return wait_ready(only->fd, wr ? io_dir::write : io_dir::read, deadline, -1);
  }
  // Several fds (or both directions): a temporary epoll set, readable when
  // any member is ready, waited on like any fd.
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return get_errno();
  for (nfds_t i = 0; i < n; ++i) {
    if (p[i].fd < 0) continue;
    epoll_event ev{};
    ev.events = static_cast<std::uint16_t>(to_epoll(p[i].events));
    ev.data.fd = p[i].fd;
    if (::epoll_ctl(ep, EPOLL_CTL_ADD, p[i].fd, &ev) != 0 && get_errno() == EEXIST) {
      // the same fd twice: wait for the union of its events
      for (nfds_t j = 0; j < i; ++j)
        if (p[j].fd == p[i].fd) ev.events |= static_cast<std::uint16_t>(to_epoll(p[j].events));
      ::epoll_ctl(ep, EPOLL_CTL_MOD, p[i].fd, &ev);
    }
    // other errors (a regular file: EPERM) cannot happen for an fd the
    // probe found not ready; ignoring them is safe (the next probe looks)
  }
  int r = wait_ready(ep, io_dir::read, deadline, -1);
  sched::notify_close(ep);
  GREEN_REAL(close)(ep);
  return r;
}

// fiber_poll() is poll() on a fiber with an absolute deadline.
int fiber_poll(pollfd* fds_, nfds_t n, time_point deadline, const sigset_t* mask) {
  const timespec zero{0, 0};
  int e0 = get_errno();
  for (;;) {
    int r = mask ? GREEN_REAL(ppoll)(fds_, n, &zero, mask) : GREEN_REAL(poll)(fds_, n, 0);
    if (r != 0) return r;
    if (clock::now() >= deadline) return 0;
    int e = wait_any(fds_, n, deadline);
    if (e == -1) {  // the deadline passed
      set_errno(e0);
      return 0;
    }
    if (e) {
      set_errno(e);
      return -1;
    }
  }
}

time_point deadline_ms(int ms) noexcept {
  return ms < 0 ? no_deadline : green::detail::deadline_after(std::chrono::milliseconds(ms));
}
time_point deadline_ts(const timespec* ts) noexcept {
  if (!ts) return no_deadline;
  return green::detail::deadline_after(to_span(ts->tv_sec, ts->tv_nsec));
}
bool valid_ts(const timespec* ts) noexcept {
  return ts->tv_sec >= 0 && ts->tv_nsec >= 0 && ts->tv_nsec < 1000000000;
}

// fiber_select() is select()/pselect() on a fiber: the sets become a
// pollfd list for waiting; each probe is the real call with a zero timeout
// on copies of the sets, so results and errors are select's own.
int fiber_select(int nfds, fd_set* r, fd_set* w, fd_set* x, time_point deadline, const sigset_t* mask,
                 bool use_pselect) {
  std::vector<pollfd> pl;
  for (int fd = 0; fd < nfds && fd < FD_SETSIZE; ++fd) {
    short ev = 0;
    if (r && FD_ISSET(fd, r)) ev |= POLLIN;
    if (w && FD_ISSET(fd, w)) ev |= POLLOUT;
    if (x && FD_ISSET(fd, x)) ev |= POLLPRI;
    if (ev) pl.push_back(pollfd{fd, ev, 0});
  }
  fd_set r0, w0, x0;
  if (r) r0 = *r;
  if (w) w0 = *w;
  if (x) x0 = *x;
  int e0 = get_errno();
  for (;;) {
    if (r) *r = r0;
    if (w) *w = w0;
    if (x) *x = x0;
    timespec zts{0, 0};
    timeval ztv{0, 0};
    int n = use_pselect ? GREEN_REAL(pselect)(nfds, r, w, x, &zts, mask) : GREEN_REAL(select)(nfds, r, w, x, &ztv);
    if (n != 0) return n;
    if (clock::now() >= deadline) return 0;
    int e = wait_any(pl.data(), pl.size(), deadline);
    if (e == -1) {
      if (r) FD_ZERO(r);
      if (w) FD_ZERO(w);
      if (x) FD_ZERO(x);
      set_errno(e0);
      return 0;
    }
    if (e) {
      set_errno(e);
      return -1;
    }
  }
}

int fiber_epoll_wait(int ep, epoll_event* ev, int max, int timeout, const sigset_t* mask) {
  time_point deadline = deadline_ms(timeout);
  int e0 = get_errno();
  for (;;) {
    int r = mask ? GREEN_REAL(epoll_pwait)(ep, ev, max, 0, mask) : GREEN_REAL(epoll_wait)(ep, ev, max, 0);
    if (r != 0) return r;
    if (clock::now() >= deadline) return 0;
    if (int e = wait_ready(ep, io_dir::read, deadline, -1)) {
      if (e == -1) {
        set_errno(e0);
        return 0;
      }
      set_errno(e);
      return -1;
    }
  }
}

// fiber_sleep() sleeps `d` on a fiber; returns 0 (a kill ends it early).
void fiber_sleep(span d) noexcept {
  n_sleeps.fetch_add(1, std::memory_order_relaxed);
  sleep_until(green::detail::deadline_after(d));
}

// fcntl_impl() is fcntl() with the temporary O_NONBLOCK of connect/accept
// hidden: F_GETFL shows and F_SETFL records the program's own flags.
int fcntl_impl(decltype(&::fcntl) real, int fd, int cmd, void* arg) {
  if (cmd == F_GETFL || cmd == F_SETFL) {
    if (fd_slot* s = fds.peek(fd)) {
      s->lock();
      if (s->users) {
        int r;
        if (cmd == F_GETFL) {
          r = real(fd, F_GETFL);
          if (r >= 0) r = (r & ~O_NONBLOCK) | (s->saved & O_NONBLOCK);
        } else {
          int want = static_cast<int>(reinterpret_cast<std::intptr_t>(arg));
          r = real(fd, F_SETFL, want | O_NONBLOCK);
          if (r == 0) s->saved = want;
        }
        s->unlock();
        return r;
      }
      s->unlock();
    }
  }
  return real(fd, cmd, arg);
}

}  // namespace

}  // namespace green::patch::detail

// ---------------------------------------------------------------------------
// The public API.

namespace green::patch {

void enable() noexcept { detail::enabled_flag.store(true, std::memory_order_relaxed); }
void disable() noexcept { detail::enabled_flag.store(false, std::memory_order_relaxed); }
bool enabled() noexcept { return detail::enabled_flag.load(std::memory_order_relaxed); }
bool runtime_found() noexcept { return detail::runtime_present(); }

std::span<const char* const> covered() noexcept {
  static constexpr const char* names[] = {
      "read", "write", "readv", "writev", "recv", "recvfrom", "recvmsg", "send", "sendto", "sendmsg",
      "connect", "accept", "accept4", "poll", "ppoll", "select", "pselect", "epoll_wait", "epoll_pwait",
      "nanosleep", "clock_nanosleep", "usleep", "sleep", "fcntl", "fcntl64", "ioctl", "close", "dup2",
      "dup3", "getaddrinfo", "getnameinfo", "gethostbyname", "gethostbyname2", "gethostbyaddr",
      "gethostbyname_r", "gethostbyname2_r", "gethostbyaddr_r", "__read_chk", "__recv_chk",
      "__recvfrom_chk", "__poll_chk", "pthread_mutex_lock", "pthread_mutex_trylock", "pthread_mutex_timedlock",
      "pthread_mutex_clocklock", "pthread_mutex_unlock", "pthread_rwlock_rdlock", "pthread_rwlock_tryrdlock",
      "pthread_rwlock_timedrdlock", "pthread_rwlock_clockrdlock", "pthread_rwlock_wrlock",
      "pthread_rwlock_trywrlock", "pthread_rwlock_timedwrlock", "pthread_rwlock_clockwrlock",
      "pthread_rwlock_unlock"};
  return names;
}

stats get_stats() noexcept {
  return {detail::n_parks.load(std::memory_order_relaxed), detail::n_sleeps.load(std::memory_order_relaxed),
          detail::n_offloads.load(std::memory_order_relaxed)};
}

}  // namespace green::patch

// ---------------------------------------------------------------------------
// The interposed functions. Each starts with the same test: not on a fiber
// (or disabled) -> libc's own, untouched.

using namespace green::patch::detail;  // NOLINT: this section is the library's C face
using green::sched::io_dir;

#define GREEN_PASS(name, ...) \
  if (!on_fiber()) return GREEN_REAL(name)(__VA_ARGS__)

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
    msghdr m{};
    m.msg_iov = const_cast<iovec*>(iov);
    m.msg_iovlen = static_cast<std::size_t>(cnt);
    return GREEN_REAL(recvmsg)(fd, &m, f);
  });
  if (r >= 0 || get_errno() != ENOTSOCK) return r;
  return file_op(fd, io_dir::read, [&] { return GREEN_REAL(readv)(fd, iov, cnt); });
}

ssize_t write(int fd, const void* buf, size_t n) {
  GREEN_PASS(write, fd, buf, n);
  if (n == 0) return GREEN_REAL(write)(fd, buf, n);
  ssize_t r = sock_op(fd, SO_SNDTIMEO, [&](int f) { return GREEN_REAL(send)(fd, buf, n, f); });
  if (r >= 0 && static_cast<size_t>(r) < n) {
    iovec v{const_cast<void*>(buf), n};
    iov_cursor cur(&v, 1);
    cur.advance(static_cast<size_t>(r));
    return send_rest(fd, cur, r, 0, nullptr, 0);
  }
  if (r >= 0 || get_errno() != ENOTSOCK) return r;
  iovec v{const_cast<void*>(buf), n};
  return file_write(fd, &v, 1);
}

ssize_t writev(int fd, const iovec* iov, int cnt) {
  GREEN_PASS(writev, fd, iov, cnt);
  std::size_t total = cnt > 0 ? iov_total(iov, cnt) : 0;
  if (total == 0) return GREEN_REAL(writev)(fd, iov, cnt);
  ssize_t r = sock_op(fd, SO_SNDTIMEO, [&](int f) {
    msghdr m{};
    m.msg_iov = const_cast<iovec*>(iov);
    m.msg_iovlen = static_cast<std::size_t>(cnt);
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

// recv_all() is a blocking MSG_WAITALL receive: until n bytes, EOF, an
// error or the timeout (then what arrived, or -1).
static ssize_t recv_all(int fd, char* buf, size_t n, int flags, sockaddr* from, socklen_t* fromlen) {
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
  return sock_op(fd, SO_RCVTIMEO,
                 [&](int f) { return GREEN_REAL(recvfrom)(fd, buf, n, flags | f, from, fromlen); });
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
  if (r >= 0 && static_cast<size_t>(r) < n) {
    iovec v{const_cast<void*>(buf), n};
    iov_cursor cur(&v, 1);
    cur.advance(static_cast<size_t>(r));
    return send_rest(fd, cur, r, flags, nullptr, 0);
  }
  return r;
}

ssize_t sendto(int fd, const void* buf, size_t n, int flags, const sockaddr* to, socklen_t tolen) {
  GREEN_PASS(sendto, fd, buf, n, flags, to, tolen);
  if (flags & MSG_DONTWAIT) return GREEN_REAL(sendto)(fd, buf, n, flags, to, tolen);
  ssize_t r =
      sock_op(fd, SO_SNDTIMEO, [&](int f) { return GREEN_REAL(sendto)(fd, buf, n, flags | f, to, tolen); });
  if (r >= 0 && static_cast<size_t>(r) < n) {
    iovec v{const_cast<void*>(buf), n};
    iov_cursor cur(&v, 1);
    cur.advance(static_cast<size_t>(r));
    return send_rest(fd, cur, r, flags, to, tolen);
  }
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

int poll(pollfd* p, nfds_t n, int timeout) {
  GREEN_PASS(poll, p, n, timeout);
  if (timeout == 0) return GREEN_REAL(poll)(p, n, timeout);
  return fiber_poll(p, n, deadline_ms(timeout), nullptr);
}

int ppoll(pollfd* p, nfds_t n, const timespec* ts, const sigset_t* mask) {
  GREEN_PASS(ppoll, p, n, ts, mask);
  if (ts && (!valid_ts(ts) || (ts->tv_sec == 0 && ts->tv_nsec == 0))) return GREEN_REAL(ppoll)(p, n, ts, mask);
  return fiber_poll(p, n, deadline_ts(ts), mask);
}

int select(int nfds, fd_set* r, fd_set* w, fd_set* x, timeval* tv) {
  GREEN_PASS(select, nfds, r, w, x, tv);
  if (nfds < 0 || (tv && (tv->tv_sec < 0 || tv->tv_usec < 0 || (tv->tv_sec == 0 && tv->tv_usec == 0))))
    return GREEN_REAL(select)(nfds, r, w, x, tv);
  green::sched::time_point deadline = tv ? after(*tv) : green::sched::no_deadline;
  int res = fiber_select(nfds, r, w, x, deadline, nullptr, false);
  if (tv) {  // Linux reports the time not slept
    auto left = std::max(deadline - green::sched::clock::now(), green::sched::clock::duration::zero());
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(left).count();
    tv->tv_sec = static_cast<time_t>(us / 1000000);
    tv->tv_usec = static_cast<suseconds_t>(us % 1000000);
  }
  return res;
}

int pselect(int nfds, fd_set* r, fd_set* w, fd_set* x, const timespec* ts, const sigset_t* mask) {
  GREEN_PASS(pselect, nfds, r, w, x, ts, mask);
  if (nfds < 0 || (ts && (!valid_ts(ts) || (ts->tv_sec == 0 && ts->tv_nsec == 0))))
    return GREEN_REAL(pselect)(nfds, r, w, x, ts, mask);
  return fiber_select(nfds, r, w, x, deadline_ts(ts), mask, true);
}

int epoll_wait(int ep, epoll_event* ev, int max, int timeout) {
  GREEN_PASS(epoll_wait, ep, ev, max, timeout);
  if (timeout == 0) return GREEN_REAL(epoll_wait)(ep, ev, max, timeout);
  return fiber_epoll_wait(ep, ev, max, timeout, nullptr);
}

int epoll_pwait(int ep, epoll_event* ev, int max, int timeout, const sigset_t* mask) {
  GREEN_PASS(epoll_pwait, ep, ev, max, timeout, mask);
  if (timeout == 0) return GREEN_REAL(epoll_pwait)(ep, ev, max, timeout, mask);
  return fiber_epoll_wait(ep, ev, max, timeout, mask);
}

int nanosleep(const timespec* req, timespec* rem) {
  GREEN_PASS(nanosleep, req, rem);
  if (!req || !valid_ts(req)) return GREEN_REAL(nanosleep)(req, rem);
  fiber_sleep(to_span(req->tv_sec, req->tv_nsec));
  return 0;
}

int clock_nanosleep(clockid_t clk, int flags, const timespec* req, timespec* rem) {
  GREEN_PASS(clock_nanosleep, clk, flags, req, rem);
  bool wall = clk == CLOCK_REALTIME || clk == CLOCK_MONOTONIC || clk == CLOCK_BOOTTIME || clk == CLOCK_TAI;
  if (!wall || !req || !valid_ts(req)) return GREEN_REAL(clock_nanosleep)(clk, flags, req, rem);
  span d = to_span(req->tv_sec, req->tv_nsec);
  if (flags & TIMER_ABSTIME) {
    timespec now{};
    clock_gettime(clk, &now);
    span n = to_span(now.tv_sec, now.tv_nsec);
    if (d <= n) return 0;
    fiber_sleep(d - n);
  } else {
    fiber_sleep(d);
  }
  return 0;
}

int usleep(useconds_t us) {
  GREEN_PASS(usleep, us);
  fiber_sleep(std::chrono::microseconds(us));  // converts exactly to span
  return 0;
}

unsigned int sleep(unsigned int s) {
  GREEN_PASS(sleep, s);
  fiber_sleep(std::chrono::seconds(s));
  return 0;
}

int fcntl(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);  // as glibc's own wrapper: one word, int or pointer
  va_end(ap);
  return fcntl_impl(GREEN_REAL(fcntl), fd, cmd, arg);
}

int fcntl64(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  return fcntl_impl(GREEN_REAL(fcntl64), fd, cmd, arg);
}

int ioctl(int fd, unsigned long req, ...) noexcept {
  va_list ap;
  va_start(ap, req);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  if (req == FIONBIO && arg) {
    // while connect/accept holds O_NONBLOCK, record the program's choice
    if (fd_slot* s = fds.peek(fd)) {
      s->lock();
      if (s->users) {
        int on = *static_cast<const int*>(arg);
        s->saved = on ? (s->saved | O_NONBLOCK) : (s->saved & ~O_NONBLOCK);
        s->unlock();
        return 0;
      }
      s->unlock();
    }
  }
  return GREEN_REAL(ioctl)(fd, req, arg);
}

int close(int fd) {
  if (runtime_present() && fd >= 0) green::sched::notify_close(fd);
  return GREEN_REAL(close)(fd);
}

int dup2(int oldfd, int newfd) noexcept {
  // dup2 closes newfd first: wake its waiters (unless it is oldfd itself)
  if (runtime_present() && newfd >= 0 && newfd != oldfd && GREEN_REAL(fcntl)(oldfd, F_GETFD) >= 0)
    green::sched::notify_close(newfd);
  return GREEN_REAL(dup2)(oldfd, newfd);
}

int dup3(int oldfd, int newfd, int flags) noexcept {
  if (runtime_present() && newfd >= 0 && newfd != oldfd && GREEN_REAL(fcntl)(oldfd, F_GETFD) >= 0)
    green::sched::notify_close(newfd);
  return GREEN_REAL(dup3)(oldfd, newfd, flags);
}

// _FORTIFY_SOURCE entry points: checked, then the patched call.
[[noreturn]] void __chk_fail() noexcept;
ssize_t __read_chk(int fd, void* buf, size_t n, size_t buflen) {
  if (n > buflen) __chk_fail();
  return read(fd, buf, n);
}
ssize_t __recv_chk(int fd, void* buf, size_t n, size_t buflen, int flags) {
  if (n > buflen) __chk_fail();
  return recv(fd, buf, n, flags);
}
ssize_t __recvfrom_chk(int fd, void* buf, size_t n, size_t buflen, int flags, sockaddr* from, socklen_t* fromlen) {
  if (n > buflen) __chk_fail();
  return recvfrom(fd, buf, n, flags, from, fromlen);
}
int __poll_chk(pollfd* p, nfds_t n, int timeout, size_t plen) {
  if (plen / sizeof(pollfd) < n) __chk_fail();
  return poll(p, n, timeout);
}

}  // extern "C"
