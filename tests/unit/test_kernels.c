/* Tests for engine/kern*.c: every encoding, in both modes, on every instruction set
 * this machine runs, against an oracle written here: the weights decoded by
 * mp_encoding_decode_rows and dot products in double precision. EXACT must agree to
 * the f32 rounding of a sum of products; FAST within the error bound of quantizing the
 * activations to int8 per 32 values, derived below. Also: thread-count independence
 * (identical bytes on 1 and 2 threads) and the transposed product. */
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
#include "../../formats/ggml_blocks.h"
#include "q8_oracle.h"
#include "random.h"

static const char *const isas[] = {"portable", "avx2", "avx512", "neon"};
#define N_ISAS 4

typedef struct {
    const char *name; /* mp_encoding_parse spelling */
    int64_t rows, cols;
} shape;

/* Every encoding, with odd row counts, partial fp8 blocks and several widths. */
static const shape shapes[] = {
    {"f32", 37, 200},        {"bf16", 37, 200},       {"f16", 37, 200},         {"fp8-tensor", 37, 200},
    {"fp8-channel", 37, 200}, {"fp8-block", 130, 200}, {"fp8-block", 67, 384},    {"w4g32", 37, 96},
    {"w4g32-sym", 37, 96},   {"w4g64", 37, 320},      {"w4g64-sym", 37, 320},   {"w4g128", 37, 384},
    {"w4g128-sym", 130, 384}, {"q8_0", 37, 96},        {"q4_0", 37, 96},         {"q4_0", 130, 544},
    {"q4_1", 37, 160},       {"iq4_nl", 37, 96},      {"q4_k", 37, 512},        {"q5_k", 37, 512},
    {"q6_k", 37, 512},       {"iq4_xs", 37, 512},     {"q4_k", 5, 256},
};
#define N_SHAPES (sizeof shapes / sizeof shapes[0])

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void random_bytes(rng *r, uint8_t *p, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        p[i] = (uint8_t)(uniform01(r) * 256);
}

/* A scale of random sign and magnitude 0.005 .. 0.05. */
static float random_scale(rng *r)
{
    float s = (float)(0.005 + 0.045 * uniform01(r));
    return uniform01(r) < 0.3 ? -s : s;
}

/* Offsets of the f16 scale fields in one block of a grid. */
static void grid_f16_fields(mp_enc_kind k, int *first, int *count)
{
    *first = k == MP_ENC_Q6_K ? 208 : 0;
    *count = (k == MP_ENC_Q4_1 || k == MP_ENC_Q4_K || k == MP_ENC_Q5_K) ? 2 : 1;
}

/* Valid random bytes of an encoding: random codes, finite random scales. */
static uint8_t *random_tensor(rng *r, const mp_encoding *e, int64_t rows, int64_t cols)
{
    mp_enc_layout L;
    mp_encoding_layout(e, rows, cols, &L);
    uint8_t *raw = malloc(L.total);
    assert_non_null(raw);
    random_bytes(r, raw, L.total);
    uint64_t n = (uint64_t)(rows * cols);
    if (e->kind == MP_ENC_F32)
        for (uint64_t i = 0; i < n; i++) {
            float v = (float)gaussian(r);
            memcpy(raw + 4 * i, &v, 4);
        }
    else if (e->kind == MP_ENC_BF16 || e->kind == MP_ENC_F16)
        for (uint64_t i = 0; i < n; i++) {
            float v = (float)gaussian(r);
            put16(raw + 2 * i, e->kind == MP_ENC_BF16 ? mp_f32_to_bf16(v) : mp_f32_to_f16(v));
        }
    else if (e->kind == MP_ENC_FP8) {
        for (uint64_t i = 0; i < n; i++)
            if ((raw[i] & 0x7f) == 0x7f) /* NaN */
                raw[i] = 0;
        for (uint64_t i = 0; i < L.n_scales; i++) {
            float s = random_scale(r);
            memcpy(raw + L.scales_offset + 4 * i, &s, 4);
        }
    } else if (e->kind == MP_ENC_W4)
        for (uint64_t i = 0; i < L.n_scales; i++)
            put16(raw + L.scales_offset + 2 * i, mp_f32_to_f16(random_scale(r)));
    else {
        int S = mp_ggml_block_bytes(e->kind), first, count;
        grid_f16_fields(e->kind, &first, &count);
        for (uint64_t b = 0; b < L.data_bytes / (uint64_t)S; b++)
            for (int f = 0; f < count; f++)
                put16(raw + b * S + first + 2 * f, mp_f32_to_f16(random_scale(r) * (e->kind == MP_ENC_Q8_0 ? 0.1f : 1)));
    }
    return raw;
}

