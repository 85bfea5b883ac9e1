/* Tests for the llama.cpp grids: formats/ggml_blocks.c (block layouts and decoding) and
 * quant/grid.c, quant/gptq.c on grids. Decoded values are checked against expressions
 * written here from ggml's block definitions, code by code and scale by scale over every
 * value a field can hold; the quantizers against their own promises (the value they
 * report is the value the pack decodes, search never loses to rounding, GPTQ's output
 * error is below plain rounding's). The NumPy GGUF reader (tests/ref/ggml_dequant.py)
 * checks the same decoding independently on exported files. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/dtype.h"
#include "../../formats/ggml_blocks.h"
#include "../../quant/gptq.h"
#include "../../quant/grid.h"
#include "random.h"

static const int8_t iq4_table[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void expect_same(float got, float want)
{
    if (memcmp(&got, &want, 4) != 0)
        fail_msg("decoded %.9g, expected %.9g", (double)got, (double)want);
}

/* q8_0: every int8 code, at scales of several magnitudes (subnormal f16 included). */
static void test_q8_0_every_code(void **state)
{
    (void)state;
    const uint16_t scales[] = {0x3c00, 0x2e66, 0xb800, 0x0001, 0x7bff};
    uint8_t b[34];
    float y[32];
    for (size_t s = 0; s < sizeof scales / sizeof *scales; s++)
        for (int base = 0; base < 256; base += 32) {
            put16(b, scales[s]);
            for (int j = 0; j < 32; j++)
                b[2 + j] = (uint8_t)(base + j);
            mp_ggml_decode_blocks(MP_ENC_Q8_0, b, 1, y);
            for (int j = 0; j < 32; j++)
                expect_same(y[j], (float)(int8_t)(base + j) * mp_f16_to_f32(scales[s]));
        }
}

/* q4_0, q4_1, iq4_nl: every nibble in both halves of a byte. */
static void test_32_blocks_every_nibble(void **state)
{
    (void)state;
    uint8_t b[20];
    float y[32];
    float d = mp_f16_to_f32(0x3555), m = mp_f16_to_f32(0xc123);
    for (int q = 0; q < 16; q++) {
        put16(b, 0x3555);
        put16(b + 2, 0xc123);
        for (int j = 0; j < 16; j++) /* low nibble q, high nibble 15 - q */
            b[2 + j] = b[4 + j] = (uint8_t)(q | (15 - q) << 4);
        mp_ggml_decode_blocks(MP_ENC_Q4_0, b, 1, y);
        expect_same(y[3], (float)(q - 8) * d);
        expect_same(y[19], (float)(15 - q - 8) * d);
        mp_ggml_decode_blocks(MP_ENC_IQ4_NL, b, 1, y);
        expect_same(y[5], d * (float)iq4_table[q]);
        expect_same(y[21], d * (float)iq4_table[15 - q]);
        put16(b, 0x3555);
        put16(b + 2, 0xc123);
        for (int j = 0; j < 16; j++)
            b[4 + j] = (uint8_t)(q | (15 - q) << 4);
        mp_ggml_decode_blocks(MP_ENC_Q4_1, b, 1, y);
        expect_same(y[0], (float)q * d + m);
        expect_same(y[31], (float)(15 - q) * d + m);
    }
}

/* The 6-bit scales and mins of q4_k / q5_k: every (scale, min) pair in every sub-block
 * survives packing, and the unpacking follows ggml's bit positions. */
