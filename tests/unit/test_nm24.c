/* Tests for the 2:4 sparse fp8 and w4 encodings (formats/encoding_nm24.c, FORMAT.md
 * "2:4 sparse fp8 and w4"): bytes written here by hand from FORMAT.md decode to values
 * computed here independently (fp8 from its bit fields, w4 from (q - z)·s with literal
 * scales), for every position pair and every code; pack/densify round trips; the layout
 * sizes; names; and the kernels on 2:4 tensors at every instruction set and thread
 * count against the decoded weights. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/dtype.h"
#include "../../engine/kernels.h"
#include "../../formats/encoding.h"
#include "q8_oracle.h"
#include "random.h"

/* The 6 position pairs of a 2:4 group, p0 < p1. */
static const int pairs[6][2] = {{0, 1}, {0, 2}, {0, 3}, {1, 2}, {1, 3}, {2, 3}};

/* e4m3fn from its fields, without the project's converters: bias 7, subnormals at
 * exponent 0, 0x7f / 0xff NaN. */
static double fp8_reference(uint8_t b)
{
    int sign = b >> 7, exp = (b >> 3) & 15, man = b & 7;
    if (exp == 15 && man == 7)
        return NAN;
    double v = exp == 0 ? ldexp(man / 8.0, -6) : ldexp(1 + man / 8.0, exp - 7);
    return sign ? -v : v;
}

static void put_nibble(uint8_t *bytes, uint64_t k, int v)
{
    bytes[k / 2] = (uint8_t)(bytes[k / 2] | (v & 15) << ((k & 1) ? 4 : 0));
}

static void put_f32(uint8_t *p, float f)
{
    memcpy(p, &f, 4);
}

/* Every fp8 byte at each kept slot of each of the 6 pairs: 256 rows of 6 groups, row v
 * holding byte v first and byte 255 - v second, per-channel scales. Bytes laid out by
 * hand: 2 codes per group, then one position nibble per group, then f32 scales at the
 * next multiple of 4. */
static void test_fp8_every_byte_every_pair(void **state)
{
    (void)state;
    const int64_t rows = 256, cols = 24, m = rows * cols / 4;
    uint64_t scales_at = (uint64_t)((2 * m + (m + 1) / 2 + 3) & ~3);
    uint64_t total = scales_at + 4 * (uint64_t)rows;
    uint8_t *raw = calloc(total, 1);
    float *out = malloc(sizeof(float) * (size_t)(rows * cols));
    assert_true(raw && out);
    for (int64_t r = 0; r < rows; r++) {
        for (int j = 0; j < 6; j++) {
            uint64_t k = (uint64_t)(r * 6 + j);
            raw[2 * k] = (uint8_t)r;
            raw[2 * k + 1] = (uint8_t)(255 - r);
            put_nibble(raw + 2 * m, k, pairs[j][0] | pairs[j][1] << 2);
        }
        put_f32(raw + scales_at + 4 * r, r % 2 ? 0.75f : -3.0f);
    }
    mp_encoding e;
    assert_int_equal(mp_encoding_parse("fp8-channel-2:4", &e), 0);
    mp_enc_layout L;
    mp_encoding_layout(&e, rows, cols, &L);
    assert_int_equal(L.total, total);
    assert_int_equal(L.scales_offset, scales_at);
    mp_encoding_decode_rows(&e, rows, cols, raw, 0, rows, out);
    for (int64_t r = 0; r < rows; r++)
        for (int j = 0; j < 6; j++)
            for (int p = 0; p < 4; p++) {
                float s = r % 2 ? 0.75f : -3.0f;
                double want = p == pairs[j][0] ? fp8_reference((uint8_t)r) * s
                              : p == pairs[j][1] ? fp8_reference((uint8_t)(255 - r)) * s
                                                 : 0.0;
                float got = out[r * cols + 4 * j + p];
                bool kept = p == pairs[j][0] || p == pairs[j][1];
                bool bad = isnan(want) ? !isnan(got) : (double)got != want;
                if (bad || (!kept && signbit(got) != signbit(s))) /* pruned values are 0 * s: -0 when s < 0 */
                    fail_msg("fp8 byte %lld pair %d position %d: got %g, want %g", (long long)r, j, p, (double)got, want);
            }
    free(raw);
    free(out);
}

/* Every w4 code at each kept slot of each pair, symmetric and asymmetric, with f16
 * scales whose values are written here as literals. */
