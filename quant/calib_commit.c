/* One tensor at a time: quantize or encode it from the values the engine holds,
 * stage its bytes, and hand the engine back what the pack will decode to. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../formats/ggml_blocks.h"
#include "awq.h"
#include "calib_internal.h"
#include "encoder.h"
#include "gptq.h"
#include "grid.h"
#include "hqq.h"

static void decode_w4(const mp_encoding *enc, int64_t rows, int64_t cols, const uint8_t *data, const uint16_t *scales,
                      const uint8_t *zeros, float *out)
{
    int64_t G = cols / enc->group;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < cols; j++) {
            int64_t i = r * cols + j, gi = r * G + j / enc->group;
            uint8_t q = (data[i / 2] >> ((i & 1) ? 4 : 0)) & 15;
            out[i] = mp_w4_decode(q, scales[gi], enc->sym ? 8 : zeros[gi]);
        }
}

/* AWQ's clipped grids, or per row the importance-weighted MSE grids when they give
 * that row the smaller output error through H. */
static int awq_arrays(const mp_encoding *enc, const float *W, int64_t rows, int64_t cols, const mp_hessian *H,
                      uint8_t *data, uint16_t *scales, uint8_t *zeros, mp_error *err)
{
    int64_t G = cols / enc->group, n = rows * cols;
    uint8_t *data2 = malloc((size_t)n / 2 + 1), *zeros2 = malloc((size_t)(rows * G) + 1);
    uint16_t *scales2 = malloc((size_t)(rows * G) * sizeof *scales2 + 1);
    float *imp = malloc((size_t)cols * sizeof *imp), *d1 = malloc((size_t)n * sizeof *d1);
    float *d2 = malloc((size_t)n * sizeof *d2);
    double *l1 = malloc((size_t)rows * sizeof *l1), *l2 = malloc((size_t)rows * sizeof *l2);
    int rc = data2 && zeros2 && scales2 && imp && d1 && d2 && l1 && l2 ? MP_OK : mp_fail(err, MP_EXIT_IO, "out of memory");
    if (rc == MP_OK && isnan(mp_awq_quantize(enc, rows, cols, W, H->h, true, data, scales, zeros, d1)))
        rc = mp_fail(err, MP_EXIT_IO, "out of memory in AWQ");
    if (rc == MP_OK) {
        mp_hessian_mean_square(H, imp);
        mp_w4_options opt = {.method = MP_W4_MSE, .importance = imp};
        mp_w4_quantize_rows(enc, rows, cols, W, 0, rows, &opt, data2, scales2, enc->sym ? NULL : zeros2);
        decode_w4(enc, rows, cols, data2, scales2, zeros2, d2);
        mp_hessian_row_losses(H, W, d1, rows, l1);
        mp_hessian_row_losses(H, W, d2, rows, l2);
        for (int64_t r = 0; r < rows; r++) {
            if (!(l2[r] < l1[r]))
                continue;
            memcpy(data + r * cols / 2, data2 + r * cols / 2, (size_t)cols / 2);
            memcpy(scales + r * G, scales2 + r * G, (size_t)G * sizeof *scales);
            if (!enc->sym)
                memcpy(zeros + r * G, zeros2 + r * G, (size_t)G);
        }
    }
    free(data2);
    free(zeros2);
    free(scales2);
    free(imp);
    free(d1);
    free(d2);
    free(l1);
    free(l2);
    return rc;
}

/* GPTQ with the run's options (MSE grids); a tensor it had to round plainly is counted. */
static int gptq(calib_run *c, const mp_encoding *enc, const float *W, int64_t rows, int64_t cols, const mp_hessian *H,
                uint8_t *data, uint16_t *scales, uint8_t *zeros, mp_error *err)
{
    mp_gptq_options opt = {.act_order = c->o->act_order, .mse_grid = true};
    bool fell_back = false;
    int rc = mp_gptq_quantize(enc, rows, cols, W, H->h, &opt, data, scales, zeros, NULL, NULL, &fell_back, err);
    if (fell_back) {
        #pragma omp atomic
        c->report->gptq_rounded++;
    }
    return rc;
}

