/* CYNET_ASAN_BUILD: 1 when this code is compiled with AddressSanitizer (setup.py adds
   -fsanitize=address for CYNET_ASAN=1), else 0. It comes from the compiler's own macros
   (gcc's __SANITIZE_ADDRESS__, clang's __has_feature), not from a define of setup.py, so
   it is 1 only in code that really is instrumented. */
#ifndef CYNET_ASAN_BUILD_H
#define CYNET_ASAN_BUILD_H

#if defined(__SANITIZE_ADDRESS__)
#define CYNET_ASAN_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CYNET_ASAN_BUILD 1
#endif
#endif

#ifndef CYNET_ASAN_BUILD
#define CYNET_ASAN_BUILD 0
#endif

#endif
