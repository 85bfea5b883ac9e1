/* Reproducible random data for the unit tests: xorshift64 with fixed seeds, so every
 * run sees the same values. */
#ifndef MP_TEST_RANDOM_H
#define MP_TEST_RANDOM_H

#include <math.h>
#include <stdint.h>

typedef struct {
    uint64_t s;
} rng;

static inline double uniform01(rng *r)
{
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return ((double)(r->s >> 11) + 0.5) / 9007199254740992.0;
}

static inline double gaussian(rng *r)
{
    return sqrt(-2.0 * log(uniform01(r))) * cos(6.283185307179586 * uniform01(r));
}

static inline void fill_gaussian(rng *r, float *x, int64_t n, double sigma)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)(sigma * gaussian(r));
}

/* Gaussian values with two 6-10 sigma outliers per group of g. */
static inline void fill_heavy_tailed(rng *r, float *x, int64_t n, int g, double sigma)
{
    fill_gaussian(r, x, n, sigma);
    for (int64_t i = 0; i < n; i += g)
        for (int k = 0; k < 2; k++) {
            int64_t j = i + (int64_t)(uniform01(r) * g);
            x[j] = (float)(sigma * (6.0 + 4.0 * uniform01(r)) * (uniform01(r) < 0.5 ? -1.0 : 1.0));
        }
}

#endif
