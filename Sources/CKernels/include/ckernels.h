// Decode micro-kernels: products of token rows by one transposed weight tile, batch-invariant by
// construction (see tile_product.c).
#ifndef CKERNELS_H
#define CKERNELS_H

#include <stddef.h>

/// Instruction-set variants of the kernels. Every variant gives the same bits.
typedef enum {
    CK_PORTABLE = 0,  ///< plain C with fmaf (the arm64 path; on x86-64 a slow reference)
    CK_AVX2 = 1,      ///< AVX2 + FMA, 256-bit
    CK_AVX512 = 2,    ///< AVX-512F, 512-bit
} ck_variant;

/// 1 if `variant` runs on this CPU (and this build), else 0.
int ck_variant_available(ck_variant variant);

/// y[r, n] = Σ_k x[r, k] · w[k, n] for r < rows, n < width, each output computed as
///   acc = 0; for k = 0, 1, …, K − 1: acc = fma(x[r, k], w[k, n], acc)
/// whatever the variant, the number of rows or their order. With `accumulate` set, y[r, n] = y[r, n] + acc
/// (one rounded add after the chain) instead of acc. Row strides: ldx for x, ldw for w [K, width], ldy for y.
/// An unavailable variant falls back to CK_PORTABLE (same bits).
/// `next` (may be NULL) names `next_bytes` bytes the caller reads next (its next weight tile): the
/// SIMD variants request them into L2 while they compute, spread over the call (no value changes).
void ck_tile_product(ck_variant variant, ptrdiff_t rows, ptrdiff_t K, ptrdiff_t width,
                     const float *x, ptrdiff_t ldx, const float *w, ptrdiff_t ldw,
                     float *y, ptrdiff_t ldy, int accumulate, const void *next, ptrdiff_t next_bytes);

/// The sum of p[0..<n] in sixteen interleaved partial sums: a read of the buffer at memory speed
/// (stream.c), for measuring the machine's stream rate.
float ck_stream_sum(const float *p, ptrdiff_t n);

#endif
