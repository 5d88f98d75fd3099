// syscall_name(): the name of a Linux system call number, for the
// monitor's reports (/proc/self/task/TID/syscall gives only the number).
// Private to the runtime.
#pragma once

namespace green::sched {

// syscall_name() is the name of system call `nr` ("read", "futex"), or null
// when it is not one of the calls a program commonly blocks in. Any thread.
const char* syscall_name(long nr) noexcept;
// memory_syscall() is true for the calls that change the address space
// (mmap, munmap, mprotect, madvise, ...): they wait only on the kernel's
// memory management, not on anything a program could do elsewhere.
bool memory_syscall(long nr) noexcept;

}  // namespace green::sched
