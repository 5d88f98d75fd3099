// net_test_util.hpp: the fixture the net suites share: parameterized over
// worker counts, and teardown checks that no fd leaked (/proc/self/fd
// before and after).
#pragma once

#include <dirent.h>

#include <gtest/gtest.h>

#include "test_util.hpp"

namespace green::testing {

inline int count_fds() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (dirent* e = ::readdir(d))
      if (e->d_name[0] != '.') ++n;
    ::closedir(d);
  }
  return n - 1;  // the directory's own fd
}

class fd_checked_param : public rt_param {
 protected:
  void SetUp() override { fds_before_ = count_fds(); }
  void TearDown() override { EXPECT_EQ(count_fds(), fds_before_) << "fds leaked"; }
  int fds_before_ = 0;
};

}  // namespace green::testing
