/* Tests for quant/w4 and quant/fp8. Expected codes come from hand-worked groups, from a
 * plain scalar reference quantizer written here from the rules in quant/w4.h, and from
 * decoding with formats/encoding.c (the pack's decoder) and measuring the error. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/dtype.h"
#include "../../formats/encoding.h"
#include "../../quant/fp8.h"
#include "../../quant/w4.h"
#include "random.h"
#include "w4_buffers.h"

/* ---- random data (xorshift64, fixed seeds: every run sees the same values) ---- */

static float *alloc_floats(int64_t n)
{
    float *p = calloc((size_t)n, sizeof *p);
    assert_non_null(p);
    return p;
}

/* ---- w4 buffers: the quantizer's outputs and the assembled encoded tensor ---- */

static void w4_run(w4_out *o, const float *x, mp_w4_method method, const float *importance)
{
    mp_w4_options opt = {.method = method, .importance = importance};
    mp_w4_quantize_rows(&o->e, o->rows, o->cols, x, 0, o->rows, &opt, o->data, o->scales, o->zeros);
}

/* ---- reference RTN quantizer: the rules of quant/w4.h, one element at a time ---- */

static uint16_t ref_scale_bits(float s)
{
    if (isnan(s) || s == 0.0f)
        return 0;
    uint16_t h = mp_f32_to_f16(s);
    if ((h & 0x7fff) >= 0x7c00)
        return (uint16_t)((h & 0x8000) | 0x7bff); /* clamp to 65504 */
    if ((h & 0x7fff) == 0)
        return (uint16_t)((h & 0x8000) | 1); /* never round a nonzero scale to 0 */
    return h;
}

static int ref_code(float x, float s, int z)
{
    if (s == 0.0f || isnan(x))
        return z;
    float r = rintf(x / s) + (float)z;
    if (r < 0.0f)
        return 0;
    if (r > 15.0f)
        return 15;
    return (int)r;
}

static int ref_clamp_zero(float z)
{
    return z < 0.0f ? 0 : z > 15.0f ? 15 : (int)z;
}

typedef struct {
    uint16_t bits;
    int z;
} ref_grid;

static ref_grid ref_asym_grid(float lo, float hi)
{
    float s32 = (hi - lo) / 15.0f;
    ref_grid g = {ref_scale_bits(s32), 0};
    float s = mp_f16_to_f32(g.bits);
    if (s != 0.0f)
        g.z = ref_clamp_zero(s32 > 65504.0f ? rintf(7.5f - (lo + hi) / (2.0f * s)) : rintf(-lo / s));
    return g;
}

static float ref_decode(int q, ref_grid g)
{
    return (float)(q - g.z) * mp_f16_to_f32(g.bits);
}

static ref_grid ref_rtn_group(const float *x, int g, bool sym)
{
    float mn = INFINITY, mx = -INFINITY;
    for (int i = 0; i < g; i++) {
        if (x[i] < mn)
            mn = x[i];
        if (x[i] > mx)
            mx = x[i];
    }
    float lo = mn < 0.0f ? mn : 0.0f, hi = mx > 0.0f ? mx : 0.0f;
    if (sym)
        return (ref_grid){ref_scale_bits((hi >= -lo ? hi : lo) / -8.0f), 8};
    ref_grid grid = ref_asym_grid(lo, hi);
    if (mn == mx && mn != 0.0f) { /* constant group: prefer s = |v|, q - z = +-1 */
        ref_grid unit = {ref_scale_bits(fabsf(mn)), mn < 0.0f ? 1 : 0};
        float e_range = fabsf(ref_decode(ref_code(mn, mp_f16_to_f32(grid.bits), grid.z), grid) - mn);
        float e_unit = fabsf(ref_decode(ref_code(mn, mp_f16_to_f32(unit.bits), unit.z), unit) - mn);
        if (!(e_range < e_unit))
            grid = unit;
    }
    return grid;
}

/* Checks every code, scale and zero of o against the reference for the same input. */
static void check_against_reference(const w4_out *o, const float *x)
{
    int g = o->e.group;
    unsigned long bad = 0;
    for (int64_t r = 0; r < o->rows; r++)
        for (int64_t j = 0; j < o->G; j++) {
            const float *xg = x + r * o->cols + j * g;
            ref_grid ref = ref_rtn_group(xg, g, o->e.sym);
            int64_t k = r * o->G + j;
            bad += o->scales[k] != ref.bits;
            bad += !o->e.sym && o->zeros[k] != ref.z;
            for (int i = 0; i < g; i++)
                bad += w4_code(o, r, j * g + i) != ref_code(xg[i], mp_f16_to_f32(ref.bits), ref.z);
            if (bad && bad < 4)
                print_message("row %lld group %lld: scale %04x (ref %04x)\n", (long long)r, (long long)j,
                              o->scales[k], ref.bits);
        }
    assert_int_equal(bad, 0);
}

/* ---- errors ---- */

static float scale_of(const w4_out *o, int64_t r, int64_t j)
{
    return mp_f16_to_f32(o->scales[r * o->G + j]);
}

/* sum over group j of row r of w[c] * (decoded - x)^2, in double. */
static double group_sq_error(const w4_out *o, const float *x, const float *dec, int64_t r, int64_t j,
                             const float *importance)
{
    double e = 0.0;
    for (int64_t c = j * o->e.group; c < (j + 1) * o->e.group; c++) {
        double d = (double)dec[r * o->cols + c] - (double)x[r * o->cols + c];
        e += (importance ? importance[c] : 1.0) * d * d;
    }
    return e;
}

/* Asymmetric RTN: every value inside [min(0, min x), max(0, max x)] decodes within
 * s/2 + 15 |s - s_f32| (the f16 rounding of the scale, quant/w4.h). */
static void check_asym_error_bound(const w4_out *o, const float *x, const float *dec)
{
    int g = o->e.group;
    for (int64_t r = 0; r < o->rows; r++)
        for (int64_t j = 0; j < o->G; j++) {
            float lo = 0.0f, hi = 0.0f;
            for (int i = 0; i < g; i++) {
                lo = fminf(lo, x[r * o->cols + j * g + i]);
                hi = fmaxf(hi, x[r * o->cols + j * g + i]);
            }
            double s = scale_of(o, r, j), s32 = ((double)hi - lo) / 15.0;
            double bound = s / 2 + 15 * fabs(s - s32) + 1e-5 * s;
            for (int i = 0; i < g; i++) {
                int64_t c = r * o->cols + j * g + i;
                double err = fabs((double)dec[c] - x[c]);
                if (err > bound)
                    fail_msg("row %lld col %lld: x %g decodes to %g, error %g > bound %g", (long long)r,
                             (long long)(j * g + i), (double)x[c], (double)dec[c], err, bound);
            }
        }
}