static void test_k4_scales_every_pair(void **state)
{
    (void)state;
    for (int j = 0; j < 8; j++)
        for (int v = 0; v < 64 * 64; v++) {
            uint8_t sc[8], m[8], packed[12];
            for (int k = 0; k < 8; k++) {
                sc[k] = (uint8_t)((k * 11 + 5) & 63);
                m[k] = (uint8_t)((k * 23 + 7) & 63);
            }
            sc[j] = (uint8_t)(v & 63);
            m[j] = (uint8_t)(v >> 6);
            mp_ggml_k4_pack_scales(sc, m, packed);
            for (int k = 0; k < 8; k++) {
                uint8_t a, b;
                mp_ggml_k4_scale_min(k, packed, &a, &b);
                assert_int_equal(a, sc[k]);
                assert_int_equal(b, m[k]);
                /* ggml-common.h: scales[0..3] low 6 bits = sc[0..3], [4..7] = m[0..3];
                 * scales[8..11] = sc[4..7] low nibble | m[4..7] low nibble << 4 */
                if (k < 4) {
                    assert_int_equal(packed[k] & 63, sc[k]);
                    assert_int_equal(packed[k + 4] & 63, m[k]);
                } else {
                    assert_int_equal(packed[k + 4] & 15, sc[k] & 15);
                    assert_int_equal(packed[k + 4] >> 4, m[k] & 15);
                    assert_int_equal(packed[k - 4] >> 6, sc[k] >> 4);
                    assert_int_equal(packed[k] >> 6, m[k] >> 4);
                }
            }
        }
}

/* q4_k and q5_k: each code at each position of a block decodes to d*sc*q - dmin*m. */
static void test_qk_every_code(void **state)
{
    (void)state;
    for (int five = 0; five < 2; five++) {
        mp_enc_kind k = five ? MP_ENC_Q5_K : MP_ENC_Q4_K;
        int levels = five ? 32 : 16;
        for (int q = 0; q < levels; q++) {
            uint8_t b[176] = {0}, sc[8], m[8];
            float y[256];
            for (int s = 0; s < 8; s++) {
                sc[s] = (uint8_t)(8 * s + 1);
                m[s] = (uint8_t)(63 - 5 * s);
            }
            put16(b, 0x2a00);
            put16(b + 2, 0x1e00);
            mp_ggml_k4_pack_scales(sc, m, b + 4);
            uint8_t *qh = b + 16, *ql = b + (five ? 48 : 16);
            for (int i = 0; i < 256; i++) { /* value i gets code (q + i) % levels */
                int code = (q + i) % levels, kk = i / 64, hi = (i / 32) % 2, l = i % 32;
                ql[32 * kk + l] |= (uint8_t)((code & 15) << (4 * hi));
                if (five && code >= 16)
                    qh[l] |= (uint8_t)(1 << (2 * kk + hi));
            }
            mp_ggml_decode_blocks(k, b, 1, y);
            float d = mp_f16_to_f32(0x2a00), dmin = mp_f16_to_f32(0x1e00);
            for (int i = 0; i < 256; i++) {
                int s = i / 32;
                float d1 = d * (float)sc[s], m1 = dmin * (float)m[s];
                expect_same(y[i], d1 * (float)((q + i) % levels) - m1);
            }
        }
    }
}

/* q6_k: each 6-bit code at each position, int8 scales of both signs. */
static void test_q6_k_every_code(void **state)
{
    (void)state;
    for (int q = 0; q < 64; q++) {
        uint8_t b[210] = {0};
        float y[256];
        for (int i = 0; i < 256; i++) {
            int code = (q + 7 * i) % 64, n = i / 128, r = i % 128, quarter = r / 32, l = r % 32;
            uint8_t *ql = b + 64 * n, *qh = b + 128 + 32 * n;
            ql[l + 32 * (quarter % 2)] |= (uint8_t)((code & 15) << (4 * (quarter / 2)));
            qh[l] |= (uint8_t)((code >> 4) << (2 * quarter));
        }
        for (int s = 0; s < 16; s++)
            b[192 + s] = (uint8_t)(int8_t)(s * 17 - 128);
        put16(b + 208, 0x1c00);
        mp_ggml_decode_blocks(MP_ENC_Q6_K, b, 1, y);
        float d = mp_f16_to_f32(0x1c00);
        for (int i = 0; i < 256; i++) {
            float sc = (float)(int8_t)(uint8_t)((i / 16) * 17 - 128);
            expect_same(y[i], d * sc * (float)((q + 7 * i) % 64 - 32));
        }
    }
}