static void test_w4_every_code_every_pair(void **state)
{
    (void)state;
    static const uint16_t scale_bits[] = {0x3600, 0x3C00, 0xB800, 0x2E66};
    static const float scale_vals[] = {0.375f, 1.0f, -0.5f, 0.0999755859375f};
    for (int sym = 0; sym < 2; sym++) {
        const int64_t rows = 16, cols = 64, g = 32, m = rows * cols / 4, G = cols / g;
        uint64_t meta = (uint64_t)m, scales_at = meta + (uint64_t)m / 2;
        uint64_t zeros_at = scales_at + 2 * (uint64_t)(rows * G);
        uint64_t total = zeros_at + (sym ? 0 : (uint64_t)(rows * G + 1) / 2);
        uint8_t *raw = calloc(total, 1);
        float *out = malloc(sizeof(float) * (size_t)(rows * cols));
        assert_true(raw && out);
        for (int64_t r = 0; r < rows; r++) {
            for (int64_t j = 0; j < cols / 4; j++) {
                uint64_t k = (uint64_t)(r * (cols / 4) + j);
                raw[k] = (uint8_t)(r | (15 - r) << 4);
                put_nibble(raw + meta, k, pairs[j % 6][0] | pairs[j % 6][1] << 2);
            }
            for (int64_t b = 0; b < G; b++) {
                uint64_t gi = (uint64_t)(r * G + b);
                raw[scales_at + 2 * gi] = (uint8_t)scale_bits[gi % 4];
                raw[scales_at + 2 * gi + 1] = (uint8_t)(scale_bits[gi % 4] >> 8);
                if (!sym)
                    put_nibble(raw + zeros_at, gi, (int)((gi * 5 + 3) % 16));
            }
        }
        mp_encoding e;
        assert_int_equal(mp_encoding_parse(sym ? "w4g32-sym-2:4" : "w4g32-2:4", &e), 0);
        mp_enc_layout L;
        mp_encoding_layout(&e, rows, cols, &L);
        assert_int_equal(L.total, total);
        mp_encoding_decode_rows(&e, rows, cols, raw, 0, rows, out);
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = 0; j < cols / 4; j++) {
                uint64_t gi = (uint64_t)(r * G + 4 * j / g);
                int z = sym ? 8 : (int)((gi * 5 + 3) % 16);
                float s = scale_vals[gi % 4];
                for (int p = 0; p < 4; p++) {
                    int q = p == pairs[j % 6][0] ? (int)r : p == pairs[j % 6][1] ? 15 - (int)r : -1;
                    float want = q < 0 ? 0.0f * s : (float)(q - z) * s;
                    float got = out[r * cols + 4 * j + p];
                    if (got != want || signbit(got) != signbit(want))
                        fail_msg("w4 sym %d code %d pair %lld position %d: got %g, want %g", sym, q, (long long)(j % 6), p,
                                 (double)got, (double)want);
                }
            }
        free(raw);
        free(out);
    }
}

/* A dense tensor of random codes in which each group of 4 keeps at most 2 nonzero
 * values (sometimes fewer), in the dense encoding of e. */
static uint8_t *random_sparse_dense(rng *r, const mp_encoding *sparse, int64_t rows, int64_t cols)
{
    mp_encoding de = *sparse;
    de.nm24 = false;
    mp_enc_layout D;
    mp_encoding_layout(&de, rows, cols, &D);
    uint8_t *raw = calloc(D.total, 1);
    assert_non_null(raw);
    for (uint64_t i = D.scales_offset; i < D.scales_offset + D.n_scales * D.scale_bytes; i += D.scale_bytes) {
        float s = (float)(0.01 + uniform01(r)) * (uniform01(r) < 0.3 ? -1.0f : 1.0f); /* sym w4 scales are negative */
        if (D.scale_bytes == 4)
            put_f32(raw + i, s);
        else {
            uint16_t h = mp_f32_to_f16(s);
            raw[i] = (uint8_t)h;
            raw[i + 1] = (uint8_t)(h >> 8);
        }
    }
    for (uint64_t i = D.zeros_offset; i < D.zeros_offset + D.zeros_bytes; i++)
        raw[i] = (uint8_t)(uniform01(r) * 256);
    for (int64_t row = 0; row < rows; row++)
        for (int64_t c = 0; c < cols; c += 4) {
            int keep = (int)(uniform01(r) * 6), how_many = uniform01(r) < 0.1 ? (int)(uniform01(r) * 2) : 2;
            for (int i = 0; i < 4; i++) {
                bool kept = (i == pairs[keep][0] && how_many > 0) || (i == pairs[keep][1] && how_many > 1);
                uint64_t at = (uint64_t)(row * cols + c + i);
                if (sparse->kind == MP_ENC_FP8) {
                    uint8_t b = (uint8_t)(1 + uniform01(r) * 126) | (uniform01(r) < 0.5 ? 0x80 : 0);
                    raw[at] = kept ? b : 0;
                } else {
                    uint64_t gi = (uint64_t)(row * D.groups_per_row + (c + i) / sparse->group);
                    int z = sparse->sym ? 8 : (raw[D.zeros_offset + gi / 2] >> ((gi & 1) ? 4 : 0)) & 15;
                    int q = kept ? (z + 1 + (int)(uniform01(r) * 15)) % 16 : z;
                    raw[at / 2] = (uint8_t)(raw[at / 2] | q << ((at & 1) ? 4 : 0));
                }
            }
        }
    return raw;
}