/* Symmetric RTN: values with x / s in [-8, 7] decode within |s|/2 (+ the f16 rounding of
 * the scale, which moves the extreme m by at most 8 |s - m/8|). */
static void check_sym_error_bound(const w4_out *o, const float *x, const float *dec)
{
    int g = o->e.group;
    for (int64_t r = 0; r < o->rows; r++)
        for (int64_t j = 0; j < o->G; j++) {
            double s = scale_of(o, r, j), amax = 0.0;
            for (int i = 0; i < g; i++)
                amax = fmax(amax, fabs(x[r * o->cols + j * g + i]));
            double bound = fabs(s) / 2 + 8 * fabs(fabs(s) - amax / 8) + 1e-5 * fabs(s);
            for (int i = 0; i < g; i++) {
                int64_t c = r * o->cols + j * g + i;
                double t = x[c] / s;
                if (t < -8.0 || t > 7.0)
                    continue;
                double err = fabs((double)dec[c] - x[c]);
                if (err > bound)
                    fail_msg("row %lld col %lld: x %g decodes to %g, error %g > bound %g", (long long)r,
                             (long long)(j * g + i), (double)x[c], (double)dec[c], err, bound);
            }
        }
}

/* ---- w4 RTN: hand-worked groups ---- */

/* One row of 32 values quantized with g = 32: checks scale, zero and every code. */
static void check_single_group(bool sym, const float *x, uint16_t scale_bits, int zero, const int *codes)
{
    w4_out o = w4_alloc(32, sym, 1, 32);
    w4_run(&o, x, MP_W4_RTN, NULL);
    assert_int_equal(o.scales[0], scale_bits);
    if (!sym)
        assert_int_equal(o.zeros[0], zero);
    for (int c = 0; c < 32; c += 2) /* byte c/2: element c low nibble, c + 1 high */
        assert_int_equal(o.data[c / 2], codes[c] | codes[c + 1] << 4);
    w4_free(&o);
}

/* x = 0, 1, ... 31: lo 0, hi 31, s = 31/15 = 2.0667 -> f16 2.06640625 (exponent 1,
 * mantissa 34/1024: 0x4022), z = 0. c / 2.0664 = (c / 2) * 0.968 rounds to c / 2
 * (integer division): 31 -> 15.002 -> 15, 3 -> 1.45 -> 1. */
static void test_w4_rtn_asym_ramp(void **state)
{
    (void)state;
    float x[32];
    int codes[32];
    for (int c = 0; c < 32; c++) {
        x[c] = (float)c;
        codes[c] = c / 2;
    }
    check_single_group(false, x, 0x4022, 0, codes);
}

/* x = (c - 8) / 4: lo -2, hi 5.75, s = 7.75 / 15 = 0.51667 -> f16 0.5166015625 (0x3822),
 * z = rint(2 / 0.5166) = rint(3.87) = 4, q = rint(x / 0.5166) + 4. */
static void test_w4_rtn_asym_offset_ramp(void **state)
{
    (void)state;
    static const int codes[32] = {0, 1, 1, 2, 2, 3, 3, 4, 4, 4, 5, 5, 6, 6, 7, 7,
                                  8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15};
    float x[32];
    for (int c = 0; c < 32; c++)
        x[c] = (float)(c - 8) * 0.25f;
    check_single_group(false, x, 0x3822, 4, codes);
}

/* x = 10 + c / 32, all positive: the range is taken as [0, 10.97] (z is an integer in
 * 0..15 and cannot reach below 0: from [10, 10.97] alone, z = -10 / s would clamp to 0
 * and every value would decode to at most 15 s = 0.97). s = 10.96875 / 15 = 0.73125 ->
 * f16 0.7314453125 (0x39da), z = 0; x / s crosses 14.5 between c = 19 and 20. */
static void test_w4_rtn_asym_positive_group(void **state)
{
    (void)state;
    float x[32];
    int codes[32];
    for (int c = 0; c < 32; c++) {
        x[c] = 10.0f + (float)c / 32.0f;
        codes[c] = c < 20 ? 14 : 15;
    }
    check_single_group(false, x, 0x39da, 0, codes);
}

/* x = -16 .. 15: m = -16, s = -16 / -8 = 2 (0x4000), q = rint(x / 2) + 8 with ties to
 * even (-15 -> -7.5 -> -8 -> 0, -13 -> -6.5 -> -6 -> 2) and 15 -> 7.5 -> 8 -> 16,
 * clamped to 15 (decodes to 14: the Q4_0 grid has one level less on the positive side). */
static void test_w4_rtn_sym_ramp(void **state)
{
    (void)state;
    static const int codes[32] = {0, 0, 1, 2, 2, 2, 3, 4, 4, 4, 5, 6, 6, 6, 7, 8,
                                  8, 8, 9, 10, 10, 10, 11, 12, 12, 12, 13, 14, 14, 14, 15, 15};
    float x[32];
    for (int c = 0; c < 32; c++)
        x[c] = (float)(c - 16);
    check_single_group(true, x, 0x4000, 8, codes);
}

/* Positive largest magnitude: m = 3.5, s = 3.5 / -8 = -0.4375 (f16 0xb700): negative
 * scales are legal, m lands on code 0. */
static void test_w4_rtn_sym_negative_scale(void **state)
{
    (void)state;
    float x[32] = {0};
    x[5] = 3.5f;
    x[6] = -3.0f;
    w4_out o = w4_alloc(32, true, 1, 32);
    w4_run(&o, x, MP_W4_RTN, NULL);
    assert_int_equal(o.scales[0], 0xb700);
    assert_int_equal(w4_code(&o, 0, 5), 0);                   /* 3.5 / -0.4375 = -8 */
    assert_int_equal(w4_code(&o, 0, 6), 15);                  /* -3 / -0.4375 = 6.86 -> 7 -> 15 */
    assert_int_equal(w4_code(&o, 0, 0), 8);                   /* 0 */
    float *dec = w4_decode(&o);
    assert_true(dec[5] == 3.5f && dec[6] == -3.0625f && dec[0] == 0.0f);
    free(dec);

    x[5] = -2.0f; /* a tie in magnitude: the positive one is m, s = 2 / -8 = -0.25 (0xb400) */
    x[6] = 2.0f;
    w4_run(&o, x, MP_W4_RTN, NULL);
    assert_int_equal(o.scales[0], 0xb400);
    assert_int_equal(w4_code(&o, 0, 6), 0);
    assert_int_equal(w4_code(&o, 0, 5), 15); /* -2 / -0.25 = 8 -> 16, clamped: decodes to -1.75 */
    w4_free(&o);
}