/* iq4_xs: every 6-bit sub-block scale and every code. */
static void test_iq4_xs_every_scale(void **state)
{
    (void)state;
    for (int ls0 = 0; ls0 < 64; ls0++) {
        uint8_t b[136] = {0};
        float y[256];
        int ls[8];
        unsigned high = 0;
        put16(b, 0x3800);
        for (int j = 0; j < 8; j++) {
            ls[j] = (ls0 + 13 * j) % 64;
            b[4 + j / 2] |= (uint8_t)((ls[j] & 15) << (4 * (j % 2)));
            high |= (unsigned)(ls[j] >> 4) << (2 * j);
        }
        put16(b + 2, (uint16_t)high);
        for (int i = 0; i < 256; i++) {
            int j = i / 32, r = i % 32, code = (ls0 + i) % 16;
            b[8 + 16 * j + r % 16] |= (uint8_t)(code << (4 * (r / 16)));
        }
        mp_ggml_decode_blocks(MP_ENC_IQ4_XS, b, 1, y);
        for (int i = 0; i < 256; i++) {
            float dl = mp_f16_to_f32(0x3800) * (float)(ls[i / 32] - 32);
            expect_same(y[i], dl * (float)iq4_table[(ls0 + i) % 16]);
        }
    }
}

/* The quantizer: what it says a code decodes to is what the block decodes to, and the
 * MSE search never has a larger weighted error than rounding, nor HQQ a larger lp
 * error (p 0.7). */
static void test_fit_consistent_and_search_wins(void **state)
{
    (void)state;
    rng r = {0x9e3779b97f4a7c15ULL};
    float x[256], w[256], y[256];
    uint8_t codes[256], bytes[256];
    for (int k = MP_ENC_Q8_0; k <= MP_ENC_IQ4_XS; k++) {
        int n = mp_ggml_block_values((mp_enc_kind)k);
        for (int trial = 0; trial < 200; trial++) {
            fill_gaussian(&r, x, n, trial % 2 ? 0.02 : 3.0);
            if (trial % 5 == 0)
                x[trial % n] *= 12.0f; /* an outlier */
            for (int i = 0; i < n; i++)
                w[i] = (float)(0.1 + uniform01(&r));
            double err[3], lp[3];
            for (int search = 0; search < 3; search++) {
                mp_grid_block b;
                mp_w4_method method = search == 0 ? MP_W4_RTN : search == 1 ? MP_W4_MSE : MP_W4_HQQ;
                mp_grid_fit((mp_enc_kind)k, x, method == MP_W4_HQQ ? NULL : w, method, &b);
                for (int i = 0; i < n; i++)
                    codes[i] = mp_grid_code(&b, i, x[i]);
                mp_grid_pack(&b, codes, bytes);
                mp_ggml_decode_blocks((mp_enc_kind)k, bytes, 1, y);
                err[search] = lp[search] = 0;
                for (int i = 0; i < n; i++) {
                    expect_same(y[i], mp_grid_value(&b, i, codes[i]));
                    err[search] += (double)w[i] * (y[i] - x[i]) * (y[i] - x[i]);
                    lp[search] += pow(fabs((double)y[i] - x[i]), 0.7);
                }
            }
            if (lp[2] > lp[0] * (1 + 1e-6))
                fail_msg("%s trial %d: hqq lp error %g above rounding's %g", mp_encoding_kind_name((mp_enc_kind)k),
                         trial, lp[2], lp[0]);
            if (err[1] > err[0] * (1 + 1e-5))
                fail_msg("%s trial %d: search error %g above rounding's %g",
                         mp_encoding_kind_name((mp_enc_kind)k), trial, err[1], err[0]);
        }
    }
}

