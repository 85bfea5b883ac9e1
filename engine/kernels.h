/* Matrix kernels that compute straight from a pack's encoded weight bytes: the linear
 * layers of `moepack run` never hold a dequantized f32 copy of the model. Each weight
 * block is decoded (or unpacked to integers) into registers or an L1-sized buffer and
 * used at once, for every token of the call. */
#ifndef MP_KERNELS_H
#define MP_KERNELS_H

#include <stdint.h>

#include "../formats/encoding.h"

/* A weight matrix [rows, cols] in its pack encoding: raw holds the encoding's
 * layout (mp_encoding_layout: data, then scales, then zeros), as a pack record part. */
typedef struct {
    mp_encoding enc;
    int64_t rows, cols;
    const uint8_t *raw;
} mp_packed;

typedef enum {
    MP_KERN_EXACT, /* f32 activations; every weight decoded exactly as mp_encoding_decode_rows decodes it; f32 products summed in f32 */
    MP_KERN_FAST   /* the fastest kernels: activations may be quantized per block (int8 per 32 values as llama.cpp's q8_0/q8_1, or per 256 as q8_K) for integer dot products */
} mp_kern_mode;

/* y[n, rows] = x[n, cols] · Wᵀ. Threaded with OpenMP over output rows (and tokens);
 * the result is bit-identical for any thread count (a fixed summation order per output). */
void mp_kern_matmul(const mp_packed *w, const float *x, int64_t n, float *y, mp_kern_mode mode);
/* y[cols] = Wᵀ · x[rows]   (sum over rows of x[r] * W[r, :]); used for DeepSeek MLA's
 * absorbed attention. Exact f32 decode; any speed is fine. */
void mp_kern_matvec_t(const mp_packed *w, const float *x, float *y);
/* The instruction set chosen at run time: "avx512", "avx2", "neon" or "portable". */
const char *mp_kern_isa(void);

/* For tests and benchmarks: use the named instruction set from now on ("portable",
 * "avx2", "avx512", "neon"), or NULL to choose by the CPU again. Returns 0, or -1 when
 * this build or CPU cannot run it (the choice is then unchanged). Not thread-safe:
 * call it between kernel calls. */
int mp_kern_force_isa(const char *name);

#endif
