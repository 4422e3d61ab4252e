/* Direct float32 convolution with AVX-512, vectorised over output channels.
 *
 * The GEMM route (im2col, then BLAS) writes every tap of every pixel to memory, lets
 * BLAS copy it again into its own panels, and multiplies the zeros of the padding as
 * well. Here a block of PB output pixels along one output row, times 16 or 32 output
 * channels, stays in registers (PB x 1 or 2 vectors) while the kernel runs over input
 * channels and taps: each step loads the tap's weights for the channel tile (one or two
 * vectors) and broadcasts one input value per pixel. Input rows that fall in the
 * padding are skipped for the whole block; columns read a zero-bordered copy of the
 * input rows. Any stride and dilation work the same way, since each broadcast is a
 * scalar load.
 *
 * Only built into code that runs after cynet_direct_conv_available() said yes.
 */
#ifndef CYNET_DIRECT_CONV_H
#define CYNET_DIRECT_CONV_H

#include <stddef.h>

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#define CYNET_AVX512 __attribute__((target("avx512f")))
#define CYNET_INLINE static inline __attribute__((always_inline))

static int cynet_direct_conv_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}

/* The lanes of one channel tile: TV vectors of 16 output channels. */
#define CYNET_TILE(TV) ((TV) * 16)

/* Most pixels per block: the accumulators are PB x TV vectors of the 32 registers. */
#define CYNET_DC_MOST_2 12
#define CYNET_DC_MOST_1 14

/* One block: out[v * ldo + p] = bias[v] + sum over c, valid i, j of
 *   w[((c * kh + i) * kw + j) * 16 TV + v] * x[c * plane + (row0 + i dh) * Wp + p sw + j dw]
 * for p < PB and v < nv. x points at the block's first pixel (column already applied). */
CYNET_INLINE CYNET_AVX512 void cynet_dc_block(
    const float *x, ptrdiff_t plane, ptrdiff_t Wp, const float *w, ptrdiff_t C,
    ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t i0, ptrdiff_t i1, ptrdiff_t row0, ptrdiff_t sw,
    ptrdiff_t dh, ptrdiff_t dw, float *out, ptrdiff_t ldo, const float *bias, ptrdiff_t nv,
    const int PB, const int TV)
{
    __m512 acc[14][2];
    float tmp[14 * 32];
#pragma GCC unroll 14
    for (int p = 0; p < PB; ++p) {
        acc[p][0] = _mm512_setzero_ps();
        if (TV > 1) acc[p][1] = _mm512_setzero_ps();
    }
    const ptrdiff_t lanes = CYNET_TILE(TV);
    for (ptrdiff_t c = 0; c < C; ++c) {
        const float *xc = x + c * plane;
        const float *wc = w + (c * kh + i0) * kw * lanes;
        for (ptrdiff_t i = i0; i < i1; ++i) {
            const float *xr = xc + (row0 + i * dh) * Wp;
            for (ptrdiff_t j = 0; j < kw; ++j, wc += lanes) {
                const float *xj = xr + j * dw;
                const __m512 w0 = _mm512_loadu_ps(wc);
                const __m512 w1 = TV > 1 ? _mm512_loadu_ps(wc + 16) : w0;
#pragma GCC unroll 14
                for (int p = 0; p < PB; ++p) {
                    const __m512 b = _mm512_set1_ps(xj[p * sw]);
                    acc[p][0] = _mm512_fmadd_ps(w0, b, acc[p][0]);
                    if (TV > 1) acc[p][1] = _mm512_fmadd_ps(w1, b, acc[p][1]);
                }
            }
        }
    }
#pragma GCC unroll 14
    for (int p = 0; p < PB; ++p) {
        _mm512_storeu_ps(tmp + p * lanes, acc[p][0]);
        if (TV > 1) _mm512_storeu_ps(tmp + p * lanes + 16, acc[p][1]);
    }
    if (nv > lanes) nv = lanes;  /* the caller's promise, kept for the compiler */
    for (ptrdiff_t v = 0; v < nv; ++v) {
        const float beta = bias ? bias[v] : 0.0f;
        float *o = out + v * ldo;
        for (int p = 0; p < PB; ++p) o[p] = tmp[p * lanes + v] + beta;
    }
}