/* ---- w4 RTN: random data against the reference, and the error bound ---- */

static void check_rtn_random(int group, bool sym, int64_t rows, int64_t cols, double sigma, uint64_t seed)
{
    rng r = {seed};
    float *x = alloc_floats(rows * cols);
    fill_gaussian(&r, x, rows * cols, sigma);
    w4_out o = w4_alloc(group, sym, rows, cols);
    w4_run(&o, x, MP_W4_RTN, NULL);
    check_against_reference(&o, x);
    float *dec = w4_decode(&o);
    if (sym)
        check_sym_error_bound(&o, x, dec);
    else
        check_asym_error_bound(&o, x, dec);
    free(dec);
    w4_free(&o);
    free(x);
}

static void test_w4_rtn_random_vs_reference(void **state)
{
    (void)state;
    static const int groups[] = {32, 64, 128};
    for (int gi = 0; gi < 3; gi++)
        for (int sym = 0; sym < 2; sym++) {
            check_rtn_random(groups[gi], sym, 37, 512, 0.02, 11 + (uint64_t)gi);
            check_rtn_random(groups[gi], sym, 1, 256, 1.0, 21 + (uint64_t)gi); /* rows = 1 */
            check_rtn_random(groups[gi], sym, 4, 256, 3e-6, 31 + (uint64_t)gi); /* f16-subnormal scales */
        }
}

/* A band [r0, r1) writes its own rows' data, scales and zeros and nothing else. */
static void test_w4_band_writes_only_its_rows(void **state)
{
    (void)state;
    const int64_t rows = 10, cols = 256;
    rng r = {5};
    float *x = alloc_floats(rows * cols);
    fill_gaussian(&r, x, rows * cols, 0.05);
    for (int sym = 0; sym < 2; sym++) {
        w4_out whole = w4_alloc(64, sym, rows, cols), banded = w4_alloc(64, sym, rows, cols);
        w4_run(&whole, x, MP_W4_RTN, NULL);
        memset(banded.data, 0xaa, (size_t)(rows * cols / 2));
        memset(banded.scales, 0xbb, (size_t)(rows * banded.G) * 2);
        memset(banded.zeros, 0xcc, (size_t)(rows * banded.G));
        mp_w4_options opt = {.method = MP_W4_RTN};
        mp_w4_quantize_rows(&banded.e, rows, cols, x + 3 * cols, 3, 7, &opt, banded.data, banded.scales, banded.zeros);
        for (int64_t row = 0; row < rows; row++) {
            bool in = row >= 3 && row < 7;
            for (int64_t b = 0; b < cols / 2; b++)
                assert_int_equal(banded.data[row * cols / 2 + b], in ? whole.data[row * cols / 2 + b] : 0xaa);
            for (int64_t j = 0; j < banded.G; j++) {
                assert_int_equal(banded.scales[row * banded.G + j], in ? whole.scales[row * banded.G + j] : 0xbbbb);
                assert_int_equal(banded.zeros[row * banded.G + j], in && !sym ? whole.zeros[row * banded.G + j] : 0xcc);
            }
        }
        w4_free(&whole);
        w4_free(&banded);
    }
    free(x);
}

/* Groups holding 0, 15 s (so the scale is exactly s, z = 0) and values within a few f32
 * ulps of (k + 1/2) s: their codes follow the rounding of the true quotient x / s, which
 * x * (1 / s) misses for some of them (the test checks that it is sharp enough to tell). */
static void test_w4_near_ties_use_true_division(void **state)
{
    (void)state;
    static const float f16_scales[] = {0.30004883f, 0.7001953f, 1.0996094f, 3.0002594e-3f};
    const int64_t cols = 32, rows = 4 * 5; /* per scale: 15 midpoints x 9 nudges = 135 values in 5 rows */
    float *x = alloc_floats(rows * cols);
    int differs = 0;
    for (int si = 0; si < 4; si++) {
        float s = f16_scales[si];
        assert_true(mp_f16_to_f32(mp_f32_to_f16(s)) == s);
        int64_t n = 0;
        for (int64_t row = si * 5; row < si * 5 + 5; row++) {
            x[row * cols] = 0.0f;
            x[row * cols + 1] = 15.0f * s;
        }
        for (int k = 0; k < 15; k++) {
            float v = ((float)k + 0.5f) * s;
            for (int j = 0; j < 4; j++)
                v = nextafterf(v, 0.0f);
            for (int j = 0; j < 9; j++, v = nextafterf(v, INFINITY), n++) {
                x[(si * 5 + n / 30) * cols + 2 + n % 30] = v;
                differs += rintf(v / s) != rintf(v * (1.0f / s));
            }
        }
    }
    assert_true(differs > 0);
    w4_out o = w4_alloc(32, false, rows, cols);
    w4_run(&o, x, MP_W4_RTN, NULL);
    for (int64_t row = 0; row < rows; row++)
        assert_true(mp_f16_to_f32(o.scales[row]) == f16_scales[row / 5] && o.zeros[row] == 0);
    check_against_reference(&o, x);
    w4_free(&o);
    free(x);
}

/* ---- w4 edge cases ---- */

static float *quantize_and_decode(int group, bool sym, const float *x, int64_t rows, int64_t cols,
                                  mp_w4_method method, w4_out *o)
{
    *o = w4_alloc(group, sym, rows, cols);
    w4_run(o, x, method, NULL);
    return w4_decode(o);
}

static void test_w4_all_zero_group(void **state)
{
    (void)state;
    static const int groups[] = {32, 64, 128};
    for (int gi = 0; gi < 3; gi++)
        for (int sym = 0; sym < 2; sym++)
            for (int m = 0; m < 2; m++) {
                float x[256] = {0};
                x[200] = 1.0f; /* a later group is nonzero */
                w4_out o;
                float *dec = quantize_and_decode(groups[gi], sym, x, 1, 256, (mp_w4_method)m, &o);
                assert_int_equal(o.scales[0], 0);
                if (!sym)
                    assert_int_equal(o.zeros[0], 0);
                for (int c = 0; c < groups[gi]; c++) {
                    assert_int_equal(w4_code(&o, 0, c), sym ? 8 : 0);
                    assert_true(dec[c] == 0.0f);
                }
                assert_true(fabsf(dec[200] - 1.0f) < 0.04f); /* the other group is unaffected */
                free(dec);
                w4_free(&o);
            }
}