/* The w4 codes, scales and zero points of W by the run's method; H NULL means the
 * tensor had too few calibration rows: MSE search without importance. */
static int w4_arrays(calib_run *c, const mp_encoding *enc, const float *W, int64_t rows, int64_t cols,
                     const mp_hessian *H, uint8_t *data, uint16_t *scales, uint8_t *zeros, mp_error *err)
{
    mp_quant_method m = H ? c->o->method : MP_METHOD_MSE;
    if (m == MP_METHOD_GPTQ)
        return gptq(c, enc, W, rows, cols, H, data, scales, zeros, err);
    if (m == MP_METHOD_AWQ) /* H is already that of the rescaled inputs */
        return awq_arrays(enc, W, rows, cols, H, data, scales, zeros, err);
    if (m == MP_METHOD_HQQ) {
        mp_hqq_quantize_rows(enc, rows, cols, W, NULL, data, scales, zeros);
        return MP_OK;
    }
    float *importance = NULL;
    if (m == MP_METHOD_MSE && H) {
        importance = malloc((size_t)cols * sizeof *importance);
        if (!importance)
            return mp_fail(err, MP_EXIT_IO, "out of memory");
        mp_hessian_mean_square(H, importance);
    }
    mp_w4_options opt = {.method = m == MP_METHOD_RTN ? MP_W4_RTN : MP_W4_MSE, .importance = importance};
    mp_w4_quantize_rows(enc, rows, cols, W, 0, rows, &opt, data, scales, zeros);
    free(importance);
    return MP_OK;
}

/* A llama.cpp grid's blocks of W by the run's method: GPTQ, or the grid fit of the
 * method (quant/grid.h) with importance = the inputs' mean squares (an imatrix) for mse
 * and awq (whose inputs are already rescaled). H NULL (an expert that saw too few
 * tokens): the MSE fit without importance. */
static int grid_blocks(calib_run *c, const mp_encoding *enc, const float *W, int64_t rows, int64_t cols,
                       const mp_hessian *H, uint8_t *raw, mp_error *err)
{
    mp_quant_method m = H ? c->o->method : MP_METHOD_MSE;
    if (m == MP_METHOD_GPTQ)
        return gptq(c, enc, W, rows, cols, H, raw, NULL, NULL, err);
    float *importance = NULL;
    if (H && m != MP_METHOD_RTN) {
        importance = malloc((size_t)cols * sizeof *importance);
        if (!importance)
            return mp_fail(err, MP_EXIT_IO, "out of memory");
        mp_hessian_mean_square(H, importance);
    }
    mp_grid_quantize_rows(enc->kind, rows, cols, W, importance, m == MP_METHOD_RTN ? MP_W4_RTN : m == MP_METHOD_HQQ ? MP_W4_HQQ : MP_W4_MSE, raw);
    free(importance);
    return MP_OK;
}

/* The tensor's bytes in pack order (data section, then the tail) into raw. */
static int encode_tensor(calib_run *c, const mp_encoding *enc, float *W, int64_t rows, int64_t cols,
                         const mp_hessian *H, uint8_t *raw, mp_error *err)
{
    if (enc->nm24)
        return calib_encode_nm24(c, enc, W, rows, cols, H, raw, err);
    mp_encoder x;
    int rc = mp_encoder_init(&x, enc, rows, cols, NULL, err);
    if (rc == MP_OK && enc->kind == MP_ENC_W4) {
        rc = w4_arrays(c, enc, W, rows, cols, H, raw, x.scales, x.zero_points, err);
        if (rc == MP_OK)
            mp_encoder_finish(&x, raw);
    } else if (rc == MP_OK && mp_ggml_is_grid(enc->kind)) {
        rc = grid_blocks(c, enc, W, rows, cols, H, raw, err);
    } else if (rc == MP_OK) {
        mp_encoder_whole(&x, W, raw);
    }
    mp_encoder_free(&x);
    return rc;
}

