/* What the kernel files share: the activations quantized for FAST mode, the per-ISA
 * table of row-range kernels that kern.c dispatches to, and the portable building
 * blocks (exact span decoding, integer staging) the ISA files reuse. */
#ifndef MP_KERN_INTERNAL_H
#define MP_KERN_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "kernels.h"

/* Columns decoded or staged at a time: every block size (32, 64, 128, 256) divides it. */
#define MP_KERN_KC 256
/* Rows per micro-tile; kern.c cuts row ranges at multiples of it, so a row's summation
 * never depends on where a thread's range starts. */
#define MP_KERN_RT 4
/* Largest token range passed to one kernel call. */
#define MP_KERN_TCH 64

/* n activation rows quantized as llama.cpp's q8_1: per 32 values int8 codes q, a scale
 * d (x ≈ d·q) and s = d·Σq. Row t's codes start at q + t·cols, its blocks at t·cols/32. */
typedef struct {
    const int8_t *q;
    const float *d, *s;
    int64_t cols;
} mp_kern_xq;

/* One ISA's kernels. Each computes y[t·rows + r] for r in [r0, r1), t in [t0, t1)
 * (t1 - t0 <= MP_KERN_TCH; r0 a multiple of MP_KERN_RT). */
typedef struct {
    const char *name;
    void (*exact)(const mp_packed *w, const float *x, int64_t r0, int64_t r1, int64_t t0, int64_t t1,
                  float *y);
    void (*fast)(const mp_packed *w, const mp_kern_xq *xq, int64_t r0, int64_t r1, int64_t t0, int64_t t1,
                 float *y);
} mp_kern_ops;

/* The inner products a generic tile loop needs; the ISA files supply SIMD versions. */
typedef struct {
    /* Σ w[i]·x[i] over k values (any k). */
    float (*dot_f32)(const float *w, const float *x, int64_t k);
    /* Σ over nb blocks of 32 of xd[b]·a[b]·Σ q[i]·xq[i] + b[b]·xs[b]. */
    float (*dot_q8)(const int8_t *q, const float *a, const float *b, const int8_t *xq, const float *xd,
                    const float *xs, int64_t nb);
} mp_kern_inner;

/* FAST mode uses integer products for these; the others (f32, bf16, f16, fp8, q6_k)
 * take the exact kernel in both modes. */
bool mp_kern_fast_kind(mp_enc_kind k);

/* Decodes row r, columns [c0, c1) (c0, c1 multiples of the block size, or c1 = cols),
 * into out: the same f32 values mp_encoding_decode_rows gives. */
void mp_kern_decode_span(const mp_packed *w, const mp_enc_layout *L, int64_t r, int64_t c0, int64_t c1,
                         float *out);
/* Unpacks row r, columns [c0, c1) of a fast kind into int8 codes q and per block of 32
 * a, b with w ≈ a·q + b (exactly so in real arithmetic on these a, b). */
void mp_kern_stage_span(const mp_packed *w, int64_t r, int64_t c0, int64_t c1, int8_t *q, float *a, float *b);

/* The generic tile loops, parameterised by the inner products. */
void mp_kern_exact_tiles(const mp_kern_inner *in, const mp_packed *w, const float *x, int64_t r0, int64_t r1,
                         int64_t t0, int64_t t1, float *y);
void mp_kern_fast_tiles(const mp_kern_inner *in, const mp_packed *w, const mp_kern_xq *xq, int64_t r0,
                        int64_t r1, int64_t t0, int64_t t1, float *y);

/* Bytes of one row of a grid or w4 data section. */
int64_t mp_kern_row_bytes(const mp_packed *w);

/* FAST q4_K straight from the blocks (kern_avx2.c; the AVX-512 table uses it too). */
void mp_kern_avx2_fast_q4_k(const mp_packed *w, const mp_kern_xq *xq, int64_t r0, int64_t r1, int64_t t0,
                            int64_t t1, float *y);

const mp_kern_ops *mp_kern_portable(void);
/* NULL when this build or CPU lacks the ISA. */
const mp_kern_ops *mp_kern_avx2(void);
const mp_kern_ops *mp_kern_avx512(void);
const mp_kern_ops *mp_kern_neon(void);

#endif