typedef struct {
    mp_packed w;
    float *dec;  /* the oracle's weights, rows × cols */
    float *bmag; /* |the code-independent part| of each weight (q4_1, q4_k, q5_k), else 0 */
    float *x;    /* n × cols activations */
    int64_t n;
} problem;

/* The weights with every code bit cleared decode to the per-block offset b of
 * w = a·q + b, for the grids that have one: FAST's rounding bound needs its size. */
static void offsets_of(const problem *p, uint8_t *copy, uint64_t total)
{
    mp_enc_kind k = p->w.enc.kind;
    int S = mp_ggml_block_bytes(k), c0 = k == MP_ENC_Q4_1 ? 4 : 16;
    memcpy(copy, p->w.raw, total);
    for (uint64_t b = 0; b < total / (uint64_t)S; b++)
        memset(copy + b * S + c0, 0, (size_t)(S - c0));
    mp_encoding_decode_rows(&p->w.enc, p->w.rows, p->w.cols, copy, 0, p->w.rows, p->bmag);
    for (int64_t i = 0; i < p->w.rows * p->w.cols; i++)
        p->bmag[i] = fabsf(p->bmag[i]);
}

static problem make_problem(const shape *s, int64_t n, uint64_t seed)
{
    rng r = {seed};
    problem p = {.n = n};
    assert_int_equal(mp_encoding_parse(s->name, &p.w.enc), 0);
    p.w.rows = s->rows;
    p.w.cols = s->cols;
    p.w.raw = random_tensor(&r, &p.w.enc, s->rows, s->cols);
    size_t nw = (size_t)(s->rows * s->cols);
    p.dec = malloc(nw * sizeof(float));
    p.bmag = calloc(nw, sizeof(float));
    p.x = malloc((size_t)(n * s->cols) * sizeof(float));
    assert_true(p.dec && p.bmag && p.x);
    mp_encoding_decode_rows(&p.w.enc, s->rows, s->cols, p.w.raw, 0, s->rows, p.dec);
    mp_enc_kind k = p.w.enc.kind;
    if (k == MP_ENC_Q4_1 || k == MP_ENC_Q4_K || k == MP_ENC_Q5_K) {
        mp_enc_layout L;
        mp_encoding_layout(&p.w.enc, s->rows, s->cols, &L);
        uint8_t *copy = malloc(L.total);
        assert_non_null(copy);
        offsets_of(&p, copy, L.total);
        free(copy);
    }
    fill_gaussian(&r, p.x, n * s->cols, 1.0);
    for (int64_t i = 7; i < n * s->cols; i += 61) /* an outlier now and then, as in real activations */
        p.x[i] *= 8;
    return p;
}

static void free_problem(problem *p)
{
    free((void *)p->w.raw);
    free(p->dec);
    free(p->bmag);
    free(p->x);
}

