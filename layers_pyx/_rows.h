/* Short row copies and adds for im2col / col2im, float and double.

   Inlined rather than libc calls: the rows of a small layer hold a few values each, and
   a call per row costs more than moving them (benchmark case a: LeNet conv1). */
#ifndef CYNET_ROWS_H
#define CYNET_ROWS_H

#include <stddef.h>

/* `restrict` lets the compiler vectorise the add without a runtime overlap check. */
static inline void cynet_add_f(float *__restrict d, const float *__restrict s,
                               ptrdiff_t n) {
    for (ptrdiff_t i = 0; i < n; ++i) d[i] += s[i];
}
static inline void cynet_add_d(double *__restrict d, const double *__restrict s,
                               ptrdiff_t n) {
    for (ptrdiff_t i = 0; i < n; ++i) d[i] += s[i];
}
/* The copy in SSE2 vectors (part of x86-64), since gcc turns a plain copy loop back into
   a memcpy call. */
#if defined(__SSE2__)
#include <emmintrin.h>
static inline void cynet_copy_f(float *__restrict d, const float *__restrict s,
                                ptrdiff_t n) {
    ptrdiff_t i = 0;
    if (n < 4) {
        for (; i < n; ++i) d[i] = s[i];
        return;
    }
    for (; i + 4 <= n; i += 4) _mm_storeu_ps(d + i, _mm_loadu_ps(s + i));
    if (i < n)  /* the tail as one vector ending at n, overlapping stored values */
        _mm_storeu_ps(d + n - 4, _mm_loadu_ps(s + n - 4));
}
static inline void cynet_copy_d(double *__restrict d, const double *__restrict s,
                                ptrdiff_t n) {
    ptrdiff_t i = 0;
    if (n < 2) {
        if (n == 1) d[0] = s[0];
        return;
    }
    for (; i + 2 <= n; i += 2) _mm_storeu_pd(d + i, _mm_loadu_pd(s + i));
    if (i < n)
        _mm_storeu_pd(d + n - 2, _mm_loadu_pd(s + n - 2));
}
#else
#include <string.h>
static inline void cynet_copy_f(float *d, const float *s, ptrdiff_t n) {
    memcpy(d, s, n * sizeof(float));
}
static inline void cynet_copy_d(double *d, const double *s, ptrdiff_t n) {
    memcpy(d, s, n * sizeof(double));
}
#endif

#endif
