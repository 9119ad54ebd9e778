// Vector exponentials for the softmax and SwiGLU rows: the same operations, in the same order, as
// Kernels' Swift `exp16` (a Cephes-style range reduction and degree-5 polynomial, every operation
// separately rounded: no fused multiply-add), so every variant gives exactly the bits the Swift
// code gives. The Swift code runs 4-wide SSE (the package builds for baseline x86-64); here the
// AVX-512 and AVX2 variants run 16 and 8 lanes, chosen at run time like the decode kernels.
// Elements past the last full block of 16 go through libm's expf, as in the Swift code.
//
// Measured on SmolLM2-135M's batch-16 decode step: the Swift SwiGLU and attention softmax took
// about 2% of the step each.

#include "ckernels.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#pragma STDC FP_CONTRACT OFF
#pragma clang fp contract(off)

#define EXP_HI 88.0f
#define EXP_LO (-87.0f)
#define EXP_MAGIC 12582912.0f  // 1.5 · 2^23
#define EXP_LOG2E 1.44269504f
#define EXP_C1 0.693359375f
#define EXP_C2 2.1219444e-4f
#define EXP_P0 1.98756915e-4f
#define EXP_P1 1.3981999507e-3f
#define EXP_P2 8.3334519073e-3f
#define EXP_P3 4.1665795894e-2f
#define EXP_P4 1.6666665459e-1f
#define EXP_P5 5.0000001201e-1f

// MARK: Portable (one lane of Swift's exp16)

static float exp_lane(float x) {
    if (x > EXP_HI) x = EXP_HI;
    if (x < EXP_LO) x = EXP_LO;
    const float t = x * EXP_LOG2E + EXP_MAGIC;
    int32_t bits;
    memcpy(&bits, &t, 4);
    const int32_t n = bits - 0x4B400000;
    const float fx = t - EXP_MAGIC;
    const float r = x - fx * EXP_C1 + fx * EXP_C2;
    const float z = r * r;
    float y = EXP_P0;
    y = y * r + EXP_P1;
    y = y * r + EXP_P2;
    y = y * r + EXP_P3;
    y = y * r + EXP_P4;
    y = y * r + EXP_P5;
    y = y * z + r + 1.0f;
    const int32_t sbits = (int32_t)((uint32_t)(n + 127) << 23);
    float scale;
    memcpy(&scale, &sbits, 4);
    return y * scale;
}

/// Σ of a 16-lane accumulator in lane order (Swift's SIMD `sum()`).
static float lane_sum(const float *acc) {
    float s = -0.0f;
    for (int i = 0; i < 16; i++) s += acc[i];
    return s;
}

static float exp_shifted_portable(float *y, const float *x, float shift, ptrdiff_t n, ptrdiff_t *done) {
    float acc[16] = {0};
    ptrdiff_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int l = 0; l < 16; l++) {
            const float e = exp_lane(x[i + l] - shift);
            y[i + l] = e;
            acc[l] += e;
        }
    *done = i;
    return lane_sum(acc);
}

static void swiglu_portable(float *h, const float *g, const float *u, ptrdiff_t n, ptrdiff_t *done) {
    ptrdiff_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int l = 0; l < 16; l++) {
            const float gv = g[i + l], sig = 1.0f / (1.0f + exp_lane(-gv));
            h[i + l] = gv * sig * u[i + l];
        }
    *done = i;
}

#if defined(__x86_64__)
#include <immintrin.h>

#define T512 __attribute__((target("avx512f")))
#define T256 __attribute__((target("avx2,fma")))

// MARK: AVX-512

