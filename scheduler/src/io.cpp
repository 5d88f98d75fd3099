// The fd table: which fibers wait for which fd, and readiness not yet seen.
//
// Roles. wait_fd() (a fiber that got EAGAIN) registers the fd with its
// runtime's reactor once, edge-triggered for both directions (Go's netpoll:
// one registration per fd, never re-armed), then parks on the fd's read or
// write wait list. The thread that polls the reactor (an idle worker, or the
// monitor when every worker is busy) hands its events to dispatch() (the
// reactor's sink: events flow one way, from the reactor through the worker
// loop to here), which wakes the waiters of the ready direction, or, if there are none, records the edge so
// the next wait_fd() returns at once instead of missing it.
//
// Staleness. Each entry has a generation; the key given to the reactor is
// fd | generation << 32. notify_close() bumps the generation, drops the
// registration and wakes every waiter with `closed`, so an event still in
// flight for the old file (or a registration a dup kept alive) never wakes a
// waiter of a new file that reuses the number: its key no longer matches.
//
// Rejected: level-triggered registration re-armed per wait (EPOLLONESHOT):
// one epoll_ctl per wait, which is what the echo benchmark pays most for in
// hand-written servers; a per-runtime fd map (a hash lookup per event, and an
// fd used from two runtimes would need two entries).
#include <poll.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <mutex>

#include "green/sched/io.hpp"
#include "io_internal.hpp"
#include "locks.hpp"
#include "reactor.hpp"

