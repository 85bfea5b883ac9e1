/* The activations of FAST mode, as the kernel tests' oracles compute them. */
#ifndef MP_TEST_Q8_ORACLE_H
#define MP_TEST_Q8_ORACLE_H

#include <math.h>
#include <stdint.h>

/* FAST's activations, as llama.cpp's q8_1 defines them and kern.c must produce them:
 * per 32 values d = max|x| / 127 (f32), q = x · (1/d) rounded to nearest even. */
static inline void quantize_like_q8(const float *x, int64_t cols, double *xq)
{
    for (int64_t j = 0; j < cols; j += 32) {
        float amax = 0;
        for (int i = 0; i < 32; i++)
            amax = fmaxf(amax, fabsf(x[j + i]));
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        for (int i = 0; i < 32; i++)
            xq[j + i] = (double)d * nearbyintf(x[j + i] * id);
    }
}

#endif
