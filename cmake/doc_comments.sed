# doxygen's INPUT_FILTER for the public headers (cmake/docs.cmake).
# The headers' comments are plain text, not doxygen markup: a `//` comment
# that starts a line becomes a `///` doc comment, and in it the two
# characters doxygen reads as link requests, `#name` and `::name`, are
# escaped so they print as written. `///` lines and comments after code
# stay as they are.
s@^([[:space:]]*)//([^/]|$)@\1///\2@
/^[[:space:]]*\/\/\//{
  s@(^|[^[:alnum:]_>)`])::([[:alpha:]_])@\1\\::\2@g
  s@(^|[^[:alnum:]_&`])#([[:alpha:]_])@\1\\#\2@g
}