/* A constant group v decodes exactly to v for f16 values (asym: s = |v|, q - z = +-1;
 * sym: s = v / -8, q = 0); at any group size and with either method. */
static void test_w4_constant_group(void **state)
{
    (void)state;
    static const float values[] = {0.375f, -3.25f, 1.0f / 1024, -7.0e-3f, 1000.0f};
    static const int groups[] = {32, 64, 128};
    for (int vi = 0; vi < 5; vi++)
        for (int gi = 0; gi < 3; gi++)
            for (int sym = 0; sym < 2; sym++)
                for (int m = 0; m < 2; m++) {
                    float v = mp_f16_to_f32(mp_f32_to_f16(values[vi])), x[128];
                    for (int c = 0; c < 128; c++)
                        x[c] = v;
                    w4_out o;
                    float *dec = quantize_and_decode(groups[gi], sym, x, 1, 128, (mp_w4_method)m, &o);
                    for (int c = 0; c < 128; c++)
                        if (dec[c] != v)
                            fail_msg("v %g g %d sym %d method %d: decoded %g", (double)v, groups[gi], sym, m,
                                     (double)dec[c]);
                    free(dec);
                    w4_free(&o);
                }
}

/* 1e6 is beyond every w4 grid (asym max 15 * 65504, sym 8 * 65504): the scale clamps to
 * the f16 maximum, nothing becomes inf or NaN, and the constant group lands on the
 * largest representable value. */
static void test_w4_huge_values(void **state)
{
    (void)state;
    for (int sym = 0; sym < 2; sym++) {
        float x[128];
        for (int c = 0; c < 128; c++)
            x[c] = 1e6f;
        w4_out o;
        float *dec = quantize_and_decode(32, sym, x, 1, 128, MP_W4_RTN, &o);
        assert_int_equal(o.scales[0] & 0x7fff, 0x7bff);
        for (int c = 0; c < 128; c++)
            assert_true(dec[c] == (sym ? 8.0f : 15.0f) * 65504.0f);
        free(dec);
        w4_free(&o);

        /* Beyond the span, asym centres the window (z = rint(7.5 - (lo + hi) / 2s)):
         * both ends clip by about the same amount, instead of z = rint(-lo / s) = 15
         * leaving every positive value at 0. */
        rng r = {99};
        for (int c = 0; c < 128; c++)
            x[c] = (float)(2e6 * uniform01(&r) - 1e6);
        for (int m = 0; m < 2; m++) {
            dec = quantize_and_decode(64, sym, x, 1, 128, (mp_w4_method)m, &o);
            for (int64_t j = 0; j < o.G; j++) {
                float s = scale_of(&o, 0, j), z = sym ? 8.0f : o.zeros[j];
                if (m == MP_W4_RTN)
                    assert_int_equal(o.scales[j] & 0x7fff, 0x7bff); /* range / 15 > 65504 */
                for (int c = (int)j * 64; c < (int)(j + 1) * 64; c++) {
                    assert_true(isfinite(dec[c]));
                    if (fabsf(dec[c] - x[c]) >= 0.6e6f) /* the ends clip by <= 1e6 - 7 x 65504 */
                        fail_msg("sym %d method %d: x %g decodes to %g (s %g z %g)", sym, m, (double)x[c],
                                 (double)dec[c], (double)s, (double)z);
                    float t = x[c] / s + z; /* inside the representable span: within s/2 */
                    if (m == MP_W4_RTN && t >= 0.0f && t <= 15.0f)
                        assert_true(fabsf(dec[c] - x[c]) <= fabsf(s) / 2 * (1.0f + 1e-6f));
                }
            }
            free(dec);
            w4_free(&o);
        }
    }
}

/* Values far below the smallest f16 subnormal (2^-24 = 6e-8): the scale stays nonzero
 * (2^-24, the grid still holds 0) and no value decodes worse than 0 would. */
static void test_w4_tiny_values(void **state)
{
    (void)state;
    rng r = {7};
    float x[128];
    for (int c = 0; c < 128; c++)
        x[c] = (float)(2e-8 * uniform01(&r) - 1e-8);
    for (int sym = 0; sym < 2; sym++)
        for (int m = 0; m < 2; m++) {
            w4_out o;
            float *dec = quantize_and_decode(32, sym, x, 1, 128, (mp_w4_method)m, &o);
            double err = 0.0, zero_err = 0.0;
            for (int c = 0; c < 128; c++) {
                err += ((double)dec[c] - x[c]) * ((double)dec[c] - x[c]);
                zero_err += (double)x[c] * x[c];
                if (m == MP_W4_RTN)
                    assert_true(fabsf(dec[c] - x[c]) <= fabsf(x[c]));
            }
            assert_true(err <= zero_err);
            for (int64_t j = 0; j < o.G && m == MP_W4_RTN; j++)
                assert_int_equal(o.scales[j] & 0x7fff, 0x0001);
            free(dec);
            w4_free(&o);
        }
}

/* NaN and inf never trap and always give codes 0..15 (nibbles cannot hold more; this
 * checks the decoded values): a NaN decodes to 0 when the scale is finite. */
static void test_w4_non_finite_inputs(void **state)
{
    (void)state;
    float x[64];
    for (int c = 0; c < 64; c++)
        x[c] = (float)(c - 32) * 0.01f;
    x[3] = NAN;
    x[40] = INFINITY; /* second group: 32..63 */
    for (int sym = 0; sym < 2; sym++)
        for (int m = 0; m < 2; m++) {
            w4_out o;
            float *dec = quantize_and_decode(32, sym, x, 1, 64, (mp_w4_method)m, &o);
            assert_true(dec[3] == 0.0f);
            for (int c = 0; c < 32; c++)
                assert_true(isfinite(dec[c]));
            assert_int_equal(o.scales[1] & 0x7fff, 0x7bff); /* inf clamps the scale */
            assert_true(isfinite(dec[40]));
            free(dec);
            w4_free(&o);
        }
}

