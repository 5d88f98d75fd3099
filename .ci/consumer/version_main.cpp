// version_main: built from the installed package twice by .ci/test, once
// with find_package(greenfiber) and once with nothing but
// `c++ $(pkg-config --cflags --libs greenfiber)`. It checks that
// green/version.hpp is installed and agrees with itself (at compile time),
// runs one fiber through the installed libraries, and prints
// "greenfiber <version>", which .ci/test compares with the version the
// package files declare (pkg-config --modversion).
#include <green/green.hpp>
#include <green/version.hpp>

#include <cstdio>
#include <string_view>

#define VERSION_PART(x) #x
#define VERSION_TEXT(x) VERSION_PART(x)

static_assert(std::string_view(VERSION_TEXT(GREEN_VERSION_MAJOR) "." VERSION_TEXT(GREEN_VERSION_MINOR) "." VERSION_TEXT(
                  GREEN_VERSION_PATCH)) == GREEN_VERSION_STRING,
              "GREEN_VERSION_STRING is not MAJOR.MINOR.PATCH");
static_assert(std::string_view(green::version()) == GREEN_VERSION_STRING, "green::version() differs from the macro");
static_assert(GREEN_VERSION == GREEN_VERSION_MAJOR * 10000 + GREEN_VERSION_MINOR * 100 + GREEN_VERSION_PATCH,
              "GREEN_VERSION is not the three parts combined");

int main() {
  int v = green::run([] { return green::spawn([] { return 41; }).join() + 1; });
  if (v != 42) {
    std::fprintf(stderr, "version_main: a fiber returned %d, expected 42\n", v);
    return 1;
  }
  std::printf("greenfiber %s\n", green::version());
  return 0;
}
