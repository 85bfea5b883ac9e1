/* Tests for quant/awq. Expected values come from direct recomputation here: RTN codes
 * from mp_w4_quantize_rows, decoding by formats/encoding.c (the pack's decoder), the
 * loss as a plain triple sum and as the output error on the calibration rows X. */
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

#include "../../formats/encoding.h"
#include "../../quant/awq.h"
#include "../../quant/w4.h"
#include "random.h"
#include "w4_buffers.h"

/* ---- random data (xorshift64, fixed seeds) ---- */

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    assert_non_null(p);
    return p;
}

/* ---- calibration activations: X [tokens, cols], then H = X^T X and mean |x_c| ---- */

typedef struct {
    int64_t tokens, cols;
    float *X;
    double *H;
    float *mean_abs;
} calib;

/* Unit Gaussian activations; the channels listed in salient get their factor (10-50x,
 * the "massive activation" channels AWQ protects). correlated mixes each channel with
 * its neighbour (x_c += 0.5 x_{c+1}) so that H has off-diagonal mass across groups. */
static calib calib_make(rng *r, int64_t tokens, int64_t cols, const int *salient, const double *factor, int n_salient,
                        bool correlated)
{
    calib c = {.tokens = tokens, .cols = cols};
    c.X = xcalloc((size_t)(tokens * cols), sizeof *c.X);
    c.H = xcalloc((size_t)(cols * cols), sizeof *c.H);
    c.mean_abs = xcalloc((size_t)cols, sizeof *c.mean_abs);
    for (int64_t t = 0; t < tokens; t++) {
        float *x = c.X + t * cols;
        fill_gaussian(r, x, cols, 1.0);
        for (int k = 0; k < n_salient; k++)
            x[salient[k]] *= (float)factor[k];
        for (int64_t j = 0; correlated && j + 1 < cols; j++)
            x[j] += 0.5f * x[j + 1];
    }
    for (int64_t a = 0; a < cols; a++) {
        double m = 0.0;
        for (int64_t t = 0; t < tokens; t++)
            m += fabs((double)c.X[t * cols + a]);
        c.mean_abs[a] = (float)(m / (double)tokens);
        for (int64_t b = 0; b < cols; b++) {
            double h = 0.0;
            for (int64_t t = 0; t < tokens; t++)
                h += (double)c.X[t * cols + a] * (double)c.X[t * cols + b];
            c.H[a * cols + b] = h;
        }
    }
    return c;
}

static void calib_free(calib *c)
{
    free(c->X);
    free(c->H);
    free(c->mean_abs);
}

static const int salient_channels[] = {3, 70, 130, 201};
static const double salient_factors[] = {10.0, 20.0, 35.0, 50.0};

/* ---- w4 outputs, assembled and decoded by the pack decoder ---- */

static double run_awq(w4_out *o, const float *W, const double *H, bool clip)
{
    return mp_awq_quantize(&o->e, o->rows, o->cols, W, H, clip, o->data, o->scales, o->e.sym ? NULL : o->zeros,
                           o->dequant);
}

static void run_rtn(w4_out *o, const float *W)
{
    mp_w4_quantize_rows(&o->e, o->rows, o->cols, W, 0, o->rows, NULL, o->data, o->scales, o->zeros);
}


/* ---- direct loss computations ---- */

/* sum_r sum_a sum_b d_ra Hs_ab d_rb, d = dec - Ws, Hs_ab = H_ab / (s_a s_b) (s NULL: 1). */
static double direct_loss(int64_t rows, int64_t cols, const float *dec, const float *Ws, const double *H,
                          const float *s)
{
    double *d = xcalloc((size_t)cols, sizeof *d);
    double total = 0.0;
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t c = 0; c < cols; c++)
            d[c] = (double)dec[r * cols + c] - (double)Ws[r * cols + c];
        for (int64_t a = 0; a < cols; a++)
            for (int64_t b = 0; b < cols; b++) {
                double h = H[a * cols + b];
                if (s)
                    h /= (double)s[a] * (double)s[b];
                total += d[a] * h * d[b];
            }
    }
    free(d);
    return total;
}

/* The output error itself: sum over tokens t and rows r of ((dec - Ws)_r . x_t / s)^2,
 * the model-level meaning of the loss when 1 / s is folded into x. */
