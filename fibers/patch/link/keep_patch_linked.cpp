// Part of greenfiber::patch, compiled into every target that links it (the
// target's INTERFACE_SOURCES). It references the patch library from an
// object of your program, so that a linker run with --as-needed keeps
// libgreenfiber_patch.so even if your code never names one of its symbols.
// Why a constructor: fibers/patch/src/link_anchor.cpp.
extern "C" void green_patch_link_anchor() noexcept;

namespace {

[[gnu::constructor]] void greenfiber_patch_keep_linked() noexcept { green_patch_link_anchor(); }

}  // namespace
