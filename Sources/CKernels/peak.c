// The peak fused multiply-add rate of one core: twelve independent accumulator chains (enough to
// cover the FMA latency on two pipes), each advanced once per round, with the variant's widest
// vectors. Kernels' MachineRates runs it on every thread at once and times it.

#include "ckernels.h"

#include <math.h>

#define CHAINS 12

static float peak_portable(ptrdiff_t iterations, double *flops) {
    float acc[CHAINS];
    for (int c = 0; c < CHAINS; c++) acc[c] = (float)c * 1e-3f;
    const float a = 0.999999f, b = 1e-7f;
    for (ptrdiff_t i = 0; i < iterations; i++)
        for (int c = 0; c < CHAINS; c++) acc[c] = fmaf(acc[c], a, b);
    *flops = 2.0 * CHAINS * (double)iterations;
    float sum = 0;
    for (int c = 0; c < CHAINS; c++) sum += acc[c];
    return sum;
}

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx512f"))) static float peak_avx512(ptrdiff_t iterations, double *flops) {
    __m512 acc[CHAINS];
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_set1_ps((float)c * 1e-3f);
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (ptrdiff_t i = 0; i < iterations; i++)
        for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_fmadd_ps(acc[c], a, b);
    *flops = 2.0 * 16 * CHAINS * (double)iterations;
    __m512 sum = acc[0];
    for (int c = 1; c < CHAINS; c++) sum = _mm512_add_ps(sum, acc[c]);
    return _mm512_reduce_add_ps(sum);
}

__attribute__((target("avx2,fma"))) static float peak_avx2(ptrdiff_t iterations, double *flops) {
    __m256 acc[CHAINS];
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm256_set1_ps((float)c * 1e-3f);
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (ptrdiff_t i = 0; i < iterations; i++)
        for (int c = 0; c < CHAINS; c++) acc[c] = _mm256_fmadd_ps(acc[c], a, b);
    *flops = 2.0 * 8 * CHAINS * (double)iterations;
    float lanes[8];
    __m256 sum = acc[0];
    for (int c = 1; c < CHAINS; c++) sum = _mm256_add_ps(sum, acc[c]);
    _mm256_storeu_ps(lanes, sum);
    float total = 0;
    for (int j = 0; j < 8; j++) total += lanes[j];
    return total;
}
#endif

float ck_fma_peak(ck_variant variant, ptrdiff_t iterations, double *flops) {
#if defined(__x86_64__)
    if (variant == CK_AVX512 && ck_variant_available(CK_AVX512)) return peak_avx512(iterations, flops);
    if (variant == CK_AVX2 && ck_variant_available(CK_AVX2)) return peak_avx2(iterations, flops);
#endif
    return peak_portable(iterations, flops);
}
