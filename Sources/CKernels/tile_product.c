// Decode micro-kernels: y[rows, width] (+)= x[rows, K] · w[K, width], w one transposed weight tile.
//
// Batch invariance by construction: every output element is one fixed sequence of fused
// multiply-adds over k in increasing order starting from 0, never split, reordered or combined
// with another row's. So a row's bits depend only on its own x row and the tile: not on how
// many rows share the call, their grouping into register blocks, the SIMD width, which columns
// a thread takes, or which variant runs (an FMA is exactly rounded, so fmaf, vfmadd231ps ymm and
// zmm give the same result). Register blocking only changes which outputs advance together.
//   AVX-512: blocks of up to 6 rows × 64 columns (24 zmm accumulators, 4 weight vectors): a
// 64-wide tile is read front to back once per 6 rows. AVX2: 6 rows × 16 columns (12 ymm
// accumulators) from 3 rows on, and 1 row × 64 columns (8 accumulators, the tile read once
// front to back) for 1–2 rows. Column tails use masked loads and stores. Each variant's
// functions are compiled for their instruction set with a target attribute, so the target
// builds for baseline x86-64 and the choice is made at run time (see Kernels' DecodeKernel).

#include "ckernels.h"

#include <math.h>

#define ALWAYS_INLINE inline __attribute__((always_inline))

// MARK: Portable