static T512 inline __attribute__((always_inline)) __m512 exp512(__m512 x) {
    x = _mm512_mask_mov_ps(x, _mm512_cmp_ps_mask(x, _mm512_set1_ps(EXP_HI), _CMP_GT_OQ), _mm512_set1_ps(EXP_HI));
    x = _mm512_mask_mov_ps(x, _mm512_cmp_ps_mask(x, _mm512_set1_ps(EXP_LO), _CMP_LT_OQ), _mm512_set1_ps(EXP_LO));
    const __m512 t = _mm512_add_ps(_mm512_mul_ps(x, _mm512_set1_ps(EXP_LOG2E)), _mm512_set1_ps(EXP_MAGIC));
    const __m512i n = _mm512_sub_epi32(_mm512_castps_si512(t), _mm512_set1_epi32(0x4B400000));
    const __m512 fx = _mm512_sub_ps(t, _mm512_set1_ps(EXP_MAGIC));
    const __m512 r = _mm512_add_ps(_mm512_sub_ps(x, _mm512_mul_ps(fx, _mm512_set1_ps(EXP_C1))),
                                   _mm512_mul_ps(fx, _mm512_set1_ps(EXP_C2)));
    const __m512 z = _mm512_mul_ps(r, r);
    __m512 y = _mm512_set1_ps(EXP_P0);
    y = _mm512_add_ps(_mm512_mul_ps(y, r), _mm512_set1_ps(EXP_P1));
    y = _mm512_add_ps(_mm512_mul_ps(y, r), _mm512_set1_ps(EXP_P2));
    y = _mm512_add_ps(_mm512_mul_ps(y, r), _mm512_set1_ps(EXP_P3));
    y = _mm512_add_ps(_mm512_mul_ps(y, r), _mm512_set1_ps(EXP_P4));
    y = _mm512_add_ps(_mm512_mul_ps(y, r), _mm512_set1_ps(EXP_P5));
    y = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(y, z), r), _mm512_set1_ps(1.0f));
    const __m512i scale = _mm512_slli_epi32(_mm512_add_epi32(n, _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(y, _mm512_castsi512_ps(scale));
}

static T512 float exp_shifted_avx512(float *y, const float *x, float shift, ptrdiff_t n, ptrdiff_t *done) {
    const __m512 s = _mm512_set1_ps(shift);
    __m512 acc = _mm512_setzero_ps();
    ptrdiff_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 e = exp512(_mm512_sub_ps(_mm512_loadu_ps(x + i), s));
        _mm512_storeu_ps(y + i, e);
        acc = _mm512_add_ps(acc, e);
    }
    float lanes[16];
    _mm512_storeu_ps(lanes, acc);
    *done = i;
    return lane_sum(lanes);
}

static T512 void swiglu_avx512(float *h, const float *g, const float *u, ptrdiff_t n, ptrdiff_t *done) {
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512i sign = _mm512_set1_epi32((int32_t)0x80000000u);
    ptrdiff_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 gv = _mm512_loadu_ps(g + i);
        const __m512 neg = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(gv), sign));  // −g exactly
        const __m512 sig = _mm512_div_ps(one, _mm512_add_ps(one, exp512(neg)));
        _mm512_storeu_ps(h + i, _mm512_mul_ps(_mm512_mul_ps(gv, sig), _mm512_loadu_ps(u + i)));
    }
    *done = i;
}

// MARK: AVX2

static T256 inline __attribute__((always_inline)) __m256 exp256(__m256 x) {
    x = _mm256_blendv_ps(x, _mm256_set1_ps(EXP_HI), _mm256_cmp_ps(x, _mm256_set1_ps(EXP_HI), _CMP_GT_OQ));
    x = _mm256_blendv_ps(x, _mm256_set1_ps(EXP_LO), _mm256_cmp_ps(x, _mm256_set1_ps(EXP_LO), _CMP_LT_OQ));
    const __m256 t = _mm256_add_ps(_mm256_mul_ps(x, _mm256_set1_ps(EXP_LOG2E)), _mm256_set1_ps(EXP_MAGIC));
    const __m256i n = _mm256_sub_epi32(_mm256_castps_si256(t), _mm256_set1_epi32(0x4B400000));
    const __m256 fx = _mm256_sub_ps(t, _mm256_set1_ps(EXP_MAGIC));
    const __m256 r = _mm256_add_ps(_mm256_sub_ps(x, _mm256_mul_ps(fx, _mm256_set1_ps(EXP_C1))),
                                   _mm256_mul_ps(fx, _mm256_set1_ps(EXP_C2)));
    const __m256 z = _mm256_mul_ps(r, r);
    __m256 y = _mm256_set1_ps(EXP_P0);
    y = _mm256_add_ps(_mm256_mul_ps(y, r), _mm256_set1_ps(EXP_P1));
    y = _mm256_add_ps(_mm256_mul_ps(y, r), _mm256_set1_ps(EXP_P2));
    y = _mm256_add_ps(_mm256_mul_ps(y, r), _mm256_set1_ps(EXP_P3));
    y = _mm256_add_ps(_mm256_mul_ps(y, r), _mm256_set1_ps(EXP_P4));
    y = _mm256_add_ps(_mm256_mul_ps(y, r), _mm256_set1_ps(EXP_P5));
    y = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(y, z), r), _mm256_set1_ps(1.0f));
    const __m256i scale = _mm256_slli_epi32(_mm256_add_epi32(n, _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(scale));
}

