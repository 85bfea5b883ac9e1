/* Tests for quant/hqq: the lp error (p = 0.7) of every group against RTN's, measured
 * here from the pack decoder's output (formats/encoding.c), the consistency of codes,
 * scales and zero points with the stored grid, and thread-count independence. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <omp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/dtype.h"
#include "../../formats/encoding.h"
#include "../../quant/hqq.h"
#include "../../quant/w4.h"
#include "random.h"
#include "w4_buffers.h"

/* ---- random data (xorshift64, fixed seeds) ---- */

typedef enum { DATA_GAUSSIAN, DATA_OUTLIERS, DATA_STUDENT3, DATA_OFFSET, DATA_KINDS } data_kind;

static const char *const data_names[DATA_KINDS] = {"gaussian", "outliers", "student-t3", "offset"};

/* n values of sigma 0.02: Gaussian; Gaussian with two 6-10 sigma outliers per group of
 * g; Student-t with 3 degrees of freedom (heavy tails everywhere); Gaussian shifted by
 * 1.5 sigma (groups mostly of one sign, where the zero point matters). */
static void fill(rng *r, data_kind kind, float *x, int64_t n, int g)
{
    const double sigma = 0.02;
    for (int64_t i = 0; i < n; i++) {
        double v = gaussian(r);
        if (kind == DATA_STUDENT3) {
            double chi2 = 0.0;
            for (int k = 0; k < 3; k++) {
                double z = gaussian(r);
                chi2 += z * z;
            }
            v /= sqrt(chi2 / 3.0);
        } else if (kind == DATA_OFFSET) {
            v += 1.5;
        }
        x[i] = (float)(sigma * v);
    }
    if (kind != DATA_OUTLIERS)
        return;
    for (int64_t i = 0; i < n; i += g)
        for (int k = 0; k < 2; k++) {
            int64_t j = i + (int64_t)(uniform01(r) * g);
            x[j] = (float)(sigma * (6.0 + 4.0 * uniform01(r)) * (uniform01(r) < 0.5 ? -1.0 : 1.0));
        }
}

static float *alloc_floats(int64_t n)
{
    float *p = calloc((size_t)n, sizeof *p);
    assert_non_null(p);
    return p;
}

/* ---- w4 outputs, assembled and decoded by the pack decoder ---- */

static void run_hqq(w4_out *o, const float *x, const mp_hqq_options *opt)
{
    mp_hqq_quantize_rows(&o->e, o->rows, o->cols, x, opt, o->data, o->scales, o->e.sym ? NULL : o->zeros);
}

static void run_rtn(w4_out *o, const float *x)
{
    mp_w4_quantize_rows(&o->e, o->rows, o->cols, x, 0, o->rows, NULL, o->data, o->scales, o->zeros);
}

/* sum |dec - x|^p over one group, and the squared error, in double. */
static double group_lp(const float *dec, const float *x, int g, double p)
{
    double e = 0.0;
    for (int i = 0; i < g; i++)
        e += pow(fabs((double)dec[i] - (double)x[i]), p);
    return e;
}

static double group_l2(const float *dec, const float *x, int g)
{
    double e = 0.0;
    for (int i = 0; i < g; i++)
        e += ((double)dec[i] - (double)x[i]) * ((double)dec[i] - (double)x[i]);
    return e;
}

/* ---- lp error against RTN, group by group ---- */

typedef struct {
    int64_t groups, improved;
    double lp_rtn, lp_hqq, l2_rtn, l2_hqq;
} lp_tally;

/* HQQ and RTN on the same x; asserts lp(HQQ) <= lp(RTN) for every group. */
static void compare_with_rtn(int g, bool sym, data_kind kind, uint64_t seed, lp_tally *t)
{
    const int64_t rows = 128, cols = 512;
    rng r = {seed};
    float *x = alloc_floats(rows * cols);
    fill(&r, kind, x, rows * cols, g);
    w4_out hqq = w4_alloc(g, sym, rows, cols), rtn = w4_alloc(g, sym, rows, cols);
    run_hqq(&hqq, x, NULL);
    run_rtn(&rtn, x);
    float *dh = w4_decode(&hqq), *dr = w4_decode(&rtn);
    for (int64_t k = 0; k < rows * cols; k += g) {
        double lh = group_lp(dh + k, x + k, g, 0.7), lr = group_lp(dr + k, x + k, g, 0.7);
        if (!(lh <= lr))
            fail_msg("g%d %s %s group %lld: lp %.9g (HQQ) > %.9g (RTN)", g, sym ? "sym" : "asym", data_names[kind],
                     (long long)(k / g), lh, lr);
        t->groups++;
        t->improved += lh < lr;
        t->lp_hqq += lh;
        t->lp_rtn += lr;
        t->l2_hqq += group_l2(dh + k, x + k, g);
        t->l2_rtn += group_l2(dr + k, x + k, g);
    }
    free(dh);
    free(dr);
    w4_free(&hqq);
    w4_free(&rtn);
    free(x);
}

