# The API reference: `cmake --build <dir> --target docs` writes HTML to
# <dir>/api/html/index.html from the public headers (fibers/include/green,
# green/version.hpp; not green/detail/, not the runtime's seam, which is
# for the patch library, not for programs). Absent when doxygen is not
# installed (apt-get install doxygen); .ci/test builds it.
#
# The headers' comments are `//`, not `///`: a filter turns each comment
# line that starts a line into a doc comment, so the reference carries the
# same text a reader of the header sees, and no header has to change its
# style for doxygen. Comments after code on the same line are left alone
# (they explain the code, not the API).
# Any doxygen warning fails the target (WARN_AS_ERROR), as an unresolved
# reference or a malformed comment would otherwise rot unseen.
find_package(Doxygen)
if(NOT DOXYGEN_FOUND)
  message(STATUS "docs: doxygen not found, no 'docs' target (apt-get install doxygen)")
  return()
endif()

set(DOXYGEN_PROJECT_NAME greenfiber)
set(DOXYGEN_PROJECT_NUMBER ${PROJECT_VERSION})
set(DOXYGEN_PROJECT_BRIEF "Green threads for C++20")
set(DOXYGEN_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/api)
set(DOXYGEN_GENERATE_HTML YES)
set(DOXYGEN_GENERATE_LATEX NO)
set(DOXYGEN_EXTRACT_ALL YES)
set(DOXYGEN_EXTRACT_PRIVATE NO)
set(DOXYGEN_EXTRACT_STATIC YES)
set(DOXYGEN_FILE_PATTERNS *.hpp)
set(DOXYGEN_RECURSIVE YES)
set(DOXYGEN_EXCLUDE ${PROJECT_SOURCE_DIR}/fibers/include/green/detail)
set(DOXYGEN_EXCLUDE_SYMBOLS "green::detail" "green::detail::*")
set(DOXYGEN_STRIP_FROM_PATH ${PROJECT_SOURCE_DIR}/fibers/include ${PROJECT_BINARY_DIR}/include)
set(DOXYGEN_STRIP_FROM_INC_PATH ${PROJECT_SOURCE_DIR}/fibers/include ${PROJECT_BINARY_DIR}/include)
set(DOXYGEN_FULL_PATH_NAMES YES)
set(DOXYGEN_INPUT_FILTER "sed -E -f ${CMAKE_CURRENT_LIST_DIR}/doc_comments.sed")
set(DOXYGEN_FILTER_SOURCE_FILES NO)
set(DOXYGEN_JAVADOC_AUTOBRIEF YES)
set(DOXYGEN_MARKDOWN_SUPPORT YES)
set(DOXYGEN_QUIET YES)
set(DOXYGEN_WARN_IF_UNDOCUMENTED NO)
set(DOXYGEN_WARN_AS_ERROR YES)
set(DOXYGEN_PREDEFINED "GREEN_DOXYGEN")
set(DOXYGEN_USE_MDFILE_AS_MAINPAGE ${PROJECT_SOURCE_DIR}/docs/api.md)
doxygen_add_docs(docs
  ${PROJECT_SOURCE_DIR}/docs/api.md
  ${PROJECT_SOURCE_DIR}/fibers/include/green
  ${PROJECT_BINARY_DIR}/include/green/version.hpp
  COMMENT "API reference: ${PROJECT_BINARY_DIR}/api/html/index.html")