/* The allowed error of output (t, row) in a mode.
 * EXACT: the weights are the oracle's exactly; a sum of k f32 products (FMA or not)
 * in any order is off by at most (k + 1)·2^-24·Σ|w·x|.
 * FAST: x is replaced by d·round(x/d) per block of 32 with d = max|x|/127, an error of
 * at most d/2 per value, so Σ_b d_b/2·Σ_b|w| (with a 2^-20 relative allowance for
 * the f32 rounding of x/d). The integer sums are exact; what remains is the f32
 * rounding of at most 6 operations per block and of the sum over blocks, on terms no
 * larger than (|a·q| + |b|)·|x_q| ≤ (|w| + 2|b|)·(|x| + d/2), plus the rounding of
 * the oracle's own decoded w (one f32 rounding of a·q + b). */
static double allowed(const problem *p, int64_t t, int64_t row, mp_kern_mode mode)
{
    const float *w = p->dec + row * p->w.cols, *bm = p->bmag + row * p->w.cols, *x = p->x + t * p->w.cols;
    int64_t cols = p->w.cols;
    double mag = 0, quant = 0;
    for (int64_t j = 0; j < cols; j += 32) {
        double amax = 0, wsum = 0;
        int64_t end = j + 32 < cols ? j + 32 : cols;
        for (int64_t i = j; i < end; i++)
            amax = fmax(amax, fabs(x[i]));
        double half = mode == MP_KERN_FAST ? (double)(float)(amax / 127) / 2 : 0;
        for (int64_t i = j; i < end; i++) {
            wsum += fabs(w[i]);
            mag += (fabs(w[i]) + 2 * bm[i]) * (fabs(x[i]) + half);
        }
        quant += half * wsum * (1 + 0x1p-20);
    }
    if (mode == MP_KERN_EXACT)
        return (double)(cols + 1) * 0x1p-24 * mag;
    return quant + (double)(cols / 32 + 10) * 0x1p-22 * mag;
}

static double oracle(const problem *p, int64_t t, int64_t row)
{
    double s = 0;
    for (int64_t c = 0; c < p->w.cols; c++)
        s += (double)p->dec[row * p->w.cols + c] * p->x[t * p->w.cols + c];
    return s;
}

/* FAST against the oracle on the quantized activations: only f32 rounding remains,
 * so a kernel that mishandles a scale, an offset or a code by even 1% fails here
 * although it may hide inside the quantization bound above. */
static void check_fast_tight(const problem *p, const float *y, const char *what)
{
    double *xq = malloc((size_t)p->w.cols * sizeof(double));
    assert_non_null(xq);
    for (int64_t t = 0; t < p->n; t++) {
        quantize_like_q8(p->x + t * p->w.cols, p->w.cols, xq);
        for (int64_t r = 0; r < p->w.rows; r++) {
            const float *w = p->dec + r * p->w.cols, *bm = p->bmag + r * p->w.cols;
            double want = 0, mag = 0;
            for (int64_t c = 0; c < p->w.cols; c++) {
                want += (double)w[c] * xq[c];
                mag += (fabs(w[c]) + 2 * bm[c]) * fabs(xq[c]);
            }
            double got = y[t * p->w.rows + r], tol = (double)(p->w.cols / 32 + 10) * 0x1p-22 * mag;
            if (!(fabs(got - want) <= tol))
                fail_msg("%s: token %lld row %lld: %.9g, oracle on quantized x %.9g, allowed error %.3g", what,
                         (long long)t, (long long)r, got, want, tol);
        }
    }
    free(xq);
}

static void check_against_oracle(const problem *p, const float *y, mp_kern_mode mode, const char *what)
{
    for (int64_t t = 0; t < p->n; t++)
        for (int64_t r = 0; r < p->w.rows; r++) {
            double want = oracle(p, t, r), got = y[t * p->w.rows + r], tol = allowed(p, t, r, mode);
            if (!(fabs(got - want) <= tol))
                fail_msg("%s: token %lld row %lld: %.9g, oracle %.9g, allowed error %.3g", what, (long long)t,
                         (long long)r, got, want, tol);
        }
}

