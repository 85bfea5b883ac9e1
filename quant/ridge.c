#include "ridge.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int mp_ridge_init(mp_ridge *r, int64_t d, int64_t k, int64_t max_rows)
{
    memset(r, 0, sizeof *r);
    r->d = d;
    r->k = k;
    r->max_rows = max_rows;
    r->A = calloc((size_t)(d * d), sizeof *r->A);
    r->B = calloc((size_t)(d * k), sizeof *r->B);
    r->xt = malloc((size_t)(d * max_rows + 1) * sizeof *r->xt);
    if (r->A && r->B && r->xt)
        return MP_OK;
    mp_ridge_free(r);
    return MP_EXIT_IO;
}

void mp_ridge_free(mp_ridge *r)
{
    free(r->A);
    free(r->B);
    free(r->xt);
    memset(r, 0, sizeof *r);
}

void mp_ridge_reset(mp_ridge *r)
{
    memset(r->A, 0, (size_t)(r->d * r->d) * sizeof *r->A);
    memset(r->B, 0, (size_t)(r->d * r->k) * sizeof *r->B);
    r->c = 0;
}

void mp_ridge_add(mp_ridge *r, const float *X, const float *L, int64_t rows)
{
    int64_t d = r->d, keep = r->k;
    for (int64_t t = 0; t < rows; t++)
        for (int64_t i = 0; i < d; i++)
            r->xt[i * rows + t] = X[t * d + i];
#pragma omp parallel for schedule(dynamic, 4)
    for (int64_t i = 0; i < d; i++) {
        const double *u = r->xt + i * rows;
        for (int64_t j = i; j < d; j++) {
            const double *v = r->xt + j * rows;
            double s = 0;
            for (int64_t t = 0; t < rows; t++)
                s += u[t] * v[t];
            r->A[i * d + j] += s;
        }
        for (int64_t k = 0; k < keep; k++) {
            double s = 0;
            for (int64_t t = 0; t < rows; t++)
                s += u[t] * (double)L[t * keep + k];
            r->B[i * keep + k] += s;
        }
    }
    for (int64_t t = 0; t < rows * keep; t++)
        r->c += (double)L[t] * (double)L[t];
}

double mp_ridge_trace(const mp_ridge *r)
{
    double trace = 0;
    for (int64_t i = 0; i < r->d; i++)
        trace += r->A[i * r->d + i];
    return trace;
}

/* sum_k w_k^T A w_k - 2 w_k^T B_k, plus ||L||^2. */
double mp_ridge_residual(const mp_ridge *r, const float *W)
{
    int64_t d = r->d, keep = r->k;
    double res = r->c;
    for (int64_t k = 0; k < keep; k++) {
        const float *w = W + k * d;
        for (int64_t i = 0; i < d; i++) {
            double row = 0;
            for (int64_t j = i + 1; j < d; j++)
                row += r->A[i * d + j] * (double)w[j];
            res += (double)w[i] * ((double)w[i] * r->A[i * d + i] + 2 * row) - 2 * (double)w[i] * r->B[i * keep + k];
        }
    }
    return res;
}

int mp_ridge_solve(const mp_ridge *r, const float *w0, double lambda, float *W)
{
    int64_t d = r->d, keep = r->k;
    double *M = malloc((size_t)(d * d) * sizeof *M), *y = malloc((size_t)d * sizeof *y);
    int rc = M && y ? MP_OK : MP_EXIT_IO;
    for (int64_t i = 0; rc == MP_OK && i < d; i++) /* lower triangle of A + lambda I */
        for (int64_t j = 0; j <= i; j++)
            M[i * d + j] = r->A[j * d + i] + (i == j ? lambda : 0.0);
    for (int64_t j = 0; rc == MP_OK && j < d; j++) {
        double s = M[j * d + j];
        for (int64_t k = 0; k < j; k++)
            s -= M[j * d + k] * M[j * d + k];
        if (!(s > 0)) {
            rc = MP_EXIT_INPUT;
            break;
        }
        M[j * d + j] = sqrt(s);
        for (int64_t i = j + 1; i < d; i++) {
            double t = M[i * d + j];
            for (int64_t k = 0; k < j; k++)
                t -= M[i * d + k] * M[j * d + k];
            M[i * d + j] = t / M[j * d + j];
        }
    }
    for (int64_t k = 0; rc == MP_OK && k < keep; k++) {
        for (int64_t i = 0; i < d; i++) { /* L y = b */
            double s = r->B[i * keep + k] + lambda * (double)w0[k * d + i];
            for (int64_t j = 0; j < i; j++)
                s -= M[i * d + j] * y[j];
            y[i] = s / M[i * d + i];
        }
        for (int64_t i = d - 1; i >= 0; i--) { /* L^T w = y */
            double s = y[i];
            for (int64_t j = i + 1; j < d; j++)
                s -= M[j * d + i] * y[j];
            y[i] = s / M[i * d + i];
        }
        for (int64_t i = 0; i < d; i++)
            W[k * d + i] = (float)y[i];
    }
    free(M);
    free(y);
    return rc;
}
