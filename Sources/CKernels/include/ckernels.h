// Decode micro-kernels: products of token rows by one transposed weight tile, batch-invariant by
// construction (see tile_product.c); and the probes that measure the machine's limits.
#ifndef CKERNELS_H
#define CKERNELS_H

#include <stddef.h>

/// Instruction-set variants of the kernels. Every variant gives the same bits.
typedef enum {
    CK_PORTABLE = 0,  ///< plain C with fmaf (the arm64 path; on x86-64 a slow reference)
    CK_AVX2 = 1,      ///< AVX2 + FMA, 256-bit
    CK_AVX512 = 2,    ///< AVX-512F, 512-bit
} ck_variant;

/// Columns of a tile strip (the tile layout below).
#define CK_STRIP 16

/// 1 if `variant` runs on this CPU (and this build), else 0.
int ck_variant_available(ck_variant variant);

/// y[r, n] = Σ_k x[r, k] · w[k, n] for r < rows, n < width, each output computed as
///   acc = 0; for k = 0, 1, …, K − 1: acc = fma(x[r, k], w[k, n], acc)
/// whatever the variant, the number of rows or their order. With `accumulate` set, y[r, n] = y[r, n] + acc
/// (one rounded add after the chain) instead of acc. Row strides: ldx for x, ldy for y.
/// Tile layout: column strips of CK_STRIP columns, each contiguous. Strip s holds columns
/// 16s ..< 16s + ws (ws = min(16, width − 16s)) as w[k, 16s + j] = strip[k · ws + j], and starts
/// at w + 16 · s · K; the tile is width · K contiguous floats, read front to back once per block
/// of rows. The SIMD variants request the bytes CK_PREFETCH_BYTES ahead of what they read into L2,
/// past the tile's end into `next` (the tile the caller reads next, next_K rows, next_width columns;
/// NULL if unknown): a hint, never read, no value changes. An unavailable variant falls back to
/// CK_PORTABLE (same bits).
void ck_tile_product(ck_variant variant, ptrdiff_t rows, ptrdiff_t K, ptrdiff_t width,
                     const float *x, ptrdiff_t ldx, const float *w, float *y, ptrdiff_t ldy, int accumulate,
                     const float *next, ptrdiff_t next_K, ptrdiff_t next_width);

/// Positions per block of the decoder's key cache (attention.c).
#define CK_KEY_BLOCK 16

/// scores[h · lds + p] = scale · Σ_e q[h · D + e] · key(p, e) for h < heads, p < len, the sum one
/// fused multiply-add chain over e ascending from 0, then one rounded multiply by `scale`. Keys in
/// blocks of CK_KEY_BLOCK positions, dimension-major: key(p, e) = keys[(p / 16) · 16 · D + e · 16 + p % 16]
/// (positions past `len` are neither read nor written). `values` (NULL if unknown): the values the
/// caller reads next, [len, D], only prefetched.
void ck_attention_scores(ck_variant variant, ptrdiff_t heads, ptrdiff_t D, ptrdiff_t len, const float *q,
                         const float *keys, float scale, float *scores, ptrdiff_t lds, const float *values);

/// out[h · D + e] = Σ_j p[h · ldp + j] · values[j · D + e] for h < heads, e < D, j < len: one fused
/// multiply-add chain over j ascending from 0 per output. `then` (NULL if unknown): the keys the
/// caller reads next, whose first block is only prefetched.
void ck_attention_values(ck_variant variant, ptrdiff_t heads, ptrdiff_t D, ptrdiff_t len, const float *p,
                         ptrdiff_t ldp, const float *values, float *out, const float *then);

/// y[i] = exp(x[i] − shift) for i < n (y may alias x); returns Σ y[i]. Whole blocks of 16 use
/// Kernels' exp16 polynomial and a 16-lane accumulator summed in lane order, the rest libm's expf
/// added in order (exp.c): the bits of Kernels' Swift code, whatever the variant.
float ck_exp_shifted(ck_variant variant, float *y, const float *x, float shift, ptrdiff_t n);

/// h[i] = g[i] · σ(g[i]) · u[i] for i < n (SwiGLU; σ(g) = 1 / (1 + exp(−g)), exp as in
/// ck_exp_shifted): the bits of Kernels' Swift code, whatever the variant.
void ck_swiglu(ck_variant variant, float *h, const float *g, const float *u, ptrdiff_t n);

/// The sum of p[0..<n] in independent partial sums: a read of the buffer at memory speed
/// (stream.c), for measuring the machine's stream rate, with `variant`'s vectors and the decode
/// kernels' prefetch (the portable variant: sixteen scalar partial sums). The sum's order differs
/// between variants: it only keeps the read from being dropped.
float ck_stream_read(ck_variant variant, const float *p, ptrdiff_t n);

/// Runs `iterations` rounds of twelve independent vector fused multiply-adds with `variant`'s
/// widest vectors (peak.c) and stores the floating-point operations done in `*flops`; returns a
/// value computed from the results (so the work is not optimised away). Timed by the caller, it
/// measures one core's peak FMA rate.
float ck_fma_peak(ck_variant variant, ptrdiff_t iterations, double *flops);

#endif