/* The encodings FAST computes with integer products (the others run the exact kernel). */
static int fast_kind(mp_enc_kind k)
{
    return k == MP_ENC_W4 || (mp_ggml_is_grid(k) && k != MP_ENC_Q6_K);
}

static void check_all_isas(mp_kern_mode mode)
{
    static const int64_t ns[] = {1, 3, 70};
    for (size_t si = 0; si < N_SHAPES; si++)
        for (size_t ni = 0; ni < 3; ni++) {
            problem p = make_problem(&shapes[si], ns[ni], 1000 + si * 7 + ni);
            size_t ny = (size_t)(p.n * p.w.rows);
            float *y = malloc(ny * sizeof(float)), *ref = malloc(ny * sizeof(float));
            assert_true(y && ref);
            assert_int_equal(mp_kern_force_isa("portable"), 0);
            mp_kern_matmul(&p.w, p.x, p.n, ref, mode);
            for (int i = 0; i < N_ISAS; i++) {
                if (mp_kern_force_isa(isas[i]) != 0)
                    continue;
                memset(y, 0xff, ny * sizeof(float));
                mp_kern_matmul(&p.w, p.x, p.n, y, mode);
                char what[96];
                snprintf(what, sizeof what, "%s %s n=%lld %s", shapes[si].name, isas[i], (long long)p.n,
                         mode == MP_KERN_FAST ? "fast" : "exact");
                check_against_oracle(&p, y, mode, what);
                if (mode == MP_KERN_FAST && fast_kind(p.w.enc.kind))
                    check_fast_tight(&p, y, what);
                /* both within the oracle's bound, so within twice it of each other */
                for (size_t k = 0; k < ny; k++)
                    if (!(fabs((double)y[k] - ref[k]) <= 2 * allowed(&p, (int64_t)k / p.w.rows, (int64_t)k % p.w.rows, mode)))
                        fail_msg("%s: output %zu %.9g, portable %.9g", what, k, (double)y[k], (double)ref[k]);
            }
            mp_kern_force_isa(NULL);
            free(y);
            free(ref);
            free_problem(&p);
        }
}

static void test_exact_every_encoding_every_isa(void **state)
{
    (void)state;
    check_all_isas(MP_KERN_EXACT);
}

static void test_fast_every_encoding_every_isa(void **state)
{
    (void)state;
    check_all_isas(MP_KERN_FAST);
}

/* EXACT uses every weight exactly as mp_encoding_decode_rows decodes it: with the
 * identity as activations (token t = unit vector e_t) every output is one weight times
 * 1 plus zeros, so y must equal the decoded matrix transposed, value for value. */
static void test_exact_decodes_bit_for_bit(void **state)
{
    (void)state;
    for (size_t si = 0; si < N_SHAPES; si++) {
        problem p = make_problem(&shapes[si], shapes[si].cols, 3000 + si);
        memset(p.x, 0, (size_t)(p.n * p.w.cols) * sizeof(float));
        for (int64_t t = 0; t < p.n; t++)
            p.x[t * p.w.cols + t] = 1;
        float *y = malloc((size_t)(p.n * p.w.rows) * sizeof(float));
        assert_non_null(y);
        for (int i = 0; i < N_ISAS; i++) {
            if (mp_kern_force_isa(isas[i]) != 0)
                continue;
            mp_kern_matmul(&p.w, p.x, p.n, y, MP_KERN_EXACT);
            for (int64_t t = 0; t < p.n; t++)
                for (int64_t r = 0; r < p.w.rows; r++)
                    if (y[t * p.w.rows + r] != p.dec[r * p.w.cols + t])
                        fail_msg("%s %s: weight [%lld, %lld] used as %.9g, decodes to %.9g", shapes[si].name, isas[i],
                                 (long long)r, (long long)t, (double)y[t * p.w.rows + r],
                                 (double)p.dec[r * p.w.cols + t]);
        }
        mp_kern_force_isa(NULL);
        free(y);
        free_problem(&p);
    }
}

