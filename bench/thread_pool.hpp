// thread_pool.hpp: the std::thread baseline for pool_bench — a fixed set of
// N threads pulling std::packaged_task jobs from one mutex + condition
// variable queue, the shape of a textbook (and concurrent.futures') thread
// pool. Fair to compare with green::pool(N): one job per item, a future per
// job (green: an async_result), results read in input order.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace green_bench {

class thread_pool {
 public:
  explicit thread_pool(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) threads_.emplace_back([this] { work(); });
  }
  ~thread_pool() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;

  // submit() queues fn() and returns its future. Any thread.
  template <class F>
  auto submit(F fn) -> std::future<std::invoke_result_t<F&>> {
    using R = std::invoke_result_t<F&>;
    auto j = std::make_unique<job<R>>(std::packaged_task<R()>(std::move(fn)));
    auto fut = j->task.get_future();
    {
      std::lock_guard lk(mu_);
      q_.push_back(std::move(j));
    }
    cv_.notify_one();
    return fut;
  }

  // map() runs fn on every item and returns the results in input order.
  template <class F, class T>
  auto map(F fn, const std::vector<T>& items) {
    using R = std::invoke_result_t<F&, const T&>;
    std::vector<std::future<R>> futs;
    futs.reserve(items.size());
    for (const T& x : items) futs.push_back(submit([&fn, &x] { return fn(x); }));
    std::vector<R> out;
    out.reserve(items.size());
    for (auto& f : futs) out.push_back(f.get());
    return out;
  }

 private:
  void work() {
    for (;;) {
      std::unique_ptr<job_base> j;
      {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [&] { return stop_ || !q_.empty(); });
        if (q_.empty()) return;
        j = std::move(q_.front());
        q_.pop_front();
      }
      j->run();
    }
  }

  // A queued job: the typed packaged_task behind one virtual call.
  struct job_base {
    virtual ~job_base() = default;
    virtual void run() = 0;
  };
  template <class R>
  struct job final : job_base {
    explicit job(std::packaged_task<R()> t) : task(std::move(t)) {}
    void run() override { task(); }
    std::packaged_task<R()> task;
  };

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<job_base>> q_;  // guarded by mu_
  bool stop_ = false;                        // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace green_bench
