/* Tests for quant/gptq. Independent facts checked: with a diagonal H no error can
 * propagate, so GPTQ must equal plain rounding byte for byte; on a correlated H it must
 * cut tr(dW H dW^T) well below plain rounding; the pack's decoder (formats/encoding.c)
 * must reproduce `dequant` and a plain double loop must reproduce `loss`; lazy batching
 * must not change the result beyond f32 rounding; the bytes must not depend on the thread
 * count. The float64 NumPy oracle (tests/ref/gptq_ref.py, tests/cli/test_gptq_ref.sh)
 * checks the codes themselves. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/dtype.h"
#include "../../formats/encoding.h"
#include "../../quant/gptq.h"
#include "../../quant/w4.h"
#include "random.h"
#include "w4_buffers.h"

/* ---- random data (xorshift64, fixed seeds: every run sees the same values) ---- */

static float *random_weights(rng *r, int64_t rows, int64_t cols)
{
    float *w = malloc((size_t)(rows * cols) * sizeof *w);
    assert_non_null(w);
    for (int64_t i = 0; i < rows * cols; i++)
        w[i] = (float)(0.02 * gaussian(r));
    return w;
}

/* H = X^T X for n calibration rows X = Z B + 0.3 N (Z [n, k], N [n, cols] normal,
 * B [k, cols] normal / sqrt(k): columns correlated through k latent factors), column c
 * then scaled by exp(spread u_c), u_c uniform in [-1, 1]: spread 3 gives a diagonal
 * spanning ~400x, as the activations of real layers do. Columns listed in dead are 0. */
static double *correlated_hessian(rng *r, int64_t cols, int64_t n, int64_t k, double spread, const int64_t *dead,
                                  int n_dead)
{
    double *Z = malloc((size_t)(n * k) * sizeof *Z), *B = malloc((size_t)(k * cols) * sizeof *B);
    double *X = malloc((size_t)(n * cols) * sizeof *X), *H = malloc((size_t)(cols * cols) * sizeof *H);
    assert_true(Z && B && X && H);
    for (int64_t i = 0; i < n * k; i++)
        Z[i] = gaussian(r);
    for (int64_t i = 0; i < k * cols; i++)
        B[i] = gaussian(r) / sqrt((double)k);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)cols, (int)k, 1.0, Z, (int)k, B, (int)cols,
                0.0, X, (int)cols);
    for (int64_t c = 0; c < cols; c++) {
        double scale = exp(spread * (2.0 * uniform01(r) - 1.0));
        for (int64_t i = 0; i < n; i++)
            X[i * cols + c] = (X[i * cols + c] + 0.3 * gaussian(r)) * scale;
    }
    for (int d = 0; d < n_dead; d++)
        for (int64_t i = 0; i < n; i++)
            X[i * cols + dead[d]] = 0.0;
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)cols, (int)cols, (int)n, 1.0, X, (int)cols, X,
                (int)cols, 0.0, H, (int)cols);
    for (int64_t a = 0; a < cols; a++) /* exactly symmetric */
        for (int64_t b = 0; b < a; b++)
            H[a * cols + b] = H[b * cols + a];
    free(Z);
    free(B);
    free(X);
    return H;
}

/* ---- outputs ---- */

static void run_gptq(w4_out *o, const float *W, const double *H, mp_gptq_options opt)
{
    mp_error err = {0};
    int rc = mp_gptq_quantize(&o->e, o->rows, o->cols, W, H, &opt, o->data, o->scales, o->e.sym ? NULL : o->zeros,
                              o->dequant, &o->loss, &o->fell_back, &err);
    if (rc != MP_OK)
        fail_msg("mp_gptq_quantize: %d %s", rc, err.msg);
}

/* Plain rounding of W with mp_w4_quantize_rows (importance NULL or per column). */
static void run_rtn(w4_out *o, const float *W, mp_w4_method method, const float *importance)
{
    mp_w4_options opt = {.method = method, .importance = importance};
    mp_w4_quantize_rows(&o->e, o->rows, o->cols, W, 0, o->rows, &opt, o->data, o->scales, o->zeros);
}

static void assert_same_bytes(const w4_out *a, const w4_out *b)
{
    assert_memory_equal(a->data, b->data, (size_t)(a->rows * a->cols / 2));
    assert_memory_equal(a->scales, b->scales, (size_t)(a->rows * a->G) * 2);
    if (!a->e.sym)
        assert_memory_equal(a->zeros, b->zeros, (size_t)(a->rows * a->G));
}


