// Decode micro-kernels: y[rows, width] (+)= x[rows, K] · w[K, width], w one transposed weight tile
// stored as contiguous 16-column strips (layout in ckernels.h).
//
// Batch invariance by construction: every output element is one fixed sequence of fused
// multiply-adds over k in increasing order starting from 0, never split, reordered or combined
// with another row's. So a row's bits depend only on its own x row and the tile: not on how
// many rows share the call, their grouping into register blocks, the SIMD width, which columns
// a thread takes, or which variant runs (an FMA is exactly rounded, so fmaf, vfmadd231ps ymm and
// zmm give the same result). Register blocking only changes which outputs advance together.
//   AVX-512: blocks of up to 12 rows × 32 columns (two strips: 24 zmm accumulators, two weight
// vectors per k, one cache line of each strip). AVX2: up to 6 rows × 16 columns (one strip: 12 ymm
// accumulators). A block of rows reads its strips front to back; the first block streams them from
// memory while requesting the bytes CK_PREFETCH_BYTES ahead into L2, so the memory system runs
// ahead of the arithmetic instead of alternating with it; later blocks of the same strips read
// them from cache. Strip tails (a last strip narrower than 16) use masked loads and stores. Each
// variant's functions are compiled for their instruction set with a target attribute, so the
// target builds for baseline x86-64 and the choice is made at run time (Kernels' DecodeKernel).
//   Measured at SmolLM2-135M's step shapes (538 MB of tiles, 2 threads, Intel Xeon with AVX-512, gcc -O3
// C harness): batch 16, 42 ms per step with 64-column row-major tiles and 6 × 64 blocks, 26 ms
// with these strips and the prefetch; batch 64: 154 → 70 ms; batch 1: 21 → 17 ms.

#include "ckernels.h"

#include <math.h>

#define ALWAYS_INLINE inline __attribute__((always_inline))

/// How far ahead of its reads a block's first pass requests the tile's bytes (measured: 2–8 KB
/// give the same step time; none is 1.7× slower at batch 16).
#define CK_PREFETCH_BYTES 4096

// MARK: Portable

static void tile_portable(ptrdiff_t rows, ptrdiff_t K, ptrdiff_t width, const float *x, ptrdiff_t ldx,
                          const float *w, float *y, ptrdiff_t ldy, int accumulate) {
    float acc[CK_STRIP];
    for (ptrdiff_t n0 = 0; n0 < width; n0 += CK_STRIP) {
        const ptrdiff_t ws = width - n0 < CK_STRIP ? width - n0 : CK_STRIP;
        const float *strip = w + n0 * K;
        for (ptrdiff_t r = 0; r < rows; r++) {
            const float *xr = x + r * ldx;
            for (ptrdiff_t n = 0; n < ws; n++) acc[n] = 0.0f;
            for (ptrdiff_t k = 0; k < K; k++) {
                const float xv = xr[k], *wk = strip + k * ws;
                for (ptrdiff_t n = 0; n < ws; n++) acc[n] = fmaf(xv, wk[n], acc[n]);
            }
            float *yr = y + r * ldy + n0;
            for (ptrdiff_t n = 0; n < ws; n++) yr[n] = accumulate ? yr[n] + acc[n] : acc[n];
        }
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

static ALWAYS_INLINE void prefetch_ahead(const float *p) {
    _mm_prefetch((const char *)p + CK_PREFETCH_BYTES, _MM_HINT_T1);
}

// MARK: AVX-512

#define T512 __attribute__((target("avx512f")))
#define MR512 12

// Rows r < MR, NS strips (s0 with row stride ld0 and lanes m0; s1 likewise), the columns of s1
// following s0's 16 in y.
static T512 ALWAYS_INLINE void block512(const int MR, const int NS, ptrdiff_t K, const float *x, ptrdiff_t ldx,
                                        const float *s0, ptrdiff_t ld0, __mmask16 m0, const float *s1, ptrdiff_t ld1,
                                        __mmask16 m1, float *y, ptrdiff_t ldy, int accumulate, int prefetch) {
    __m512 a0[MR512], a1[MR512];
    for (int r = 0; r < MR; r++) {
        a0[r] = _mm512_setzero_ps();
        if (NS == 2) a1[r] = _mm512_setzero_ps();
    }
    for (ptrdiff_t k = 0; k < K; k++) {
        const float *p0 = s0 + k * ld0, *p1 = s1 + k * ld1;
        if (prefetch) {
            prefetch_ahead(p0);
            if (NS == 2) prefetch_ahead(p1);
        }
        const __m512 v0 = _mm512_maskz_loadu_ps(m0, p0);
        const __m512 v1 = NS == 2 ? _mm512_maskz_loadu_ps(m1, p1) : v0;
        for (int r = 0; r < MR; r++) {
            const __m512 xb = _mm512_set1_ps(x[r * ldx + k]);
            a0[r] = _mm512_fmadd_ps(xb, v0, a0[r]);
            if (NS == 2) a1[r] = _mm512_fmadd_ps(xb, v1, a1[r]);
        }
    }
    for (int r = 0; r < MR; r++) {
        float *yp = y + r * ldy;
        __m512 out0 = a0[r];
        if (accumulate) out0 = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, yp), out0);
        _mm512_mask_storeu_ps(yp, m0, out0);
        if (NS == 2) {
            __m512 out1 = a1[r];
            if (accumulate) out1 = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, yp + CK_STRIP), out1);
            _mm512_mask_storeu_ps(yp + CK_STRIP, m1, out1);
        }
    }
}

