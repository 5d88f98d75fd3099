// green::threadpool — OS threads for calls that cannot be cooperative.
//
// Roles. A pool is an impl (a FIFO of jobs under a std::mutex, a condition
// variable its idle threads sleep on, counters) shared by the pool object and
// each of its threads. Submitters push a job; a pool thread pops it, runs it
// outside the lock, and the job sets its own green::event, which wakes the
// parked fiber (or blocked thread) through the seam like any other event.
// A green::wait_group counts unfinished jobs for join().
//
// Thread supply. submit() starts a thread when the queued jobs outnumber the
// idle threads and fewer than size() exist, so a burst of n calls gets
// min(n, size) threads at once instead of waiting on one. A thread that
// finds no work for `idle` exits. Threads are detached and keep the impl
// alive through their shared_ptr, so a pool destroyed while a call is stuck
// (a waiter killed, a blocking call that never returns) leaves nothing
// dangling: the last thread out frees the impl.
//
// Constants. default idle = 2 s: starting a thread costs 134-161 µs on
// this (busy, 2-core) machine (std::thread create + join in a loop), so
// re-creating one after every 2 s pause costs < 0.01% of a core; idle threads also count as "outside threads" for the
// runtime's deadlock detector, which stays silent while one exists, so they should not linger long. Default size 64:
// calls that need the pool (getaddrinfo, file I/O) mostly wait on something else, so far more threads than the 2 cores
// are useful, and 64 x 8 MiB of reserved (not touched) stack is cheap.
//
// Rejected: waking waiters with a per-call futex or std::promise (a fiber
// would block its worker; the event parks it through the seam); a fixed set
// of threads started up front (a program that never calls to_thread should
// not pay 64 threads); joinable threads (an exited idle thread would have to
// be joined by someone else later, and a stuck call would hang ~threadpool).
#include "green/threadpool.hpp"

#include <pthread.h>

#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>

#include "green/wait_group.hpp"

namespace green {

namespace detail {
void throw_no_result() { throw std::logic_error("green::thread_result: no call (default-constructed or already got)"); }
}  // namespace detail

// Invariants: idle_ <= live_ <= size; a thread counts in idle_ only while
// it waits on cv_; every job in q_ is counted in unfinished (and stays
// counted until it has run).
struct threadpool::impl {
  impl(std::size_t n, std::chrono::milliseconds idle_for) : size(n), idle_timeout(idle_for) {}

  const std::size_t size;
  const std::chrono::milliseconds idle_timeout;
  wait_group unfinished;  // jobs submitted and not yet run to completion
  bool wait_all(sched::time_point deadline) { return unfinished.wait_for(deadline - sched::clock::now()); }

  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::shared_ptr<detail::pool_job>> q;  // guarded by mu
  std::size_t live = 0;                             // guarded by mu
  std::size_t idle = 0;                             // guarded by mu
  bool stopping = false;                            // guarded by mu: exit once q is drained

  // Pool threads only.
  static void thread_main(std::shared_ptr<impl> self) noexcept {
    ::pthread_setname_np(::pthread_self(), "green-pool");
    std::unique_lock lk(self->mu);
    for (;;) {
      if (!self->q.empty()) {
        auto job = std::move(self->q.front());
        self->q.pop_front();
        lk.unlock();
        job->run();
        job.reset();  // the last reference may be ours: free it before counting it done
        self->unfinished.done();
        lk.lock();
        continue;
      }
      if (self->stopping) break;
      ++self->idle;
      bool woke = self->cv.wait_for(lk, self->idle_timeout, [&] { return !self->q.empty() || self->stopping; });
      --self->idle;
      if (!woke) break;
    }
    --self->live;
  }
};

threadpool::threadpool(std::size_t size, std::chrono::milliseconds idle) {
  if (size == 0) throw std::invalid_argument("green::threadpool: size must be at least 1");
  if (idle.count() < 0) throw std::invalid_argument("green::threadpool: idle timeout must not be negative");
  impl_ = std::make_shared<impl>(size, idle);
}

threadpool::~threadpool() {
  if (!impl_) return;
  {
    detail::pause_scope_deadline pause;  // a timeout scope does not cut the destructor's wait short
    try {
      impl_->wait_all(sched::no_deadline);
    } catch (const fiber_exit&) {
      sched::current_fiber()->kill();  // stop waiting; the next suspension point raises it again
    }
  }
  std::lock_guard lk(impl_->mu);
  impl_->stopping = true;
  impl_->cv.notify_all();
}

std::size_t threadpool::size() const noexcept { return impl_->size; }

std::size_t threadpool::threads() const noexcept {
  std::lock_guard lk(impl_->mu);
  return impl_->live;
}

std::size_t threadpool::pending() const noexcept { return static_cast<std::size_t>(impl_->unfinished.count()); }

void threadpool::submit(std::shared_ptr<detail::pool_job> job) {
  impl& p = *impl_;
  std::lock_guard lk(p.mu);
  p.unfinished.add(1);
  p.q.push_back(std::move(job));
  if (p.q.size() > p.idle && p.live < p.size) {
    try {
      std::thread(impl::thread_main, impl_).detach();
      ++p.live;
    } catch (const std::system_error&) {
      if (p.live == 0) {  // nobody would ever run it
        p.q.pop_back();
        p.unfinished.done();
        throw;
      }
      // else a running thread picks it up later
    }
  }
  if (p.idle > 0) p.cv.notify_one();
}

void threadpool::join() { impl_->wait_all(sched::no_deadline); }

bool threadpool::join_until_(sched::time_point deadline) { return impl_->wait_all(deadline); }

namespace detail {
std::size_t pool_size_from_env(const char* env) {
  if (env == nullptr || *env == '\0') return 64;
  char* end = nullptr;
  errno = 0;
  unsigned long long n = std::strtoull(env, &end, 10);
  if (*end != '\0' || errno != 0 || n == 0 || env[0] == '-' || n > std::numeric_limits<std::size_t>::max())
    throw std::invalid_argument(std::string("GREEN_THREADPOOL=\"") + env +
                                "\": expected the default pool's thread count, a positive integer");
  return static_cast<std::size_t>(n);
}
}  // namespace detail

threadpool& threadpool::default_pool() {
  // Never destroyed: a call still running at exit (a stuck getaddrinfo)
  // must not make exit wait for it, and fibers of other static objects'
  // destructors may still use it.
  static threadpool* pool = new threadpool(detail::pool_size_from_env(std::getenv("GREEN_THREADPOOL")));
  return *pool;
}

}  // namespace green