/* tr(dW H dW^T) by plain double loops. */
static double plain_loss(const float *decoded, const float *W, const double *H, int64_t rows, int64_t cols)
{
    double total = 0.0, *d = malloc((size_t)cols * sizeof *d);
    assert_non_null(d);
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t c = 0; c < cols; c++)
            d[c] = (double)decoded[r * cols + c] - (double)W[r * cols + c];
        for (int64_t i = 0; i < cols; i++) {
            double acc = 0.0;
            for (int64_t j = 0; j < cols; j++)
                acc += H[i * cols + j] * d[j];
            total += d[i] * acc;
        }
    }
    free(d);
    return total;
}

/* The loss of plain rounding (RTN grids) of W under H. */
static double rtn_loss(int group, bool sym, const float *W, const double *H, int64_t rows, int64_t cols)
{
    w4_out o = w4_alloc(group, sym, rows, cols);
    run_rtn(&o, W, MP_W4_RTN, NULL);
    float *dec = w4_decode(&o);
    double loss = plain_loss(dec, W, H, rows, cols);
    free(dec);
    w4_free(&o);
    return loss;
}

static double *diagonal_hessian(rng *r, int64_t cols)
{
    double *H = calloc((size_t)(cols * cols), sizeof *H);
    assert_non_null(H);
    for (int64_t c = 0; c < cols; c++)
        H[c * cols + c] = c % 37 == 5 ? 0.0 : exp(4.0 * (2.0 * uniform01(r) - 1.0)); /* a few dead ones */
    return H;
}

/* ---- 1. no correlation, no propagation: GPTQ = plain rounding ---- */

/* With H diagonal, H^-1 and its Cholesky factor are diagonal: every update w_j -= e U[i,j]
 * subtracts an exact 0, so the codes must be those of rounding W directly on the same
 * grids. Both grid methods; MSE with importance diag H, as gptq.h says. 40 rows: one
 * partial row block. */
static void test_diagonal_h_equals_plain_rounding(void **state)
{
    (void)state;
    const int64_t rows = 40, cols = 256;
    rng r = {11};
    float *W = random_weights(&r, rows, cols);
    double *H = diagonal_hessian(&r, cols);
    float *imp = malloc((size_t)cols * sizeof *imp);
    assert_non_null(imp);
    for (int64_t c = 0; c < cols; c++)
        imp[c] = (float)H[c * cols + c];
    const int groups[] = {32, 64, 128};
    for (int sym = 0; sym < 2; sym++)
        for (int gi = 0; gi < 3; gi++)
            for (int mse = 0; mse < 2; mse++) {
                w4_out g = w4_alloc(groups[gi], sym, rows, cols), p = w4_alloc(groups[gi], sym, rows, cols);
                run_gptq(&g, W, H, (mp_gptq_options){.mse_grid = mse});
                run_rtn(&p, W, mse ? MP_W4_MSE : MP_W4_RTN, mse ? imp : NULL);
                assert_false(g.fell_back);
                assert_same_bytes(&g, &p);
                w4_free(&g);
                w4_free(&p);
            }
    free(imp);
    free(W);
    free(H);
}

/* ---- 2. correlated H: GPTQ well below plain rounding ---- */

/* Measured (256 x 512, 2048 samples, 64 latent factors, spread 1), GPTQ / RTN loss:
 *   g32 asym 0.184, g128 asym 0.183, g32 sym 0.182, g128 sym 0.185.
 * The bound asked for is 0.8 (a 20 % cut). This H is strongly correlated (64 factors
 * behind 512 columns); with as many factors as columns (gptq_run --latent 512) the
 * ratio is ~0.5, so the margin here is not the gain to expect on every layer. */
static void test_correlated_h_beats_plain_rounding(void **state)
{
    (void)state;
    const int64_t rows = 256, cols = 512;
    rng r = {22};
    float *W = random_weights(&r, rows, cols);
    double *H = correlated_hessian(&r, cols, 2048, 64, 1.0, NULL, 0);
    const int groups[] = {32, 128};
    for (int sym = 0; sym < 2; sym++)
        for (int gi = 0; gi < 2; gi++) {
            w4_out g = w4_alloc(groups[gi], sym, rows, cols);
            run_gptq(&g, W, H, (mp_gptq_options){0});
            double rtn = rtn_loss(groups[gi], sym, W, H, rows, cols), ratio = g.loss / rtn;
            printf("# g%d %s: GPTQ / RTN loss = %.4f\n", groups[gi], sym ? "sym" : "asym", ratio);
            assert_false(g.fell_back);
            assert_true(ratio < 0.8);
            w4_free(&g);
        }
    free(W);
    free(H);
}