/* The same bytes on 1 and 2 threads, with enough rows and tokens for several tiles. */
static void test_thread_count_independent(void **state)
{
    (void)state;
    static const char *const names[] = {"q4_0", "w4g128", "q4_k", "q6_k", "bf16", "fp8-block", "iq4_xs"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        for (int mode = 0; mode < 2; mode++)
            for (int64_t n = 1; n <= 130; n += 129) {
                shape s = {names[i], 301, 512};
                problem p = make_problem(&s, n, 77 + i);
                size_t ny = (size_t)(n * s.rows);
                float *y1 = malloc(ny * sizeof(float)), *y2 = malloc(ny * sizeof(float));
                assert_true(y1 && y2);
                omp_set_num_threads(1);
                mp_kern_matmul(&p.w, p.x, n, y1, (mp_kern_mode)mode);
                omp_set_num_threads(2);
                mp_kern_matmul(&p.w, p.x, n, y2, (mp_kern_mode)mode);
                if (memcmp(y1, y2, ny * sizeof(float)) != 0)
                    fail_msg("%s mode %d n=%lld: 1 and 2 threads differ", names[i], mode, (long long)n);
                free(y1);
                free(y2);
                free_problem(&p);
            }
}

static void test_matvec_t(void **state)
{
    (void)state;
    static const shape ts[] = {{"q4_0", 70, 96}, {"w4g64", 37, 320}, {"fp8-block", 130, 200}, {"bf16", 37, 200},
                               {"q6_k", 9, 512}, {"f32", 3, 304}};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
        problem p = make_problem(&ts[i], 1, 500 + i);
        rng r = {99};
        float *xr = malloc((size_t)ts[i].rows * sizeof(float)), *y = malloc((size_t)ts[i].cols * sizeof(float));
        assert_true(xr && y);
        fill_gaussian(&r, xr, ts[i].rows, 1.0);
        mp_kern_matvec_t(&p.w, xr, y);
        for (int64_t c = 0; c < ts[i].cols; c++) {
            double want = 0, mag = 0;
            for (int64_t row = 0; row < ts[i].rows; row++) {
                double prod = (double)xr[row] * p.dec[row * ts[i].cols + c];
                want += prod;
                mag += fabs(prod);
            }
            double tol = (double)(ts[i].rows + 1) * 0x1p-24 * mag;
            if (!(fabs(y[c] - want) <= tol))
                fail_msg("%s column %lld: %.9g, oracle %.9g (allowed %.3g)", ts[i].name, (long long)c, (double)y[c],
                         want, tol);
        }
        free(xr);
        free(y);
        free_problem(&p);
    }
}

static void test_isa_choice(void **state)
{
    (void)state;
    const char *auto_isa = mp_kern_isa();
    int known = 0;
    for (int i = 0; i < N_ISAS; i++)
        known |= strcmp(auto_isa, isas[i]) == 0;
    assert_true(known);
    assert_int_equal(mp_kern_force_isa("portable"), 0);
    assert_string_equal(mp_kern_isa(), "portable");
    assert_int_equal(mp_kern_force_isa("sse9"), -1);
    assert_string_equal(mp_kern_isa(), "portable");
    assert_int_equal(mp_kern_force_isa(NULL), 0);
    assert_string_equal(mp_kern_isa(), auto_isa);
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
        assert_int_equal(mp_kern_force_isa("avx2"), 0);
    mp_kern_force_isa(NULL);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_isa_choice),
        cmocka_unit_test(test_exact_every_encoding_every_isa),
        cmocka_unit_test(test_exact_decodes_bit_for_bit),
        cmocka_unit_test(test_fast_every_encoding_every_isa),
        cmocka_unit_test(test_thread_count_independent),
        cmocka_unit_test(test_matvec_t),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