int calib_commit(calib_run *c, const char *name, const mp_hessian *H, bool stage, mp_error *err)
{
    int64_t rows, cols;
    float *W = mp_engine_weight(c->engine, name, &rows, &cols);
    if (!W)
        return mp_fail(err, MP_EXIT_INPUT, "calibration: tensor %s is not loaded", name);
    mp_encoding enc;
    int rc = c->o->encoding(c->o->encoding_user, name, rows, cols, &enc, err);
    if (rc != MP_OK)
        return rc;
    mp_enc_layout L;
    mp_encoding_layout(&enc, rows, cols, &L);
    uint8_t *raw = calloc(L.total + 1, 1);
    if (!raw)
        return mp_fail(err, MP_EXIT_IO, "out of memory encoding %s", name);
    rc = encode_tensor(c, &enc, W, rows, cols, H, raw, err);
    if (rc == MP_OK && (stage || enc.nm24 || enc.kind == MP_ENC_W4 || mp_ggml_is_grid(enc.kind))) {
        #pragma omp critical(calib_stage)
        rc = mp_stage_put(c->stage, name, &enc, raw, L.total, NULL, 0, err);
    }
    if (rc == MP_OK)
        mp_encoding_decode_rows(&enc, rows, cols, raw, 0, rows, W);
    free(raw);
    return rc;
}

/* ---- AWQ ---- */

static void awq_scale(int k, const float *mean_abs, const float *w_mean, int64_t cols, float *s)
{
    if (k < CALIB_AWQ_RATIOS)
        mp_awq_candidate(mean_abs, cols, k, CALIB_AWQ_RATIOS, s);
    else
        mp_awq_candidate_duo(mean_abs, w_mean, cols, k - CALIB_AWQ_RATIOS, CALIB_AWQ_RATIOS, s);
}

/* The named linear's values and encoding when it is stored in w4 or a grid (else NULL). */
static float *quantized_linear(calib_run *c, const char *name, int64_t *rows, int64_t *cols, mp_encoding *enc,
                        mp_error *err, int *rc)
{
    float *W = mp_engine_weight(c->engine, name, rows, cols);
    if (!W)
        return NULL; /* an optional linear the layer does not have */
    *rc = c->o->encoding(c->o->encoding_user, name, *rows, *cols, enc, err);
    return *rc == MP_OK && (enc->kind == MP_ENC_W4 || mp_ggml_is_grid(enc->kind)) ? W : NULL;
}

/* AWQ's loss of candidate s for a grid: the RTN grid of W diag(s), decoded and divided
 * by s, against W through H (mp_awq_loss does the same on w4). NaN when out of memory. */
static double grid_awq_loss(const mp_encoding *enc, int64_t rows, int64_t cols, const float *W, const float *s,
                            const mp_hessian *H)
{
    mp_enc_layout L;
    mp_encoding_layout(enc, rows, cols, &L);
    float *scaled = malloc((size_t)(rows * cols) * sizeof *scaled);
    uint8_t *raw = malloc(L.total + 1);
    double *row_loss = malloc((size_t)rows * sizeof *row_loss), loss = NAN;
    if (scaled && raw && row_loss) {
        for (int64_t i = 0; i < rows * cols; i++)
            scaled[i] = W[i] * s[i % cols];
        mp_grid_quantize_rows(enc->kind, rows, cols, scaled, NULL, MP_W4_RTN, raw);
        mp_encoding_decode_rows(enc, rows, cols, raw, 0, rows, scaled);
        for (int64_t i = 0; i < rows * cols; i++)
            scaled[i] /= s[i % cols];
        mp_hessian_row_losses(H, W, scaled, rows, row_loss);
        loss = 0.0;
        for (int64_t r = 0; r < rows; r++)
            loss += row_loss[r];
    }
    free(scaled);
    free(raw);
    free(row_loss);
    return loss;
}

static double awq_loss(const mp_encoding *enc, int64_t rows, int64_t cols, const float *W, const float *s,
                       const mp_hessian *H)
{
    if (mp_ggml_is_grid(enc->kind))
        return grid_awq_loss(enc, rows, cols, W, s, H);
    return mp_awq_loss(enc, rows, cols, W, s, H->h);
}

