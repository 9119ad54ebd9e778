// Attention of one token row against one kv head's cached keys and values, for the decoder:
// scores = scale · Q · Kᵀ and out = P · V, with every output one fixed chain of fused multiply-adds
// (over the head dimension for a score, over positions for an output), ascending from 0, so its
// bits depend only on the row's own query, keys and values: not on the variant (AVX-512, AVX2,
// portable all give the same bits), the batch or the thread. Replaces two small OpenBLAS calls per
// (row, kv head), whose fixed cost (packing, dispatch) was ~15% of a SmolLM2-135M batch-16 step.
//
// Keys are cached in blocks of CK_KEY_BLOCK positions, each block dimension-major: the key of
// position p, dimension e is at keys[(p / 16) · 16 · D + e · 16 + p % 16]. A block's scores are
// then 16 lanes advanced together by one broadcast query element per dimension (no horizontal
// sums). Values stay [positions, D].
//   Each (row, kv head) reads its own few KB, too short a stream for the hardware prefetchers to
// find in time (at SmolLM2-135M's batch-16 step, 71 MB in 1,440 such pairs). So the scores kernel
// requests the next key block and the values of its block while it computes, and the values kernel
// requests the first key block of the caller's next pair (`then`); prefetches change no value.

#include "ckernels.h"

#include <math.h>

#define HEADS 4  // query heads advanced together (a group larger than this runs in chunks)

#define PREFETCH(p) __builtin_prefetch((p), 0, 2)  // into L2 (prefetcht1 on x86-64)

static void scores_portable(ptrdiff_t heads, ptrdiff_t D, ptrdiff_t len, const float *q, const float *keys,
                            float scale, float *scores, ptrdiff_t lds) {
    for (ptrdiff_t h = 0; h < heads; h++)
        for (ptrdiff_t p = 0; p < len; p++) {
            const float *kb = keys + (p / CK_KEY_BLOCK) * CK_KEY_BLOCK * D + p % CK_KEY_BLOCK;
            float acc = 0.0f;
            for (ptrdiff_t e = 0; e < D; e++) acc = fmaf(q[h * D + e], kb[e * CK_KEY_BLOCK], acc);
            scores[h * lds + p] = acc * scale;
        }
}

static void values_portable(ptrdiff_t heads, ptrdiff_t D, ptrdiff_t len, const float *p, ptrdiff_t ldp,
                            const float *values, float *out) {
    for (ptrdiff_t h = 0; h < heads; h++)
        for (ptrdiff_t e = 0; e < D; e++) {
            float acc = 0.0f;
            for (ptrdiff_t j = 0; j < len; j++) acc = fmaf(p[h * ldp + j], values[j * D + e], acc);
            out[h * D + e] = acc;
        }
}

#if defined(__x86_64__)
#include <immintrin.h>

#define T512 __attribute__((target("avx512f")))
#define T256 __attribute__((target("avx2,fma")))

// Line e (of D) of the key block after kb (if `more`) and of the values of its positions p0 ..< p0 + 16
// (if known), while the scores kernel computes dimension e of block kb: a block of 16 positions is
// D lines of keys and D lines of values.
static inline __attribute__((always_inline)) void prefetch_block(const float *kb, const float *values, ptrdiff_t p0,
                                                                 ptrdiff_t e, int more, ptrdiff_t D) {
    if (more) PREFETCH(kb + CK_KEY_BLOCK * D + e * CK_KEY_BLOCK);
    if (values) PREFETCH(values + p0 * D + e * CK_KEY_BLOCK);
}

