// The link anchor: why a program that links greenfiber::patch keeps
// libgreenfiber_patch.so in its DT_NEEDED list.
//
// The library works by being loaded, not by being called: its read(),
// poll(), nanosleep(), ... come before libc's in the process's lookup
// order. A program that links it but never names one of its symbols (the
// program the patch exists for: it calls libcurl or hiredis, which call
// libc) gives a linker run with --as-needed (Debian's and Ubuntu's GCC
// default) no reason to record it, and the library is silently dropped:
// every blocking call then blocks its worker.
//
// So every target that links greenfiber::patch compiles one more source,
// fibers/patch/link/keep_patch_linked.cpp (the target's INTERFACE_SOURCES,
// installed with the package), whose static constructor calls
// green_patch_link_anchor() below. That is a reference from a live object
// of the program, which every linker honours: ld.bfd, gold and lld with
// --as-needed, --gc-sections (.init_array is a root) and LTO.
//
// Rejected:
//  * LINKER:-u,<symbol of this library>: an undefined-symbol request is
//    not a reference from an object; ld.bfd, gold and lld all still drop
//    the library (binutils 2.40, lld 14).
//  * LINKER:--no-as-needed as an interface link option: it lands before
//    the objects and switches --as-needed off for the rest of the link,
//    and a consumer's own later -Wl,--as-needed switches it back on.
//  * Wrapping the library in --push-state,--no-as-needed ... --pop-state:
//    CMake writes a target's own file itself; flags in its interface link
//    libraries land after it, and its place moves when it is deduplicated.
//  * A [[gnu::used]] pointer to the anchor instead of a constructor: lld
//    --gc-sections removes the pointer's section (GCC 12 does not mark it
//    SHF_GNU_RETAIN) and with it the reference.
//
// The anchor does nothing; the call costs one PLT call at program start.
// What the library needs from the executable (the green::sched seam,
// exported) is the separate business of the target's interface link
// options (fibers/patch/CMakeLists.txt).

extern "C" {

// green_patch_link_anchor() does nothing. Called once from each linking
// target's static constructor, before main. Any thread.
__attribute__((visibility("default"))) void green_patch_link_anchor() noexcept {}

}  // extern "C"