static double output_error(int64_t rows, int64_t cols, const float *dec, const float *Ws, const calib *c,
                           const float *s)
{
    double total = 0.0;
    for (int64_t t = 0; t < c->tokens; t++)
        for (int64_t r = 0; r < rows; r++) {
            double y = 0.0;
            for (int64_t k = 0; k < cols; k++)
                y += ((double)dec[r * cols + k] - (double)Ws[r * cols + k]) * (double)c->X[t * cols + k] /
                     (s ? (double)s[k] : 1.0);
            total += y * y;
        }
    return total;
}

static float *scaled(const float *W, const float *s, int64_t rows, int64_t cols)
{
    float *Ws = xcalloc((size_t)(rows * cols), sizeof *Ws);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            Ws[r * cols + c] = W[r * cols + c] * s[c];
    return Ws;
}

/* H' = diag(1/s) H diag(1/s). */
static double *scaled_h(const double *H, const float *s, int64_t cols)
{
    double *Hs = xcalloc((size_t)(cols * cols), sizeof *Hs);
    for (int64_t a = 0; a < cols; a++)
        for (int64_t b = 0; b < cols; b++)
            Hs[a * cols + b] = H[a * cols + b] / ((double)s[a] * (double)s[b]);
    return Hs;
}

static void assert_close(double got, double want, double rel)
{
    if (!(fabs(got - want) <= rel * fabs(want)))
        fail_msg("%.17g vs %.17g (relative %.3g, allowed %.3g)", got, want, fabs(got - want) / fabs(want), rel);
}

/* ---- candidates ---- */

static void test_awq_candidate_zero_is_ones(void **state)
{
    (void)state;
    float m[6] = {0.5f, 0.0f, NAN, INFINITY, 1e-30f, 7.0f}, s[6];
    for (int n = 1; n <= 20; n += 19) {
        memset(s, 0, sizeof s);
        mp_awq_candidate(m, 6, 0, n, s);
        for (int c = 0; c < 6; c++)
            assert_true(s[c] == 1.0f);
    }
}

/* s_c = max(m_c^r, 1e-4) / sqrt(max * min), with raw 1 for 0 / NaN / inf, by an
 * independent formula; and the ratios s_a / s_b follow (m_a / m_b)^r. */
static void test_awq_candidate_formula(void **state)
{
    (void)state;
    const float m[7] = {0.5f, 0.0f, 3.0f, NAN, 40.0f, 1e-12f, INFINITY};
    for (int k = 1; k < 20; k += 3) {
        double r = k / 20.0, raw[7], mx = 0.0, mn = INFINITY;
        for (int c = 0; c < 7; c++) {
            raw[c] = (m[c] > 0.0f && isfinite(m[c])) ? fmax(pow(m[c], r), 1e-4) : 1.0;
            mx = fmax(mx, raw[c]);
            mn = fmin(mn, raw[c]);
        }
        float s[7];
        mp_awq_candidate(m, 7, k, 20, s);
        for (int c = 0; c < 7; c++)
            assert_close(s[c], raw[c] / sqrt(mx * mn), 1e-6);
        assert_close((double)s[4] / s[2], pow(40.0 / 3.0, r), 1e-6);
    }
}

/* ---- the loss ---- */

/* With s = 1 the loss is tr(dW H dW^T) of the RTN codes mp_w4_quantize_rows writes,
 * decoded by the pack decoder; and it is the output error on the calibration rows. */
static void test_awq_loss_matches_direct_rtn(void **state)
{
    (void)state;
    static const struct {
        int g;
        bool sym;
        int64_t cols; /* 288: a partial column tile in the loss kernel */
    } cases[] = {{32, false, 288}, {64, true, 256}, {128, false, 256}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const int64_t rows = 21, cols = cases[i].cols; /* rows: a partial row block */
        rng r = {11 + i};
        calib c = calib_make(&r, 96, cols, salient_channels, salient_factors, 4, true);
        float *W = xcalloc((size_t)(rows * cols), sizeof *W);
        fill_gaussian(&r, W, rows * cols, 0.02);
        w4_out o = w4_alloc(cases[i].g, cases[i].sym, rows, cols);
        run_rtn(&o, W);
        float *dec = w4_decode(&o);
        double loss = mp_awq_loss(&o.e, rows, cols, W, NULL, c.H);
        assert_close(loss, direct_loss(rows, cols, dec, W, c.H, NULL), 1e-12);
        assert_close(loss, output_error(rows, cols, dec, W, &c, NULL), 1e-9);
        float ones[288];
        for (int64_t k = 0; k < cols; k++)
            ones[k] = 1.0f;
        assert_true(mp_awq_loss(&o.e, rows, cols, W, ones, c.H) == loss);
        assert_true(run_awq(&o, W, c.H, false) == loss); /* the same grids, the same sums */
        free(dec);
        free(W);
        w4_free(&o);
        calib_free(&c);
    }
}