/* On a very uneven diagonal (spread 3: diag H over ~2.5 decades) act_order must not lose
 * to the natural order by more than 3 %; it wins by far here. Measured (128 x 512,
 * g128), act_order / natural loss: asym 0.412, sym 0.399, with MSE grids asym 0.411,
 * sym 0.411 (act_order / RTN 0.07-0.11). */
static void test_act_order_on_uneven_diagonal(void **state)
{
    (void)state;
    const int64_t rows = 128, cols = 512;
    rng r = {33};
    float *W = random_weights(&r, rows, cols);
    double *H = correlated_hessian(&r, cols, 2048, 64, 3.0, NULL, 0);
    for (int sym = 0; sym < 2; sym++)
        for (int mse = 0; mse < 2; mse++) {
            w4_out nat = w4_alloc(128, sym, rows, cols), act = w4_alloc(128, sym, rows, cols);
            run_gptq(&nat, W, H, (mp_gptq_options){.mse_grid = mse});
            run_gptq(&act, W, H, (mp_gptq_options){.act_order = true, .mse_grid = mse});
            double rtn = rtn_loss(128, sym, W, H, rows, cols);
            printf("# g128 %s%s: act_order / natural = %.4f (natural / RTN %.4f, act_order / RTN %.4f)\n",
                   sym ? "sym" : "asym", mse ? " mse" : "", act.loss / nat.loss, nat.loss / rtn, act.loss / rtn);
            assert_true(act.loss <= 1.03 * nat.loss);
            assert_true(act.loss < 0.8 * rtn);
            w4_free(&nat);
            w4_free(&act);
        }
    free(W);
    free(H);
}

/* ---- 3. the pack's decoder and the loss ---- */

static void test_decoder_reproduces_dequant_and_loss(void **state)
{
    (void)state;
    const int64_t rows = 100, cols = 256;
    rng r = {44};
    float *W = random_weights(&r, rows, cols);
    double *H = correlated_hessian(&r, cols, 1024, 32, 2.0, NULL, 0);
    const struct {
        int group;
        bool sym, act_order, mse;
    } cases[] = {{64, false, true, false}, {32, true, false, false}, {128, false, false, true}, {64, true, true, true}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        w4_out g = w4_alloc(cases[k].group, cases[k].sym, rows, cols);
        run_gptq(&g, W, H, (mp_gptq_options){.act_order = cases[k].act_order, .mse_grid = cases[k].mse});
        float *dec = w4_decode(&g);
        assert_memory_equal(dec, g.dequant, (size_t)(rows * cols) * sizeof *dec);
        double want = plain_loss(dec, W, H, rows, cols);
        assert_true(fabs(g.loss - want) <= 1e-9 * want);
        free(dec);
        w4_free(&g);
    }
    free(W);
    free(H);
}

/* dequant and loss are optional. */
static void test_optional_outputs(void **state)
{
    (void)state;
    const int64_t rows = 30, cols = 128;
    rng r = {45};
    float *W = random_weights(&r, rows, cols);
    double *H = correlated_hessian(&r, cols, 512, 16, 1.0, NULL, 0);
    w4_out a = w4_alloc(64, false, rows, cols), b = w4_alloc(64, false, rows, cols);
    run_gptq(&a, W, H, (mp_gptq_options){0});
    mp_error err = {0};
    assert_int_equal(mp_gptq_quantize(&b.e, rows, cols, W, H, NULL, b.data, b.scales, b.zeros, NULL, NULL, NULL, &err),
                     MP_OK);
    assert_same_bytes(&a, &b);
    w4_free(&a);
    w4_free(&b);
    free(W);
    free(H);
}

/* ---- lazy batching ---- */

/* The block size only regroups the same updates: block 32 (rounded up to the group),
 * 128 and one block over all columns must agree up to f32 summation order. */