static const char *const sparse_names[] = {"fp8-tensor-2:4", "fp8-channel-2:4", "fp8-block-2:4", "w4g32-2:4",
                                           "w4g32-sym-2:4",  "w4g64-2:4",       "w4g128-2:4",    "w4g128-sym-2:4"};
#define N_SPARSE (sizeof sparse_names / sizeof sparse_names[0])

/* pack(dense) decodes to the dense values bit for bit; densify(pack(dense)) is dense. */
static void test_pack_densify_round_trip(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_SPARSE; i++) {
        mp_encoding e, de;
        assert_int_equal(mp_encoding_parse(sparse_names[i], &e), 0);
        de = e;
        de.nm24 = false;
        int64_t rows = 131, cols = 256;
        rng r = {100 + i};
        uint8_t *dense = random_sparse_dense(&r, &e, rows, cols);
        mp_enc_layout L, D;
        mp_encoding_layout(&e, rows, cols, &L);
        mp_encoding_layout(&de, rows, cols, &D);
        uint8_t *sp = malloc(L.total), *back = malloc(D.total);
        float *a = malloc(sizeof(float) * (size_t)(rows * cols)), *b = malloc(sizeof(float) * (size_t)(rows * cols));
        assert_true(sp && back && a && b);
        int64_t bad = -7;
        assert_int_equal(mp_nm24_pack(&e, rows, cols, dense, NULL, sp, &bad), 0);
        assert_int_equal(mp_nm24_bad_positions(&e, rows, cols, sp), -1);
        mp_encoding_decode_rows(&de, rows, cols, dense, 0, rows, a);
        mp_encoding_decode_rows(&e, rows, cols, sp, 0, rows, b);
        if (memcmp(a, b, sizeof(float) * (size_t)(rows * cols)) != 0)
            fail_msg("%s: 2:4 decode differs from the dense decode", sparse_names[i]);
        mp_encoding_decode_rows(&e, rows, cols, sp, 57, 60, b);
        assert_memory_equal(a + 57 * cols, b, sizeof(float) * (size_t)(3 * cols));
        mp_nm24_densify(&e, rows, cols, sp, back);
        assert_memory_equal(dense, back, D.total);
        /* a third nonzero value in group 77 is refused, and named */
        uint64_t at = 77 * 4;
        for (int k = 0; k < 4; k++) {
            uint64_t v = at + (uint64_t)k;
            if (e.kind == MP_ENC_FP8)
                dense[v] = 0x38;
            else { /* the group's zero point with its top bit flipped: a nonzero code */
                uint64_t gi = v / (uint64_t)e.group;
                int z = e.sym ? 8 : (dense[D.zeros_offset + gi / 2] >> ((gi & 1) ? 4 : 0)) & 15;
                int shift = (v & 1) ? 4 : 0;
                dense[v / 2] = (uint8_t)((dense[v / 2] & ~(15 << shift)) | (z ^ 8) << shift);
            }
        }
        assert_int_equal(mp_nm24_pack(&e, rows, cols, dense, NULL, sp, &bad), -1);
        assert_int_equal(bad, 77);
        free(dense);
        free(sp);
        free(back);
        free(a);
        free(b);
    }
}