#define CYNET_DC_CASE(N, TV) \
    case N: cynet_dc_block(x, plane, Wp, w, C, kh, kw, i0, i1, row0, sw, dh, dw, out, ldo, \
                           bias, nv, N, TV); break;

/* cynet_dc_block with a run-time PB, at most CYNET_DC_MOST_2 or _1 (as
 * cynet_dc_block_width gives). */
static CYNET_AVX512 void cynet_dc_block_any(
    const float *x, ptrdiff_t plane, ptrdiff_t Wp, const float *w, ptrdiff_t C,
    ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t i0, ptrdiff_t i1, ptrdiff_t row0, ptrdiff_t sw,
    ptrdiff_t dh, ptrdiff_t dw, float *out, ptrdiff_t ldo, const float *bias, ptrdiff_t nv,
    int pb, int tv)
{
    if (tv == 2) {
        switch (pb) {
            CYNET_DC_CASE(1, 2) CYNET_DC_CASE(2, 2) CYNET_DC_CASE(3, 2) CYNET_DC_CASE(4, 2)
            CYNET_DC_CASE(5, 2) CYNET_DC_CASE(6, 2) CYNET_DC_CASE(7, 2) CYNET_DC_CASE(8, 2)
            CYNET_DC_CASE(9, 2) CYNET_DC_CASE(10, 2) CYNET_DC_CASE(11, 2) CYNET_DC_CASE(12, 2)
        }
    } else {
        switch (pb) {
            CYNET_DC_CASE(1, 1) CYNET_DC_CASE(2, 1) CYNET_DC_CASE(3, 1) CYNET_DC_CASE(4, 1)
            CYNET_DC_CASE(5, 1) CYNET_DC_CASE(6, 1) CYNET_DC_CASE(7, 1) CYNET_DC_CASE(8, 1)
            CYNET_DC_CASE(9, 1) CYNET_DC_CASE(10, 1) CYNET_DC_CASE(11, 1) CYNET_DC_CASE(12, 1)
            CYNET_DC_CASE(13, 1) CYNET_DC_CASE(14, 1)
        }
    }
}

/* Pixels per block for a row of OW outputs: as even as possible, at most
 * CYNET_DC_MOST_2 (two vectors of channels) or CYNET_DC_MOST_1 (one). */
static inline int cynet_dc_block_width(ptrdiff_t OW, int tv) {
    const ptrdiff_t most = tv == 2 ? CYNET_DC_MOST_2 : CYNET_DC_MOST_1;
    const ptrdiff_t blocks = (OW + most - 1) / most;
    return (int)((OW + blocks - 1) / blocks);
}

/* One sample, one group, one channel tile: all OH x OW outputs of nv channels.
 * xs: the group's C input planes with rows of Wp values, the left padding pl already
 * applied (column ow * sw + j * dw of a row is the tap's input or a zero).
 * out: the tile's first channel in (F, OH, OW) order. */
static CYNET_AVX512 void cynet_dc_tile(
    const float *xs, ptrdiff_t C, ptrdiff_t H, ptrdiff_t Wp, const float *w, int tv,
    ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t pt, ptrdiff_t dh,
    ptrdiff_t dw, ptrdiff_t OH, ptrdiff_t OW, float *out, const float *bias, ptrdiff_t nv)
{
    const ptrdiff_t plane = H * Wp, ldo = OH * OW;
    const int pb = cynet_dc_block_width(OW, tv);
    for (ptrdiff_t oh = 0; oh < OH; ++oh) {
        const ptrdiff_t row0 = oh * sh - pt;      /* input row of tap 0 */
        ptrdiff_t i0 = 0, i1 = kh;
        if (row0 < 0) i0 = (-row0 + dh - 1) / dh;
        if (row0 + (kh - 1) * dh >= H) i1 = row0 >= H ? 0 : (H - 1 - row0) / dh + 1;
        if (i0 > kh) i0 = kh;  /* padding beyond the kernel: no tap reaches the input */
        if (i1 < i0) i1 = i0;
        for (ptrdiff_t ow0 = 0; ow0 < OW; ow0 += pb) {
            const int n = (int)(OW - ow0 < pb ? OW - ow0 : pb);
            cynet_dc_block_any(xs + ow0 * sw, plane, Wp, w, C, kh, kw, i0, i1, row0, sw, dh,
                               dw, out + oh * OW + ow0, ldo, bias, nv, n, tv);
        }
    }
}

