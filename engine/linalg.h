/* The engine's arithmetic kernels, all f32. Matrix products go to OpenBLAS sgemm
 * in fixed tiles: the tiling never depends on the thread count, so results are
 * the same bits with any number of threads. */
#ifndef MP_LINALG_H
#define MP_LINALG_H

#include <stdint.h>

/* OpenBLAS runs single-threaded inside our OpenMP tiles; call once per process. */
void mp_linalg_init(void);

/* OpenBLAS picks its kernels from the CPU's model number when it loads, before main; a
 * virtual CPU that names no model it knows ("Intel(R) Xeon(R) Processor") gets the
 * generic Prescott kernels, 2-3x slower than the AVX-512 or AVX2 ones the CPU has
 * (moby-dsv3 gptq convert: 63 s against 23 s). The OPENBLAS_CORETYPE value that the
 * CPU's features support when OpenBLAS chose Prescott, else NULL. */
const char *mp_linalg_better_blas_core(void);

/* y[n, m] = x[n, k] * w[m, k]^T (a linear layer over n rows), parallel over tiles. */
void mp_matmul_nt(const float *x, int64_t n, int64_t k, const float *w, int64_t m, float *y);

/* out[i] = x[i] / sqrt(mean(x^2) + eps) * w[i] over each row of d values (in place allowed). */
void mp_rmsnorm_rows(const float *x, int64_t n, int64_t d, const float *w, float eps, float *out);

/* x[i] = exp(x[i] - max) / sum, over n values, in place. */
void mp_softmax(float *x, int64_t n);

static inline float mp_silu(float x)
{
    return x / (1.0f + __builtin_expf(-x));
}

#endif
