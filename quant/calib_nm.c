/* 2:4 tensors in calibration (quant/nm_sparse.h): prune, quantize on the dense grid
 * with the pruned weights as the mask, store 2:4. GPTQ is not run on a pruned tensor
 * (its error compensation would refill the pruned weights): with SparseGPT the w4
 * codes come from SparseGPT's own joint sweep, otherwise from the MSE grid search
 * (importance mean x^2) of the pruned weights. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "calib_internal.h"
#include "encoder.h"
#include "nm_sparse.h"

/* Prunes W (and, joint, quantizes it into dense_raw's w4 arrays through x). */
static int prune(calib_run *c, const mp_encoding *dense, float *W, int64_t rows, int64_t cols, const mp_hessian *H,
                 mp_encoder *x, uint8_t *dense_raw, bool *joint, mp_error *err)
{
    *joint = false;
    if (!H || c->o->nm_method != MP_NM_SPARSEGPT) {
        mp_nm_wanda(rows, cols, W, H ? H->h : NULL);
        return MP_OK;
    }
    *joint = dense->kind == MP_ENC_W4;
    mp_sparsegpt_options o = {.w4 = *joint ? dense : NULL};
    bool fell_back = false;
    int rc = mp_nm_sparsegpt(rows, cols, W, H->h, &o, dense_raw, x->scales, x->zero_points, &fell_back, err);
    if (rc == MP_OK && fell_back)
#pragma omp atomic
        c->report->gptq_rounded++;
    return rc;
}

static void quantize_dense(const mp_encoding *dense, const float *W, int64_t rows, int64_t cols, const mp_hessian *H,
                           mp_encoder *x, uint8_t *dense_raw, mp_error *err, int *rc)
{
    if (dense->kind != MP_ENC_W4) {
        mp_encoder_whole(x, W, dense_raw);
        return;
    }
    float *importance = H ? malloc((size_t)cols * sizeof *importance) : NULL;
    if (H && !importance) {
        *rc = mp_fail(err, MP_EXIT_IO, "out of memory");
        return;
    }
    if (H)
        mp_hessian_mean_square(H, importance);
    mp_w4_options o = {.method = MP_W4_MSE, .importance = importance};
    mp_w4_quantize_rows(dense, rows, cols, W, 0, rows, &o, dense_raw, x->scales, x->zero_points);
    free(importance);
}

static double output_error(const mp_hessian *H, const float *W, const float *D, int64_t rows, int *rc, mp_error *err)
{
    double *loss = malloc((size_t)rows * sizeof *loss), total = 0.0;
    if (!loss) {
        *rc = mp_fail(err, MP_EXIT_IO, "out of memory");
        return 0.0;
    }
    mp_hessian_row_losses(H, W, D, rows, loss);
    for (int64_t r = 0; r < rows; r++)
        total += loss[r];
    free(loss);
    return total;
}

int calib_encode_nm24(calib_run *c, const mp_encoding *enc, float *W, int64_t rows, int64_t cols,
                      const mp_hessian *H, uint8_t *raw, mp_error *err)
{
    mp_encoding dense = *enc;
    dense.nm24 = false;
    mp_encoder x;
    int rc = mp_encoder_init(&x, &dense, rows, cols, NULL, err);
    size_t n = (size_t)(rows * cols);
    float *orig = H ? malloc(n * sizeof *orig) : NULL, *dec = H ? malloc(n * sizeof *dec) : NULL;
    uint8_t *dense_raw = calloc(x.layout.total + 1, 1);
    if (rc == MP_OK && (!dense_raw || (H && (!orig || !dec))))
        rc = mp_fail(err, MP_EXIT_IO, "out of memory for a 2:4 [%lld, %lld] tensor", (long long)rows, (long long)cols);
    if (rc == MP_OK && orig)
        memcpy(orig, W, n * sizeof *W);
    bool joint = false;
    if (rc == MP_OK)
        rc = prune(c, &dense, W, rows, cols, H, &x, dense_raw, &joint, err);
    if (rc == MP_OK && !joint)
        quantize_dense(&dense, W, rows, cols, H, &x, dense_raw, err, &rc);
    if (rc == MP_OK && dense.kind == MP_ENC_W4)
        mp_encoder_finish(&x, dense_raw);
    int64_t bad;
    if (rc == MP_OK && mp_nm24_pack(enc, rows, cols, dense_raw, W, raw, &bad) != 0)
        rc = mp_fail(err, MP_EXIT_IO, "2:4 pruning left more than 2 nonzero values in group %lld", (long long)bad);
    if (rc == MP_OK && H) {
        mp_encoding_decode_rows(enc, rows, cols, raw, 0, rows, dec);
        double e = output_error(H, orig, dec, rows, &rc, err);
#pragma omp critical(calib_nm_report)
        {
            c->report->nm_tensors++;
            c->report->nm_error += e;
        }
    }
    mp_encoder_free(&x);
    free(dense_raw);
    free(orig);
    free(dec);
    return rc;
}
