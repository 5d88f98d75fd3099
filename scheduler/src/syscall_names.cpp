// System call names for the monitor's reports.
//
// The monitor learns from /proc/self/task/TID/syscall only the number of
// the call a worker sleeps in. This table names the calls a program blocks
// in (I/O, sockets, waits, sleeps, locks, file sync); the numbers come from
// <sys/syscall.h> for the architecture we are built for, each under #ifdef
// because the set differs between architectures (aarch64 has no plain
// `read`-family duplicates such as `select` or `poll`). A number not in the
// table is reported as "syscall N", which `ausyscall N` or the kernel's
// syscall table translates.
//
// memory_syscall() picks out the calls that change the address space
// (mmap, mprotect, ...): the runtime makes them itself (fiber stacks and
// their guard pages), and they sleep only on the process's mm lock or page
// reclaim, which no green::to_thread or patch would avoid. The monitor
// treats a worker held in one like a computation.
//
// Rejected: the kernel's full table (hundreds of names the monitor never
// sees; a generated file to keep in step with every architecture);
// libc's `syscall name` helpers (there is none in glibc).
#include "syscall_names.hpp"

#include <sys/syscall.h>

namespace green::sched {

namespace {
struct syscall_entry {
  long nr;
  const char* name;
};

#define GREEN_SYSCALL_ROW(n) \
  { __NR_##n, #n }
// One row per call, each under its own #ifdef.
// clang-format off
constexpr syscall_entry table[] = {
#ifdef __NR_read
    GREEN_SYSCALL_ROW(read),
#endif
#ifdef __NR_write
    GREEN_SYSCALL_ROW(write),
#endif
#ifdef __NR_readv
    GREEN_SYSCALL_ROW(readv),
#endif
#ifdef __NR_writev
    GREEN_SYSCALL_ROW(writev),
#endif
#ifdef __NR_pread64
    GREEN_SYSCALL_ROW(pread64),
#endif
#ifdef __NR_pwrite64
    GREEN_SYSCALL_ROW(pwrite64),
#endif
#ifdef __NR_preadv
    GREEN_SYSCALL_ROW(preadv),
#endif
#ifdef __NR_pwritev
    GREEN_SYSCALL_ROW(pwritev),
#endif
#ifdef __NR_open
    GREEN_SYSCALL_ROW(open),
#endif
#ifdef __NR_openat
    GREEN_SYSCALL_ROW(openat),
#endif
#ifdef __NR_close
    GREEN_SYSCALL_ROW(close),
#endif
#ifdef __NR_fsync
    GREEN_SYSCALL_ROW(fsync),
#endif
#ifdef __NR_fdatasync
    GREEN_SYSCALL_ROW(fdatasync),
#endif
#ifdef __NR_sync
    GREEN_SYSCALL_ROW(sync),
#endif
#ifdef __NR_flock
    GREEN_SYSCALL_ROW(flock),
#endif
#ifdef __NR_fcntl
    GREEN_SYSCALL_ROW(fcntl),
#endif
#ifdef __NR_ioctl
    GREEN_SYSCALL_ROW(ioctl),
#endif
#ifdef __NR_sendfile
    GREEN_SYSCALL_ROW(sendfile),
#endif
#ifdef __NR_splice
    GREEN_SYSCALL_ROW(splice),
#endif
#ifdef __NR_socket
    GREEN_SYSCALL_ROW(socket),
#endif
#ifdef __NR_connect
    GREEN_SYSCALL_ROW(connect),
#endif
#ifdef __NR_accept
    GREEN_SYSCALL_ROW(accept),
#endif
#ifdef __NR_accept4
    GREEN_SYSCALL_ROW(accept4),
#endif
#ifdef __NR_recvfrom
    GREEN_SYSCALL_ROW(recvfrom),
#endif
#ifdef __NR_sendto
    GREEN_SYSCALL_ROW(sendto),
#endif
#ifdef __NR_recvmsg
    GREEN_SYSCALL_ROW(recvmsg),
#endif
#ifdef __NR_sendmsg
    GREEN_SYSCALL_ROW(sendmsg),
#endif
#ifdef __NR_recvmmsg
    GREEN_SYSCALL_ROW(recvmmsg),
#endif
#ifdef __NR_sendmmsg
    GREEN_SYSCALL_ROW(sendmmsg),
#endif
#ifdef __NR_poll
    GREEN_SYSCALL_ROW(poll),
#endif
#ifdef __NR_ppoll
    GREEN_SYSCALL_ROW(ppoll),
#endif
#ifdef __NR_select
    GREEN_SYSCALL_ROW(select),
#endif
#ifdef __NR_pselect6
    GREEN_SYSCALL_ROW(pselect6),
#endif
#ifdef __NR_epoll_wait
    GREEN_SYSCALL_ROW(epoll_wait),
#endif
#ifdef __NR_epoll_pwait
    GREEN_SYSCALL_ROW(epoll_pwait),
#endif
#ifdef __NR_epoll_pwait2
    GREEN_SYSCALL_ROW(epoll_pwait2),
#endif
#ifdef __NR_nanosleep
    GREEN_SYSCALL_ROW(nanosleep),
#endif
#ifdef __NR_clock_nanosleep
    GREEN_SYSCALL_ROW(clock_nanosleep),
#endif
#ifdef __NR_pause
    GREEN_SYSCALL_ROW(pause),
#endif
#ifdef __NR_rt_sigsuspend
    GREEN_SYSCALL_ROW(rt_sigsuspend),
#endif
#ifdef __NR_rt_sigtimedwait
    GREEN_SYSCALL_ROW(rt_sigtimedwait),
#endif
#ifdef __NR_futex
    GREEN_SYSCALL_ROW(futex),
#endif
#ifdef __NR_wait4
    GREEN_SYSCALL_ROW(wait4),
#endif
#ifdef __NR_waitid
    GREEN_SYSCALL_ROW(waitid),
#endif
#ifdef __NR_semop
    GREEN_SYSCALL_ROW(semop),
#endif
#ifdef __NR_semtimedop
    GREEN_SYSCALL_ROW(semtimedop),
#endif
#ifdef __NR_msgrcv
    GREEN_SYSCALL_ROW(msgrcv),
#endif
#ifdef __NR_msgsnd
    GREEN_SYSCALL_ROW(msgsnd),
#endif
#ifdef __NR_mq_timedreceive
    GREEN_SYSCALL_ROW(mq_timedreceive),
#endif
#ifdef __NR_mq_timedsend
    GREEN_SYSCALL_ROW(mq_timedsend),
#endif
#ifdef __NR_io_getevents
    GREEN_SYSCALL_ROW(io_getevents),
#endif
#ifdef __NR_io_uring_enter
    GREEN_SYSCALL_ROW(io_uring_enter),
#endif
#ifdef __NR_getrandom
    GREEN_SYSCALL_ROW(getrandom),
#endif
};

constexpr syscall_entry memory_table[] = {
#ifdef __NR_mmap
    GREEN_SYSCALL_ROW(mmap),
#endif
#ifdef __NR_munmap
    GREEN_SYSCALL_ROW(munmap),
#endif
#ifdef __NR_mprotect
    GREEN_SYSCALL_ROW(mprotect),
#endif
#ifdef __NR_madvise
    GREEN_SYSCALL_ROW(madvise),
#endif
#ifdef __NR_mremap
    GREEN_SYSCALL_ROW(mremap),
#endif
#ifdef __NR_brk
    GREEN_SYSCALL_ROW(brk),
#endif
#ifdef __NR_mlock
    GREEN_SYSCALL_ROW(mlock),
#endif
#ifdef __NR_munlock
    GREEN_SYSCALL_ROW(munlock),
#endif
#ifdef __NR_mincore
    GREEN_SYSCALL_ROW(mincore),
#endif
};
#undef GREEN_SYSCALL_ROW
// clang-format on
}  // namespace

// Any thread.
const char* syscall_name(long nr) noexcept {
  for (const syscall_entry& e : table)
    if (e.nr == nr) return e.name;
  for (const syscall_entry& e : memory_table)
    if (e.nr == nr) return e.name;
  return nullptr;
}

// Any thread.
bool memory_syscall(long nr) noexcept {
  for (const syscall_entry& e : memory_table)
    if (e.nr == nr) return true;
  return false;
}

}  // namespace green::sched
