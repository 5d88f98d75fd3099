// The sync_test suite: one binary built from several files, one per
// primitive (or family), sharing this fixture.
//
//   sync_mutex_test.cpp               mutex, timed/recursive/recursive_timed
//                                     mutex; instantiates the suite
//   sync_shared_mutex_test.cpp        shared_mutex (upgrade ownership), upgrade_lock
//   sync_condition_variable_test.cpp  condition_variable, condition_variable_any
//   sync_semaphore_test.cpp           semaphore, bounded_semaphore
//   sync_event_barrier_test.cpp       event, latch, barrier, wait_group
//
// One binary, not one per file, so that the CTest names stay
// `w/sync_test.<test>/workers_<n>` and `sync_test.watchdog_is_linked` (two
// binaries with the same suite name would register the same test names).
#pragma once

#include "test_util.hpp"

// sync_test runs a test body on a runtime of GetParam() workers. Declared
// here, outside any unnamed namespace, so all the files name one class;
// sync_mutex_test.cpp instantiates it.
GREEN_WORKER_FIXTURE(sync_test);
