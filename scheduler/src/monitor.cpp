// The monitor and spare workers.
//
// One thread per runtime (Go's sysmon). Every limit/2 it samples each
// started worker's `running` fiber and switch count: a worker whose count
// has not moved for `limit` while it runs a fiber is stuck (a blocking call
// the patch layer does not cover, a long computation). The fiber is reported
// once; its queued fibers move to the global queue (hand_off()), where idle
// workers (woken for it) and busy ones (every 61 picks, and at each yield
// that finds nothing local) take them; if every worker is stuck, a spare
// worker is started (or woken from retirement). Spares retire when nothing is stuck
// and they hold no timers. The monitor also polls the reactor when fibers
// wait on fds and no worker has polled for `limit` (every worker busy).
// When every worker is idle it sleeps until a worker wakes up, so an idle
// runtime costs no CPU.
//
// Cost: a relaxed store of `running` per switch (same cache line as the
// switch count); the monitor's own wake-ups, limit/2 apart, only while
// some worker is busy.
//
// Sleep protocol: the monitor's CAS of mon_word 0 -> 1 then its npidle
// check pairs with leave_idle()'s npidle-- then mon_word load (W4 in
// idle.cpp's table).
//
// Rejected: a timer signal per worker to preempt (async preemption needs
// safe points the C++ code does not have); starting a thread per stuck
// fiber (the spares are capped by config.max_spare_workers).
#include <fcntl.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "futex.hpp"
#include "io_internal.hpp"
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

// thread_blocked() is true when the worker's thread sleeps in the kernel
// (state S or D in /proc: a blocking call).
bool thread_blocked(const worker& v) noexcept {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/task/%d/stat", static_cast<int>(v.tid.load(std::memory_order_relaxed)));
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[256];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return false;
  buf[n] = 0;
  const char* paren = std::strrchr(buf, ')');  // the name may hold spaces and parens
  if (paren == nullptr || paren[1] == 0 || paren[2] == 0) return false;
  return paren[2] == 'S' || paren[2] == 'D';
}
}  // namespace

// monitor_main(): the monitor thread's body. Started by lifecycle.
void scheduler::impl::monitor_main() noexcept {
  monitor_tid.store(static_cast<pid_t>(::syscall(SYS_gettid)), std::memory_order_release);
  char name[16];
  std::snprintf(name, sizeof name, "%.9s-mon", self->cfg_.name.c_str());
  pthread_setname_np(pthread_self(), name);
  const clock::duration limit = self->cfg_.monitor_limit;
  struct seen {
    std::uint64_t switches = 0;
    time_point since{};     // when `switches` last moved
    time_point cpu_at{};    // when `cpu` was read (the first tick without a switch)
    clock::duration cpu{};  // the thread's CPU time then (a syscall: read only when suspect)
    bool reported = false;
  };
  std::vector<seen> last(workers.size());
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
        e = seen{sw, now, {}, {}, false};
        continue;
      }
      if (e.cpu_at == time_point{}) {
        e.cpu_at = now;
        e.cpu = thread_cpu(v);
      }
      if (now - e.since < limit) continue;
      // No switch for `limit`. Stuck if the thread sleeps in the kernel, or
      // has computed for limit/2 of CPU time since we started watching; a
      // runnable thread the OS simply did not run (a loaded machine) is not
      // stuck yet, and a spare would only add to the load.
      if (!e.reported && !thread_blocked(v) && thread_cpu(v) - e.cpu < limit / 2) continue;
      ++stuck;
      if (v.has_work()) {
        hand_off(v);
        stuck_work = true;
      }
      if (!e.reported) {
        e.reported = true;
        std::string who = describe(f);
        if (!who.empty()) {
          stuck_reports.fetch_add(1, std::memory_order_relaxed);
          auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - e.since).count();
          std::fprintf(stderr,
                       "green: monitor: %s has held worker %u for %lld ms without switching (a blocking call "
                       "or a long computation); other fibers move to other workers. Use green::to_thread for "
                       "blocking calls, or the patch library.\n",
                       who.c_str(), v.index, static_cast<long long>(ms));
        }
      }
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