static T512 void scores_avx512(ptrdiff_t heads, ptrdiff_t D, ptrdiff_t len, const float *q, const float *keys,
                               float scale, float *scores, ptrdiff_t lds, const float *values) {
    const __m512 sc = _mm512_set1_ps(scale);
    for (ptrdiff_t p0 = 0; p0 < len; p0 += CK_KEY_BLOCK) {
        const ptrdiff_t n = len - p0 < CK_KEY_BLOCK ? len - p0 : CK_KEY_BLOCK;
        const __mmask16 m = (__mmask16)((1u << n) - 1u);
        const float *kb = keys + p0 * D;
        for (ptrdiff_t h0 = 0; h0 < heads; h0 += HEADS) {
            const int hn = heads - h0 < HEADS ? (int)(heads - h0) : HEADS;
            __m512 acc[HEADS];
            for (int h = 0; h < hn; h++) acc[h] = _mm512_setzero_ps();
            for (ptrdiff_t e = 0; e < D; e++) {
                if (h0 == 0) prefetch_block(kb, values, p0, e, p0 + CK_KEY_BLOCK < len, D);
                const __m512 k = _mm512_maskz_loadu_ps(m, kb + e * CK_KEY_BLOCK);
                for (int h = 0; h < hn; h++) acc[h] = _mm512_fmadd_ps(_mm512_set1_ps(q[(h0 + h) * D + e]), k, acc[h]);
            }
            for (int h = 0; h < hn; h++) _mm512_mask_storeu_ps(scores + (h0 + h) * lds + p0, m, _mm512_mul_ps(acc[h], sc));
        }
    }
}

static T512 void values_avx512(ptrdiff_t heads, ptrdiff_t D, ptrdiff_t len, const float *p, ptrdiff_t ldp,
                               const float *values, float *out, const float *then) {
    for (ptrdiff_t e0 = 0; e0 < D; e0 += 64) {  // 64 dimensions = 4 vectors per head
        const ptrdiff_t width = D - e0 < 64 ? D - e0 : 64;
        const int nv = (int)((width + 15) / 16), tail = (int)(width - 16 * (nv - 1));
        for (ptrdiff_t h0 = 0; h0 < heads; h0 += HEADS) {
            const int hn = heads - h0 < HEADS ? (int)(heads - h0) : HEADS;
            __m512 acc[HEADS][4];
            for (int h = 0; h < hn; h++)
                for (int v = 0; v < nv; v++) acc[h][v] = _mm512_setzero_ps();
            for (ptrdiff_t j = 0; j < len; j++) {
                if (then && e0 == 0 && h0 == 0 && j < D) PREFETCH(then + j * CK_KEY_BLOCK);
                __m512 vv[4];
                for (int v = 0; v < nv; v++)
                    vv[v] = _mm512_maskz_loadu_ps(v == nv - 1 ? (__mmask16)((1u << tail) - 1u) : 0xFFFF,
                                                  values + j * D + e0 + 16 * v);
                for (int h = 0; h < hn; h++) {
                    const __m512 pb = _mm512_set1_ps(p[(h0 + h) * ldp + j]);
                    for (int v = 0; v < nv; v++) acc[h][v] = _mm512_fmadd_ps(pb, vv[v], acc[h][v]);
                }
            }
            for (int h = 0; h < hn; h++)
                for (int v = 0; v < nv; v++)
                    _mm512_mask_storeu_ps(out + (h0 + h) * D + e0 + 16 * v,
                                          v == nv - 1 ? (__mmask16)((1u << tail) - 1u) : 0xFFFF, acc[h][v]);
        }
    }
}

static T256 __m256i lanes256(ptrdiff_t n) {
    const __m256i index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), index);
}

static T256 void scores_avx2(ptrdiff_t heads, ptrdiff_t D, ptrdiff_t len, const float *q, const float *keys,
                             float scale, float *scores, ptrdiff_t lds, const float *values) {
    const __m256 sc = _mm256_set1_ps(scale);
    for (ptrdiff_t p0 = 0; p0 < len; p0 += CK_KEY_BLOCK) {
        const ptrdiff_t n = len - p0 < CK_KEY_BLOCK ? len - p0 : CK_KEY_BLOCK;
        const __m256i m0 = lanes256(n), m1 = lanes256(n - 8);
        const float *kb = keys + p0 * D;
        for (ptrdiff_t h0 = 0; h0 < heads; h0 += HEADS) {
            const int hn = heads - h0 < HEADS ? (int)(heads - h0) : HEADS;
            __m256 acc[HEADS][2];
            for (int h = 0; h < hn; h++) acc[h][0] = acc[h][1] = _mm256_setzero_ps();
            for (ptrdiff_t e = 0; e < D; e++) {
                if (h0 == 0) prefetch_block(kb, values, p0, e, p0 + CK_KEY_BLOCK < len, D);
                const __m256 k0 = _mm256_maskload_ps(kb + e * CK_KEY_BLOCK, m0);
                const __m256 k1 = _mm256_maskload_ps(kb + e * CK_KEY_BLOCK + 8, m1);
                for (int h = 0; h < hn; h++) {
                    const __m256 qb = _mm256_broadcast_ss(q + (h0 + h) * D + e);
                    acc[h][0] = _mm256_fmadd_ps(qb, k0, acc[h][0]);
                    acc[h][1] = _mm256_fmadd_ps(qb, k1, acc[h][1]);
                }
            }
            for (int h = 0; h < hn; h++) {
                float *s = scores + (h0 + h) * lds + p0;
                _mm256_maskstore_ps(s, m0, _mm256_mul_ps(acc[h][0], sc));
                _mm256_maskstore_ps(s + 8, m1, _mm256_mul_ps(acc[h][1], sc));
            }
        }
    }
}