/* Sizes from FORMAT.md's formulas, and the names. */
static void test_layout_and_names(void **state)
{
    (void)state;
    mp_encoding e;
    mp_enc_layout L;
    char buf[64], why[128];
    assert_int_equal(mp_encoding_parse("fp8-2:4", &e), 0);
    assert_true(e.kind == MP_ENC_FP8 && e.fp8_scale == MP_FP8_BLOCK && e.nm24);
    mp_encoding_format(&e, buf, sizeof buf);
    assert_string_equal(buf, "fp8-block-2:4");
    assert_string_equal(mp_encoding_manifest_name(&e), "fp8_e4m3_2:4");
    mp_encoding_layout(&e, 3, 12, &L); /* m = 9 groups: 18 code bytes, 5 position bytes, pad to 24, 1 scale */
    assert_int_equal(L.meta_offset, 18);
    assert_int_equal(L.data_bytes, 23);
    assert_int_equal(L.scales_offset, 24);
    assert_int_equal(L.total, 28);
    assert_int_equal(mp_encoding_parse("w4g64-sym-2:4", &e), 0);
    assert_true(e.kind == MP_ENC_W4 && e.group == 64 && e.sym && e.nm24);
    mp_encoding_format(&e, buf, sizeof buf);
    assert_string_equal(buf, "w4g64-sym-2:4");
    assert_string_equal(mp_encoding_manifest_name(&e), "w4_2:4");
    mp_encoding_layout(&e, 5, 128, &L); /* m = 160: 160 code bytes, 80 position bytes, 10 f16 scales */
    assert_int_equal(L.scales_offset, 240);
    assert_int_equal(L.total, 260);
    assert_int_equal(mp_encoding_parse("w4g64-2:4", &e), 0);
    mp_encoding_layout(&e, 5, 128, &L);
    assert_int_equal(L.total, 265);
    assert_int_equal(mp_encoding_parse("w4g64", &e), 0);
    assert_false(e.nm24);
    assert_int_not_equal(mp_encoding_parse("q4_0-2:4", &e), 0);
    assert_int_not_equal(mp_encoding_parse("bf16-2:4", &e), 0);
    assert_int_not_equal(mp_encoding_parse("w4g64-2:4-sym", &e), 0);
    assert_int_equal(mp_encoding_parse("fp8-tensor-2:4", &e), 0);
    assert_non_null(mp_encoding_unfit(&e, 4, 10, why, sizeof why));
    assert_null(mp_encoding_unfit(&e, 4, 12, why, sizeof why));
}

/* Increasing positions are required; verify finds the first group that breaks it. */
static void test_bad_positions_found(void **state)
{
    (void)state;
    mp_encoding e;
    assert_int_equal(mp_encoding_parse("fp8-tensor-2:4", &e), 0);
    mp_enc_layout L;
    mp_encoding_layout(&e, 2, 8, &L);
    uint8_t raw[32] = {0};
    raw[L.meta_offset] = 0x4 | (0xd << 4); /* group 0: (0, 1); group 1: (1, 3) */
    raw[L.meta_offset + 1] = 0x9 | (0x6 << 4); /* group 2: (1, 2); group 3: (2, 1) - bad */
    assert_int_equal(mp_nm24_bad_positions(&e, 2, 8, raw), 3);
    raw[L.meta_offset + 1] = 0x9 | (0xe << 4);
    assert_int_equal(mp_nm24_bad_positions(&e, 2, 8, raw), -1);
}

/* ---- kernels ---- */

static const char *const isas[] = {"portable", "avx2", "avx512", "neon"};

/* EXACT on a 2:4 tensor gives the very bits EXACT gives on its dense twin (the same
 * f32 weights through the same sums), at every ISA; both modes are within f32 rounding
 * of a double-precision product of the decoded weights; 1 and 2 threads agree. */