/* With a scale, the loss is that of the RTN codes of W diag(s) against H', and again the
 * output error with x / s folded in. */
static void test_awq_loss_matches_direct_scaled(void **state)
{
    (void)state;
    const int64_t rows = 16, cols = 256;
    rng r = {23};
    calib c = calib_make(&r, 128, cols, salient_channels, salient_factors, 4, false);
    float *W = xcalloc((size_t)(rows * cols), sizeof *W), s[256];
    fill_gaussian(&r, W, rows * cols, 0.02);
    mp_awq_candidate(c.mean_abs, cols, 10, 20, s);
    float *Ws = scaled(W, s, rows, cols);
    double *Hs = scaled_h(c.H, s, cols);
    w4_out o = w4_alloc(64, false, rows, cols);
    run_rtn(&o, Ws);
    float *dec = w4_decode(&o);
    double loss = mp_awq_loss(&o.e, rows, cols, W, s, c.H);
    assert_close(loss, direct_loss(rows, cols, dec, Ws, Hs, NULL), 1e-10);
    assert_close(loss, output_error(rows, cols, dec, Ws, &c, s), 1e-9);
    /* quantizing the scaled pair measures the same thing */
    assert_close(run_awq(&o, Ws, Hs, false), loss, 1e-10);
    free(dec);
    free(Ws);
    free(Hs);
    free(W);
    w4_free(&o);
    calib_free(&c);
}

/* ---- the scale search ---- */

/* Measured (printed): with four channels 10-50x larger than the rest, the best candidate
 * (k = 6..10) brings the output error down to 0.17-0.23 x RTN's; with no salient channel
 * the search gains under 1 % (0.992-0.998 x). */
static void test_awq_scale_search_protects_salient_channels(void **state)
{
    (void)state;
    const int64_t rows = 96, cols = 256;
    static const struct {
        int g;
        bool sym;
    } cases[] = {{32, false}, {64, true}, {128, false}, {128, true}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rng r = {300 + i};
        calib c = calib_make(&r, 256, cols, salient_channels, salient_factors, 4, false);
        calib flat = calib_make(&r, 256, cols, NULL, NULL, 0, false);
        float *W = xcalloc((size_t)(rows * cols), sizeof *W), s[256], s_flat[256];
        fill_gaussian(&r, W, rows * cols, 0.02);
        mp_encoding e = {.kind = MP_ENC_W4, .group = cases[i].g, .sym = cases[i].sym};
        double base = mp_awq_loss(&e, rows, cols, W, NULL, c.H), best, best_flat;
        int k = mp_awq_best_scale(&e, rows, cols, W, c.mean_abs, c.H, 0, s, &best);
        int k_flat = mp_awq_best_scale(&e, rows, cols, W, flat.mean_abs, flat.H, 0, s_flat, &best_flat);
        double base_flat = mp_awq_loss(&e, rows, cols, W, NULL, flat.H);
        printf("awq g%-3d %-4s salient: best k %2d, loss %.3f x RTN; no salient channel: best k %2d, %.3f x RTN\n",
               cases[i].g, cases[i].sym ? "sym" : "asym", k, best / base, k_flat, best_flat / base_flat);
        assert_true(k > 0);
        assert_true(best < 0.6 * base);
        assert_true(best_flat > 0.85 * base_flat);
        /* the reported winner is the minimum of the candidates' losses, with its s */
        for (int j = 0; j < MP_AWQ_CANDIDATES; j++) {
            float sj[256];
            mp_awq_candidate(c.mean_abs, cols, j, MP_AWQ_CANDIDATES, sj);
            assert_true(mp_awq_loss(&e, rows, cols, W, sj, c.H) >= best);
        }
        assert_true(mp_awq_loss(&e, rows, cols, W, s, c.H) == best);
        free(W);
        calib_free(&c);
        calib_free(&flat);
    }
}

/* ---- clip search ---- */