static T512 void dispatch512(int mr, int ns, ptrdiff_t K, const float *x, ptrdiff_t ldx, const float *s0,
                             ptrdiff_t ld0, __mmask16 m0, const float *s1, ptrdiff_t ld1, __mmask16 m1, float *y,
                             ptrdiff_t ldy, int accumulate, int prefetch) {
#define CASE512(MR)                                                                                         \
    case MR:                                                                                                \
        if (ns == 2) block512(MR, 2, K, x, ldx, s0, ld0, m0, s1, ld1, m1, y, ldy, accumulate, prefetch);    \
        else block512(MR, 1, K, x, ldx, s0, ld0, m0, s1, ld1, m1, y, ldy, accumulate, prefetch);            \
        break;
    switch (mr) {
        CASE512(1) CASE512(2) CASE512(3) CASE512(4) CASE512(5) CASE512(6)
        CASE512(7) CASE512(8) CASE512(9) CASE512(10) CASE512(11) default: CASE512(12)
    }
#undef CASE512
}

static T512 void tile_avx512(ptrdiff_t rows, ptrdiff_t K, ptrdiff_t width, const float *x, ptrdiff_t ldx,
                             const float *w, float *y, ptrdiff_t ldy, int accumulate) {
    for (ptrdiff_t n0 = 0; n0 < width; n0 += 2 * CK_STRIP) {
        const ptrdiff_t ws0 = width - n0 < CK_STRIP ? width - n0 : CK_STRIP;
        const ptrdiff_t rest = width - n0 - ws0, ws1 = rest < CK_STRIP ? rest : CK_STRIP;
        const int ns = ws1 > 0 ? 2 : 1;
        const __mmask16 m0 = (__mmask16)((1u << ws0) - 1u), m1 = (__mmask16)((1u << ws1) - 1u);
        const float *s0 = w + n0 * K, *s1 = s0 + CK_STRIP * K;
        for (ptrdiff_t r0 = 0; r0 < rows; r0 += MR512) {
            const int mr = rows - r0 < MR512 ? (int)(rows - r0) : MR512;
            dispatch512(mr, ns, K, x + r0 * ldx, ldx, s0, ws0, m0, s1, ws1, m1, y + r0 * ldy + n0, ldy, accumulate,
                        r0 == 0);
        }
    }
}

// MARK: AVX2 + FMA

#define T256 __attribute__((target("avx2,fma")))
#define MR256 6

static T256 ALWAYS_INLINE __m256 load256(const float *p, int masked, __m256i mask) {
    return masked ? _mm256_maskload_ps(p, mask) : _mm256_loadu_ps(p);
}

