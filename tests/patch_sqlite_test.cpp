// The real SQLite on fibers with the patch linked (issue 13, item 8). Many
// fibers, one database, a connection each (WAL, busy_timeout): SQLite holds
// its connection's recursive pthread mutex across the busy handler's
// usleep(), which the patch used to turn into a park; the fiber then
// resumed on another worker, its unlock failed with EPERM, and the next call
// on that connection waited forever for a mutex owned by another thread.
// Now such a fiber keeps its thread while it holds the lock (locks.cpp), and
// every row must be written exactly once. No timing: the busy timeout only
// bounds how long a writer may wait before the test fails.
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include <set>
#include <string>
#include <utility>
#include <vector>

#include <green/patch.hpp>

#include "test_util.hpp"

namespace {

class patch_sqlite : public green::testing::rt_param {};
INSTANTIATE_TEST_SUITE_P(w, patch_sqlite, ::testing::Values(1u, 2u, 4u), green::testing::worker_name);

// temp_db is a database path in a fresh directory, removed with its WAL
// and shared-memory files.
class temp_db {
 public:
  temp_db() {
    char tmpl[] = "/tmp/green_sqlite_XXXXXX";
    char* d = ::mkdtemp(tmpl);
    EXPECT_NE(d, nullptr);
    dir_ = d ? d : "/tmp";
    path_ = dir_ + "/test.db";
  }
  ~temp_db() {
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) ::unlink((path_ + suffix).c_str());
    ::rmdir(dir_.c_str());
  }
  const std::string& path() const { return path_; }

 private:
  std::string dir_, path_;
};

// open_db() opens `path` in serialized mode (SQLite's default: a recursive
// mutex per connection) with WAL and a busy timeout of a minute.
sqlite3* open_db(const std::string& path) {
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  EXPECT_EQ(rc, SQLITE_OK) << (db ? sqlite3_errmsg(db) : "no handle");
  sqlite3_busy_timeout(db, 60000);
  EXPECT_EQ(sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", nullptr, nullptr, nullptr),
            SQLITE_OK)
      << sqlite3_errmsg(db);
  return db;
}

TEST_P(patch_sqlite, fibers_with_own_connections_write_every_row_exactly_once) {
  ASSERT_TRUE(green::patch::runtime_found());
  constexpr int fibers = 50, rows = 20;
  temp_db tmp;
  {
    sqlite3* db = open_db(tmp.path());
    ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE t(fiber INTEGER, row INTEGER, PRIMARY KEY(fiber, row))", nullptr, nullptr,
                           nullptr),
              SQLITE_OK)
        << sqlite3_errmsg(db);
    sqlite3_close(db);
  }
  std::vector<std::string> errors(fibers);
  run([&] {
    std::vector<green::fiber<void>> fs;
    for (int i = 0; i < fibers; ++i)
      fs.push_back(green::spawn([&, i] {
        sqlite3* db = open_db(tmp.path());
        sqlite3_stmt* ins = nullptr;
        if (sqlite3_prepare_v2(db, "INSERT INTO t(fiber, row) VALUES(?, ?)", -1, &ins, nullptr) != SQLITE_OK) {
          errors[i] = sqlite3_errmsg(db);
        } else {
          for (int r = 0; r < rows && errors[i].empty(); ++r) {
            sqlite3_bind_int(ins, 1, i);
            sqlite3_bind_int(ins, 2, r);
            if (sqlite3_step(ins) != SQLITE_DONE) errors[i] = sqlite3_errmsg(db);
            sqlite3_reset(ins);
          }
        }
        sqlite3_finalize(ins);
        EXPECT_EQ(sqlite3_close(db), SQLITE_OK);
      }));
    for (auto& f : fs) f.join();
  });
  EXPECT_EQ(errors, std::vector<std::string>(fibers));

  // Read back on this thread, outside the runtime.
  sqlite3* db = open_db(tmp.path());
  sqlite3_stmt* q = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT fiber, row FROM t", -1, &q, nullptr), SQLITE_OK);
  std::multiset<std::pair<int, int>> got;
  while (sqlite3_step(q) == SQLITE_ROW) got.emplace(sqlite3_column_int(q, 0), sqlite3_column_int(q, 1));
  sqlite3_finalize(q);
  sqlite3_close(db);
  std::multiset<std::pair<int, int>> want;
  for (int i = 0; i < fibers; ++i)
    for (int r = 0; r < rows; ++r) want.emplace(i, r);
  EXPECT_EQ(got.size(), static_cast<std::size_t>(fibers * rows));
  EXPECT_TRUE(got == want) << "some (fiber, row) is missing or written twice";
}

}  // namespace