static T256 void values_avx2(ptrdiff_t heads, ptrdiff_t D, ptrdiff_t len, const float *p, ptrdiff_t ldp,
                             const float *values, float *out, const float *then) {
    for (ptrdiff_t e0 = 0; e0 < D; e0 += 32) {  // 32 dimensions = 4 vectors per head, 2 heads at once
        const ptrdiff_t width = D - e0 < 32 ? D - e0 : 32;
        const int nv = (int)((width + 7) / 8);
        __m256i mask[4];
        for (int v = 0; v < 4; v++) mask[v] = lanes256(width - 8 * v);
        for (ptrdiff_t h0 = 0; h0 < heads; h0 += 2) {
            const int hn = heads - h0 < 2 ? (int)(heads - h0) : 2;
            __m256 acc[2][4];
            for (int h = 0; h < hn; h++)
                for (int v = 0; v < nv; v++) acc[h][v] = _mm256_setzero_ps();
            for (ptrdiff_t j = 0; j < len; j++) {
                if (then && e0 == 0 && h0 == 0 && j < D) PREFETCH(then + j * CK_KEY_BLOCK);
                __m256 vv[4];
                for (int v = 0; v < nv; v++) vv[v] = _mm256_maskload_ps(values + j * D + e0 + 8 * v, mask[v]);
                for (int h = 0; h < hn; h++) {
                    const __m256 pb = _mm256_broadcast_ss(p + (h0 + h) * ldp + j);
                    for (int v = 0; v < nv; v++) acc[h][v] = _mm256_fmadd_ps(pb, vv[v], acc[h][v]);
                }
            }
            for (int h = 0; h < hn; h++)
                for (int v = 0; v < nv; v++) _mm256_maskstore_ps(out + (h0 + h) * D + e0 + 8 * v, mask[v], acc[h][v]);
        }
    }
}
#endif

void ck_attention_scores(ck_variant variant, ptrdiff_t heads, ptrdiff_t D, ptrdiff_t len, const float *q,
                         const float *keys, float scale, float *scores, ptrdiff_t lds, const float *values) {
    if (heads <= 0 || len <= 0) return;
#if defined(__x86_64__)
    if (variant == CK_AVX512 && ck_variant_available(CK_AVX512)) {
        scores_avx512(heads, D, len, q, keys, scale, scores, lds, values);
        return;
    }
    if (variant == CK_AVX2 && ck_variant_available(CK_AVX2)) {
        scores_avx2(heads, D, len, q, keys, scale, scores, lds, values);
        return;
    }
#endif
    scores_portable(heads, D, len, q, keys, scale, scores, lds);
}

void ck_attention_values(ck_variant variant, ptrdiff_t heads, ptrdiff_t D, ptrdiff_t len, const float *p,
                         ptrdiff_t ldp, const float *values, float *out, const float *then) {
    if (heads <= 0 || D <= 0) return;
#if defined(__x86_64__)
    if (variant == CK_AVX512 && ck_variant_available(CK_AVX512)) {
        values_avx512(heads, D, len, p, ldp, values, out, then);
        return;
    }
    if (variant == CK_AVX2 && ck_variant_available(CK_AVX2)) {
        values_avx2(heads, D, len, p, ldp, values, out, then);
        return;
    }
#endif
    values_portable(heads, D, len, p, ldp, values, out);
}
