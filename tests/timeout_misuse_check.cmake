# Driver of the timeout_misuse_is_diagnosed CTest entry (cmake -P, with
# -DCXX=<compiler> -DSRC=<timeout_misuse.cpp> -DINCS=<dir|dir|...>).
# Compiles each snippet of timeout_misuse.cpp with -Werror and the
# compiler's default warnings (no -Wall: the diagnostics must not depend on
# it): CASE_OK must compile, each misuse must fail with its diagnostic.
if(NOT CXX OR NOT SRC OR NOT INCS)
  message(FATAL_ERROR "usage: cmake -DCXX=<c++> -DSRC=<timeout_misuse.cpp> -DINCS=<a|b> -P timeout_misuse_check.cmake")
endif()
string(REPLACE "|" ";" inc_list "${INCS}")
set(flags -std=c++20 -fsyntax-only -Werror)
foreach(dir IN LISTS inc_list)
  list(APPEND flags "-I${dir}")
endforeach()

function(compile case result_var output_var)
  execute_process(COMMAND ${CXX} ${flags} -D${case} ${SRC}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out TIMEOUT 120)
  set(${result_var} "${rc}" PARENT_SCOPE)
  set(${output_var} "${out}" PARENT_SCOPE)
endfunction()

compile(CASE_OK rc out)
if(NOT rc STREQUAL "0")
  message(FATAL_ERROR "the correct spellings of green::timeout do not compile cleanly:\n${out}")
endif()

# case  what the diagnostic must say
foreach(pair "CASE_TEMPORARY=name it, green::timeout t{10ms}"
             "CASE_TEMPORARY_DEADLINE=name it, green::timeout t{deadline}"
             "CASE_VEXING_PARSE=disambiguated as a function declaration")
  string(FIND "${pair}" "=" eq)
  string(SUBSTRING "${pair}" 0 ${eq} case)
  math(EXPR from "${eq} + 1")
  string(SUBSTRING "${pair}" ${from} -1 expected)
  compile(${case} rc out)
  if(rc STREQUAL "0")
    message(FATAL_ERROR "${case}: compiled without a diagnostic")
  endif()
  string(FIND "${out}" "${expected}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "${case}: failed, but without \"${expected}\":\n${out}")
  endif()
  message(STATUS "${case}: diagnosed")
endforeach()