static T256 float exp_shifted_avx2(float *y, const float *x, float shift, ptrdiff_t n, ptrdiff_t *done) {
    const __m256 s = _mm256_set1_ps(shift);
    __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();  // lanes 0–7 and 8–15 of Swift's acc
    ptrdiff_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256 e0 = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), s));
        const __m256 e1 = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), s));
        _mm256_storeu_ps(y + i, e0);
        _mm256_storeu_ps(y + i + 8, e1);
        lo = _mm256_add_ps(lo, e0);
        hi = _mm256_add_ps(hi, e1);
    }
    float lanes[16];
    _mm256_storeu_ps(lanes, lo);
    _mm256_storeu_ps(lanes + 8, hi);
    *done = i;
    return lane_sum(lanes);
}

static T256 void swiglu_avx2(float *h, const float *g, const float *u, ptrdiff_t n, ptrdiff_t *done) {
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
    ptrdiff_t i = 0;
    for (; i + 16 <= n; i += 16)  // whole blocks of 16, as the Swift code
        for (int half = 0; half < 16; half += 8) {
            const __m256 gv = _mm256_loadu_ps(g + i + half);
            const __m256 sig = _mm256_div_ps(one, _mm256_add_ps(one, exp256(_mm256_xor_ps(gv, sign))));
            _mm256_storeu_ps(h + i + half, _mm256_mul_ps(_mm256_mul_ps(gv, sig), _mm256_loadu_ps(u + i + half)));
        }
    *done = i;
}
#endif

// MARK: Dispatch

float ck_exp_shifted(ck_variant variant, float *y, const float *x, float shift, ptrdiff_t n) {
    ptrdiff_t done = 0;
    float s;
#if defined(__x86_64__)
    if (variant == CK_AVX512 && ck_variant_available(CK_AVX512)) s = exp_shifted_avx512(y, x, shift, n, &done);
    else if (variant == CK_AVX2 && ck_variant_available(CK_AVX2)) s = exp_shifted_avx2(y, x, shift, n, &done);
    else
#endif
        s = exp_shifted_portable(y, x, shift, n, &done);
    for (ptrdiff_t i = done; i < n; i++) {
        const float e = expf(x[i] - shift);
        y[i] = e;
        s += e;
    }
    return s;
}

void ck_swiglu(ck_variant variant, float *h, const float *g, const float *u, ptrdiff_t n) {
    ptrdiff_t done = 0;
#if defined(__x86_64__)
    if (variant == CK_AVX512 && ck_variant_available(CK_AVX512)) swiglu_avx512(h, g, u, n, &done);
    else if (variant == CK_AVX2 && ck_variant_available(CK_AVX2)) swiglu_avx2(h, g, u, n, &done);
    else
#endif
        swiglu_portable(h, g, u, n, &done);
    for (ptrdiff_t i = done; i < n; i++) {
        const float sig = 1.0f / (1.0f + expf(-g[i]));
        h[i] = g[i] * sig * u[i];
    }
}