static void test_kernels_on_sparse(void **state)
{
    (void)state;
    const int64_t rows = 67, cols = 384;
    for (size_t i = 0; i < N_SPARSE; i++) {
        mp_encoding e;
        assert_int_equal(mp_encoding_parse(sparse_names[i], &e), 0);
        rng r = {900 + i};
        uint8_t *dense = random_sparse_dense(&r, &e, rows, cols);
        mp_enc_layout L;
        mp_encoding_layout(&e, rows, cols, &L);
        uint8_t *sp = malloc(L.total);
        int64_t bad;
        assert_non_null(sp);
        assert_int_equal(mp_nm24_pack(&e, rows, cols, dense, NULL, sp, &bad), 0);
        mp_packed ws = {e, rows, cols, sp}, wd = ws;
        wd.enc.nm24 = false;
        wd.raw = dense;
        float *dec = malloc(sizeof(float) * (size_t)(rows * cols));
        assert_non_null(dec);
        mp_encoding_decode_rows(&e, rows, cols, sp, 0, rows, dec);
        for (int64_t n = 1; n <= 70; n += 69) {
            float *x = malloc(sizeof(float) * (size_t)(n * cols));
            float *ys = malloc(sizeof(float) * (size_t)(n * rows)), *yd = malloc(sizeof(float) * (size_t)(n * rows));
            float *y1 = malloc(sizeof(float) * (size_t)(n * rows));
            double *xq = malloc(sizeof(double) * (size_t)cols);
            assert_true(x && ys && yd && y1 && xq);
            fill_gaussian(&r, x, n * cols, 1.0);
            for (size_t k = 0; k < sizeof isas / sizeof isas[0]; k++) {
                if (mp_kern_force_isa(isas[k]) != 0)
                    continue;
                for (int mode = 0; mode < 2; mode++) {
                    omp_set_num_threads(2);
                    mp_kern_matmul(&ws, x, n, ys, (mp_kern_mode)mode);
                    omp_set_num_threads(1);
                    mp_kern_matmul(&ws, x, n, y1, (mp_kern_mode)mode);
                    omp_set_num_threads(2);
                    if (memcmp(ys, y1, sizeof(float) * (size_t)(n * rows)) != 0)
                        fail_msg("%s %s mode %d n=%lld: 1 and 2 threads differ", sparse_names[i], isas[k], mode,
                                 (long long)n);
                    /* exact, and FAST w4 through the portable tiles (which the dense twin
                     * takes too), give the dense twin's bits */
                    bool twin = mode == MP_KERN_EXACT || (e.kind == MP_ENC_W4 && strcmp(isas[k], "portable") == 0);
                    if (twin) {
                        mp_kern_matmul(&wd, x, n, yd, (mp_kern_mode)mode);
                        if (memcmp(ys, yd, sizeof(float) * (size_t)(n * rows)) != 0)
                            fail_msg("%s %s mode %d n=%lld: differs from its dense twin", sparse_names[i], isas[k],
                                     mode, (long long)n);
                    }
                    /* FAST w4 multiplies integer codes with q8 activations: the oracle
                     * takes the same quantized x, and the bound is test_kernels.c's */
                    bool q8 = mode == MP_KERN_FAST && e.kind == MP_ENC_W4;
                    for (int64_t t = 0; t < n; t++) {
                        for (int64_t c = 0; c < cols; c++)
                            xq[c] = x[t * cols + c];
                        if (q8)
                            quantize_like_q8(x + t * cols, cols, xq);
                        for (int64_t o = 0; o < rows; o++) {
                            double want = 0, mag = 0;
                            for (int64_t c = 0; c < cols; c++) {
                                want += (double)dec[o * cols + c] * xq[c];
                                mag += fabs((double)dec[o * cols + c] * xq[c]);
                            }
                            double got = ys[t * rows + o];
                            double tol = q8 ? (double)(cols / 32 + 10) * 0x1p-22 * mag : (double)(cols + 1) * 0x1p-24 * mag;
                            if (!(fabs(got - want) <= tol))
                                fail_msg("%s %s mode %d: y[%lld,%lld] = %.9g, want %.9g", sparse_names[i], isas[k], mode,
                                         (long long)t, (long long)o, got, want);
                        }
                    }
                }
            }
            mp_kern_force_isa(NULL);
            free(x);
            free(ys);
            free(yd);
            free(y1);
            free(xq);
        }
        float *xv = malloc(sizeof(float) * (size_t)rows), *yv = malloc(sizeof(float) * (size_t)cols);
        assert_true(xv && yv);
        fill_gaussian(&r, xv, rows, 1.0);
        mp_kern_matvec_t(&ws, xv, yv);
        for (int64_t c = 0; c < cols; c++) {
            double want = 0, mag = 0;
            for (int64_t o = 0; o < rows; o++) {
                want += (double)dec[o * cols + c] * xv[o];
                mag += fabs((double)dec[o * cols + c] * xv[o]);
            }
            if (fabs(yv[c] - want) > (double)(rows + 1) * 0x1p-24 * mag)
                fail_msg("%s matvec_t[%lld] = %.9g, want %.9g", sparse_names[i], (long long)c, (double)yv[c], want);
        }
        free(xv);
        free(yv);
        free(dec);
        free(dense);
        free(sp);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fp8_every_byte_every_pair), cmocka_unit_test(test_w4_every_code_every_pair),
        cmocka_unit_test(test_pack_densify_round_trip),  cmocka_unit_test(test_layout_and_names),
        cmocka_unit_test(test_bad_positions_found),      cmocka_unit_test(test_kernels_on_sparse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
