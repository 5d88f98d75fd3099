// seat_booking: the classic check-then-act race, and green::mutex fixing it.
//
// 1000 customers (fibers, spread over every worker) each try to book one of
// 100 seats: "if a seat is left, take it". Between the check and the
// booking a customer yields (think: a database round trip), so without a
// lock many customers see the same last seats and the show is oversold.
// With a green::mutex held across check and booking it never is.
// (The counter is a std::atomic, so the unsafe version is a logic race, not
// undefined behaviour: each access is atomic, the check-then-act is not.)
#include <green/green.hpp>
#include <green/mutex.hpp>

#include <atomic>
#include <cstdio>
#include <mutex>
#include <vector>

constexpr int seats = 100;
constexpr int customers = 1000;

// book() runs every customer as a fiber and returns how many got a seat.
template <class Book>
int sell(Book book) {
  std::atomic<int> sold{0};
  std::vector<green::fiber<void>> fibers;
  for (int c = 0; c < customers; ++c)
    fibers.push_back(green::spawn([&] {
      if (book()) sold.fetch_add(1, std::memory_order_relaxed);
    }));
  for (auto& f : fibers) f.join();
  return sold.load();
}

int main() {
  green::runtime rt;  // one worker per core
  std::printf("%d customers, %d seats, %u workers\n", customers, seats, rt.workers());

  int unsafe_sold = rt.run([] {
    std::atomic<int> left{seats};
    return sell([&] {
      if (left.load() <= 0) return false;  // check ...
      green::this_fiber::yield();          // ... someone else runs here ...
      left.fetch_sub(1);                   // ... act on a stale check
      return true;
    });
  });
  std::printf("without a lock: sold %d tickets for %d seats%s\n", unsafe_sold, seats,
              unsafe_sold > seats ? "  <-- OVERSOLD" : "");

  int safe_sold = rt.run([] {
    std::atomic<int> left{seats};
    green::mutex m;
    return sell([&] {
      std::lock_guard lk(m);  // check and act under one lock
      if (left.load() <= 0) return false;
      green::this_fiber::yield();  // other fibers run, but none can book meanwhile
      left.fetch_sub(1);
      return true;
    });
  });
  std::printf("with green::mutex: sold %d tickets for %d seats\n", safe_sold, seats);
  return safe_sold == seats ? 0 : 1;
}