/* Measured (this test's output): over 2 x 3 x 4 configurations of 128 x 512 values
 * (28672 groups), no group is worse than RTN in lp; lp drops by 0.9-9.7 % per
 * configuration (4.1 % overall), and the L2 error by 1.2 % overall (-7.5 % to +2.6 % per
 * configuration: lp and L2 disagree on outliers). The 0.5 % bound is what every
 * configuration clears: a quantizer that returned RTN would fail it. */
static void test_hqq_lp_never_worse_than_rtn(void **state)
{
    (void)state;
    static const int groups[] = {32, 64, 128};
    lp_tally all = {0};
    uint64_t seed = 1000;
    for (int sym = 0; sym < 2; sym++)
        for (int gi = 0; gi < 3; gi++)
            for (int kind = 0; kind < DATA_KINDS; kind++) {
                lp_tally t = {0};
                compare_with_rtn(groups[gi], sym, (data_kind)kind, seed++, &t);
                printf("hqq g%-3d %-4s %-10s groups %5lld improved %5.1f %%  lp %6.2f %%  L2 %+6.2f %% vs RTN\n",
                       groups[gi], sym ? "sym" : "asym", data_names[kind], (long long)t.groups,
                       100.0 * (double)t.improved / (double)t.groups, 100.0 * (t.lp_hqq / t.lp_rtn - 1.0),
                       100.0 * (t.l2_hqq / t.l2_rtn - 1.0));
                assert_true(t.lp_hqq < 0.995 * t.lp_rtn);
                all.groups += t.groups;
                all.improved += t.improved;
                all.lp_hqq += t.lp_hqq;
                all.lp_rtn += t.lp_rtn;
                all.l2_hqq += t.l2_hqq;
                all.l2_rtn += t.l2_rtn;
            }
    printf("hqq all: %lld groups, %.1f %% improved, lp %.2f %%, L2 %+.2f %% vs RTN\n", (long long)all.groups,
           100.0 * (double)all.improved / (double)all.groups, 100.0 * (all.lp_hqq / all.lp_rtn - 1.0),
           100.0 * (all.l2_hqq / all.l2_rtn - 1.0));
}

/* ---- the outputs agree with the stored grid ---- */

/* Every zero point is 0..15 (asym), every code is mp_w4_code of its value on the stored
 * grid (what the quantizer chose is what it wrote), and the pack decoder gives
 * mp_w4_decode of those codes bit for bit. */
static void test_hqq_outputs_match_stored_grid(void **state)
{
    (void)state;
    const int64_t rows = 32, cols = 256;
    static const int groups[] = {32, 64, 128};
    rng r = {77};
    float *x = alloc_floats(rows * cols);
    for (int sym = 0; sym < 2; sym++)
        for (int gi = 0; gi < 3; gi++) {
            int g = groups[gi];
            fill(&r, DATA_OUTLIERS, x, rows * cols, g);
            w4_out o = w4_alloc(g, sym, rows, cols);
            memset(o.zeros, 0xee, (size_t)(rows * o.G)); /* sym must not write them */
            run_hqq(&o, x, NULL);
            float *dec = w4_decode(&o);
            for (int64_t r0 = 0; r0 < rows; r0++)
                for (int64_t c = 0; c < cols; c++) {
                    int64_t k = r0 * o.G + c / g;
                    int z = sym ? 8 : o.zeros[k];
                    assert_true(z >= 0 && z <= 15);
                    assert_true(mp_f16_to_f32(o.scales[k]) != 0.0f);
                    int q = w4_code(&o, r0, c);
                    assert_int_equal(q, mp_w4_code(x[r0 * cols + c], o.scales[k], z));
                    float want = mp_w4_decode((uint8_t)q, o.scales[k], z);
                    assert_memory_equal(&dec[r0 * cols + c], &want, sizeof want);
                }
            if (sym)
                for (int64_t k = 0; k < rows * o.G; k++)
                    assert_int_equal(o.zeros[k], 0xee);
            free(dec);
            w4_free(&o);
        }
    free(x);
}

