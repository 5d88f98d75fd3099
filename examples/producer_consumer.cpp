// producer_consumer: a scraper fiber fetches 20 pages (each fetch is a
// sleep here) and puts them into a green::queue; a processor fiber takes
// each page as soon as it arrives. The timeline shows the two overlapping.
// The scraper then waits with join() until every page was processed
// (task_done), and closes the queue so the processor's loop ends.
#include <green/green.hpp>
#include <green/queue.hpp>

#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <string>

using namespace std::chrono_literals;

namespace {
const auto start = std::chrono::steady_clock::now();

// say() prints one timeline line and flushes it at once, so the interleaving
// is visible even through a pipe.
// A C variadic, not a template, so the compiler checks fmt against the
// arguments (format attribute) at every call.
__attribute__((format(printf, 2, 3))) void say(const char* who, const char* fmt, ...) {
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  std::printf("[%7.1f ms] %-9s ", ms, who);
  va_list args;
  va_start(args, fmt);
  std::vprintf(fmt, args);
  va_end(args);
  std::printf("\n");
  std::fflush(stdout);
}

struct page {
  int number;
  std::string body;
};
}  // namespace

int main() {
  green::run([] {
    green::queue<page> pages(5);  // at most 5 pages waiting

    auto scraper = green::spawn([&] {
      for (int n = 1; n <= 20; ++n) {
        green::this_fiber::sleep_for(std::chrono::milliseconds(5 + (n * 7) % 20));  // "download"
        say("scraper", "fetched page %2d", n);
        pages.put(page{n, "<html>page " + std::to_string(n) + "</html>"});
      }
      say("scraper", "all pages queued; waiting until they are processed");
      pages.join();
      say("scraper", "every page processed; closing the queue");
      pages.close();
    });

    auto processor = green::spawn([&] {
      int done = 0;
      for (page& p : pages) {               // ends when the queue is closed and drained
        green::this_fiber::sleep_for(3ms);  // "parse"
        say("processor", "processed page %2d (%zu bytes)", p.number, p.body.size());
        pages.task_done();
        ++done;
      }
      say("processor", "queue closed after %d pages", done);
      return done;
    });

    scraper.join();
    return processor.join();
  });
  return 0;
}
