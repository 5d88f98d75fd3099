// fd bookkeeping: the temporary O_NONBLOCK of connect/accept, and close.
//
// Roles. connect() and accept() on a fiber need a non-blocking fd for one
// syscall (socket.cpp). nonblock_scope sets O_NONBLOCK for that syscall and
// restores the program's flags after it; the fcntl/fcntl64/ioctl wrappers
// here hide the borrowed flag from the program meanwhile. close(), dup2()
// and dup3() tell the runtime an fd is going away (sched::notify_close), so
// fibers parked on it wake with EBADF instead of waiting on a number that
// may be reused.
//
// Protocol. Every fd number has a slot (fd_table, allocated a chunk at a
// time on first use). Under the slot's spinlock: the first scope in
// (users 0 -> 1) saves the program's F_GETFL in `saved` and sets
// O_NONBLOCK; the last one out (users 1 -> 0) writes `saved` back. While
// users > 0, F_GETFL reports `saved`'s O_NONBLOCK bit, and F_SETFL and
// ioctl(FIONBIO) record the program's choice in `saved` (F_SETFL keeps
// O_NONBLOCK set on the kernel's side) for the last scope to apply.
//
// Invariants: while users > 0 the fd's file description has O_NONBLOCK set
// by us and `saved` holds the flags the program sees; users counts the
// scopes alive on that fd number. Slots are per fd number: fds above the
// table (4 Mi) share no slot, so their scopes are not counted (concurrent
// connect/accept on one such fd may restore each other's flag early: a
// documented limit).
//
// Rejected: one global lock for all fds (connect/accept on unrelated fds
// would serialize on it); a slot per open file description (the kernel
// gives no cheap key for one; fd numbers are what the program names).
// Rejected: keeping every fd's flags in the table (patch.cpp's header: a
// shadow table goes stale for every fd that arrives another way).
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <array>
#include <cstdarg>
#include <cstdint>
#include <new>

#include "patch_io.hpp"

namespace green::patch::detail {

GREEN_DEFINE_REAL(fcntl);
GREEN_DEFINE_REAL(fcntl64);
GREEN_DEFINE_REAL(ioctl);
GREEN_DEFINE_REAL(close);
GREEN_DEFINE_REAL(dup2);
GREEN_DEFINE_REAL(dup3);

// One fd number's state (the invariants above). Hidden like the rest of
// patch_io.hpp, whose declaration it completes.
struct __attribute__((visibility("hidden"))) fd_slot {
  std::atomic<bool> locked{false};
  unsigned users = 0;  // guarded by locked
  int saved = 0;       // guarded by locked
  // lock() and unlock() bracket every access to users and saved. Any thread.
  void lock() noexcept {
    // acquire: pairs with the release in unlock()
    while (locked.exchange(true, std::memory_order_acquire))
      while (locked.load(std::memory_order_relaxed)) __builtin_ia32_pause();
  }
  // release: pairs with the acquire exchange in lock()
  void unlock() noexcept { locked.store(false, std::memory_order_release); }
};

namespace {

class fd_table {
 public:
  // slot() is fd's slot, allocated on first use, or null for fds beyond
  // the table (4 Mi fds). Any thread.
  fd_slot* slot(int fd) noexcept {
    if (fd < 0) return nullptr;
    auto i = static_cast<unsigned>(fd);
    if (i / chunk >= chunks) return nullptr;
    // acquire: pairs with the acq_rel compare_exchange that published the chunk
    fd_slot* c = top_[i / chunk].load(std::memory_order_acquire);
    if (!c) {
      auto* fresh = new (std::nothrow) fd_slot[chunk];
      if (!fresh) return nullptr;
      // acq_rel: release publishes our chunk to the acquire loads in
      // slot()/peek(); acquire, on failure, sees the winner's
      if (top_[i / chunk].compare_exchange_strong(c, fresh, std::memory_order_acq_rel)) c = fresh;
      else delete[] fresh;
    }
    return &c[i % chunk];
  }
  // peek() is the slot if its chunk exists (no allocation). Any thread.
  fd_slot* peek(int fd) noexcept {
    if (fd < 0 || static_cast<unsigned>(fd) / chunk >= chunks) return nullptr;
    // acquire: pairs with the acq_rel compare_exchange in slot()
    fd_slot* c = top_[static_cast<unsigned>(fd) / chunk].load(std::memory_order_acquire);
    return c ? &c[static_cast<unsigned>(fd) % chunk] : nullptr;
  }

 private:
  static constexpr unsigned chunk = 4096, chunks = 1024;
  std::array<std::atomic<fd_slot*>, chunks> top_{};
};
fd_table fds;

// user_flags() is fd's F_GETFL as the program set it, or -1 (get_errno() set).
// Any thread.
int user_flags(int fd) noexcept {
  if (fd_slot* s = fds.peek(fd)) {
    s->lock();
    int f = s->users ? s->saved : GREEN_REAL(fcntl)(fd, F_GETFL);
    s->unlock();
    return f;
  }
  return GREEN_REAL(fcntl)(fd, F_GETFL);
}

// fcntl_impl() is fcntl() with the temporary O_NONBLOCK of connect/accept
// hidden: F_GETFL shows and F_SETFL records the program's own flags. Any
// thread.
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

// notify_replaced() wakes the waiters on newfd, which dup2/dup3 are about
// to close, unless it is oldfd itself or oldfd is not open (then the call
// fails and closes nothing). Any thread.
void notify_replaced(int oldfd, int newfd) noexcept {
  if (runtime_present() && newfd >= 0 && newfd != oldfd && GREEN_REAL(fcntl)(oldfd, F_GETFD) >= 0)
    sched::notify_close(newfd);
}

}  // namespace

bool user_nonblocking(int fd) noexcept {
  int f = user_flags(fd);
  return f >= 0 && (f & O_NONBLOCK);
}

nonblock_scope::nonblock_scope(int fd) noexcept : fd_(fd), slot_(fds.slot(fd)) {
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

nonblock_scope::~nonblock_scope() {
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

}  // namespace green::patch::detail

// ---------------------------------------------------------------------------
// The interposed functions. Any thread: none of them parks.

using namespace green::patch::detail;  // NOLINT: this section is the library's C face

extern "C" {

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
  notify_replaced(oldfd, newfd);
  return GREEN_REAL(dup2)(oldfd, newfd);
}

int dup3(int oldfd, int newfd, int flags) noexcept {
  notify_replaced(oldfd, newfd);
  return GREEN_REAL(dup3)(oldfd, newfd, flags);
}

}  // extern "C"
