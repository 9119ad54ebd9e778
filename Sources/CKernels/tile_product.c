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
// accumulators). The first block of rows streams its strips from memory front to back while
// requesting the bytes CK_PREFETCH_BYTES ahead into L2, so the memory system runs ahead of the
// arithmetic instead of alternating with it; in a decode batch the other blocks follow it chunk by
// chunk of k and read the lines from L1 (below). Strip tails (a last strip narrower than 16) use
// masked loads and stores. Each variant's functions are compiled for their instruction set with a
// target attribute, so the target builds for baseline x86-64 and the choice is made at run time
// (Kernels' DecodeKernel).
//   Measured at SmolLM2-135M's step shapes (538 MB of tiles, 2 threads, Intel Xeon with AVX-512, gcc -O3
// C harness): batch 16, 42 ms per step with 64-column row-major tiles and 6 × 64 blocks, 26 ms
// with these strips and the prefetch; batch 64: 154 → 70 ms; batch 1: 21 → 17 ms. Following the
// first block through k in chunks, instead of a second pass over the strips from L2 (which left
// memory idle), took batch 16 from a median of 28.8 to 26.1 ms (clang -O3, 12 interleaved runs;
// AVX2 variant: 41.5 → 39.5), with batch 1 and 64 unchanged or slightly faster.
//   Every strip is a stream whose prefetch, near its end, runs on into the stream read after it:
// the next strip pair's, or after a tile's last pair the caller's next tile (`next`). Without
// that, each 32-column tile started its second strip cold (4 KB of demand misses per 36 KB strip
// at K = 576). Batch 16 in the harness: median 24.9 → 23.6 ms (5 interleaved runs; batch 1 and 64
// unchanged).

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

/// Requests the byte CK_PREFETCH_BYTES ahead of byte `pos` of a stream of `len` bytes at s; past
/// its end, the same distance into `succ` (the stream read after this one), if known.
static ALWAYS_INLINE void prefetch_ahead(const float *s, ptrdiff_t pos, ptrdiff_t len, const char *succ) {
    const ptrdiff_t ahead = pos + CK_PREFETCH_BYTES;
    _mm_prefetch(ahead < len || !succ ? (const char *)s + ahead : succ + (ahead - len), _MM_HINT_T1);
}

// Rows are taken in sets of at most CK_ROW_SET, whose accumulators end in a panel. A set of one
// register block runs over all k. A set of several blocks and at most CK_CHUNK_ROWS rows (a decode
// batch) cuts the k range into chunks of CK_K_CHUNK, and within a chunk its blocks run in turn,
// the first streaming the chunk's lines from memory (with the prefetch), the others reading them
// from L1, each resuming its accumulators from the panel: the memory stream never pauses for a
// second pass over the strips. Larger sets (prefill, large batches) are bound by arithmetic, not
// by the read: each block runs over all k, the later ones reading the strips from L2, which saves
// the panel traffic (chunking 96 rows measured 3–5% slower in the C harness). An output's FMA
// chain is the same either way: storing an accumulator and loading it back is exact.
#define CK_K_CHUNK 32
#define CK_CHUNK_ROWS 24
#define CK_ROW_SET 48

/// The k chunk of a row set of n rows in register blocks of at most mr rows.
static ALWAYS_INLINE ptrdiff_t k_chunk(ptrdiff_t n, ptrdiff_t mr, ptrdiff_t K) {
    return n > mr && n <= CK_CHUNK_ROWS ? CK_K_CHUNK : K;
}

static ALWAYS_INLINE ptrdiff_t min_pd(ptrdiff_t a, ptrdiff_t b) { return a < b ? a : b; }

// MARK: AVX-512

#define T512 __attribute__((target("avx512f")))
#define MR512 12

