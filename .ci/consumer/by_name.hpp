// by_name<F>("read"): a libc function found by name at run time, in the
// process's global lookup order (dlsym(RTLD_DEFAULT)), which is how an
// unmodified shared library such as libcurl reaches it through its PLT.
//
// The patched_* programs call read/write/close/usleep only this way. A
// direct call from their own objects would be a reference the linker
// resolves to libgreenfiber_patch.so (it defines those names) and would
// keep the library NEEDED by itself, hiding what they check: that the
// package keeps it in a program whose own code calls none of them.
#pragma once

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>

template <class F>
F* by_name(const char* name) {
  void* p = ::dlsym(RTLD_DEFAULT, name);
  if (!p) {
    std::fprintf(stderr, "dlsym(%s): %s\n", name, ::dlerror());
    std::exit(2);
  }
  return reinterpret_cast<F*>(p);
}