/* The weight gradient, vectorised over output channels the same way.
 *
 * For one sample and one kernel row i, a run of NJ taps (input channel, kernel column)
 * of a channel tile accumulates in registers over every output pixel whose input row
 * lies in the input; each pixel loads its gradient for the tile once (one or two
 * vectors) and broadcasts one input value per tap:
 *   gw[gofs[q] + v] += sum over pixels of dyT[pixel * ld + v] * x[row * Wp + ow sw + xofs[q]]
 * with x the input plane of channel 0 and row = oh sh + rowi (dyT: the sample's output
 * gradient with channels innermost, ld floats per pixel). */
#define CYNET_DCW_MOST_2 12
#define CYNET_DCW_MOST_1 24

CYNET_INLINE CYNET_AVX512 void cynet_dcw_taps(
    const float *x, ptrdiff_t Wp, ptrdiff_t H, const float *dyT, ptrdiff_t ld,
    ptrdiff_t OH, ptrdiff_t OW, ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t rowi,
    const ptrdiff_t *xofs, const ptrdiff_t *gofs, float *gw, const int NJ, const int TV)
{
    __m512 acc[CYNET_DCW_MOST_1][2];
#pragma GCC unroll 24
    for (int q = 0; q < NJ; ++q) {
        acc[q][0] = _mm512_setzero_ps();
        if (TV > 1) acc[q][1] = _mm512_setzero_ps();
    }
    for (ptrdiff_t oh = 0; oh < OH; ++oh) {
        const ptrdiff_t r = oh * sh + rowi;      /* input row of this kernel row */
        if (r < 0 || r >= H) continue;
        const float *xr = x + r * Wp;
        const float *d = dyT + oh * OW * ld;
        for (ptrdiff_t ow = 0; ow < OW; ++ow, d += ld) {
            const __m512 d0 = _mm512_loadu_ps(d);
            const __m512 d1 = TV > 1 ? _mm512_loadu_ps(d + 16) : d0;
            const float *xo = xr + ow * sw;
#pragma GCC unroll 24
            for (int q = 0; q < NJ; ++q) {
                const __m512 b = _mm512_set1_ps(xo[xofs[q]]);
                acc[q][0] = _mm512_fmadd_ps(d0, b, acc[q][0]);
                if (TV > 1) acc[q][1] = _mm512_fmadd_ps(d1, b, acc[q][1]);
            }
        }
    }
#pragma GCC unroll 24
    for (int q = 0; q < NJ; ++q) {
        float *g = gw + gofs[q];
        _mm512_storeu_ps(g, _mm512_add_ps(_mm512_loadu_ps(g), acc[q][0]));
        if (TV > 1)
            _mm512_storeu_ps(g + 16, _mm512_add_ps(_mm512_loadu_ps(g + 16), acc[q][1]));
    }
}

#define CYNET_DCW_CASE(N, TV) \
    case N: cynet_dcw_taps(x, Wp, H, dyT, ld, OH, OW, sh, sw, rowi, xofs, gofs, gw, N, TV); \
    break;