namespace green::sched {

namespace {

// Invariants: guarded by mu. rready/wready are set only while the matching
// list is empty; `r` is non-null exactly while the fd is registered with it
// under key fd | gen << 32. rhup/whup are sticky until notify_close(): once
// the peer has closed (RDHUP/HUP) or the socket has failed (ERR), reads
// (and, for HUP/ERR, writes) never block again, so every later wait
// returns at once. Callers may then skip the try-first read after a short
// read (tokio's clear_readiness): a FIN that came in the same edge as the
// data is not lost.
struct fd_entry {
  spinlock mu;
  std::uint32_t gen GREEN_GUARDED_BY(mu) = 0;
  bool rready GREEN_GUARDED_BY(mu) = false;
  bool wready GREEN_GUARDED_BY(mu) = false;
  bool rhup GREEN_GUARDED_BY(mu) = false;
  bool whup GREEN_GUARDED_BY(mu) = false;
  reactor* r GREEN_GUARDED_BY(mu) = nullptr;
  wait_queue readers GREEN_GUARDED_BY(mu);
  wait_queue writers GREEN_GUARDED_BY(mu);
};

// A two-level table: 1024 chunks of 1024 entries cover fds up to 2^20 (the
// usual hard RLIMIT_NOFILE); a chunk (~100 KiB) is allocated on first use.
constexpr int chunk_bits = 10;
constexpr int chunk_size = 1 << chunk_bits;
constexpr int max_chunks = 1024;
std::atomic<fd_entry*> chunks[max_chunks];

// Inline: every wait and every readiness event looks its fd up.
inline __attribute__((always_inline)) fd_entry* entry(int fd, bool create) noexcept {
  if (fd < 0 || fd >= chunk_size * max_chunks) return nullptr;
  std::atomic<fd_entry*>& slot = chunks[fd >> chunk_bits];
  fd_entry* c = slot.load(std::memory_order_acquire);  // acquire: pairs with the publishing CAS
  if (c == nullptr) {
    if (!create) return nullptr;
    auto* fresh = new (std::nothrow) fd_entry[chunk_size];
    if (fresh == nullptr) return nullptr;
    // acq_rel: publish the constructed chunk, or see the winner's
    if (slot.compare_exchange_strong(c, fresh, std::memory_order_acq_rel)) c = fresh;
    else delete[] fresh;
  }
  return &c[fd & (chunk_size - 1)];
}

wake_reason wait_thread(int fd, io_dir dir, time_point deadline) noexcept {
  pollfd p{fd, static_cast<short>(dir == io_dir::read ? POLLIN : POLLOUT), 0};
  for (;;) {
    timespec ts{};
    const timespec* tsp = nullptr;
    if (deadline != no_deadline) {
      auto left = deadline - clock::now();
      if (left <= clock::duration::zero()) return wake_reason::timeout;
      auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
      ts = {static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
      tsp = &ts;
    }
    int n = ::ppoll(&p, 1, tsp, nullptr);
    if (n > 0) return wake_reason::notified;  // includes POLLERR/POLLHUP/POLLNVAL: the retry reports it
    if (n == 0) return wake_reason::timeout;
    if (errno != EINTR) return wake_reason::notified;
  }
}

}  // namespace

wake_reason wait_fd(int fd, io_dir dir, time_point deadline) noexcept {
  reactor* r = io_internal::current_reactor();
  fd_entry* e = r ? entry(fd, true) : nullptr;
  if (e == nullptr) return wait_thread(fd, dir, deadline);

  waiter w;
  {
    lock_guard_of lk(e->mu);
    if (e->r == nullptr) {
      int err = r->watch(fd, static_cast<std::uint64_t>(fd) | static_cast<std::uint64_t>(e->gen) << 32);
      // EPERM: a regular file or directory, always ready; EBADF: the retry
      // reports it. Either way there is nothing to wait for.
      if (err != 0) return wake_reason::notified;
      e->r = r;
    }
    bool& ready = dir == io_dir::read ? e->rready : e->wready;
    if (ready || (dir == io_dir::read ? e->rhup : e->whup)) {
      ready = false;
      return wake_reason::notified;
    }
    w.t = prepare_park();
    (dir == io_dir::read ? e->readers : e->writers).push_back(&w);
  }
  wake_reason why = io_internal::park_io(w.t, dir == io_dir::read ? "fd read" : "fd write", deadline);
  if (why != wake_reason::notified && why != wake_reason::closed) {
    lock_guard_of lk(e->mu);
    (dir == io_dir::read ? e->readers : e->writers).erase(&w);
  }
  return why;
}

void notify_close(int fd) noexcept {
  fd_entry* e = entry(fd, false);
  if (e == nullptr) return;
  lock_guard_of lk(e->mu);
  ++e->gen;
  e->rready = e->wready = e->rhup = e->whup = false;
  if (e->r != nullptr) {
    e->r->unwatch(fd);
    e->r = nullptr;
  }
  e->readers.wake_all(wake_reason::closed);
  e->writers.wake_all(wake_reason::closed);
}

namespace {
// on_ready() hands one readiness event to the fd table. The polling thread.
void on_ready(std::uint64_t key, std::uint32_t events) noexcept {
  int fd = static_cast<int>(key & 0x7fffffff);
  fd_entry* e = entry(fd, false);
  if (e == nullptr) return;
  lock_guard_of lk(e->mu);
  if (e->gen != static_cast<std::uint32_t>(key >> 32)) return;  // a closed file's event
  // Errors and hang-ups wake both sides: the retried call reports them.
  constexpr std::uint32_t both = reactor::failed;
  if (events & (reactor::read_closed | both)) e->rhup = true;
  if (events & both) e->whup = true;
  // The empty() tests first: nearly every event finds one side with no
  // waiter (an echo's EPOLLOUT), and the call would cost more than the test.
  if (events & (reactor::readable | reactor::read_closed | both)) {
    if (e->readers.empty() || e->readers.wake_all(wake_reason::notified, true) == 0) e->rready = true;
  }
  if (events & (reactor::writable | both)) {
    if (e->writers.empty() || e->writers.wake_all(wake_reason::notified, true) == 0) e->wready = true;
  }
}
}  // namespace

// dispatch(): see io_internal.hpp. The thread that polled.
void io_internal::dispatch(const reactor::ready_event* ev, int n) noexcept {
  for (int i = 0; i < n; ++i) on_ready(ev[i].key, ev[i].events);
}

void io_internal::forget(reactor* r) noexcept {
  for (auto& slot : chunks) {
    fd_entry* c = slot.load(std::memory_order_acquire);
    if (c == nullptr) continue;
    for (int i = 0; i < chunk_size; ++i) {
      lock_guard_of lk(c[i].mu);
      if (c[i].r == r) {
        c[i].r = nullptr;
        ++c[i].gen;
        c[i].rready = c[i].wready = c[i].rhup = c[i].whup = false;
      }
    }
  }
}

}  // namespace green::sched
