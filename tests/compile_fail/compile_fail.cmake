# compile_fail.cmake: compiles SRC with -DGREEN_CASE=${CASE} and requires the
# outcome EXPECT describes. EXPECT empty: the file must compile (the
# control). Otherwise it must fail, and the first line of the compiler's
# output that says "error" must contain EXPECT: the library's message comes
# first, not a template backtrace.
# FLAGS adds compiler options (e.g. -Werror, for a misuse the compiler
# only warns about).
#   cmake -DCXX=... -DSTD=-std=c++20 -DINCLUDES="a|b" -DSRC=... -DCASE=n
#         [-DEXPECT=...] [-DFLAGS="f|g"] -P compile_fail.cmake
string(REPLACE "|" ";" incs "${INCLUDES}")
string(REPLACE "|" ";" extra "${FLAGS}")
set(flags ${STD} -fsyntax-only ${extra} -DGREEN_CASE=${CASE})
foreach(i IN LISTS incs)
  list(APPEND flags -I${i})
endforeach()
execute_process(COMMAND ${CXX} ${flags} ${SRC} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(EXPECT STREQUAL "")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "case ${CASE} (the control) should compile:\n${out}")
  endif()
  return()
endif()
if(rc EQUAL 0)
  message(FATAL_ERROR "case ${CASE} compiled, but it is a misuse that must fail")
endif()
string(REGEX MATCH "[^\n]*error:[^\n]*" first "${out}")
string(FIND "${first}" "${EXPECT}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "case ${CASE}: the first error line is\n  ${first}\nwhich lacks\n  ${EXPECT}\nFull output:\n${out}")
endif()
message(STATUS "case ${CASE}: ${first}")
