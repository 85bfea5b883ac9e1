/* Ridge least squares of a linear map from rows: W = argmin ||X W^T - L||^2 +
 * lambda ||W - W0||^2 for X [n, d] and targets L [n, k], from the sums X^T X,
 * X^T L and ||L||^2 gathered batch by batch. Used to refit routers to another
 * model's logits (prune/router_fit.c after pruning, quant/calib_teacher.c when
 * distilling). Sums in double, each entry one thread's sum over the rows in order:
 * the same bytes at any thread count. */
#ifndef MP_QUANT_RIDGE_H
#define MP_QUANT_RIDGE_H

#include <stdint.h>

#include "../core/error.h"

typedef struct {
    int64_t d, k, max_rows;
    double *A;  /* X^T X [d, d], upper triangle */
    double *B;  /* X^T L [d, k] */
    double c;   /* ||L||^2 */
    double *xt; /* a batch of X transposed [d, max_rows] */
} mp_ridge;

/* max_rows: the most rows one mp_ridge_add will be given. MP_EXIT_IO when out of memory. */
int mp_ridge_init(mp_ridge *r, int64_t d, int64_t k, int64_t max_rows);
void mp_ridge_free(mp_ridge *r);
void mp_ridge_reset(mp_ridge *r);
/* Adds rows of X [rows, d] and L [rows, k] (rows <= max_rows). */
void mp_ridge_add(mp_ridge *r, const float *X, const float *L, int64_t rows);
/* trace(X^T X). */
double mp_ridge_trace(const mp_ridge *r);
/* ||X W^T - L||^2 of W [k, d] from the sums. */
double mp_ridge_residual(const mp_ridge *r, const float *W);
/* W [k, d] = (A + lambda I)^-1 (B + lambda W0^T), by Cholesky in double. MP_EXIT_INPUT
 * when the system is not positive definite, MP_EXIT_IO when out of memory. */
int mp_ridge_solve(const mp_ridge *r, const float *w0, double lambda, float *W);

#endif
