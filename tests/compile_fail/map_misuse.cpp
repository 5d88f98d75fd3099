// Misuses of parallel_map / pool::map / pool::imap that must not compile.
// compile_fail.cmake builds this file once per GREEN_CASE and requires the
// compiler's first error line to carry the library's own sentence (the
// expected text is next to each case in tests/CMakeLists.txt).
#include <green/parallel.hpp>
#include <green/pool.hpp>

#include <string>
#include <vector>

void misuse(green::pool& p, std::vector<int>& v) {
#if GREEN_CASE == 1  // a void function: nothing to collect
  auto out = green::parallel_map([](int) {}, v);
#elif GREEN_CASE == 3  // not a range
  auto out = green::parallel_map([](int x) { return x; }, 42);
#elif GREEN_CASE == 4  // fn cannot take the element type
  auto out = p.map([](const std::string& s) { return s.size(); }, v);
#elif GREEN_CASE == 5  // a temporary to the lazy imap
  auto out = p.imap([](int x) { return x; }, std::vector<int>{1, 2});
#elif GREEN_CASE == 6  // a void function through the pool
  auto out = p.imap([](int) {}, v);
#else                  // the control: well-formed calls compile (so a failure above is the misuse)
  auto out = green::parallel_map([](int x) { return x; }, v);
  auto out2 = p.map([](int x) { return x; }, std::vector<int>{1, 2});
  (void)out2;
#endif
  (void)out;
}
