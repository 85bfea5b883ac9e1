/* What calibration keeps of the rows entering a linear layer: H = sum x x^T (the
 * Hessian of the layer's squared output error, up to a factor 2), sum |x| per
 * input channel (AWQ's activation scale) and the number of rows. Double sums, so
 * that a million rows add up without losing the small ones. */
#ifndef MP_QUANT_HESSIAN_H
#define MP_QUANT_HESSIAN_H

#include <stdint.h>

#include "../core/error.h"

typedef struct {
    int64_t cols;
    double *h;       /* [cols, cols], symmetric */
    double *abs_sum; /* [cols] */
    int64_t rows;
} mp_hessian;

int mp_hessian_init(mp_hessian *a, int64_t cols, mp_error *err);
void mp_hessian_free(mp_hessian *a);
/* to = a new copy of from (initialised here). */
int mp_hessian_copy(const mp_hessian *from, mp_hessian *to, mp_error *err);
/* Adds n rows x[n, cols]. The f32 products are summed in tiles of a fixed number
 * of rows, then into double: the result does not depend on the thread count. */
int mp_hessian_add(mp_hessian *a, const float *x, int64_t n, mp_error *err);
/* Adds n rows each multiplied by weight[r] (a routed expert's rows by their gate
 * weight: its error reaches the output scaled by it). */
int mp_hessian_add_weighted(mp_hessian *a, const float *x, const float *weight, int64_t n, mp_error *err);
/* out[r] = (D_r - W_r) H (D_r - W_r)^T: each row's output error over the rows of H. */
void mp_hessian_row_losses(const mp_hessian *a, const float *W, const float *D, int64_t rows, double *out);
/* mean x^2 per channel (the diagonal over rows): an importance for MSE search. */
void mp_hessian_mean_square(const mp_hessian *a, float *out);
/* mean |x| per channel. */
void mp_hessian_mean_abs(const mp_hessian *a, float *out);
/* H of the rows x / s: H[i][j] / (s_i s_j), and the |x| sums / s_i. */
void mp_hessian_divide_inputs(mp_hessian *a, const float *s);

#endif