/* Per-row losses from decoded values (the rows' share of tr(dW H dW^T)). */
static double row_loss(int64_t cols, const float *dec, const float *W, const double *H, int64_t r)
{
    return direct_loss(1, cols, dec + r * cols, W + r * cols, H, NULL);
}

/* Clipping never raises any row's loss (nor the total) and lowers the total clearly,
 * on Gaussian weights and on weights with outliers, with plain correlated activations and
 * with salient channels left unscaled. Measured (printed): 0.78-0.90 x the unclipped
 * loss with plain activations (outlier weights gain a little less than Gaussian ones),
 * 0.12-0.25 x with salient channels, whose few heavy weights the 21 grids fit far better.
 * The row check fails without awq.c's full-loss guard: on these correlated activations
 * about 2 % of the rows come out worse under the block-diagonal criterion alone. */
static void clip_case(int g, bool sym, bool heavy, bool salient, uint64_t seed)
{
    const int64_t rows = 64, cols = 256;
    rng r = {seed};
    calib c = salient ? calib_make(&r, 192, cols, salient_channels, salient_factors, 4, true)
                      : calib_make(&r, 192, cols, NULL, NULL, 0, true);
    float *W = xcalloc((size_t)(rows * cols), sizeof *W);
    if (heavy)
        fill_heavy_tailed(&r, W, rows * cols, g, 0.02);
    else
        fill_gaussian(&r, W, rows * cols, 0.02);
    w4_out plain = w4_alloc(g, sym, rows, cols), clipped = w4_alloc(g, sym, rows, cols);
    double l0 = run_awq(&plain, W, c.H, false), l1 = run_awq(&clipped, W, c.H, true);
    int rows_changed = 0;
    for (int64_t k = 0; k < rows; k++) {
        double a = row_loss(cols, plain.dequant, W, c.H, k), b = row_loss(cols, clipped.dequant, W, c.H, k);
        assert_true(b <= a * (1.0 + 1e-12));
        rows_changed += memcmp(plain.scales + k * plain.G, clipped.scales + k * plain.G, (size_t)plain.G * 2) != 0;
    }
    printf("awq clip g%-3d %-4s %-8s %-7s loss %.3f x no clip, %2d of %lld rows clipped\n", g, sym ? "sym" : "asym",
           heavy ? "outliers" : "gaussian", salient ? "salient" : "plain", l1 / l0, rows_changed, (long long)rows);
    assert_true(l1 <= l0);
    assert_true(l1 < 0.95 * l0);
    w4_free(&plain);
    w4_free(&clipped);
    free(W);
    calib_free(&c);
}

static void test_awq_clip_never_worse_and_helps(void **state)
{
    (void)state;
    static const int groups[] = {32, 64, 128};
    uint64_t seed = 500;
    for (int salient = 0; salient < 2; salient++)
        for (int sym = 0; sym < 2; sym++)
            for (int gi = 0; gi < 3; gi++)
                for (int heavy = 0; heavy < 2; heavy++)
                    clip_case(groups[gi], sym, heavy, salient, seed++);
}

/* ---- outputs ---- */

/* dequant is what the pack decoder makes of data / scales / zeros, bit for bit; zero
 * points are 0..15; sym leaves zeros alone; without clip the bytes are RTN's. */
static void test_awq_outputs_decode_and_match_rtn(void **state)
{
    (void)state;
    const int64_t rows = 13, cols = 256;
    rng r = {61};
    calib c = calib_make(&r, 64, cols, salient_channels, salient_factors, 4, true);
    float *W = xcalloc((size_t)(rows * cols), sizeof *W);
    fill_heavy_tailed(&r, W, rows * cols, 32, 0.02);
    static const int groups[] = {32, 64, 128};
    for (int sym = 0; sym < 2; sym++)
        for (int gi = 0; gi < 3; gi++)
            for (int clip = 0; clip < 2; clip++) {
                w4_out o = w4_alloc(groups[gi], sym, rows, cols), t = w4_alloc(groups[gi], sym, rows, cols);
                memset(o.zeros, 0xee, (size_t)(rows * o.G));
                run_awq(&o, W, c.H, clip);
                float *dec = w4_decode(&o);
                assert_memory_equal(dec, o.dequant, (size_t)(rows * cols) * sizeof(float));
                for (int64_t k = 0; k < rows * o.G; k++)
                    assert_true(sym ? o.zeros[k] == 0xee : o.zeros[k] <= 15);
                if (!clip) {
                    run_rtn(&t, W);
                    assert_memory_equal(o.data, t.data, (size_t)(rows * cols / 2));
                    assert_memory_equal(o.scales, t.scales, (size_t)(rows * o.G) * 2);
                    if (!sym)
                        assert_memory_equal(o.zeros, t.zeros, (size_t)(rows * o.G));
                }
                free(dec);
                w4_free(&o);
                w4_free(&t);
            }
    free(W);
    calib_free(&c);
}