/* ---- w4 MSE ---- */

typedef struct {
    double rtn, mse;
} error_pair;

/* Quantizes x with RTN and MSE; checks MSE <= RTN for every group (weighted by
 * importance when given) and returns the summed errors. */
static error_pair compare_mse_with_rtn(int group, bool sym, const float *x, int64_t rows, int64_t cols,
                                       const float *importance)
{
    w4_out rtn = w4_alloc(group, sym, rows, cols), mse = w4_alloc(group, sym, rows, cols);
    w4_run(&rtn, x, MP_W4_RTN, NULL);
    w4_run(&mse, x, MP_W4_MSE, importance);
    float *dr = w4_decode(&rtn), *dm = w4_decode(&mse);
    error_pair sum = {0, 0};
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < rtn.G; j++) {
            double er = group_sq_error(&rtn, x, dr, r, j, importance);
            double em = group_sq_error(&mse, x, dm, r, j, importance);
            if (!(em <= er))
                fail_msg("g %d sym %d row %lld group %lld: MSE error %.9g > RTN %.9g", group, sym, (long long)r,
                         (long long)j, em, er);
            sum.rtn += er;
            sum.mse += em;
        }
    free(dr);
    free(dm);
    w4_free(&rtn);
    w4_free(&mse);
    return sum;
}

static void test_w4_mse_never_worse_gaussian(void **state)
{
    (void)state;
    static const int groups[] = {32, 64, 128};
    const int64_t rows = 48, cols = 512;
    float *x = alloc_floats(rows * cols);
    for (int gi = 0; gi < 3; gi++)
        for (int sym = 0; sym < 2; sym++) {
            rng r = {100 + (uint64_t)gi};
            fill_gaussian(&r, x, rows * cols, 0.02);
            error_pair e = compare_mse_with_rtn(groups[gi], sym, x, rows, cols, NULL);
            print_message("gaussian g%d %s: MSE / RTN squared error = %.4f\n", groups[gi], sym ? "sym" : "asym",
                          e.mse / e.rtn);
            assert_true(e.mse < e.rtn);
        }
    free(x);
}

static void test_w4_mse_heavy_tails(void **state)
{
    (void)state;
    static const int groups[] = {32, 64, 128};
    const int64_t rows = 48, cols = 512;
    float *x = alloc_floats(rows * cols);
    for (int gi = 0; gi < 3; gi++)
        for (int sym = 0; sym < 2; sym++) {
            rng r = {200 + (uint64_t)gi};
            fill_heavy_tailed(&r, x, rows * cols, groups[gi], 0.02);
            error_pair e = compare_mse_with_rtn(groups[gi], sym, x, rows, cols, NULL);
            print_message("heavy-tailed g%d %s: MSE / RTN squared error = %.4f\n", groups[gi],
                          sym ? "sym" : "asym", e.mse / e.rtn);
            assert_true(e.mse < 0.98 * e.rtn);
        }
    free(x);
}

/* The smallest error over every f16 scale between 0.3 and 1.5 times |RTN scale| (both
 * signs when symmetric) and every zero point: the optimum the MSE search approximates. */
static double exhaustive_group_error(const float *x, int g, bool sym, float s_rtn)
{
    double best = INFINITY;
    uint16_t b0 = ref_scale_bits(0.3f * fabsf(s_rtn)), b1 = ref_scale_bits(1.5f * fabsf(s_rtn));
    for (int sign = 0; sign < (sym ? 2 : 1); sign++)
        for (uint16_t b = b0; b <= b1; b++)
            for (int z = sym ? 8 : 0; z <= (sym ? 8 : 15); z++) {
                ref_grid grid = {(uint16_t)(b | (sign ? 0x8000 : 0)), z};
                float s = mp_f16_to_f32(grid.bits);
                double e = 0.0;
                for (int i = 0; i < g; i++) {
                    double d = (double)ref_decode(ref_code(x[i], s, z), grid) - x[i];
                    e += d * d;
                }
                best = e < best ? e : best;
            }
    return best;
}

/* The search lands within 0.2 % of the exhaustive optimum (summed over the groups; it
 * measures 0.02-0.12 %, and up to 0.5 % without the least-squares refits). */
static void test_w4_mse_near_exhaustive_optimum(void **state)
{
    (void)state;
    static const int groups[] = {32, 128};
    const int64_t rows = 4, cols = 1024;
    float *x = alloc_floats(rows * cols);
    for (int gi = 0; gi < 2; gi++)
        for (int sym = 0; sym < 2; sym++) {
            rng r = {600 + (uint64_t)gi};
            fill_gaussian(&r, x, rows * cols, 0.02);
            w4_out o = w4_alloc(groups[gi], sym, rows, cols);
            w4_run(&o, x, MP_W4_MSE, NULL);
            float *dec = w4_decode(&o);
            double mse = 0.0, opt = 0.0;
            for (int64_t row = 0; row < rows; row++)
                for (int64_t j = 0; j < o.G; j++) {
                    const float *xg = x + row * cols + j * groups[gi];
                    ref_grid rtn = ref_rtn_group(xg, groups[gi], sym);
                    mse += group_sq_error(&o, x, dec, row, j, NULL);
                    opt += exhaustive_group_error(xg, groups[gi], sym, mp_f16_to_f32(rtn.bits));
                }
            print_message("g%d %s: MSE search / exhaustive optimum = %.4f\n", groups[gi], sym ? "sym" : "asym",
                          mse / opt);
            assert_true(mse <= 1.002 * opt);
            free(dec);
            w4_free(&o);
        }
    free(x);
}

/* Importance on a few columns (1 in 8, weight 100 vs 1): the weighted error is what MSE
 * minimises, so those columns come out better than with uniform importance. */