int calib_awq_weight_mean(calib_run *c, const char *const *names, int n_names, int64_t cols, float *w_mean,
                          mp_error *err)
{
    double *sum = calloc((size_t)cols, sizeof *sum);
    if (!sum)
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    int rc = MP_OK;
    int64_t total = 0;
    for (int i = 0; i < n_names && rc == MP_OK; i++) {
        int64_t rows, k;
        mp_encoding enc;
        float *W = quantized_linear(c, names[i], &rows, &k, &enc, err, &rc);
        if (W && k == cols) {
            mp_awq_weight_mean(W, rows, cols, enc.kind == MP_ENC_W4 ? enc.group : 32, sum);
            total += rows;
        }
    }
    for (int64_t j = 0; j < cols; j++)
        w_mean[j] = total > 0 ? (float)(sum[j] / (double)total) : 1.0f;
    free(sum);
    return rc;
}

int calib_awq_losses(calib_run *c, const char *const *names, int n_names, const mp_hessian *H,
                     const float *mean_abs, const float *w_mean, double *losses, mp_error *err)
{
    float *s = malloc((size_t)H->cols * sizeof *s);
    if (!s)
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    int rc = MP_OK;
    for (int i = 0; i < n_names && rc == MP_OK; i++) {
        int64_t rows, cols;
        mp_encoding enc;
        float *W = quantized_linear(c, names[i], &rows, &cols, &enc, err, &rc);
        for (int k = 0; W && k < CALIB_AWQ_GRID; k++) {
            awq_scale(k, mean_abs, w_mean, cols, s);
            losses[k] += awq_loss(&enc, rows, cols, W, s, H);
        }
    }
    free(s);
    return rc;
}

void calib_awq_pick_one(int k, const float *mean_abs, const float *w_mean, int64_t cols, float *s)
{
    awq_scale(k, mean_abs, w_mean, cols, s);
}

double calib_awq_loss_of(calib_run *c, const char *name, const float *s, const mp_hessian *H)
{
    int64_t rows, cols;
    mp_encoding enc;
    mp_error err = {0};
    int rc = MP_OK;
    float *W = quantized_linear(c, name, &rows, &cols, &enc, &err, &rc);
    return W ? awq_loss(&enc, rows, cols, W, s, H) : 0.0;
}

int calib_awq_pick(const double *losses, const float *mean_abs, const float *w_mean, int64_t cols, float *s)
{
    int best = 0;
    for (int k = 1; k < CALIB_AWQ_GRID; k++)
        if (losses[k] < losses[best])
            best = k;
    awq_scale(best, mean_abs, w_mean, cols, s);
    return best;
}

static void scale_columns(float *W, int64_t rows, int64_t cols, const float *s)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < cols; j++)
            W[r * cols + j] *= s[j];
}

int calib_fold_norm(calib_run *c, const char *norm, const char *const *linears, int n_linears, float *s,
                    mp_error *err)
{
    int64_t rows, cols;
    float *g = mp_engine_weight(c->engine, norm, &rows, &cols);
    float *before = g ? malloc((size_t)cols * sizeof *before) : NULL;
    if (!g || !before) {
        free(before);
        return mp_fail(err, g ? MP_EXIT_IO : MP_EXIT_INPUT, "calibration: cannot rescale %s", norm);
    }
    memcpy(before, g, (size_t)cols * sizeof *g);
    for (int64_t j = 0; j < cols; j++)
        g[j] /= s[j];
    int rc = calib_commit(c, norm, NULL, true, err);
    /* The norm as stored is rounded: the linears take the ratio it really applies. */
    for (int64_t j = 0; j < cols; j++)
        s[j] = g[j] != 0.0f && before[j] != 0.0f ? before[j] / g[j] : 1.0f;
    for (int i = 0; i < n_linears && rc == MP_OK; i++) {
        int64_t r, k;
        float *W = mp_engine_weight(c->engine, linears[i], &r, &k);
        if (W && k == cols)
            scale_columns(W, r, k, s);
    }
    free(before);
    return rc;
}
