/* The max-pooling update of one running maximum, float and double. */
#ifndef CYNET_MAX_TAKE_H
#define CYNET_MAX_TAKE_H

#include <stdint.h>
#include <string.h>

/* PyTorch's max-pool update, `if (v > best || isnan(v)) { best = v; pos = p; }`,
   as bit masks: on real data the comparison is unpredictable, and compilers keep a
   branch for a float select, which then mispredicts half the time (benchmark case g2:
   MaxPool k3 s2 p1). */
static inline void cynet_take_f(float v, int64_t p, float *best, int64_t *pos) {
    uint32_t vb, bb, m = 0u - (uint32_t)((v > *best) | (v != v));
    uint64_t m64 = 0u - (uint64_t)(m & 1u);
    memcpy(&vb, &v, 4); memcpy(&bb, best, 4);
    bb = (vb & m) | (bb & ~m);
    memcpy(best, &bb, 4);
    *pos = (int64_t)(((uint64_t)p & m64) | ((uint64_t)*pos & ~m64));
}
static inline void cynet_take_d(double v, int64_t p, double *best, int64_t *pos) {
    uint64_t vb, bb, m = 0u - (uint64_t)((v > *best) | (v != v));
    memcpy(&vb, &v, 8); memcpy(&bb, best, 8);
    bb = (vb & m) | (bb & ~m);
    memcpy(best, &bb, 8);
    *pos = (int64_t)(((uint64_t)p & m) | ((uint64_t)*pos & ~m));
}

#endif