static void test_w4_mse_importance(void **state)
{
    (void)state;
    const int64_t rows = 64, cols = 256;
    float *x = alloc_floats(rows * cols), *imp = alloc_floats(cols);
    for (int64_t c = 0; c < cols; c++)
        imp[c] = c % 8 == 3 ? 100.0f : 1.0f;
    for (int sym = 0; sym < 2; sym++) {
        rng r = {300};
        fill_heavy_tailed(&r, x, rows * cols, 64, 0.02);
        compare_mse_with_rtn(64, sym, x, rows, cols, imp); /* weighted: MSE <= RTN per group */
        w4_out uni = w4_alloc(64, sym, rows, cols), wtd = w4_alloc(64, sym, rows, cols);
        w4_run(&uni, x, MP_W4_MSE, NULL);
        w4_run(&wtd, x, MP_W4_MSE, imp);
        float *du = w4_decode(&uni), *dw = w4_decode(&wtd);
        double hot_u = 0, hot_w = 0, all_u = 0, all_w = 0;
        for (int64_t r2 = 0; r2 < rows; r2++)
            for (int64_t j = 0; j < uni.G; j++) {
                all_u += group_sq_error(&uni, x, du, r2, j, imp);
                all_w += group_sq_error(&wtd, x, dw, r2, j, imp);
            }
        for (int64_t i = 0; i < rows * cols; i++)
            if (imp[i % cols] > 1.0f) {
                hot_u += ((double)du[i] - x[i]) * ((double)du[i] - x[i]);
                hot_w += ((double)dw[i] - x[i]) * ((double)dw[i] - x[i]);
            }
        print_message("%s: important columns' error, weighted / uniform MSE = %.4f\n", sym ? "sym" : "asym",
                      hot_w / hot_u);
        assert_true(hot_w < 0.9 * hot_u);
        assert_true(all_w < all_u);
        free(du);
        free(dw);
        w4_free(&uni);
        w4_free(&wtd);
    }
    free(x);
    free(imp);
}

/* ---- determinism across thread counts ---- */

static void w4_run_threads(w4_out *o, const float *x, mp_w4_method method, int threads)
{
    omp_set_num_threads(threads);
    w4_run(o, x, method, NULL);
}

static void test_w4_same_bytes_any_thread_count(void **state)
{
    (void)state;
    const int64_t rows = 256, cols = 512;
    rng r = {400};
    float *x = alloc_floats(rows * cols);
    fill_heavy_tailed(&r, x, rows * cols, 32, 0.02);
    for (int sym = 0; sym < 2; sym++)
        for (int m = 0; m < 2; m++) {
            w4_out one = w4_alloc(32, sym, rows, cols), two = w4_alloc(32, sym, rows, cols);
            w4_run_threads(&one, x, (mp_w4_method)m, 1);
            w4_run_threads(&two, x, (mp_w4_method)m, 2);
            assert_memory_equal(one.data, two.data, (size_t)(rows * cols / 2));
            assert_memory_equal(one.scales, two.scales, (size_t)(rows * one.G) * 2);
            assert_memory_equal(one.zeros, two.zeros, (size_t)(rows * one.G));
            w4_free(&one);
            w4_free(&two);
        }
    omp_set_num_threads(omp_get_num_procs());
    free(x);
}

/* ---- fp8 ---- */

typedef struct {
    mp_encoding e;
    int64_t rows, cols;
    uint8_t *data;
    float *scales;
    uint64_t n_scales;
} fp8_out;

static fp8_out fp8_alloc(mp_fp8_scale kind, int64_t rows, int64_t cols)
{
    fp8_out o = {.e = {.kind = MP_ENC_FP8, .fp8_scale = kind}, .rows = rows, .cols = cols};
    mp_enc_layout L;
    mp_encoding_layout(&o.e, rows, cols, &L);
    o.n_scales = L.n_scales;
    o.data = calloc((size_t)(rows * cols), 1);
    o.scales = calloc((size_t)L.n_scales, sizeof *o.scales);
    assert_true(o.data && o.scales);
    return o;
}

static void fp8_free(fp8_out *o)
{
    free(o->data);
    free(o->scales);
}

static float amax_of_rect(const float *x, int64_t cols, int64_t r0, int64_t r1, int64_t c0, int64_t c1)
{
    float m = 0.0f;
    for (int64_t r = r0; r < r1; r++)
        for (int64_t c = c0; c < c1; c++)
            m = fmaxf(m, fabsf(x[r * cols + c]));
    return m;
}

static void fp8_run(fp8_out *o, const float *x)
{
    float amax = amax_of_rect(x, o->cols, 0, o->rows, 0, o->cols);
    mp_fp8_quantize_rows(&o->e, o->rows, o->cols, x, 0, o->rows, amax, o->data, o->scales);
}

/* The scale the FORMAT.md layout assigns to element (r, c). */
static float fp8_scale_at(const fp8_out *o, int64_t r, int64_t c)
{
    switch (o->e.fp8_scale) {
    case MP_FP8_TENSOR:
        return o->scales[0];
    case MP_FP8_CHANNEL:
        return o->scales[r];
    default:
        return o->scales[(r / 128) * ((o->cols + 127) / 128) + c / 128];
    }
}

/* Half the e4m3 spacing at magnitude y (in units of the scaled value): 2^-9 below the
 * first normal 2^-6, else 2^(floor(log2 y) - 3), from the bias 7 / 3 mantissa bits. */
static double e4m3_half_ulp(double y)
{
    if (y < 0x1p-6)
        return 0x1p-10;
    int e;
    frexp(y, &e); /* y = m * 2^e, m in [0.5, 1): floor(log2 y) = e - 1 */
    return ldexp(1.0, e - 1 - 3) / 2;
}

/* Codes are mp_f32_to_fp8_e4m3(x / scale) and decode within half an e4m3 step. */
static void check_fp8_codes_and_error(const fp8_out *o, const float *x)
{
    mp_enc_layout L;
    mp_encoding_layout(&o->e, o->rows, o->cols, &L);
    uint8_t *raw = calloc((size_t)L.total, 1);
    float *dec = alloc_floats(o->rows * o->cols);
    assert_non_null(raw);
    memcpy(raw, o->data, (size_t)(o->rows * o->cols));
    memcpy(raw + L.scales_offset, o->scales, (size_t)L.n_scales * 4);
    mp_encoding_decode_rows(&o->e, o->rows, o->cols, raw, 0, o->rows, dec);
    for (int64_t r = 0; r < o->rows; r++)
        for (int64_t c = 0; c < o->cols; c++) {
            int64_t i = r * o->cols + c;
            float s = fp8_scale_at(o, r, c);
            assert_int_equal(o->data[i], mp_f32_to_fp8_e4m3(x[i] / s));
            double y = fabs((double)x[i] / s);
            double bound = (e4m3_half_ulp(y) + 1e-6 * y) * s;
            if (fabs((double)dec[i] - x[i]) > bound)
                fail_msg("(%lld, %lld): x %g decodes to %g, bound %g", (long long)r, (long long)c, (double)x[i],
                         (double)dec[i], bound);
        }
    free(dec);
    free(raw);
}

