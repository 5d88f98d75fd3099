// Snippets for timeout_misuse_check.cmake, one per -DCASE_*: the library's
// misuse that the compiler must flag (under -Werror: fail to compile), and
// the correct spellings next to them, which must compile cleanly. Compiled
// with -fsyntax-only only; never linked or run.
#include <chrono>

#include <green/timeout.hpp>

using namespace std::chrono_literals;

void snippet(int ms) {
#if defined(CASE_OK)
  green::timeout a{10ms};
  green::timeout b{std::chrono::milliseconds(ms)};
  green::timeout c(10ms);
  green::timeout d{green::sched::clock::now()};
  (void)a, (void)b, (void)c, (void)d;
#elif defined(CASE_TEMPORARY)
  green::timeout{10ms};  // ends at the semicolon: a [[nodiscard]] warning
  (void)ms;
#elif defined(CASE_TEMPORARY_DEADLINE)
  green::timeout{green::sched::clock::now()};
  (void)ms;
#elif defined(CASE_VEXING_PARSE)
  green::timeout t(std::chrono::milliseconds(ms));  // declares a function t: -Wvexing-parse
#else
#error "timeout_misuse.cpp: define one CASE_*"
#endif
}