/* cynet_dcw_taps with a run-time nj (at most CYNET_DCW_MOST_2 or _1). */
static CYNET_AVX512 void cynet_dcw_taps_any(
    const float *x, ptrdiff_t Wp, ptrdiff_t H, const float *dyT, ptrdiff_t ld,
    ptrdiff_t OH, ptrdiff_t OW, ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t rowi,
    const ptrdiff_t *xofs, const ptrdiff_t *gofs, float *gw, int nj, int tv)
{
    if (tv == 2) {
        switch (nj) {
            CYNET_DCW_CASE(1, 2) CYNET_DCW_CASE(2, 2) CYNET_DCW_CASE(3, 2)
            CYNET_DCW_CASE(4, 2) CYNET_DCW_CASE(5, 2) CYNET_DCW_CASE(6, 2)
            CYNET_DCW_CASE(7, 2) CYNET_DCW_CASE(8, 2) CYNET_DCW_CASE(9, 2)
            CYNET_DCW_CASE(10, 2) CYNET_DCW_CASE(11, 2) CYNET_DCW_CASE(12, 2)
        }
    } else {
        switch (nj) {
            CYNET_DCW_CASE(1, 1) CYNET_DCW_CASE(2, 1) CYNET_DCW_CASE(3, 1)
            CYNET_DCW_CASE(4, 1) CYNET_DCW_CASE(5, 1) CYNET_DCW_CASE(6, 1)
            CYNET_DCW_CASE(7, 1) CYNET_DCW_CASE(8, 1) CYNET_DCW_CASE(9, 1)
            CYNET_DCW_CASE(10, 1) CYNET_DCW_CASE(11, 1) CYNET_DCW_CASE(12, 1)
            CYNET_DCW_CASE(13, 1) CYNET_DCW_CASE(14, 1) CYNET_DCW_CASE(15, 1)
            CYNET_DCW_CASE(16, 1) CYNET_DCW_CASE(17, 1) CYNET_DCW_CASE(18, 1)
            CYNET_DCW_CASE(19, 1) CYNET_DCW_CASE(20, 1) CYNET_DCW_CASE(21, 1)
            CYNET_DCW_CASE(22, 1) CYNET_DCW_CASE(23, 1) CYNET_DCW_CASE(24, 1)
        }
    }
}

/* One sample, one group, one channel tile: adds its weight gradient into gw, laid out
 * like the packed weights of the tile ((C, kh, kw, lanes)). xs as for cynet_dc_tile;
 * dyT: the tile's first channel of the sample's (OH * OW, ld) output gradient. For each
 * kernel row, the (channel, column) taps go through the registers in runs. */
static CYNET_AVX512 void cynet_dcw_tile(
    const float *xs, ptrdiff_t C, ptrdiff_t H, ptrdiff_t Wp, const float *dyT, ptrdiff_t ld,
    int tv, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t pt,
    ptrdiff_t dh, ptrdiff_t dw, ptrdiff_t OH, ptrdiff_t OW, float *gw)
{
    const ptrdiff_t lanes = CYNET_TILE(tv), most = tv == 2 ? CYNET_DCW_MOST_2 : CYNET_DCW_MOST_1;
    const ptrdiff_t taps = C * kw;
    ptrdiff_t xofs[CYNET_DCW_MOST_1], gofs[CYNET_DCW_MOST_1];
    for (ptrdiff_t i = 0; i < kh; ++i) {
        for (ptrdiff_t t0 = 0; t0 < taps; t0 += most) {
            const int n = (int)(taps - t0 < most ? taps - t0 : most);
            for (int q = 0; q < n; ++q) {
                const ptrdiff_t c = (t0 + q) / kw, j = (t0 + q) % kw;
                xofs[q] = c * H * Wp + j * dw;
                gofs[q] = ((c * kh + i) * kw + j) * lanes;
            }
            cynet_dcw_taps_any(xs, Wp, H, dyT, ld, OH, OW, sh, sw, i * dh - pt, xofs, gofs,
                               gw, n, tv);
        }
    }
}

#else
static int cynet_direct_conv_available(void) { return 0; }
static void cynet_dc_tile(
    const float *xs, ptrdiff_t C, ptrdiff_t H, ptrdiff_t Wp, const float *w, int tv,
    ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t pt, ptrdiff_t dh,
    ptrdiff_t dw, ptrdiff_t OH, ptrdiff_t OW, float *out, const float *bias, ptrdiff_t nv)
{
    (void)xs; (void)C; (void)H; (void)Wp; (void)w; (void)tv; (void)kh; (void)kw; (void)sh;
    (void)sw; (void)pt; (void)dh; (void)dw; (void)OH; (void)OW; (void)out; (void)bias;
    (void)nv;
}
static void cynet_dcw_tile(
    const float *xs, ptrdiff_t C, ptrdiff_t H, ptrdiff_t Wp, const float *dyT, ptrdiff_t ld,
    int tv, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t pt,
    ptrdiff_t dh, ptrdiff_t dw, ptrdiff_t OH, ptrdiff_t OW, float *gw)
{
    (void)xs; (void)C; (void)H; (void)Wp; (void)dyT; (void)ld; (void)tv; (void)kh; (void)kw;
    (void)sh; (void)sw; (void)pt; (void)dh; (void)dw; (void)OH; (void)OW; (void)gw;
}
#endif

#endif
