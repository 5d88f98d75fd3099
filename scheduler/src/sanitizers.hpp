// Which sanitizer this build runs under: the one copy of the detection
// macros (GCC spells it __SANITIZE_*__, clang __has_feature). Private to the
// runtime; tests reach it through their private include path.
//   GREEN_ASAN       AddressSanitizer
//   GREEN_TSAN       ThreadSanitizer
//   GREEN_SANITIZED  either (they report stack overflows themselves, so the
//                    runtime's SIGSEGV handler and alternate stack stay off)
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define GREEN_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GREEN_ASAN 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define GREEN_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GREEN_TSAN 1
#endif
#endif

#if defined(GREEN_ASAN) || defined(GREEN_TSAN)
#define GREEN_SANITIZED 1
#endif
