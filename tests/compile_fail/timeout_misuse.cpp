// green::timeout misuses that the compiler must flag, built by
// compile_fail.cmake once per GREEN_CASE with -Werror and the compiler's
// default warnings only (the diagnostics must not depend on -Wall). The
// control (no case) holds the correct spellings, which must compile
// cleanly. The expected text is next to each case in tests/CMakeLists.txt.
#include <chrono>

#include <green/timeout.hpp>

using namespace std::chrono_literals;

void snippet(int ms) {
#if GREEN_CASE == 1  // an unnamed temporary ends at the semicolon: [[nodiscard]]
  green::timeout{10ms};
  (void)ms;
#elif GREEN_CASE == 2  // the same with a deadline
  green::timeout{green::sched::clock::now()};
  (void)ms;
#elif GREEN_CASE == 3  // the vexing parse declares a function t: -Wvexing-parse
  green::timeout t(std::chrono::milliseconds(ms));
#else                  // the control
  green::timeout a{10ms};
  green::timeout b{std::chrono::milliseconds(ms)};
  green::timeout c(10ms);
  green::timeout d{green::sched::clock::now()};
  (void)a, (void)b, (void)c, (void)d;
#endif
}
