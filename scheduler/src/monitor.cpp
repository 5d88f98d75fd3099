// The monitor and spare workers.
//
// One thread per runtime (Go's sysmon). Every limit/2 it samples each
// started worker's `running` fiber and switch count: a worker whose count
// has not moved for `limit` while it runs a fiber is held (a blocking call
// the patch layer does not cover, a long computation). Rescue: its queued
// fibers move to the global queue (hand_off()), and so do the fibers its due
// timers wake (fired here), where idle workers (woken for it) and busy ones
// (every 61 picks, and at each yield that finds nothing local) take them; if
// every worker is held, a spare worker is started (or woken from
// retirement), at most config.max_spare_workers. Spares retire when nothing
// is held and they hold no timers. The monitor also polls the reactor when
// fibers wait on fds and no worker has polled for `limit` (every worker
// busy). When every worker is idle it sleeps until a worker wakes up, so an
// idle runtime costs no CPU.
//
// Reports (config.monitor_reports). Go hands off silently, and so do we
// for computation: the user cannot "fix" a TLS handshake or a spawn loop.
// What the user can fix is a system call nobody patched, so by default
// only a worker blocked in the kernel is reported. The kernel says which
// call: /proc/self/task/TID/syscall reads "running" (user space), "-1 sp pc"
// (in the kernel, not in a call: a page fault) or "nr args... sp pc".
// Calls that change the address space (mmap, mprotect: the runtime maps
// stacks itself, and they wait only on the mm lock) and futex (a lock
// inside a library) count as "in the kernel", not as a call to move
// elsewhere. One report per (fiber, call,
// user pc): a fiber that blocks at one site in a
// loop is named once; the pc is libc's wrapper, so it tells calls apart,
// not their callers (a stack walk of another thread is not cheap or safe).
//
// Cost: a relaxed store of `running` per switch (same cache line as the
// switch count); the monitor's own wake-ups, limit/2 apart, only while
// some worker is busy; one read of /proc per held worker per tick.
//
// Sleep protocol: the monitor's CAS of mon_word 0 -> 1 then its npidle
// check pairs with leave_idle()'s npidle-- then mon_word load (W4 in
// idle.cpp's table).
//
// Rejected: a timer signal per worker to preempt (async preemption needs
// safe points the C++ code does not have); starting a thread per held
// fiber (the spares are capped); reporting by thread state alone (S or D
// in /proc/TID/stat: it cannot name the call, and a futex inside a patched
// pthread lock looks the same as an unpatched read).
#include <fcntl.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "futex.hpp"
#include "io_internal.hpp"
#include "syscall_names.hpp"
#include "wakep-inl.hpp"