/* Non-finite and all-zero blocks never trap and decode to finite values. */
static void test_fit_odd_blocks(void **state)
{
    (void)state;
    float x[256], y[256];
    uint8_t codes[256], bytes[256];
    for (int k = MP_ENC_Q8_0; k <= MP_ENC_IQ4_XS; k++) {
        int n = mp_ggml_block_values((mp_enc_kind)k);
        for (int variant = 0; variant < 3; variant++) {
            for (int i = 0; i < n; i++)
                x[i] = variant == 0 ? 0.0f : (float)(i % 7) - 3.0f;
            if (variant == 2) {
                x[1] = NAN;
                x[2] = INFINITY;
            }
            mp_grid_block b;
            mp_grid_fit((mp_enc_kind)k, x, NULL, variant == 1 ? MP_W4_HQQ : MP_W4_MSE, &b);
            for (int i = 0; i < n; i++)
                codes[i] = mp_grid_code(&b, i, x[i]);
            mp_grid_pack(&b, codes, bytes);
            mp_ggml_decode_blocks((mp_enc_kind)k, bytes, 1, y);
            for (int i = 0; i < n; i++) {
                assert_true(isfinite(y[i]));
                if (variant == 0)
                    assert_true(y[i] == 0.0f);
            }
        }
    }
}

/* GPTQ on every grid: its reported dequantized values are the block bytes' decoding, and
 * its output error tr(dW H dW^T) on correlated inputs is below plain rounding's. */
static void test_gptq_grids(void **state)
{
    (void)state;
    enum { ROWS = 32, COLS = 256, N = 1024 };
    rng r = {12345};
    float *W = malloc(sizeof(float) * ROWS * COLS), *X = malloc(sizeof(float) * N * COLS);
    float *dq = malloc(sizeof(float) * ROWS * COLS), *back = malloc(sizeof(float) * ROWS * COLS);
    double *H = calloc((size_t)COLS * COLS, sizeof *H);
    uint8_t *raw = malloc((size_t)ROWS * COLS * 2);
    assert_true(W && X && dq && back && H && raw);
    fill_gaussian(&r, W, ROWS * COLS, 0.05);
    for (int t = 0; t < N; t++) { /* inputs with a shared component: correlated columns */
        double common = gaussian(&r);
        for (int c = 0; c < COLS; c++)
            X[t * COLS + c] = (float)(gaussian(&r) * (1 + c % 5) + 0.8 * common);
    }
    for (int t = 0; t < N; t++)
        for (int a = 0; a < COLS; a++)
            for (int b = 0; b < COLS; b++)
                H[a * COLS + b] += (double)X[t * COLS + a] * X[t * COLS + b];
    for (int k = MP_ENC_Q8_0; k <= MP_ENC_IQ4_XS; k++) {
        mp_encoding e = {.kind = (mp_enc_kind)k};
        mp_gptq_options opt = {.mse_grid = true};
        mp_error err = {0};
        double loss = 0;
        assert_int_equal(mp_gptq_quantize(&e, ROWS, COLS, W, H, &opt, raw, NULL, NULL, dq, &loss, NULL, &err), MP_OK);
        mp_encoding_decode_rows(&e, ROWS, COLS, raw, 0, ROWS, back);
        assert_memory_equal(dq, back, sizeof(float) * ROWS * COLS);
        mp_grid_quantize_rows(e.kind, ROWS, COLS, W, NULL, MP_W4_MSE, raw);
        mp_encoding_decode_rows(&e, ROWS, COLS, raw, 0, ROWS, back);
        double plain = 0;
        for (int i = 0; i < ROWS; i++)
            for (int a = 0; a < COLS; a++)
                for (int b = 0; b < COLS; b++)
                    plain += (double)(back[i * COLS + a] - W[i * COLS + a]) * H[a * COLS + b] *
                             (back[i * COLS + b] - W[i * COLS + b]);
        if (!(loss < 0.9 * plain))
            fail_msg("%s: gptq loss %g not below 0.9 x rounding's %g", mp_encoding_kind_name(e.kind), loss, plain);
    }
    free(W);
    free(X);
    free(dq);
    free(back);
    free(H);
    free(raw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_q8_0_every_code),
        cmocka_unit_test(test_32_blocks_every_nibble),
        cmocka_unit_test(test_k4_scales_every_pair),
        cmocka_unit_test(test_qk_every_code),
        cmocka_unit_test(test_q6_k_every_code),
        cmocka_unit_test(test_iq4_xs_every_scale),
        cmocka_unit_test(test_fit_consistent_and_search_wins),
        cmocka_unit_test(test_fit_odd_blocks),
        cmocka_unit_test(test_gptq_grids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
