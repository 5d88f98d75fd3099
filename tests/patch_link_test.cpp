// greenfiber::patch stays linked in a program that never names one of its
// symbols (issue 13, item 1: with --as-needed the linker dropped it, and
// every blocking call then blocked its worker, silently).
//
// This binary has the shape of a program that only calls libcurl: it links
// greenfiber::patch first, with --as-needed spelled out
// (tests/CMakeLists.txt), includes nothing from green/patch.hpp, and makes
// no direct call to a function the patch defines. It reaches read, write
// and close by name at run time (libc_call below), as a library's PLT
// does; a direct call would itself be a reference the linker resolves to
// libgreenfiber_patch.so, keeping it and hiding the bug.
#include <dlfcn.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>

#include "test_util.hpp"

namespace {

// The library's SONAME: it has no VERSION property, so its file name.
constexpr const char* kPatchSoname = "libgreenfiber_patch.so";

// libc_call<F>("read") is the function the name resolves to in the
// process's global lookup order (the patch's if it is loaded).
template <class F>
F* libc_call(const char* name) {
  void* p = ::dlsym(RTLD_DEFAULT, name);
  EXPECT_NE(p, nullptr) << name << ": " << ::dlerror();
  return reinterpret_cast<F*>(p);
}

TEST(patch_link, patch_library_kept_by_as_needed_linker) {
  // RTLD_NOLOAD finds an object already loaded under that name and never
  // loads one: "the program loaded it", not "it exists".
  void* h = ::dlopen(kPatchSoname, RTLD_LAZY | RTLD_NOLOAD);
  ASSERT_NE(h, nullptr) << kPatchSoname << " is not loaded: the linker dropped it from DT_NEEDED";
  ::dlclose(h);
}

// The same by behaviour, with the order forced: one worker, no monitor,
// no spare worker, so a fiber runs only when the running one suspends. A
// sets `reading` and goes straight into libc's read() on an empty pipe
// (set() wakes B but does not switch to it); B waits for `reading`, finds A
// parked on the fd, and writes the byte A waits for. Without the patch, A
// blocks the only worker, B never runs, and the test hangs until the
// watchdog (or ctest's timeout) fails it.
TEST(patch_link, plain_read_parks_though_no_patch_symbol_is_named) {
  if (std::getenv("GREEN_MONITOR_MS")) GTEST_SKIP() << "GREEN_MONITOR_MS is set; this test needs the monitor off";
  auto* libc_read = libc_call<ssize_t(int, void*, size_t)>("read");
  auto* libc_write = libc_call<ssize_t(int, const void*, size_t)>("write");
  auto* libc_close = libc_call<int(int)>("close");
  ASSERT_FALSE(HasFailure());
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  green::runtime_config cfg = green::testing::test_config(1);
  cfg.max_spare_workers = 0;
  cfg.monitor_limit = std::chrono::milliseconds(0);
  char got = 0;
  bool a_parked_on_fd = false;
  ssize_t n = green::runtime(cfg).run([&] {
    green::event reading;
    auto a = green::spawn([&] {
      reading.set();
      return libc_read(p[0], &got, 1);
    });
    auto b = green::spawn([&] {
      reading.wait();
      const char* why = green::testing::native(a)->wait_reason();
      a_parked_on_fd = green::testing::native(a)->state() == green::sched::fiber_state::parked && why &&
                       std::string(why).find("fd read") != std::string::npos;
      return libc_write(p[1], "x", 1);
    });
    EXPECT_EQ(b.join(), 1);
    return a.join();
  });
  libc_close(p[0]);
  libc_close(p[1]);
  EXPECT_TRUE(a_parked_on_fd);
  EXPECT_EQ(n, 1);
  EXPECT_EQ(got, 'x');
}

}  // namespace