static void test_fp8_tensor_scale(void **state)
{
    (void)state;
    rng r = {500};
    const int64_t rows = 64, cols = 100;
    float *x = alloc_floats(rows * cols);
    fill_gaussian(&r, x, rows * cols, 0.05);
    fp8_out o = fp8_alloc(MP_FP8_TENSOR, rows, cols);
    fp8_run(&o, x);
    assert_true(o.scales[0] == amax_of_rect(x, cols, 0, rows, 0, cols) / 448.0f);
    check_fp8_codes_and_error(&o, x);
    fp8_free(&o);
    free(x);
}

static void test_fp8_channel_scale(void **state)
{
    (void)state;
    rng r = {501};
    const int64_t rows = 40, cols = 96;
    float *x = alloc_floats(rows * cols);
    fill_heavy_tailed(&r, x, rows * cols, 32, 0.05);
    for (int64_t c = 0; c < cols; c++)
        x[7 * cols + c] = 0.0f; /* an all-zero row: scale 1, codes 0 */
    fp8_out o = fp8_alloc(MP_FP8_CHANNEL, rows, cols);
    fp8_run(&o, x);
    for (int64_t row = 0; row < rows; row++) {
        float amax = amax_of_rect(x, cols, row, row + 1, 0, cols);
        assert_true(o.scales[row] == (amax > 0.0f ? amax / 448.0f : 1.0f));
    }
    for (int64_t c = 0; c < cols; c++)
        assert_int_equal(o.data[7 * cols + c], 0);
    check_fp8_codes_and_error(&o, x);
    fp8_free(&o);
    free(x);
}

/* 200 x 300: blocks of 128 x 128, 72 x 128, 128 x 44, 72 x 44 at the edges. */
static void test_fp8_block_scale_partial_edges(void **state)
{
    (void)state;
    rng r = {502};
    const int64_t rows = 200, cols = 300;
    float *x = alloc_floats(rows * cols);
    fill_gaussian(&r, x, rows * cols, 0.05);
    x[150 * cols + 290] = 3.0f; /* a different amax in the corner block */
    fp8_out o = fp8_alloc(MP_FP8_BLOCK, rows, cols);
    assert_int_equal(o.n_scales, 6);
    fp8_run(&o, x);
    for (int64_t br = 0; br < 2; br++)
        for (int64_t bc = 0; bc < 3; bc++) {
            int64_t r1 = br * 128 + 128 < rows ? br * 128 + 128 : rows;
            int64_t c1 = bc * 128 + 128 < cols ? bc * 128 + 128 : cols;
            float amax = amax_of_rect(x, cols, br * 128, r1, bc * 128, c1);
            assert_true(o.scales[br * 3 + bc] == amax / 448.0f);
        }
    assert_true(o.scales[5] == 3.0f / 448.0f);
    check_fp8_codes_and_error(&o, x);
    fp8_free(&o);
    free(x);
}

/* Quantizing in bands [0, 128) and [128, 200) gives the same bytes as one call, for
 * every scale kind (tensor gets the whole tensor's amax in both calls). */
static void test_fp8_bands_match_single_call(void **state)
{
    (void)state;
    rng r = {503};
    const int64_t rows = 200, cols = 300;
    float *x = alloc_floats(rows * cols);
    fill_heavy_tailed(&r, x, rows * cols, 100, 0.05);
    float amax = amax_of_rect(x, cols, 0, rows, 0, cols);
    for (int k = 0; k < 3; k++) {
        fp8_out one = fp8_alloc((mp_fp8_scale)k, rows, cols), two = fp8_alloc((mp_fp8_scale)k, rows, cols);
        mp_fp8_quantize_rows(&one.e, rows, cols, x, 0, rows, amax, one.data, one.scales);
        mp_fp8_quantize_rows(&two.e, rows, cols, x, 0, 128, amax, two.data, two.scales);
        mp_fp8_quantize_rows(&two.e, rows, cols, x + 128 * cols, 128, rows, amax, two.data, two.scales);
        assert_memory_equal(one.data, two.data, (size_t)(rows * cols));
        assert_memory_equal(one.scales, two.scales, (size_t)one.n_scales * 4);
        fp8_free(&one);
        fp8_free(&two);
    }
    free(x);
}

/* Zero tensor: scale 1, codes 0. Huge and tiny values keep their relative precision.
 * NaN gives code 0 (decodes to 0), inf saturates to +-448 x scale. */
static void test_fp8_edge_values(void **state)
{
    (void)state;
    float x[4 * 128];
    memset(x, 0, sizeof x);
    for (int k = 0; k < 3; k++) {
        fp8_out o = fp8_alloc((mp_fp8_scale)k, 4, 128);
        fp8_run(&o, x);
        for (uint64_t i = 0; i < o.n_scales; i++)
            assert_true(o.scales[i] == 1.0f);
        for (int i = 0; i < 4 * 128; i++)
            assert_int_equal(o.data[i], 0);
        fp8_free(&o);
    }
    rng r = {504};
    for (int i = 0; i < 4 * 128; i++)
        x[i] = (float)((i < 2 * 128 ? 1e6 : 1e-8) * gaussian(&r));
    for (int k = 0; k < 3; k++) {
        fp8_out o = fp8_alloc((mp_fp8_scale)k, 4, 128);
        fp8_run(&o, x);
        check_fp8_codes_and_error(&o, x); /* with a shared scale the 1e-8 ones become 0: within the bound */
        fp8_free(&o);
    }
    x[5] = NAN;
    x[6] = INFINITY;
    x[7] = -INFINITY;
    for (int k = 0; k < 3; k++) {
        fp8_out o = fp8_alloc((mp_fp8_scale)k, 4, 128);
        float amax = 0.0f; /* the caller's amax, NaN ignored as the quantizer does */
        for (int i = 0; i < 4 * 128; i++)
            amax = fabsf(x[i]) > amax ? fabsf(x[i]) : amax;
        mp_fp8_quantize_rows(&o.e, 4, 128, x, 0, 4, amax, o.data, o.scales);
        assert_int_equal(o.data[5], 0x00);
        assert_int_equal(o.data[6], 0x7e);
        assert_int_equal(o.data[7], 0xfe);
        for (uint64_t i = 0; i < o.n_scales; i++)
            assert_true(isfinite(o.scales[i]) && o.scales[i] > 0.0f);
        fp8_free(&o);
    }
}