static void test_block_size_only_regroups(void **state)
{
    (void)state;
    const int64_t rows = 128, cols = 512;
    rng r = {55};
    float *W = random_weights(&r, rows, cols);
    double *H = correlated_hessian(&r, cols, 2048, 64, 1.0, NULL, 0);
    for (int act = 0; act < 2; act++) {
        w4_out ref = w4_alloc(32, false, rows, cols);
        run_gptq(&ref, W, H, (mp_gptq_options){.block = (int)cols, .act_order = act});
        const int blocks[] = {32, 48, 128};
        for (int b = 0; b < 3; b++) {
            w4_out o = w4_alloc(32, false, rows, cols);
            run_gptq(&o, W, H, (mp_gptq_options){.block = blocks[b], .act_order = act});
            int64_t same = 0;
            for (int64_t i = 0; i < rows * cols; i++)
                same += w4_code(&o, i / cols, i % cols) == w4_code(&ref, i / cols, i % cols);
            assert_true((double)same >= 0.995 * (double)(rows * cols));
            assert_true(fabs(o.loss - ref.loss) <= 0.005 * ref.loss);
            w4_free(&o);
        }
        w4_free(&ref);
    }
    free(W);
    free(H);
}

/* ---- 4. threads ---- */

static void test_same_bytes_any_thread_count(void **state)
{
    (void)state;
    const int64_t rows = 200, cols = 384;
    rng r = {66};
    float *W = random_weights(&r, rows, cols);
    double *H = correlated_hessian(&r, cols, 1024, 48, 2.0, NULL, 0);
    for (int sym = 0; sym < 2; sym++)
        for (int act = 0; act < 2; act++) {
            w4_out one = w4_alloc(64, sym, rows, cols), two = w4_alloc(64, sym, rows, cols);
            mp_gptq_options opt = {.act_order = act, .mse_grid = sym};
            omp_set_num_threads(1);
            run_gptq(&one, W, H, opt);
            omp_set_num_threads(2);
            run_gptq(&two, W, H, opt);
            assert_same_bytes(&one, &two);
            assert_memory_equal(one.dequant, two.dequant, (size_t)(rows * cols) * sizeof(float));
            assert_memory_equal(&one.loss, &two.loss, sizeof one.loss);
            w4_free(&one);
            w4_free(&two);
        }
    omp_set_num_threads(omp_get_num_procs());
    free(W);
    free(H);
}

/* ---- dead columns, bad H, bad weights, bad arguments ---- */

/* Columns no calibration input touches are quantized, not zeroed (gptq.py zeroes them):
 * they receive no error, so each decodes within half a step of its original weight. */
static void test_dead_columns_keep_their_weights(void **state)
{
    (void)state;
    const int64_t rows = 64, cols = 256, dead[] = {0, 7, 100, 255};
    rng r = {77};
    float *W = random_weights(&r, rows, cols);
    double *H = correlated_hessian(&r, cols, 1024, 32, 1.0, dead, 4);
    for (int act = 0; act < 2; act++) {
        w4_out g = w4_alloc(64, false, rows, cols);
        run_gptq(&g, W, H, (mp_gptq_options){.act_order = act});
        for (int64_t row = 0; row < rows; row++)
            for (int d = 0; d < 4; d++) {
                int64_t c = dead[d];
                float s = mp_f16_to_f32(g.scales[row * g.G + c / 64]);
                assert_true(fabsf(g.dequant[row * cols + c] - W[row * cols + c]) <= 0.5001f * fabsf(s));
            }
        w4_free(&g);
    }
    free(W);
    free(H);
}

/* H indefinite beyond any damping tried (diag 1, off-diagonal -1: eigenvalue 2 - n), or
 * holding a NaN: plain rounding on the same grids (RTN, or MSE with importance diag H),
 * reported. Mildly indefinite (off-diagonal -0.05, eigenvalue -2.15): a retry with more
 * damping (x 256) succeeds. */
/* kind 0: diag 1, off-diagonal -1; 1: diag 1, off-diagonal -0.05; 2: diag 2,
 * off-diagonal 0.01 (positive definite) with one NaN pair. */
static void fill_test_hessian(double *H, int64_t cols, int kind)
{
    double diag = kind == 2 ? 2.0 : 1.0, off = kind == 0 ? -1.0 : kind == 1 ? -0.05 : 0.01;
    for (int64_t i = 0; i < cols * cols; i++)
        H[i] = i % (cols + 1) == 0 ? diag : off;
    if (kind == 2)
        H[3 * cols + 9] = H[9 * cols + 3] = NAN;
}

