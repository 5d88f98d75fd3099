// boost_pool.hpp: OS threads running Boost.Fiber under one scheduling
// algorithm, to which a benchmark hands jobs; the Boost.Fiber baseline.
//
// Thread 0's main context runs each job, so a job may spawn and join fibers;
// with work_stealing the other threads steal them. Every pool thread waits
// for jobs or for shutdown on a boost::fibers::condition_variable_any, not a
// std::condition_variable: the wait must suspend the thread's main fiber, not
// block the thread, or its scheduler could not run (or steal) other fibers.
//
// Boost 1.74's work_stealing keeps its registry in statics (a thread counter,
// a scheduler vector sized once, a barrier sized once), so it can be installed
// on one set of threads once per process; a second pool would index past the
// vector. Run work_stealing pools in a forked child (child_server,
// run_in_child in bench_util.hpp); this class throws std::logic_error on a
// second work_stealing pool instead of corrupting memory. With one thread,
// work_stealing's victim loop never finds a thread other than itself, so
// work_stealing needs >= 2 threads; round_robin is per thread, so exactly 1.
#pragma once

#include <boost/fiber/all.hpp>

#include <atomic>
#include <functional>
#include <future>
#include <latch>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace green_bench {

enum class boost_algo {
  round_robin,         // Boost's default per-thread FIFO scheduler; 1 thread
  work_stealing,       // idle threads spin (Boost's default, suspend = false)
  work_stealing_park,  // idle threads block on a condition variable (suspend = true)
};

inline const char* to_string(boost_algo a) {
  switch (a) {
    case boost_algo::round_robin:
      return "round_robin";
    case boost_algo::work_stealing:
      return "work_stealing";
    case boost_algo::work_stealing_park:
      return "work_stealing(suspend)";
  }
  return "?";
}

// Invariants: job_ is non-empty only between run() storing it and thread 0
// taking it; stop_ goes false -> true once, in the destructor.
class boost_pool {
 public:
  // Starts `threads` threads and returns once each has installed `algo`.
  // Throws std::invalid_argument for a thread count `algo` cannot use, and
  // std::logic_error for a second work_stealing pool in this process.
  boost_pool(boost_algo algo, unsigned threads) : ready_(threads) {
    bool ws = algo != boost_algo::round_robin;
    if (ws ? threads < 2 : threads != 1)
      throw std::invalid_argument(std::string("boost_pool: ") + to_string(algo) + " cannot use " +
                                  std::to_string(threads) + " thread(s)");
    static std::atomic<bool> ws_installed{false};
    // relaxed: only the flag's own value matters, no data is published by it.
    if (ws && ws_installed.exchange(true, std::memory_order_relaxed))
      throw std::logic_error("boost_pool: work_stealing can be installed once per process; run it in a child");
    threads_.reserve(threads);
    for (unsigned i = 0; i < threads; ++i) threads_.emplace_back([this, algo, threads, i] { main_(algo, threads, i); });
    ready_.wait();
  }

  boost_pool(const boost_pool&) = delete;
  boost_pool& operator=(const boost_pool&) = delete;

  // Stops and joins the threads. Preconditions: no run() in progress.
  ~boost_pool() {
    {
      std::lock_guard<std::mutex> lk(mtx_);
      stop_ = true;
    }
    job_cv_.notify_all();
    stop_cv_.notify_all();
    for (auto& t : threads_) t.join();
  }

  // run(fn) runs fn() on thread 0's main fiber and returns its result or
  // rethrows what it threw. Any thread but the pool's; one run() at a time.
  template <class Fn>
  std::invoke_result_t<Fn&> run(Fn fn) {
    using R = std::invoke_result_t<Fn&>;
    std::promise<R> done;
    auto result = done.get_future();
    {
      std::lock_guard<std::mutex> lk(mtx_);
      job_ = [&] {
        try {
          if constexpr (std::is_void_v<R>) {
            fn();
            done.set_value();
          } else {
            done.set_value(fn());
          }
        } catch (...) {
          done.set_exception(std::current_exception());
        }
      };
    }
    job_cv_.notify_one();
    return result.get();
  }

 private:
  void main_(boost_algo algo, unsigned threads, unsigned index) {
    switch (algo) {
      case boost_algo::round_robin:
        boost::fibers::use_scheduling_algorithm<boost::fibers::algo::round_robin>();
        break;
      case boost_algo::work_stealing:
        boost::fibers::use_scheduling_algorithm<boost::fibers::algo::work_stealing>(threads, false);
        break;
      case boost_algo::work_stealing_park:
        boost::fibers::use_scheduling_algorithm<boost::fibers::algo::work_stealing>(threads, true);
        break;
    }
    ready_.count_down();
    std::unique_lock<std::mutex> lk(mtx_);
    if (index != 0) {
      stop_cv_.wait(lk, [this] { return stop_; });
      return;
    }
    for (;;) {
      job_cv_.wait(lk, [this] { return job_ || stop_; });
      if (!job_) return;  // stop_
      auto job = std::exchange(job_, nullptr);
      lk.unlock();
      job();
      lk.lock();
    }
  }

  std::mutex mtx_;
  boost::fibers::condition_variable_any job_cv_;   // thread 0 waits for job_ or stop_
  boost::fibers::condition_variable_any stop_cv_;  // threads 1.. wait for stop_
  std::function<void()> job_;                      // guarded by mtx_
  bool stop_ = false;                              // guarded by mtx_
  std::latch ready_;
  std::vector<std::thread> threads_;
};

}  // namespace green_bench
