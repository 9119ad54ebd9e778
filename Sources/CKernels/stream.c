// A read of a float buffer at memory speed, for measuring the machine's stream rate (Kernels'
// MachineRates): independent partial sums, so the loop vectorises without reassociating any one
// sum, and the result is used, so the read is not optimised away. The vector variants read as the
// decode kernels do: full-width loads, and the bytes 4 KB ahead requested into L2.

#include "ckernels.h"

static float stream_portable(const float *p, ptrdiff_t n) {
    float acc[16] = {0};
    ptrdiff_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) acc[j] += p[i + j];
    for (; i < n; i++) acc[0] += p[i];
    float total = 0;
    for (int j = 0; j < 16; j++) total += acc[j];
    return total;
}

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx512f"))) static float stream_avx512(const float *p, ptrdiff_t n) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    ptrdiff_t i = 0;
    for (; i + 64 <= n; i += 64) {
        for (int line = 0; line < 4; line++) _mm_prefetch((const char *)(p + i + 16 * line) + 4096, _MM_HINT_T1);
        a0 = _mm512_add_ps(a0, _mm512_loadu_ps(p + i));
        a1 = _mm512_add_ps(a1, _mm512_loadu_ps(p + i + 16));
        a2 = _mm512_add_ps(a2, _mm512_loadu_ps(p + i + 32));
        a3 = _mm512_add_ps(a3, _mm512_loadu_ps(p + i + 48));
    }
    float total = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
    for (; i < n; i++) total += p[i];
    return total;
}

__attribute__((target("avx2"))) static float stream_avx2(const float *p, ptrdiff_t n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    ptrdiff_t i = 0;
    for (; i + 32 <= n; i += 32) {
        _mm_prefetch((const char *)(p + i) + 4096, _MM_HINT_T1);
        _mm_prefetch((const char *)(p + i + 16) + 4096, _MM_HINT_T1);
        a0 = _mm256_add_ps(a0, _mm256_loadu_ps(p + i));
        a1 = _mm256_add_ps(a1, _mm256_loadu_ps(p + i + 8));
        a2 = _mm256_add_ps(a2, _mm256_loadu_ps(p + i + 16));
        a3 = _mm256_add_ps(a3, _mm256_loadu_ps(p + i + 24));
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    float total = 0;
    for (int j = 0; j < 8; j++) total += lanes[j];
    for (; i < n; i++) total += p[i];
    return total;
}
#endif

float ck_stream_read(ck_variant variant, const float *p, ptrdiff_t n) {
#if defined(__x86_64__)
    if (variant == CK_AVX512 && ck_variant_available(CK_AVX512)) return stream_avx512(p, n);
    if (variant == CK_AVX2 && ck_variant_available(CK_AVX2)) return stream_avx2(p, n);
#endif
    return stream_portable(p, n);
}
