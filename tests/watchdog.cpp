#include "watchdog.hpp"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

namespace {

char current_test[256] = "(none)";
unsigned limit_s = 120;

void on_alarm(int) {
  char buf[400];
  int n = std::snprintf(buf, sizeof buf, "\nwatchdog: test %s did not finish within %u s (lost wake-up?)\n",
                        current_test, limit_s);
  if (n > 0) {
    ssize_t r = ::write(2, buf, static_cast<size_t>(n));
    (void)r;
  }
  green::dump(std::cerr);  // best effort: we abort next anyway
  std::abort();
}

class watchdog_listener : public ::testing::EmptyTestEventListener {
  void OnTestStart(const ::testing::TestInfo& info) override {
    std::snprintf(current_test, sizeof current_test, "%s.%s", info.test_suite_name(), info.name());
    ::alarm(limit_s);
  }
  void OnTestEnd(const ::testing::TestInfo&) override { ::alarm(0); }
};

struct installer {
  installer() {
    if (const char* s = std::getenv("GREEN_WATCHDOG_S")) limit_s = static_cast<unsigned>(std::atoi(s));
    struct sigaction sa {};
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, nullptr);
    ::testing::UnitTest::GetInstance()->listeners().Append(new watchdog_listener);
  }
} install;

}  // namespace