// Rows r < MR over k in [k0, k1) of NS strips (s0 with row stride ld0 and lanes m0; s1 likewise);
// accumulators start from zero (`first`) or from the panel acc[r][32], and end there.
static T512 ALWAYS_INLINE void block512(const int MR, const int NS, ptrdiff_t k0, ptrdiff_t k1, const float *x,
                                        ptrdiff_t ldx, const float *s0, ptrdiff_t ld0, __mmask16 m0, const float *s1,
                                        ptrdiff_t ld1, __mmask16 m1, float *acc, int first, int prefetch,
                                        ptrdiff_t K, const char *succ0, const char *succ1) {
    __m512 a0[MR512], a1[MR512];
    for (int r = 0; r < MR; r++) {
        a0[r] = first ? _mm512_setzero_ps() : _mm512_load_ps(acc + r * 2 * CK_STRIP);
        if (NS == 2) a1[r] = first ? _mm512_setzero_ps() : _mm512_load_ps(acc + r * 2 * CK_STRIP + CK_STRIP);
    }
    for (ptrdiff_t k = k0; k < k1; k++) {
        const float *p0 = s0 + k * ld0, *p1 = s1 + k * ld1;
        if (prefetch) {
            prefetch_ahead(s0, k * ld0 * 4, K * ld0 * 4, succ0);
            if (NS == 2) prefetch_ahead(s1, k * ld1 * 4, K * ld1 * 4, succ1);
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
        _mm512_store_ps(acc + r * 2 * CK_STRIP, a0[r]);
        if (NS == 2) _mm512_store_ps(acc + r * 2 * CK_STRIP + CK_STRIP, a1[r]);
    }
}

static T512 void dispatch512(int mr, int ns, ptrdiff_t k0, ptrdiff_t k1, const float *x, ptrdiff_t ldx,
                             const float *s0, ptrdiff_t ld0, __mmask16 m0, const float *s1, ptrdiff_t ld1,
                             __mmask16 m1, float *acc, int first, int prefetch, ptrdiff_t K, const char *succ0,
                             const char *succ1) {
#define CASE512(MR)                                                                                         \
    case MR:                                                                                                \
        if (ns == 2)                                                                                        \
            block512(MR, 2, k0, k1, x, ldx, s0, ld0, m0, s1, ld1, m1, acc, first, prefetch, K, succ0, succ1);  \
        else                                                                                                \
            block512(MR, 1, k0, k1, x, ldx, s0, ld0, m0, s1, ld1, m1, acc, first, prefetch, K, succ0, succ1);  \
        break;
    switch (mr) {
        CASE512(1) CASE512(2) CASE512(3) CASE512(4) CASE512(5) CASE512(6)
        CASE512(7) CASE512(8) CASE512(9) CASE512(10) CASE512(11) default: CASE512(12)
    }
#undef CASE512
}

// y rows [0, rows) (+)= the panel, columns [0, 16) under m0 and [16, 32) under m1.
static T512 void store512(ptrdiff_t rows, const float *acc, float *y, ptrdiff_t ldy, __mmask16 m0, __mmask16 m1,
                          int accumulate) {
    for (ptrdiff_t r = 0; r < rows; r++) {
        for (int s = 0; s < 2; s++) {
            const __mmask16 m = s ? m1 : m0;
            if (!m) continue;
            float *yp = y + r * ldy + s * CK_STRIP;
            __m512 out = _mm512_load_ps(acc + r * 2 * CK_STRIP + s * CK_STRIP);
            if (accumulate) out = _mm512_add_ps(_mm512_maskz_loadu_ps(m, yp), out);
            _mm512_mask_storeu_ps(yp, m, out);
        }
    }
}

static T512 void tile_avx512(ptrdiff_t rows, ptrdiff_t K, ptrdiff_t width, const float *x, ptrdiff_t ldx,
                             const float *w, float *y, ptrdiff_t ldy, int accumulate, const float *next,
                             ptrdiff_t next_K, ptrdiff_t next_width) {
    float acc[CK_ROW_SET * 2 * CK_STRIP] __attribute__((aligned(64)));
    for (ptrdiff_t n0 = 0; n0 < width; n0 += 2 * CK_STRIP) {
        const ptrdiff_t ws0 = min_pd(width - n0, CK_STRIP), ws1 = min_pd(width - n0 - ws0, CK_STRIP);
        const int ns = ws1 > 0 ? 2 : 1;
        const __mmask16 m0 = (__mmask16)((1u << ws0) - 1u), m1 = (__mmask16)((1u << ws1) - 1u);
        const float *s0 = w + n0 * K, *s1 = s0 + CK_STRIP * K;
        // Successors: stream 1 runs on into the next pair's first strip, stream 0 into its second
        // (after the last pair: the next tile's); a lone strip runs on into the first.
        const char *succ0, *succ1;
        if (n0 + 2 * CK_STRIP < width) {
            succ1 = (const char *)(w + (n0 + 2 * CK_STRIP) * K);
            succ0 = n0 + 3 * CK_STRIP < width ? (const char *)(w + (n0 + 3 * CK_STRIP) * K) : NULL;
        } else {
            succ1 = (const char *)next;
            succ0 = next && next_width > CK_STRIP ? (const char *)(next + CK_STRIP * next_K) : NULL;
        }
        if (ns == 1) succ0 = succ1;
        for (ptrdiff_t set = 0; set < rows; set += CK_ROW_SET) {
            const ptrdiff_t n = min_pd(rows - set, CK_ROW_SET), chunk = k_chunk(n, MR512, K);
            ptrdiff_t k0 = 0;
            do {  // at least once, so that K = 0 gives zeros
                for (ptrdiff_t r0 = 0; r0 < n; r0 += MR512)
                    dispatch512((int)min_pd(n - r0, MR512), ns, k0, min_pd(K, k0 + chunk), x + (set + r0) * ldx, ldx,
                                s0, ws0, m0, s1, ws1, m1, acc + r0 * 2 * CK_STRIP, k0 == 0, set == 0 && r0 == 0, K,
                                succ0, succ1);
                k0 += chunk;
            } while (k0 < K);
            store512(n, acc, y + set * ldy + n0, ldy, m0, m1, accumulate);
        }
    }
}

// MARK: AVX2 + FMA

#define T256 __attribute__((target("avx2,fma")))
#define MR256 6

static T256 ALWAYS_INLINE __m256 load256(const float *p, int masked, __m256i mask) {
    return masked ? _mm256_maskload_ps(p, mask) : _mm256_loadu_ps(p);
}

// Rows r < MR over k in [k0, k1) of one strip (row stride ld), its columns [0, 8·NV); with MASKED
// the last vector is limited to `mask`'s lanes. Accumulators start from zero (`first`) or from
// the panel acc[r][16], and end there.
static T256 ALWAYS_INLINE void block256(const int MR, const int NV, const int MASKED, ptrdiff_t k0, ptrdiff_t k1,
                                        const float *x, ptrdiff_t ldx, const float *s, ptrdiff_t ld, float *acc,
                                        int first, __m256i mask, int prefetch, ptrdiff_t K, const char *succ) {
    __m256 a[MR256][2];
    for (int r = 0; r < MR; r++)
        for (int v = 0; v < NV; v++) a[r][v] = first ? _mm256_setzero_ps() : _mm256_load_ps(acc + r * CK_STRIP + 8 * v);
    for (ptrdiff_t k = k0; k < k1; k++) {
        const float *p = s + k * ld;
        if (prefetch) prefetch_ahead(s, k * ld * 4, K * ld * 4, succ);
        __m256 wv[2];
        for (int v = 0; v < NV; v++) wv[v] = load256(p + 8 * v, MASKED && v == NV - 1, mask);
        for (int r = 0; r < MR; r++) {
            const __m256 xb = _mm256_broadcast_ss(x + r * ldx + k);
            for (int v = 0; v < NV; v++) a[r][v] = _mm256_fmadd_ps(xb, wv[v], a[r][v]);
        }
    }
    for (int r = 0; r < MR; r++)
        for (int v = 0; v < NV; v++) _mm256_store_ps(acc + r * CK_STRIP + 8 * v, a[r][v]);
}

static T256 void dispatch256(int mr, int nv, int masked, ptrdiff_t k0, ptrdiff_t k1, const float *x, ptrdiff_t ldx,
                             const float *s, ptrdiff_t ld, float *acc, int first, __m256i mask, int prefetch,
                             ptrdiff_t K, const char *succ) {
#define SHAPE(MR, NV)                                                                                     \
    if (masked) block256(MR, NV, 1, k0, k1, x, ldx, s, ld, acc, first, mask, prefetch, K, succ);          \
    else block256(MR, NV, 0, k0, k1, x, ldx, s, ld, acc, first, mask, prefetch, K, succ);
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

// y rows [0, rows) (+)= the panel's first ws columns.
static T256 void store256(ptrdiff_t rows, const float *acc, float *y, ptrdiff_t ldy, ptrdiff_t ws, int accumulate) {
    for (ptrdiff_t r = 0; r < rows; r++) {
        for (int v = 0; 8 * v < ws; v++) {
            const int lanes = (int)min_pd(ws - 8 * v, 8);
            const __m256i mask = mask256(lanes);
            float *yp = y + r * ldy + 8 * v;
            __m256 out = _mm256_load_ps(acc + r * CK_STRIP + 8 * v);
            if (accumulate) out = _mm256_add_ps(_mm256_maskload_ps(yp, mask), out);
            _mm256_maskstore_ps(yp, mask, out);
        }
    }
}

static T256 void tile_avx2(ptrdiff_t rows, ptrdiff_t K, ptrdiff_t width, const float *x, ptrdiff_t ldx,
                           const float *w, float *y, ptrdiff_t ldy, int accumulate, const float *next) {
    float acc[CK_ROW_SET * CK_STRIP] __attribute__((aligned(32)));
    for (ptrdiff_t n0 = 0; n0 < width; n0 += CK_STRIP) {
        const ptrdiff_t ws = min_pd(width - n0, CK_STRIP);
        const int nv = (int)((ws + 7) / 8), tail = (int)(ws - 8 * (nv - 1));
        const float *s = w + n0 * K;
        const char *succ = (const char *)(n0 + CK_STRIP < width ? w + (n0 + CK_STRIP) * K : next);
        for (ptrdiff_t set = 0; set < rows; set += CK_ROW_SET) {
            const ptrdiff_t n = min_pd(rows - set, CK_ROW_SET), chunk = k_chunk(n, MR256, K);
            ptrdiff_t k0 = 0;
            do {  // at least once, so that K = 0 gives zeros
                for (ptrdiff_t r0 = 0; r0 < n; r0 += MR256)
                    dispatch256((int)min_pd(n - r0, MR256), nv, tail < 8, k0, min_pd(K, k0 + chunk),
                                x + (set + r0) * ldx, ldx, s, ws, acc + r0 * CK_STRIP, k0 == 0, mask256(tail),
                                set == 0 && r0 == 0, K, succ);
                k0 += chunk;
            } while (k0 < K);
            store256(n, acc, y + set * ldy + n0, ldy, ws, accumulate);
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
                     ptrdiff_t ldx, const float *w, float *y, ptrdiff_t ldy, int accumulate, const float *next,
                     ptrdiff_t next_K, ptrdiff_t next_width) {
    if (rows <= 0 || width <= 0) return;
#if defined(__x86_64__)
    if (variant == CK_AVX512 && ck_variant_available(CK_AVX512)) {
        tile_avx512(rows, K, width, x, ldx, w, y, ldy, accumulate, next, next_K, next_width);
        return;
    }
    if (variant == CK_AVX2 && ck_variant_available(CK_AVX2)) {
        tile_avx2(rows, K, width, x, ldx, w, y, ldy, accumulate, next);
        return;
    }
#endif
    tile_portable(rows, K, width, x, ldx, w, y, ldy, accumulate);
}
