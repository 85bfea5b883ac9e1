#include "linalg.h"

#include <cblas.h>
#include <math.h>
#include <strings.h>

enum { TILE_ROWS = 128, TILE_COLS = 256 };

void mp_linalg_init(void)
{
    openblas_set_num_threads(1);
}

const char *mp_linalg_better_blas_core(void)
{
#if defined(__x86_64__)
    if (strcasecmp(openblas_get_corename(), "prescott") != 0)
        return NULL;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512cd"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return "Haswell";
#endif
    return NULL;
}

void mp_matmul_nt(const float *x, int64_t n, int64_t k, const float *w, int64_t m, float *y)
{
    int64_t row_tiles = (n + TILE_ROWS - 1) / TILE_ROWS, col_tiles = (m + TILE_COLS - 1) / TILE_COLS;
    #pragma omp parallel for schedule(dynamic)
    for (int64_t t = 0; t < row_tiles * col_tiles; t++) {
        int64_t r0 = t / col_tiles * TILE_ROWS, c0 = t % col_tiles * TILE_COLS;
        int64_t rows = n - r0 < TILE_ROWS ? n - r0 : TILE_ROWS;
        int64_t cols = m - c0 < TILE_COLS ? m - c0 : TILE_COLS;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)cols, (int)k, 1.0f, x + r0 * k,
                    (int)k, w + c0 * k, (int)k, 0.0f, y + r0 * m + c0, (int)m);
    }
}

void mp_rmsnorm_rows(const float *x, int64_t n, int64_t d, const float *w, float eps, float *out)
{
    for (int64_t r = 0; r < n; r++) {
        const float *a = x + r * d;
        float *b = out + r * d;
        float ss = 0;
        for (int64_t i = 0; i < d; i++)
            ss += a[i] * a[i];
        float inv = 1.0f / sqrtf(ss / (float)d + eps);
        for (int64_t i = 0; i < d; i++)
            b[i] = a[i] * inv * w[i];
    }
}

void mp_softmax(float *x, int64_t n)
{
    float max = x[0];
    for (int64_t i = 1; i < n; i++)
        if (x[i] > max)
            max = x[i];
    float sum = 0;
    for (int64_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    for (int64_t i = 0; i < n; i++)
        x[i] /= sum;
}