static void test_bad_h_falls_back_or_retries(void **state)
{
    (void)state;
    const int64_t rows = 20, cols = 64;
    rng r = {88};
    float *W = random_weights(&r, rows, cols);
    double *H = malloc((size_t)(cols * cols) * sizeof *H);
    float imp[64];
    assert_non_null(H);
    for (int kind = 0; kind < 3; kind++)
        for (int mse = 0; mse < 2; mse++) {
            fill_test_hessian(H, cols, kind);
            for (int64_t c = 0; c < cols; c++)
                imp[c] = (float)H[c * cols + c];
            w4_out g = w4_alloc(32, false, rows, cols), p = w4_alloc(32, false, rows, cols);
            run_gptq(&g, W, H, (mp_gptq_options){.mse_grid = mse});
            assert_int_equal(g.fell_back, kind != 1);
            assert_true(kind == 2 || isfinite(g.loss));
            if (kind != 1) {
                run_rtn(&p, W, mse ? MP_W4_MSE : MP_W4_RTN, mse ? imp : NULL);
                assert_same_bytes(&g, &p);
                float *dec = w4_decode(&g);
                assert_memory_equal(dec, g.dequant, (size_t)(rows * cols) * sizeof *dec);
                free(dec);
            }
            w4_free(&g);
            w4_free(&p);
        }
    free(W);
    free(H);
}

/* A NaN weight gets the code of 0 and its error is not spread: rows are independent, so
 * the other rows are unchanged, and its own row stays finite. */
static void test_nan_weight_stays_local(void **state)
{
    (void)state;
    const int64_t rows = 70, cols = 128;
    rng r = {99};
    float *W = random_weights(&r, rows, cols);
    double *H = correlated_hessian(&r, cols, 512, 16, 1.0, NULL, 0);
    w4_out clean = w4_alloc(32, false, rows, cols), dirty = w4_alloc(32, false, rows, cols);
    run_gptq(&clean, W, H, (mp_gptq_options){0});
    W[3 * cols + 40] = NAN;
    run_gptq(&dirty, W, H, (mp_gptq_options){0});
    for (int64_t row = 0; row < rows; row++)
        for (int64_t c = 0; c < cols; c++) {
            assert_true(isfinite(dirty.dequant[row * cols + c]));
            if (row != 3 || c < 32) /* row 3 before the NaN's group: as before */
                assert_int_equal(w4_code(&dirty, row, c), w4_code(&clean, row, c));
        }
    assert_true(dirty.dequant[3 * cols + 40] == 0.0f);
    w4_free(&clean);
    w4_free(&dirty);
    free(W);
    free(H);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    float W[64] = {0};
    double H[64 * 64] = {0};
    uint8_t data[32], zeros[2];
    uint16_t scales[2];
    mp_error err = {0};
    mp_encoding fp8 = {.kind = MP_ENC_FP8, .fp8_scale = MP_FP8_TENSOR};
    assert_int_equal(mp_gptq_quantize(&fp8, 1, 64, W, H, NULL, data, scales, zeros, NULL, NULL, NULL, &err),
                     MP_EXIT_INPUT);
    mp_error_clear(&err);
    mp_encoding w4 = {.kind = MP_ENC_W4, .group = 32};
    assert_int_equal(mp_gptq_quantize(&w4, 2, 48, W, H, NULL, data, scales, zeros, NULL, NULL, NULL, &err),
                     MP_EXIT_INPUT);
    assert_non_null(strstr(err.msg, "48"));
}

int main(void)
{
    openblas_set_num_threads(1); /* as mp_linalg_init: OpenBLAS inside OpenMP tasks */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_diagonal_h_equals_plain_rounding),
        cmocka_unit_test(test_correlated_h_beats_plain_rounding),
        cmocka_unit_test(test_act_order_on_uneven_diagonal),
        cmocka_unit_test(test_decoder_reproduces_dequant_and_loss),
        cmocka_unit_test(test_optional_outputs),
        cmocka_unit_test(test_block_size_only_regroups),
        cmocka_unit_test(test_same_bytes_any_thread_count),
        cmocka_unit_test(test_dead_columns_keep_their_weights),
        cmocka_unit_test(test_bad_h_falls_back_or_retries),
        cmocka_unit_test(test_nan_weight_stays_local),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