static void tile_portable(ptrdiff_t rows, ptrdiff_t K, ptrdiff_t width, const float *x, ptrdiff_t ldx,
                          const float *w, ptrdiff_t ldw, float *y, ptrdiff_t ldy, int accumulate) {
    float acc[64];
    for (ptrdiff_t n0 = 0; n0 < width; n0 += 64) {
        ptrdiff_t nb = width - n0 < 64 ? width - n0 : 64;
        for (ptrdiff_t r = 0; r < rows; r++) {
            const float *xr = x + r * ldx;
            for (ptrdiff_t n = 0; n < nb; n++) acc[n] = 0.0f;
            for (ptrdiff_t k = 0; k < K; k++) {
                const float xv = xr[k], *wk = w + k * ldw + n0;
                for (ptrdiff_t n = 0; n < nb; n++) acc[n] = fmaf(xv, wk[n], acc[n]);
            }
            float *yr = y + r * ldy + n0;
            for (ptrdiff_t n = 0; n < nb; n++) yr[n] = accumulate ? yr[n] + acc[n] : acc[n];
        }
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

// MARK: Prefetch of the next tile
//
// With several row blocks a tile is streamed from memory by the first block and then read from
// cache by the others, so streaming and arithmetic alternate instead of overlapping (batch 16). The caller
// names the bytes it will read next (its next tile); every k iteration of every block requests
// a few of their cache lines into L2, spread evenly over the call's iterations, so the memory
// system fetches the next tile while the cores compute on this one. A prefetch changes no value.

typedef struct {
    const char *at, *end;  // next line to request, end of the span
    ptrdiff_t per_k;       // lines per k iteration
} ck_prefetch;

static ALWAYS_INLINE void prefetch_step(ck_prefetch *pf) {
    for (ptrdiff_t j = 0; j < pf->per_k && pf->at < pf->end; j++, pf->at += 64) _mm_prefetch(pf->at, _MM_HINT_T1);
}

// Iterations of the k loop this call will run: the same walk as the variants' block loops.
static ptrdiff_t k_iterations(ck_variant variant, ptrdiff_t rows, ptrdiff_t K, ptrdiff_t width) {
    if (variant == CK_AVX512) return ((width + 63) / 64) * ((rows + 5) / 6) * K;
    if (rows < 3) return ((width + 63) / 64) * rows * K;
    return ((width + 15) / 16) * ((rows + 5) / 6) * K;
}

static ck_prefetch prefetch_plan(ck_variant variant, ptrdiff_t rows, ptrdiff_t K, ptrdiff_t width, const void *next,
                                 ptrdiff_t bytes) {
    ck_prefetch pf = {0, 0, 0};
    // One pass over the tile (AVX-512 up to 6 rows, AVX2 up to 2: a batch-1 step) is bound by the
    // stream of this tile alone, which the hardware prefetcher already runs: no second stream.
    const int one_pass = variant == CK_AVX512 ? rows <= 6 : rows < 3;
    if (!next || bytes <= 0 || one_pass) return pf;
    const ptrdiff_t lines = (bytes + 63) / 64, iterations = k_iterations(variant, rows, K, width);
    pf.at = (const char *)next;
    pf.end = pf.at + lines * 64;
    pf.per_k = iterations > 0 ? (lines + iterations - 1) / iterations : 0;
    return pf;
}

// MARK: AVX-512

#define T512 __attribute__((target("avx512f")))

// Rows r < MR, columns n0 + [0, 16·NV), the last vector masked by `last`.
static T512 ALWAYS_INLINE void block512(const int MR, const int NV, ptrdiff_t K, const float *x, ptrdiff_t ldx,
                                        const float *w, ptrdiff_t ldw, float *y, ptrdiff_t ldy, int accumulate,
                                        __mmask16 last, ck_prefetch *pf) {
    __m512 acc[6][4];
    for (int r = 0; r < MR; r++)
        for (int v = 0; v < NV; v++) acc[r][v] = _mm512_setzero_ps();
    ck_prefetch nextp = *pf;  // in registers during the loop
    for (ptrdiff_t k = 0; k < K; k++) {
        const float *wk = w + k * ldw;
        prefetch_step(&nextp);
        __m512 wv[4];
        for (int v = 0; v < NV; v++) wv[v] = _mm512_maskz_loadu_ps(v == NV - 1 ? last : 0xFFFF, wk + 16 * v);
        for (int r = 0; r < MR; r++) {
            const __m512 xb = _mm512_set1_ps(x[r * ldx + k]);
            for (int v = 0; v < NV; v++) acc[r][v] = _mm512_fmadd_ps(xb, wv[v], acc[r][v]);
        }
    }
    *pf = nextp;
    for (int r = 0; r < MR; r++) {
        for (int v = 0; v < NV; v++) {
            const __mmask16 m = v == NV - 1 ? last : 0xFFFF;
            float *yp = y + r * ldy + 16 * v;
            __m512 out = acc[r][v];
            if (accumulate) out = _mm512_add_ps(_mm512_maskz_loadu_ps(m, yp), out);
            _mm512_mask_storeu_ps(yp, m, out);
        }
    }
}

#define CASES512(MR)                                                                     \
    switch (nv) {                                                                        \
    case 1: block512(MR, 1, K, x, ldx, w, ldw, y, ldy, accumulate, last, pf); break;     \
    case 2: block512(MR, 2, K, x, ldx, w, ldw, y, ldy, accumulate, last, pf); break;     \
    case 3: block512(MR, 3, K, x, ldx, w, ldw, y, ldy, accumulate, last, pf); break;     \
    default: block512(MR, 4, K, x, ldx, w, ldw, y, ldy, accumulate, last, pf); break;    \
    }

static T512 void dispatch512(int mr, int nv, ptrdiff_t K, const float *x, ptrdiff_t ldx, const float *w,
                             ptrdiff_t ldw, float *y, ptrdiff_t ldy, int accumulate, __mmask16 last, ck_prefetch *pf) {
    switch (mr) {
    case 1: CASES512(1); break;
    case 2: CASES512(2); break;
    case 3: CASES512(3); break;
    case 4: CASES512(4); break;
    case 5: CASES512(5); break;
    default: CASES512(6); break;
    }
}

static T512 void tile_avx512(ptrdiff_t rows, ptrdiff_t K, ptrdiff_t width, const float *x, ptrdiff_t ldx,
                             const float *w, ptrdiff_t ldw, float *y, ptrdiff_t ldy, int accumulate, ck_prefetch *pf) {
    for (ptrdiff_t n0 = 0; n0 < width; n0 += 64) {
        const ptrdiff_t nb = width - n0 < 64 ? width - n0 : 64;
        const int nv = (int)((nb + 15) / 16), tail = (int)(nb - 16 * (nv - 1));
        const __mmask16 last = (__mmask16)((1u << tail) - 1u);
        for (ptrdiff_t r0 = 0; r0 < rows; r0 += 6) {
            const int mr = rows - r0 < 6 ? (int)(rows - r0) : 6;
            dispatch512(mr, nv, K, x + r0 * ldx, ldx, w + n0, ldw, y + r0 * ldy + n0, ldy, accumulate, last, pf);
        }
    }
}

// MARK: AVX2 + FMA

#define T256 __attribute__((target("avx2,fma")))
#define PREFETCH_K 8

static T256 ALWAYS_INLINE __m256 load256(const float *p, int masked, __m256i mask) {
    return masked ? _mm256_maskload_ps(p, mask) : _mm256_loadu_ps(p);
}

// Rows r < MR, columns [0, 8·NV); with MASKED the last vector is limited to `mask`'s lanes.
static T256 ALWAYS_INLINE void block256(const int MR, const int NV, const int MASKED, ptrdiff_t K, const float *x,
                                        ptrdiff_t ldx, const float *w, ptrdiff_t ldw, float *y, ptrdiff_t ldy,
                                        int accumulate, __m256i mask, int prefetch, ck_prefetch *pf) {
    __m256 acc[6][8];
    for (int r = 0; r < MR; r++)
        for (int v = 0; v < NV; v++) acc[r][v] = _mm256_setzero_ps();
    ck_prefetch nextp = *pf;  // in registers during the loop
    for (ptrdiff_t k = 0; k < K; k++) {
        const float *wk = w + k * ldw;
        prefetch_step(&nextp);
        if (MR == 1) {  // one row, up to 64 columns: weights loaded one vector at a time
            const __m256 xb = _mm256_broadcast_ss(x + k);
            for (int v = 0; v < NV; v++)
                acc[0][v] = _mm256_fmadd_ps(xb, load256(wk + 8 * v, MASKED && v == NV - 1, mask), acc[0][v]);
        } else {
            if (prefetch) {  // the rest of the 64-column row, PREFETCH_K rows ahead (see tile_avx2)
                const char *ahead = (const char *)(wk + PREFETCH_K * ldw);
                _mm_prefetch(ahead + 64, _MM_HINT_T0);
                _mm_prefetch(ahead + 128, _MM_HINT_T0);
                _mm_prefetch(ahead + 192, _MM_HINT_T0);
            }
            __m256 wv[2];
            for (int v = 0; v < NV; v++) wv[v] = load256(wk + 8 * v, MASKED && v == NV - 1, mask);
            for (int r = 0; r < MR; r++) {
                const __m256 xb = _mm256_broadcast_ss(x + r * ldx + k);
                for (int v = 0; v < NV; v++) acc[r][v] = _mm256_fmadd_ps(xb, wv[v], acc[r][v]);
            }
        }
    }
    *pf = nextp;
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

// One row, nv ≤ 8 vectors.
static T256 void row256(int nv, int masked, ptrdiff_t K, const float *x, const float *w, ptrdiff_t ldw, float *y,
                        int accumulate, __m256i mask, ck_prefetch *pf) {
#define ROW(NV)                                                                                           \
    case NV:                                                                                              \
        if (masked) block256(1, NV, 1, K, x, 0, w, ldw, y, 0, accumulate, mask, 0, pf);                      \
        else block256(1, NV, 0, K, x, 0, w, ldw, y, 0, accumulate, mask, 0, pf);                             \
        break;
    switch (nv) { ROW(1) ROW(2) ROW(3) ROW(4) ROW(5) ROW(6) ROW(7) default: ROW(8) }
#undef ROW
}

// mr ≤ 6 rows, nv ≤ 2 vectors.
static T256 void rows256(int mr, int nv, int masked, ptrdiff_t K, const float *x, ptrdiff_t ldx, const float *w,
                         ptrdiff_t ldw, float *y, ptrdiff_t ldy, int accumulate, __m256i mask, int prefetch,
                         ck_prefetch *pf) {
#define SHAPE(MR, NV)                                                                                     \
    if (masked) block256(MR, NV, 1, K, x, ldx, w, ldw, y, ldy, accumulate, mask, prefetch, pf);           \
    else block256(MR, NV, 0, K, x, ldx, w, ldw, y, ldy, accumulate, mask, prefetch, pf);
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
                           const float *w, ptrdiff_t ldw, float *y, ptrdiff_t ldy, int accumulate, ck_prefetch *pf) {
    if (rows < 3) {  // 1 row × 64 columns: each k reads a whole 256-byte tile row
        for (ptrdiff_t n0 = 0; n0 < width; n0 += 64) {
            const ptrdiff_t nb = width - n0 < 64 ? width - n0 : 64;
            const int nv = (int)((nb + 7) / 8), tail = (int)(nb - 8 * (nv - 1));
            for (ptrdiff_t r = 0; r < rows; r++)
                row256(nv, tail < 8, K, x + r * ldx, w + n0, ldw, y + r * ldy + n0, accumulate, mask256(tail), pf);
        }
        return;
    }
    for (ptrdiff_t n0 = 0; n0 < width; n0 += 16) {
        const ptrdiff_t nb = width - n0 < 16 ? width - n0 : 16;
        const int nv = (int)((nb + 7) / 8), tail = (int)(nb - 8 * (nv - 1));
        for (ptrdiff_t r0 = 0; r0 < rows; r0 += 6) {
            const int mr = rows - r0 < 6 ? (int)(rows - r0) : 6;
            // The first pass over the tile prefetches whole rows: the later 16-column strips then
            // read from cache instead of each streaming a strided quarter of the tile from memory.
            const int prefetch = n0 == 0 && r0 == 0 && width >= 64 && ldw == width;
            rows256(mr, nv, tail < 8, K, x + r0 * ldx, ldx, w + n0, ldw, y + r0 * ldy + n0, ldy, accumulate,
                    mask256(tail), prefetch, pf);
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
                     ptrdiff_t ldx, const float *w, ptrdiff_t ldw, float *y, ptrdiff_t ldy, int accumulate,
                     const void *next, ptrdiff_t next_bytes) {
    if (rows <= 0 || width <= 0) return;
#if defined(__x86_64__)
    ck_prefetch pf = prefetch_plan(variant, rows, K, width, next, next_bytes);
    if (variant == CK_AVX512 && ck_variant_available(CK_AVX512)) {
        tile_avx512(rows, K, width, x, ldx, w, ldw, y, ldy, accumulate, &pf);
        return;
    }
    if (variant == CK_AVX2 && ck_variant_available(CK_AVX2)) {
        tile_avx2(rows, K, width, x, ldx, w, ldw, y, ldy, accumulate, &pf);
        return;
    }
#else
    (void)next; (void)next_bytes;
#endif
    tile_portable(rows, K, width, x, ldx, w, ldw, y, ldy, accumulate);
}