static float float_of_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* With scale 1 (tensor amax 448) the codes are mp_f32_to_fp8_e4m3(x) itself: checked for
 * every 509th f32 bit pattern from 0 to inf (f32 subnormals, e4m3 subnormals, every
 * binade, saturation), for every exact midpoint between neighbouring e4m3 values and its
 * two f32 neighbours (the ties-to-even cases), and for all of them negated. */
static void test_fp8_codes_match_core_encoder(void **state)
{
    (void)state;
    const int64_t cols = 1024, sweep = 0x7f800000 / 509 + 1, ties = 127 * 3;
    const int64_t rows = (2 * (sweep + ties) + cols - 1) / cols;
    float *x = alloc_floats(rows * cols);
    int64_t n = 0;
    for (int64_t i = 0; i < sweep; i++)
        x[n++] = float_of_bits((uint32_t)(i * 509));
    for (int c = 0; c < 127; c++) {
        float lo = mp_fp8_e4m3_to_f32((uint8_t)c), hi = c < 126 ? mp_fp8_e4m3_to_f32((uint8_t)(c + 1)) : 512.0f;
        float mid = (lo + hi) / 2; /* exact: neighbours differ in the last of few mantissa bits */
        x[n++] = mid;
        x[n++] = nextafterf(mid, 0.0f);
        x[n++] = nextafterf(mid, INFINITY);
    }
    for (int64_t i = 0, half = n; i < half; i++)
        x[n++] = -x[i];
    fp8_out o = fp8_alloc(MP_FP8_TENSOR, rows, cols);
    mp_fp8_quantize_rows(&o.e, rows, cols, x, 0, rows, 448.0f, o.data, o.scales);
    assert_true(o.scales[0] == 1.0f);
    unsigned long bad = 0;
    for (int64_t i = 0; i < rows * cols; i++)
        if (o.data[i] != mp_f32_to_fp8_e4m3(x[i]) && bad++ < 4)
            print_message("x %a: code %02x, core encoder %02x\n", (double)x[i], o.data[i], mp_f32_to_fp8_e4m3(x[i]));
    assert_int_equal(bad, 0);
    fp8_free(&o);
    free(x);
}

/* Values within a few f32 ulps of (e4m3 midpoint) x scale: the code is the rounding of
 * the true quotient x / scale (one rounding), which x * (1 / scale) (two roundings) misses
 * for some of them; the test checks both that the codes follow x / scale and that the
 * set is sharp enough to tell the two apart. */
static void test_fp8_near_ties_use_true_division(void **state)
{
    (void)state;
    const int64_t cols = 126 * 9;
    float *x = alloc_floats(cols);
    const float amax = 134.4f;
    float s = amax / 448.0f;
    int64_t n = 0;
    for (int c = 0; c < 126; c++) {
        float mid = (mp_fp8_e4m3_to_f32((uint8_t)c) + mp_fp8_e4m3_to_f32((uint8_t)(c + 1))) / 2;
        float v = mid * s;
        for (int k = 0; k < 4; k++)
            v = nextafterf(v, 0.0f);
        for (int k = 0; k < 9; k++, v = nextafterf(v, INFINITY))
            x[n++] = v;
    }
    fp8_out o = fp8_alloc(MP_FP8_TENSOR, 1, cols);
    mp_fp8_quantize_rows(&o.e, 1, cols, x, 0, 1, amax, o.data, o.scales);
    assert_true(o.scales[0] == s);
    int differs = 0;
    for (int64_t i = 0; i < cols; i++) {
        assert_int_equal(o.data[i], mp_f32_to_fp8_e4m3(x[i] / s));
        differs += mp_f32_to_fp8_e4m3(x[i] / s) != mp_f32_to_fp8_e4m3(x[i] * (1.0f / s));
    }
    assert_true(differs > 0);
    fp8_free(&o);
    free(x);
}

static void test_fp8_same_bytes_any_thread_count(void **state)
{
    (void)state;
    const int64_t rows = 300, cols = 520;
    rng r = {505};
    float *x = alloc_floats(rows * cols);
    fill_heavy_tailed(&r, x, rows * cols, 40, 0.05);
    for (int k = 0; k < 3; k++) {
        fp8_out one = fp8_alloc((mp_fp8_scale)k, rows, cols), two = fp8_alloc((mp_fp8_scale)k, rows, cols);
        omp_set_num_threads(1);
        fp8_run(&one, x);
        omp_set_num_threads(2);
        fp8_run(&two, x);
        assert_memory_equal(one.data, two.data, (size_t)(rows * cols));
        assert_memory_equal(one.scales, two.scales, (size_t)one.n_scales * 4);
        fp8_free(&one);
        fp8_free(&two);
    }
    omp_set_num_threads(omp_get_num_procs());
    free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_w4_rtn_asym_ramp),
        cmocka_unit_test(test_w4_rtn_asym_offset_ramp),
        cmocka_unit_test(test_w4_rtn_asym_positive_group),
        cmocka_unit_test(test_w4_rtn_sym_ramp),
        cmocka_unit_test(test_w4_rtn_sym_negative_scale),
        cmocka_unit_test(test_w4_rtn_random_vs_reference),
        cmocka_unit_test(test_w4_near_ties_use_true_division),
        cmocka_unit_test(test_w4_band_writes_only_its_rows),
        cmocka_unit_test(test_w4_all_zero_group),
        cmocka_unit_test(test_w4_constant_group),
        cmocka_unit_test(test_w4_huge_values),
        cmocka_unit_test(test_w4_tiny_values),
        cmocka_unit_test(test_w4_non_finite_inputs),
        cmocka_unit_test(test_w4_mse_never_worse_gaussian),
        cmocka_unit_test(test_w4_mse_heavy_tails),
        cmocka_unit_test(test_w4_mse_near_exhaustive_optimum),
        cmocka_unit_test(test_w4_mse_importance),
        cmocka_unit_test(test_w4_same_bytes_any_thread_count),
        cmocka_unit_test(test_fp8_tensor_scale),
        cmocka_unit_test(test_fp8_channel_scale),
        cmocka_unit_test(test_fp8_block_scale_partial_edges),
        cmocka_unit_test(test_fp8_bands_match_single_call),
        cmocka_unit_test(test_fp8_edge_values),
        cmocka_unit_test(test_fp8_codes_match_core_encoder),
        cmocka_unit_test(test_fp8_near_ties_use_true_division),
        cmocka_unit_test(test_fp8_same_bytes_any_thread_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
