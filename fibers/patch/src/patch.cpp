// green::patch — libc interposition ("monkey patching").
//
// Roles. This shared library defines read, write, poll, connect, ... ahead
// of libc in the symbol lookup order, so calls from the program and from
// every library it loaded land here first. Outside a fiber (or when
// disabled) each one is a tail call to libc's own (dlsym(RTLD_NEXT)). On a
// fiber, a call that would block parks the fiber on the runtime's reactor
// through the fd seam (sched::wait_fd) and retries; the worker runs others.
//
// The rooms (each file's header has its protocol):
//   patch.cpp      this header; the gate (enabled_flag, runtime_present(),
//                  on_fiber() in patch_detail.hpp), errno across a switch,
//                  counters, and green::patch's public API.
//   fd_state.cpp   the temporary O_NONBLOCK of connect/accept, hidden from
//                  fcntl/ioctl; close/dup2/dup3 wake the fd's waiters.
//   wait.cpp       parking (wait_ready, park_error), C timeouts as
//                  deadlines, and the sleeps.
//   rw.cpp         read/readv/write/writev: the socket path, then the file
//                  path (poll probe, PIPE_BUF pieces).
//   socket.cpp     recv/send families (MSG_DONTWAIT), connect, accept.
//   poll.cpp       poll/ppoll/select/pselect/epoll_wait/epoll_pwait.
//   resolve.cpp    getaddrinfo and friends on a small OS-thread pool.
//   locks.cpp      pthread mutexes/rwlocks held by a fiber (counted).
//   link_anchor.cpp  why --as-needed keeps the library loaded.
// patch_detail.hpp holds what every file shares; patch_io.hpp what the I/O
// files share (hidden: the export list is the C face, green::patch's API
// and the real_* / detail symbols exported before the split).
//
// The program's O_NONBLOCK and SO_*TIMEO are read from the kernel at the
// moment they matter (the slow path), so there is no shadow fd table to go
// stale: fds from socket(), pipe(), accept(), dup(), fork(), inheritance or
// raw syscalls all behave the same.
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
#include <netdb.h>

#include <cerrno>
#include <cstdlib>

#include "green/patch.hpp"
#include "patch_detail.hpp"

namespace green::patch::detail {

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

// All relaxed: the flag is a switch that may or may not apply to a call it
// races (patch_detail.hpp's on_fiber()); the counters are statistics.
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

__attribute__((constructor)) void init_patch() {
  const char* e = std::getenv("GREEN_PATCH");
  if (e && e[0] == '0') enabled_flag.store(false, std::memory_order_relaxed);
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
  static constexpr const char* names[] = {"read",
                                          "write",
                                          "readv",
                                          "writev",
                                          "recv",
                                          "recvfrom",
                                          "recvmsg",
                                          "send",
                                          "sendto",
                                          "sendmsg",
                                          "connect",
                                          "accept",
                                          "accept4",
                                          "poll",
                                          "ppoll",
                                          "select",
                                          "pselect",
                                          "epoll_wait",
                                          "epoll_pwait",
                                          "nanosleep",
                                          "clock_nanosleep",
                                          "usleep",
                                          "sleep",
                                          "fcntl",
                                          "fcntl64",
                                          "ioctl",
                                          "close",
                                          "dup2",
                                          "dup3",
                                          "getaddrinfo",
                                          "getnameinfo",
                                          "gethostbyname",
                                          "gethostbyname2",
                                          "gethostbyaddr",
                                          "gethostbyname_r",
                                          "gethostbyname2_r",
                                          "gethostbyaddr_r",
                                          "__read_chk",
                                          "__recv_chk",
                                          "__recvfrom_chk",
                                          "__poll_chk",
                                          "pthread_mutex_lock",
                                          "pthread_mutex_trylock",
                                          "pthread_mutex_timedlock",
                                          "pthread_mutex_clocklock",
                                          "pthread_mutex_unlock",
                                          "pthread_rwlock_rdlock",
                                          "pthread_rwlock_tryrdlock",
                                          "pthread_rwlock_timedrdlock",
                                          "pthread_rwlock_clockrdlock",
                                          "pthread_rwlock_wrlock",
                                          "pthread_rwlock_trywrlock",
                                          "pthread_rwlock_timedwrlock",
                                          "pthread_rwlock_clockwrlock",
                                          "pthread_rwlock_unlock"};
  return names;
}

stats get_stats() noexcept {
  return {detail::n_parks.load(std::memory_order_relaxed), detail::n_sleeps.load(std::memory_order_relaxed),
          detail::n_offloads.load(std::memory_order_relaxed)};
}

}  // namespace green::patch
