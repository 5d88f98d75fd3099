# Driver of the watchdog_names_a_hanging_test CTest entry (cmake -P, with
# -DBIN=<watchdog_selftest>). The execute_process TIMEOUT is only the
# backstop for a watchdog that never fires; the watchdog's limit is 2 s.
if(NOT BIN)
  message(FATAL_ERROR "usage: cmake -DBIN=<watchdog_selftest> -P watchdog_selftest.cmake")
endif()

execute_process(COMMAND ${CMAKE_COMMAND} -E env GREEN_WATCHDOG_S=2 ${BIN}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out TIMEOUT 90)
message("${out}")
if(NOT rc STREQUAL "124")
  message(FATAL_ERROR "watchdog_selftest ended with '${rc}', not the watchdog's exit status 124")
endif()
if(NOT out MATCHES "watchdog: test watchdog_selftest\\.a_lost_wake_up_hangs did not finish within 2 s")
  message(FATAL_ERROR "the watchdog did not name the hanging test")
endif()
if(NOT out MATCHES "\\[       OK \\] watchdog_selftest\\.the_limit_comes_from_the_environment")
  message(FATAL_ERROR "the test before the hanging one did not pass")
endif()

# Bad input is a clear error, not a silently ignored limit.
execute_process(COMMAND ${CMAKE_COMMAND} -E env GREEN_WATCHDOG_S=2s ${BIN}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out TIMEOUT 90)
if(NOT rc STREQUAL "2" OR NOT out MATCHES "GREEN_WATCHDOG_S=\"2s\" is not a number of seconds")
  message(FATAL_ERROR "GREEN_WATCHDOG_S=2s: exit '${rc}', output:\n${out}")
endif()
message(STATUS "the watchdog named the hanging test and ended it")