namespace green::sched {

// hand_off() moves the queued fibers of a stuck worker to the global queue,
// where every other worker looks (idle ones when woken, busy ones every 61
// picks and whenever a yield finds nothing local). Claims slots with the
// same claim_batch() as a thief. Monitor only.
void scheduler::impl::hand_off(worker& v) noexcept {
  fiber_base* batch[256];  // the monitor's own stack; one claim per 256 fibers
  std::uint32_t first = 0;
  while (std::uint32_t n = claim_batch(v, batch, 256, false, &first)) {
    for (std::uint32_t i = 0; i + 1 < n; ++i) batch[i]->next_ = batch[i + 1];
    push_global(batch[0], batch[n - 1], n);
  }
  fiber_base* f = v.runnext.load(std::memory_order_acquire);
  // acq_rel: acquire pairs with the release half of v's push() exchange
  if (f && v.runnext.compare_exchange_strong(f, nullptr, std::memory_order_acq_rel)) push_global(f, f, 1);
  wakep();
}

// activate_spare() wakes a retired spare, or starts a new one. Monitor only.
void scheduler::impl::activate_spare() noexcept {
  unsigned started = nslots.load(std::memory_order_relaxed);  // only the monitor writes it
  for (unsigned i = nworkers; i < started; ++i) {
    worker& v = *workers[i];
    // seq_cst on dormant and nactive: pairs with retire()'s dormant = 1 then
    // nactive-- (a spare is counted active before it is woken, so the
    // deadlock check's npidle == nactive never counts it idle and gone).
    if (v.dormant.load(std::memory_order_seq_cst) == 1) {
      nactive.fetch_add(1, std::memory_order_seq_cst);
      v.dormant.store(0, std::memory_order_seq_cst);
      futex_wake(&v.dormant, 1);
      spares_started.fetch_add(1, std::memory_order_relaxed);
      return;
    }
  }
  if (started >= workers.size()) return;  // every spare is already running
  worker* wp = workers[started].get();
  nactive.fetch_add(1, std::memory_order_seq_cst);       // seq_cst: as above, before the spare exists
  nslots.store(started + 1, std::memory_order_release);  // release: its slot is ready for thieves
  try {
    wp->thread = std::thread([this, wp] { worker_main(*wp); });
    pthread_getcpuclockid(wp->thread.native_handle(), &wp->cpu_clock);
    spares_started.fetch_add(1, std::memory_order_relaxed);
  } catch (...) {
    nactive.fetch_sub(1, std::memory_order_seq_cst);  // seq_cst: undoes the ++ above; no thread, its slot stays empty
  }
}

namespace {
clock::duration thread_cpu(const worker& v) noexcept {
  timespec ts{};
  if (clock_gettime(v.cpu_clock, &ts) != 0) return {};
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

// read_proc() reads /proc/self/task/TID/<file> into buf (NUL-ended);
// false if it cannot (the thread is gone, /proc is not mounted).
bool read_proc(pid_t tid, const char* file, char* buf, std::size_t size) noexcept {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/task/%d/%s", static_cast<int>(tid), file);
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = ::read(fd, buf, size - 1);
  ::close(fd);
  if (n <= 0) return false;
  buf[n] = 0;
  return true;
}

// What a held worker's thread is doing.
struct kernel_state {
  enum class where : std::uint8_t {
    user,     // running or runnable in user space: a computation
    syscall,  // asleep in system call `nr` (-2: a call we could not name)
    kernel,   // in the kernel outside a call (a page fault, a stop)
  } at = where::user;
  long nr = -2;
  std::uint64_t pc = 0;  // the user-space pc the thread entered the kernel from
};

// kernel_state_of() reads the thread's system call from /proc; without it
// (a kernel built without it), a sleeping thread in /proc/TID/stat (state S
// or D) counts as an unnamed call. Monitor only.
kernel_state kernel_state_of(pid_t tid) noexcept {
  kernel_state k;
  char buf[256];
  if (read_proc(tid, "syscall", buf, sizeof buf)) {
    if (std::strncmp(buf, "running", 7) == 0) return k;
    char* end = nullptr;
    long nr = std::strtol(buf, &end, 10);
    if (end == buf) return k;
    const char* last = std::strrchr(buf, ' ');  // the pc is the last field
    k.pc = last ? std::strtoull(last + 1, nullptr, 16) : 0;
    k.at = nr < 0 ? kernel_state::where::kernel : kernel_state::where::syscall;
    // An address-space call (the runtime's own stack mappings, waiting on
    // the mm lock) is nothing the user could move to a thread: as kernel.
    // So is a futex: a contended lock inside a library (under the patch, a
    // fiber that holds a pthread lock runs like a thread, by design, and
    // its rivals wait in futex, as examples/uptime_squirrel showed).
    if (nr >= 0 && (memory_syscall(nr) || nr == SYS_futex)) k.at = kernel_state::where::kernel;
    k.nr = nr;
    return k;
  }
  if (!read_proc(tid, "stat", buf, sizeof buf)) return k;
  const char* paren = std::strrchr(buf, ')');  // the name may hold spaces and parens
  if (paren != nullptr && paren[1] != 0 && (paren[2] == 'S' || paren[2] == 'D')) k.at = kernel_state::where::syscall;
  return k;
}

// call_name() names the call for a report ("the system call read",
// "system call 444") in buf.
const char* call_name(const kernel_state& k, char* buf, std::size_t size) noexcept {
  if (const char* n = syscall_name(k.nr)) std::snprintf(buf, size, "the system call %s", n);
  else if (k.nr < 0) std::snprintf(buf, size, "a system call (/proc did not say which)");
  else std::snprintf(buf, size, "system call %ld", k.nr);
  return buf;
}

// held_report() is the monitor's report of fiber `who` holding worker
// `index` for `ms`, in state `k`; empty when config.monitor_reports says
// to keep quiet about it.
std::string held_report(monitor_report mode, const std::string& who, unsigned index, long long ms,
                        const kernel_state& k) {
  if (mode == monitor_report::off) return {};
  if (k.at != kernel_state::where::syscall && mode != monitor_report::all) return {};
  char line[640];
  char nbuf[64];
  switch (k.at) {
    case kernel_state::where::syscall:
      std::snprintf(line, sizeof line,
                    "green: monitor: %s has blocked worker %u for %lld ms in %s, which nothing "
                    "patched; the worker's other fibers moved to other workers. Run the call with "
                    "green::to_thread, link greenfiber::patch (libc's blocking calls then park the fiber), or "
                    "use green's own equivalent (green::net, green::this_fiber::sleep_for, green::mutex).",
                    who.c_str(), index, ms, call_name(k, nbuf, sizeof nbuf));
      break;
    case kernel_state::where::kernel:
      if (k.nr >= 0)
        std::snprintf(line, sizeof line,
                      "green: monitor: %s has held worker %u for %lld ms in %s (a lock or memory management, "
                      "waiting on the kernel); the worker's other fibers moved to other workers.",
                      who.c_str(), index, ms, call_name(k, nbuf, sizeof nbuf));
      else
        std::snprintf(line, sizeof line,
                      "green: monitor: %s has held worker %u for %lld ms in the kernel outside a system call "
                      "(a page fault on a mapped file?); the worker's other fibers moved to other workers.",
                      who.c_str(), index, ms);
      break;
    case kernel_state::where::user:
      std::snprintf(line, sizeof line,
                    "green: monitor: %s has computed on worker %u for %lld ms without switching; the worker's "
                    "other fibers moved to other workers. A long computation may call "
                    "green::this_fiber::yield() now and then, or run on green::to_thread.",
                    who.c_str(), index, ms);
      break;
  }
  return line;
}
}  // namespace

// report() hands one report line to config.monitor_sink, or stderr.
// Monitor only.
void scheduler::impl::report_held(const std::string& line) noexcept {
  stuck_reports.fetch_add(1, std::memory_order_relaxed);
  const config& c = self->cfg_;
  if (!c.monitor_sink) {
    std::fprintf(stderr, "%s\n", line.c_str());
    return;
  }
  try {
    c.monitor_sink(line);
  } catch (...) {
    std::fprintf(stderr, "%s\n(green: the monitor_sink threw; the report above went to stderr)\n", line.c_str());
  }
}

// monitor_main(): the monitor thread's body. Started by lifecycle.
void scheduler::impl::monitor_main() noexcept {
  monitor_tid.store(static_cast<pid_t>(::syscall(SYS_gettid)), std::memory_order_release);
  char name[16];
  std::snprintf(name, sizeof name, "%.9s-mon", self->cfg_.name.c_str());
  pthread_setname_np(pthread_self(), name);
  const clock::duration limit = self->cfg_.monitor_limit;
  const monitor_report mode = self->cfg_.monitor_reports;
  struct seen {
    std::uint64_t switches = 0;
    time_point since{};     // when `switches` last moved
    time_point cpu_at{};    // when `cpu` was read (the first tick without a switch)
    clock::duration cpu{};  // the thread's CPU time then (a syscall: read only when suspect)
    bool held = false;      // this stretch without a switch was found held (and rescued)
    bool settled = false;   // ... and its report is made, or none can follow
  };
  std::vector<seen> last(workers.size());
  // The sites already reported: (fiber id, call number or -3 for a
  // computation, user pc). Bounded: past 4096 sites it starts afresh, so a
  // long-lived program may hear of a site twice, never of one every tick.
  std::set<std::tuple<std::uint64_t, long, std::uint64_t>> reported;
  unsigned idle_ticks = 0;
  for (;;) {
    // seq_cst loads of mon_word: the stop value 2 is stored seq_cst by the
    // destructor; relaxed would do for it, seq_cst keeps every access to
    // the W4 word in the one total order the pair needs.
    std::uint32_t word = mon_word.load(std::memory_order_seq_cst);
    if (word == 2) return;
    futex_wait(&mon_word, 0, clock::now() + limit / 2);
    if (mon_word.load(std::memory_order_seq_cst) == 2) return;
    time_point now = clock::now();
    unsigned started = nslots.load(std::memory_order_relaxed);
    std::uint32_t stuck = 0;
    bool stuck_work = false;
    for (unsigned i = 0; i < started; ++i) {
      worker& v = *workers[i];
      fiber_base* f = v.running.load(std::memory_order_relaxed);
      std::uint64_t sw = v.switches.load(std::memory_order_relaxed);
      seen& e = last[i];
      if (f == nullptr || sw != e.switches) {
        e = seen{sw, now, {}, {}, false, false};
        continue;
      }
      if (e.cpu_at == time_point{}) {
        e.cpu_at = now;
        e.cpu = thread_cpu(v);
      }
      if (now - e.since < limit) continue;
      // No switch for `limit`. Held if the thread sleeps in the kernel, or
      // has computed for limit/2 of CPU time since we started watching; a
      // runnable thread the OS simply did not run (a loaded machine) is not
      // held yet, and a spare would only add to the load. Until a report
      // is settled we look again each tick: a computation may go on into
      // an unpatched call without switching.
      if (!e.settled) {
        kernel_state k = kernel_state_of(v.tid.load(std::memory_order_relaxed));
        bool blocked = k.at != kernel_state::where::user;
        if (!e.held && !blocked && thread_cpu(v) - e.cpu < limit / 2) continue;
        if (!e.held) rescues.fetch_add(1, std::memory_order_relaxed);
        e.held = true;
        // In `blocking` mode only a system call settles the stretch: a
        // computation (or a page fault) stays open for a call that may follow.
        const bool in_call = k.at == kernel_state::where::syscall;
        e.settled = mode != monitor_report::blocking || in_call;
        // Name the fiber (a registry walk) only for a report to be made.
        if (mode == monitor_report::all || (mode == monitor_report::blocking && in_call)) {
          std::uint64_t id = 0;
          std::string who = describe(f, &id);
          long key = k.at == kernel_state::where::user ? -3 : k.nr;
          auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - e.since).count();
          std::string line = who.empty() ? std::string() : held_report(mode, who, v.index, ms, k);
          if (!line.empty()) {
            if (reported.size() >= 4096) reported.clear();
            if (reported.emplace(id, key, k.pc).second) report_held(line);
          }
        }
      }
      ++stuck;
      if (v.has_work()) {
        hand_off(v);
        stuck_work = true;
      }
      // Its due timers too: a fiber parked with a deadline keeps its timer
      // on the worker it parked on, and only that worker (or a spinning
      // thief) fires it. Fired here, the fiber goes to the global queue
      // (push_from_outside) and counts as work below, for a spare if need be.
      if (v.timers.earliest() <= now && v.timers.fire_expired(now) != 0) stuck_work = true;
    }
    nstuck.store(stuck, std::memory_order_relaxed);
    // The stuck workers' queues are in the global queue now. Idle workers
    // were woken for it, busy ones look there; if every worker is stuck,
    // nobody will: start a spare.
    if (stuck != 0 && (stuck_work || gsize.load(std::memory_order_relaxed) != 0) &&
        // seq_cst: ordered with the workers' W1/W4 npidle updates
        npidle.load(std::memory_order_seq_cst) == 0 && stuck >= nactive.load(std::memory_order_seq_cst))
      activate_spare();
    // Fibers wait on fds but every worker is busy, so nobody polls: poll here.
    if (io_waiting() > 0 && now - poller->last_poll() >= limit) {
      bool expect = false;
      // acquire: pairs with the release store of false by the previous poller
      if (poller_busy.compare_exchange_strong(expect, true, std::memory_order_acquire)) {
        reactor::ready_event ready[reactor::max_events];
        int n = poller->poll_now(ready);
        poller_busy.store(false, std::memory_order_release);
        if (n > 0) monitor_polls.fetch_add(1, std::memory_order_relaxed);
        io_internal::dispatch(ready, n);
      }
    }
    // Everything idle for 4 ticks in a row: sleep until a worker wakes (see
    // leave_idle()). Not at the first idle tick: a server that idles between
    // bursts would then pay a futex wake of the monitor (2-5 us) on every
    // burst; 4 ticks (20 ms at the default limit) bound that to 50 a second.
    // Each tick costs ~40 us of CPU here (BM_idle: +0.8 ms per idle period
    // with 20 ticks), so an idle runtime pays ~0.2 ms once, then nothing.
    // relaxed: only counts idle ticks; the sleep below re-checks under W4.
    bool all_idle = stuck == 0 && npidle.load(std::memory_order_relaxed) == nactive.load(std::memory_order_relaxed);
    idle_ticks = all_idle ? idle_ticks + 1 : 0;
    if (idle_ticks >= 4) {
      idle_ticks = 0;
      std::uint32_t zero = 0;
      // seq_cst: W4, side B's store (idle.cpp's table); the npidle load
      // below is its load.
      if (!mon_word.compare_exchange_strong(zero, 1, std::memory_order_seq_cst)) continue;  // stop
      if (npidle.load(std::memory_order_seq_cst) == nactive.load(std::memory_order_seq_cst)) {
        // seq_cst: the word wake_monitor()'s W4 CAS and the destructor's stop write
        while (mon_word.load(std::memory_order_seq_cst) == 1) futex_wait(&mon_word, 1, no_deadline);
      } else {
        std::uint32_t one = 1;
        mon_word.compare_exchange_strong(one, 0, std::memory_order_seq_cst);  // seq_cst: undoes our W4 store in order
      }
    }
  }
}

}  // namespace green::sched