/* All-zero and constant groups have an exact RTN grid: HQQ keeps it byte for byte. */
static void test_hqq_exact_groups_keep_rtn(void **state)
{
    (void)state;
    const int64_t rows = 2, cols = 64;
    float x[2 * 64];
    for (int i = 0; i < 64; i++) {
        x[i] = i < 32 ? 0.0f : 0.015625f;
        x[64 + i] = i < 32 ? -0.5f : (float)(i - 48) / 64.0f; /* constant, then a ramp */
    }
    for (int sym = 0; sym < 2; sym++) {
        w4_out h = w4_alloc(32, sym, rows, cols), t = w4_alloc(32, sym, rows, cols);
        run_hqq(&h, x, NULL);
        run_rtn(&t, x);
        for (int64_t k = 0; k < 3; k++) { /* the fourth group (the ramp) may change */
            assert_int_equal(h.scales[k], t.scales[k]);
            assert_int_equal(h.zeros[k], t.zeros[k]);
        }
        assert_memory_equal(h.data, t.data, 48); /* rows 0 and the first group of row 1 */
        w4_free(&h);
        w4_free(&t);
    }
}

/* ---- options and threads ---- */

static void test_hqq_options_defaults(void **state)
{
    (void)state;
    const int64_t rows = 16, cols = 256;
    rng r = {5};
    float *x = alloc_floats(rows * cols);
    fill(&r, DATA_STUDENT3, x, rows * cols, 64);
    w4_out a = w4_alloc(64, false, rows, cols), b = w4_alloc(64, false, rows, cols),
           c = w4_alloc(64, false, rows, cols), d = w4_alloc(64, false, rows, cols);
    mp_hqq_options zero = {0}, explicit = {.p = 0.7f, .beta = 10.0f, .kappa = 1.01f, .iters = 20},
                   one_step = {.iters = 1};
    run_hqq(&a, x, NULL);
    run_hqq(&b, x, &zero);
    run_hqq(&c, x, &explicit);
    run_hqq(&d, x, &one_step);
    assert_memory_equal(a.data, b.data, (size_t)(rows * cols / 2));
    assert_memory_equal(a.data, c.data, (size_t)(rows * cols / 2));
    assert_memory_equal(a.scales, b.scales, (size_t)(rows * a.G) * 2);
    assert_memory_equal(a.scales, c.scales, (size_t)(rows * a.G) * 2);
    assert_memory_equal(a.zeros, c.zeros, (size_t)(rows * a.G));
    /* one step is a different (and not better) optimisation: the options are read */
    assert_true(memcmp(a.scales, d.scales, (size_t)(rows * a.G) * 2) != 0);
    w4_free(&a);
    w4_free(&b);
    w4_free(&c);
    w4_free(&d);
    free(x);
}

static void test_hqq_same_bytes_any_thread_count(void **state)
{
    (void)state;
    const int64_t rows = 64, cols = 512;
    rng r = {99};
    float *x = alloc_floats(rows * cols);
    fill(&r, DATA_OUTLIERS, x, rows * cols, 32);
    for (int sym = 0; sym < 2; sym++) {
        w4_out one = w4_alloc(32, sym, rows, cols), two = w4_alloc(32, sym, rows, cols);
        omp_set_num_threads(1);
        run_hqq(&one, x, NULL);
        omp_set_num_threads(2);
        run_hqq(&two, x, NULL);
        assert_memory_equal(one.data, two.data, (size_t)(rows * cols / 2));
        assert_memory_equal(one.scales, two.scales, (size_t)(rows * one.G) * 2);
        assert_memory_equal(one.zeros, two.zeros, (size_t)(rows * one.G));
        w4_free(&one);
        w4_free(&two);
    }
    omp_set_num_threads(omp_get_num_procs());
    free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hqq_lp_never_worse_than_rtn),
        cmocka_unit_test(test_hqq_outputs_match_stored_grid),
        cmocka_unit_test(test_hqq_exact_groups_keep_rtn),
        cmocka_unit_test(test_hqq_options_defaults),
        cmocka_unit_test(test_hqq_same_bytes_any_thread_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