// Rows r < MR of one strip (row stride ld), its columns [0, 8·NV); with MASKED the last vector is
// limited to `mask`'s lanes.
static T256 ALWAYS_INLINE void block256(const int MR, const int NV, const int MASKED, ptrdiff_t K, const float *x,
                                        ptrdiff_t ldx, const float *s, ptrdiff_t ld, float *y, ptrdiff_t ldy,
                                        int accumulate, __m256i mask, int prefetch) {
    __m256 acc[MR256][2];
    for (int r = 0; r < MR; r++)
        for (int v = 0; v < NV; v++) acc[r][v] = _mm256_setzero_ps();
    for (ptrdiff_t k = 0; k < K; k++) {
        const float *p = s + k * ld;
        if (prefetch) prefetch_ahead(p);
        __m256 wv[2];
        for (int v = 0; v < NV; v++) wv[v] = load256(p + 8 * v, MASKED && v == NV - 1, mask);
        for (int r = 0; r < MR; r++) {
            const __m256 xb = _mm256_broadcast_ss(x + r * ldx + k);
            for (int v = 0; v < NV; v++) acc[r][v] = _mm256_fmadd_ps(xb, wv[v], acc[r][v]);
        }
    }
    for (int r = 0; r < MR; r++) {
        for (int v = 0; v < NV; v++) {
            float *yp = y + r * ldy + 8 * v;
            __m256 out = acc[r][v];
            if (MASKED && v == NV - 1) {
                if (accumulate) out = _mm256_add_ps(_mm256_maskload_ps(yp, mask), out);
                _mm256_maskstore_ps(yp, mask, out);
            } else {
                if (accumulate) out = _mm256_add_ps(_mm256_loadu_ps(yp), out);
                _mm256_storeu_ps(yp, out);
            }
        }
    }
}

static T256 void dispatch256(int mr, int nv, int masked, ptrdiff_t K, const float *x, ptrdiff_t ldx, const float *s,
                             ptrdiff_t ld, float *y, ptrdiff_t ldy, int accumulate, __m256i mask, int prefetch) {
#define SHAPE(MR, NV)                                                                                     \
    if (masked) block256(MR, NV, 1, K, x, ldx, s, ld, y, ldy, accumulate, mask, prefetch);                \
    else block256(MR, NV, 0, K, x, ldx, s, ld, y, ldy, accumulate, mask, prefetch);
#define ROWS(MR)                                                                                          \
    case MR:                                                                                              \
        if (nv == 1) { SHAPE(MR, 1) } else { SHAPE(MR, 2) }                                               \
        break;
    switch (mr) { ROWS(1) ROWS(2) ROWS(3) ROWS(4) ROWS(5) default: ROWS(6) }
#undef ROWS
#undef SHAPE
}

static T256 __m256i mask256(int lanes) {
    const __m256i index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(lanes), index);
}

static T256 void tile_avx2(ptrdiff_t rows, ptrdiff_t K, ptrdiff_t width, const float *x, ptrdiff_t ldx,
                           const float *w, float *y, ptrdiff_t ldy, int accumulate) {
    for (ptrdiff_t n0 = 0; n0 < width; n0 += CK_STRIP) {
        const ptrdiff_t ws = width - n0 < CK_STRIP ? width - n0 : CK_STRIP;
        const int nv = (int)((ws + 7) / 8), tail = (int)(ws - 8 * (nv - 1));
        const float *s = w + n0 * K;
        for (ptrdiff_t r0 = 0; r0 < rows; r0 += MR256) {
            const int mr = rows - r0 < MR256 ? (int)(rows - r0) : MR256;
            dispatch256(mr, nv, tail < 8, K, x + r0 * ldx, ldx, s, ws, y + r0 * ldy + n0, ldy, accumulate,
                        mask256(tail), r0 == 0);
        }
    }
}
#endif

// MARK: Dispatch

int ck_variant_available(ck_variant variant) {
    switch (variant) {
    case CK_PORTABLE: return 1;
#if defined(__x86_64__)
    case CK_AVX2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case CK_AVX512: return __builtin_cpu_supports("avx512f");
#endif
    default: return 0;
    }
}

void ck_tile_product(ck_variant variant, ptrdiff_t rows, ptrdiff_t K, ptrdiff_t width, const float *x,
                     ptrdiff_t ldx, const float *w, float *y, ptrdiff_t ldy, int accumulate) {
    if (rows <= 0 || width <= 0) return;
#if defined(__x86_64__)
    if (variant == CK_AVX512 && ck_variant_available(CK_AVX512)) {
        tile_avx512(rows, K, width, x, ldx, w, y, ldy, accumulate);
        return;
    }
    if (variant == CK_AVX2 && ck_variant_available(CK_AVX2)) {
        tile_avx2(rows, K, width, x, ldx, w, y, ldy, accumulate);
        return;
    }
#endif
    tile_portable(rows, K, width, x, ldx, w, y, ldy, accumulate);
}