/* dequant NULL is allowed and changes nothing else. */
static void test_awq_dequant_optional(void **state)
{
    (void)state;
    const int64_t rows = 9, cols = 128;
    rng r = {71};
    calib c = calib_make(&r, 48, cols, NULL, NULL, 0, false);
    float *W = xcalloc((size_t)(rows * cols), sizeof *W);
    fill_heavy_tailed(&r, W, rows * cols, 64, 0.02);
    w4_out a = w4_alloc(64, false, rows, cols), b = w4_alloc(64, false, rows, cols);
    double la = run_awq(&a, W, c.H, true);
    double lb = mp_awq_quantize(&b.e, rows, cols, W, c.H, true, b.data, b.scales, b.zeros, NULL);
    assert_true(la == lb);
    assert_memory_equal(a.data, b.data, (size_t)(rows * cols / 2));
    assert_memory_equal(a.scales, b.scales, (size_t)(rows * a.G) * 2);
    assert_memory_equal(a.zeros, b.zeros, (size_t)(rows * a.G));
    w4_free(&a);
    w4_free(&b);
    free(W);
    calib_free(&c);
}

/* ---- threads ---- */

static void test_awq_same_bytes_any_thread_count(void **state)
{
    (void)state;
    const int64_t rows = 37, cols = 256;
    rng r = {81};
    calib c = calib_make(&r, 64, cols, salient_channels, salient_factors, 4, true);
    float *W = xcalloc((size_t)(rows * cols), sizeof *W);
    fill_heavy_tailed(&r, W, rows * cols, 32, 0.02);
    for (int sym = 0; sym < 2; sym++) {
        w4_out out[3];
        double loss[3], scan[3];
        float s[3][256];
        int k[3];
        for (int t = 0; t < 3; t++) {
            omp_set_num_threads(t + 1);
            out[t] = w4_alloc(32, sym, rows, cols);
            loss[t] = run_awq(&out[t], W, c.H, true);
            k[t] = mp_awq_best_scale(&out[t].e, rows, cols, W, c.mean_abs, c.H, 0, s[t], &scan[t]);
        }
        for (int t = 1; t < 3; t++) {
            assert_memory_equal(out[0].data, out[t].data, (size_t)(rows * cols / 2));
            assert_memory_equal(out[0].scales, out[t].scales, (size_t)(rows * out[0].G) * 2);
            assert_memory_equal(out[0].zeros, out[t].zeros, (size_t)(rows * out[0].G));
            assert_memory_equal(out[0].dequant, out[t].dequant, (size_t)(rows * cols) * sizeof(float));
            assert_memory_equal(&loss[0], &loss[t], sizeof(double));
            assert_memory_equal(&scan[0], &scan[t], sizeof(double));
            assert_memory_equal(s[0], s[t], sizeof s[0]);
            assert_int_equal(k[0], k[t]);
        }
        for (int t = 0; t < 3; t++)
            w4_free(&out[t]);
    }
    omp_set_num_threads(omp_get_num_procs());
    free(W);
    calib_free(&c);
}

int main(void)
{
    openblas_set_num_threads(1); /* as mp_linalg_init: OpenBLAS inside our OpenMP tasks */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_awq_candidate_zero_is_ones),
        cmocka_unit_test(test_awq_candidate_formula),
        cmocka_unit_test(test_awq_loss_matches_direct_rtn),
        cmocka_unit_test(test_awq_loss_matches_direct_scaled),
        cmocka_unit_test(test_awq_scale_search_protects_salient_channels),
        cmocka_unit_test(test_awq_clip_never_worse_and_helps),
        cmocka_unit_test(test_awq_outputs_decode_and_match_rtn),
        cmocka_unit_test(test_awq_dequant_optional),
        cmocka_unit_test(test_awq_same_bytes_any_thread_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
