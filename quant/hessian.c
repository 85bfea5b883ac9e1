#include "hessian.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Rows per f32 product: small enough that the f32 sums of one tile lose nothing
 * that matters, large enough for sgemm to run at speed. */
enum { TILE_ROWS = 256 };

int mp_hessian_init(mp_hessian *a, int64_t cols, mp_error *err)
{
    memset(a, 0, sizeof *a);
    a->cols = cols;
    a->h = calloc((size_t)(cols * cols), sizeof *a->h);
    a->abs_sum = calloc((size_t)cols, sizeof *a->abs_sum);
    if (!a->h || !a->abs_sum) {
        mp_hessian_free(a);
        return mp_fail(err, MP_EXIT_IO, "out of memory for a %lld x %lld Hessian", (long long)cols, (long long)cols);
    }
    return MP_OK;
}

void mp_hessian_free(mp_hessian *a)
{
    free(a->h);
    free(a->abs_sum);
    memset(a, 0, sizeof *a);
}

int mp_hessian_copy(const mp_hessian *from, mp_hessian *to, mp_error *err)
{
    int rc = mp_hessian_init(to, from->cols, err);
    if (rc != MP_OK)
        return rc;
    memcpy(to->h, from->h, (size_t)(from->cols * from->cols) * sizeof *to->h);
    memcpy(to->abs_sum, from->abs_sum, (size_t)from->cols * sizeof *to->abs_sum);
    to->rows = from->rows;
    return MP_OK;
}

int mp_hessian_add(mp_hessian *a, const float *x, int64_t n, mp_error *err)
{
    int64_t d = a->cols;
    float *tile = n > 0 ? malloc((size_t)(d * d) * sizeof *tile) : NULL;
    if (n > 0 && !tile)
        return mp_fail(err, MP_EXIT_IO, "out of memory for a %lld x %lld Hessian", (long long)d, (long long)d);
    for (int64_t r0 = 0; r0 < n; r0 += TILE_ROWS) {
        int64_t rows = n - r0 < TILE_ROWS ? n - r0 : TILE_ROWS;
        const float *xs = x + r0 * d;
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)d, (int)rows, 1.0f, xs, (int)d, 0.0f, tile, (int)d);
        for (int64_t i = 0; i < d; i++)
            for (int64_t j = i; j < d; j++)
                a->h[i * d + j] += tile[i * d + j];
        for (int64_t r = 0; r < rows; r++)
            for (int64_t i = 0; i < d; i++)
                a->abs_sum[i] += fabsf(xs[r * d + i]);
    }
    for (int64_t i = 0; i < d; i++) /* the lower triangle mirrors the upper one */
        for (int64_t j = 0; j < i; j++)
            a->h[i * d + j] = a->h[j * d + i];
    a->rows += n;
    free(tile);
    return MP_OK;
}

void mp_hessian_mean_square(const mp_hessian *a, float *out)
{
    for (int64_t i = 0; i < a->cols; i++)
        out[i] = a->rows > 0 ? (float)(a->h[i * a->cols + i] / (double)a->rows) : 0.0f;
}

void mp_hessian_mean_abs(const mp_hessian *a, float *out)
{
    for (int64_t i = 0; i < a->cols; i++)
        out[i] = a->rows > 0 ? (float)(a->abs_sum[i] / (double)a->rows) : 0.0f;
}

void mp_hessian_divide_inputs(mp_hessian *a, const float *s)
{
    int64_t d = a->cols;
    for (int64_t i = 0; i < d; i++) {
        for (int64_t j = 0; j < d; j++)
            a->h[i * d + j] /= (double)s[i] * (double)s[j];
        a->abs_sum[i] /= s[i];
    }
}

void mp_hessian_row_losses(const mp_hessian *a, const float *W, const float *D, int64_t rows, double *out)
{
    int64_t d = a->cols;
    double *e = malloc((size_t)d * sizeof *e), *he = malloc((size_t)d * sizeof *he);
    for (int64_t r = 0; e && he && r < rows; r++) {
        for (int64_t j = 0; j < d; j++)
            e[j] = (double)D[r * d + j] - (double)W[r * d + j];
        cblas_dsymv(CblasRowMajor, CblasUpper, (int)d, 1.0, a->h, (int)d, e, 1, 0.0, he, 1);
        double sum = 0;
        for (int64_t j = 0; j < d; j++)
            sum += e[j] * he[j];
        out[r] = sum;
    }
    if (!e || !he)
        for (int64_t r = 0; r < rows; r++)
            out[r] = NAN;
    free(e);
    free(he);
}

int mp_hessian_add_weighted(mp_hessian *a, const float *x, const float *weight, int64_t n, mp_error *err)
{
    int64_t d = a->cols;
    float *scaled = malloc((size_t)(n * d + 1) * sizeof *scaled);
    if (!scaled)
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    for (int64_t r = 0; r < n; r++)
        for (int64_t j = 0; j < d; j++)
            scaled[r * d + j] = x[r * d + j] * weight[r];
    int rc = mp_hessian_add(a, scaled, n, err);
    free(scaled);
    return rc;
}
