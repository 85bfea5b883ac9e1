/* Tests for core/dtype: every conversion is checked against values derived in
 * this file from the format definitions (bit layouts, bias, special codes), never
 * against the library's own code. Decoders are checked on every bit pattern;
 * encoders against a brute-force nearest search over all representable values. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/dtype.h"

/* ---- mismatch reporting: print the first few, count all, fail at the end ---- */

enum { MAX_REPORTS = 8 };

typedef struct {
    const char *what;
    unsigned long count;
} mismatches;

static void report(mismatches *mm, const char *fmt, ...)
{
    if (mm->count++ >= MAX_REPORTS)
        return;
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    print_message("%s: %s\n", mm->what, line);
}

static void assert_no_mismatches(const mismatches *mm)
{
    if (mm->count)
        print_message("%s: %lu mismatches in total\n", mm->what, mm->count);
    assert_int_equal(mm->count, 0);
}

/* ---- float bits ---- */

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float float_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* A decoded value matches the expected one when the bits are identical (so -0 is
 * told from +0); any NaN matches an expected NaN, as the contract fixes no payload. */
static int same_value(float got, double want)
{
    if (isnan(want))
        return isnan(got);
    return bits_of(got) == bits_of((float)want);
}

/* ---- the formats, described by their definitions ---- */

typedef enum {
    SPECIALS_IEEE, /* all-ones exponent: inf (m == 0) or NaN */
    SPECIALS_FN,   /* only all-ones exponent and mantissa is NaN, no inf (e4m3fn) */
    SPECIALS_NONE  /* every code is finite (fp4 e2m1) */
} specials;

typedef enum { OVERFLOW_TO_INF, OVERFLOW_SATURATES } overflow;

typedef struct {
    const char *name;
    int ebits, mbits, bias;
    specials spec;
    overflow ovf;
    uint32_t nan_code; /* what the encoder must give for a positive NaN */
    float (*decode)(uint32_t code);
    uint32_t (*encode)(float f);
} minifloat;

/* Adapters so one checker can drive every library conversion. */
static float lib_f16_dec(uint32_t c) { return mp_f16_to_f32((uint16_t)c); }
static float lib_bf16_dec(uint32_t c) { return mp_bf16_to_f32((uint16_t)c); }
static float lib_e4m3_dec(uint32_t c) { return mp_fp8_e4m3_to_f32((uint8_t)c); }
static float lib_e5m2_dec(uint32_t c) { return mp_fp8_e5m2_to_f32((uint8_t)c); }
static float lib_fp4_dec(uint32_t c) { return mp_fp4_e2m1_to_f32((uint8_t)c); }
static uint32_t lib_f16_enc(float f) { return mp_f32_to_f16(f); }
static uint32_t lib_bf16_enc(float f) { return mp_f32_to_bf16(f); }
static uint32_t lib_e4m3_enc(float f) { return mp_f32_to_fp8_e4m3(f); }
static uint32_t lib_e5m2_enc(float f) { return mp_f32_to_fp8_e5m2(f); }
static uint32_t lib_fp4_enc(float f) { return mp_f32_to_fp4_e2m1(f); }

static const minifloat F16 = {"f16", 5, 10, 15, SPECIALS_IEEE, OVERFLOW_TO_INF, 0x7e00,
                              lib_f16_dec, lib_f16_enc};
static const minifloat BF16 = {"bf16", 8, 7, 127, SPECIALS_IEEE, OVERFLOW_TO_INF, 0x7fc0,
                               lib_bf16_dec, lib_bf16_enc};
static const minifloat E4M3 = {"e4m3", 4, 3, 7, SPECIALS_FN, OVERFLOW_SATURATES, 0x7f,
                               lib_e4m3_dec, lib_e4m3_enc};
static const minifloat E5M2 = {"e5m2", 5, 2, 15, SPECIALS_IEEE, OVERFLOW_TO_INF, 0x7e,
                               lib_e5m2_dec, lib_e5m2_enc};
/* FP4 has no NaN: the contract maps NaN to +-6, i.e. magnitude code 7. */
static const minifloat FP4 = {"fp4", 2, 1, 1, SPECIALS_NONE, OVERFLOW_SATURATES, 0x7,
                              lib_fp4_dec, lib_fp4_enc};

static uint32_t sign_bit(const minifloat *f) { return 1u << (f->ebits + f->mbits); }
static uint32_t code_count(const minifloat *f) { return sign_bit(f) << 1; }
static uint32_t exp_all_ones(const minifloat *f) { return (1u << f->ebits) - 1; }
static uint32_t mant_all_ones(const minifloat *f) { return (1u << f->mbits) - 1; }

/* The value of a magnitude code read as a normal or subnormal number, ignoring
 * special codes: (1 + m/2^M) * 2^(e-bias), or (m/2^M) * 2^(1-bias) when e == 0. */
static double finite_formula(const minifloat *f, uint32_t code)
{
    uint32_t e = (code >> f->mbits) & exp_all_ones(f), m = code & mant_all_ones(f);
    if (e == 0)
        return ldexp(m, 1 - f->bias - f->mbits);
    return ldexp((double)((1u << f->mbits) + m), (int)e - f->bias - f->mbits);
}

static double ref_decode(const minifloat *f, uint32_t code)
{
    uint32_t mag = code & (sign_bit(f) - 1);
    uint32_t e = mag >> f->mbits, m = mag & mant_all_ones(f);
    double v;
    if (f->spec == SPECIALS_IEEE && e == exp_all_ones(f))
        v = m ? NAN : INFINITY;
    else if (f->spec == SPECIALS_FN && mag == sign_bit(f) - 1)
        v = NAN;
    else
        v = finite_formula(f, mag);
    return (code & sign_bit(f)) ? -v : v;
}

static double ref_e8m0_decode(uint32_t b) { return b == 0xff ? NAN : ldexp(1.0, (int)b - 127); }

/* ---- reference encoder: nearest search over the ladder of magnitudes ---- */

/* val[c] is the value of magnitude code c for c = 0..n-1, ascending. For formats
 * that overflow to inf the last entry is the inf code, given the value the next
 * binade would start at (2^(emax+1)): rounding to it by RNE is exactly the IEEE
 * overflow rule, and the inf code's mantissa is 0, i.e. even. */
typedef struct {
    double *val;
    uint32_t n;
} ladder;

static uint32_t top_code(const minifloat *f)
{
    if (f->spec == SPECIALS_IEEE)
        return exp_all_ones(f) << f->mbits; /* the inf code */
    if (f->spec == SPECIALS_FN)
        return sign_bit(f) - 2; /* all ones but the NaN's last bit */
    return sign_bit(f) - 1;
}

static ladder build_ladder(const minifloat *f)
{
    ladder l = {NULL, top_code(f) + 1};
    l.val = malloc(l.n * sizeof *l.val);
    assert_non_null(l.val);
    for (uint32_t c = 0; c < l.n; c++)
        l.val[c] = finite_formula(f, c);
    return l;
}

/* The magnitude code nearest to a >= 0, ties to the even code; anything at or
 * above the top entry gives the top code (inf, or saturation at the max). */
static uint32_t nearest_code(const ladder *l, double a)
{
    if (a >= l->val[l->n - 1])
        return l->n - 1;
    uint32_t lo = 0, hi = l->n - 1; /* val[lo] <= a < val[hi] */
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (l->val[mid] <= a)
            lo = mid;
        else
            hi = mid;
    }
    /* Exact in double: both neighbours have at most 12 significant bits. */
    double midpoint = (l->val[lo] + l->val[hi]) / 2;
    if (a < midpoint)
        return lo;
    if (a > midpoint)
        return hi;
    return (lo & 1) ? hi : lo;
}

static uint32_t ref_encode(const minifloat *f, const ladder *l, float x)
{
    uint32_t sign = signbit(x) ? sign_bit(f) : 0;
    if (isnan(x))
        return sign | f->nan_code;
    return sign | nearest_code(l, fabs((double)x));
}

/* The smallest power of two >= x, clamped to [2^-127, 2^127]; zero, negatives
 * and NaN per the contract. Found by scanning the 255 powers, not by frexp. */
static uint32_t ref_e8m0_encode(float x)
{
    if (isnan(x))
        return 0xff;
    if (x <= 0)
        return 0x00;
    for (uint32_t b = 0; b < 0xfe; b++)
        if (ldexp(1.0, (int)b - 127) >= (double)x)
            return b;
    return 0xfe;
}

/* ---- input sets for the encoders (f32 bit patterns) ---- */

typedef struct {
    uint32_t *v;
    size_t n, cap;
} input_set;

static void add_input(input_set *s, uint32_t u)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 4096;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
        assert_non_null(s->v);
    }
    s->v[s->n++] = u;
}

/* x, its neighbours one f32 ulp away, and the negatives of all three. */
static void add_with_neighbours(input_set *s, float x)
{
    float xs[3] = {x, nextafterf(x, INFINITY), nextafterf(x, -INFINITY)};
    for (int i = 0; i < 3; i++) {
        add_input(s, bits_of(xs[i]));
        add_input(s, bits_of(-xs[i]));
    }
}

static void add_special_inputs(input_set *s)
{
    static const uint32_t specials_bits[] = {
        0x00000000, 0x80000000, 0x7f800000, 0xff800000, /* +-0, +-inf */
        0x7fc00000, 0xffc00000, 0x7f800001, 0xff800001, /* quiet and signalling NaNs */
        0x7fa00000, 0x7fffffff, 0xffffffff, 0x7fc00001, 0xff812345,
        0x7f7fffff, 0xff7fffff, 0x00800000, 0x80800000, /* FLT_MAX, FLT_MIN */
        0x00000001, 0x80000001, 0x007fffff, 0x807fffff, /* subnormal ends */
    };
    for (size_t i = 0; i < sizeof specials_bits / sizeof *specials_bits; i++)
        add_input(s, specials_bits[i]);
    /* Every binade boundary covers far beyond any max and deep into f32 subnormals. */
    for (int e = -149; e <= 127; e++) {
        add_with_neighbours(s, ldexpf(1.0f, e));
        add_with_neighbours(s, ldexpf(1.5f, e));
        add_with_neighbours(s, ldexpf(1.25f, e));
    }
}

/* Fixed-seed xorshift32, so every run tests the same patterns. */
static uint32_t xorshift32(uint32_t *state)
{
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *state = x;
}

enum { RANDOM_INPUTS = 1000000, SWEEP_STRIDE = 4099 };

static void add_random_inputs(input_set *s, size_t count)
{
    uint32_t state = 0x9e3779b9u;
    for (size_t i = 0; i < count; i++)
        add_input(s, xorshift32(&state));
}

/* Every 4099th f32 bit pattern: all exponents and signs, many mantissa phases. */
static void add_strided_sweep(input_set *s)
{
    for (uint64_t u = 0; u <= UINT32_MAX; u += SWEEP_STRIDE)
        add_input(s, (uint32_t)u);
}

/* Adds a value only when f32 holds it exactly, so the tie stays a tie. */
static void add_if_exact(input_set *s, double v)
{
    if ((double)(float)v == v)
        add_with_neighbours(s, (float)v);
}

/* Every representable value and every midpoint between neighbours (including
 * the overflow threshold between the max and inf's 2^(emax+1)), each with its
 * f32 neighbours, and a few values beyond the max. */
static void add_ladder_inputs(input_set *s, const ladder *l)
{
    for (uint32_t c = 0; c < l->n; c++) {
        add_if_exact(s, l->val[c]);
        if (c + 1 < l->n)
            add_if_exact(s, (l->val[c] + l->val[c + 1]) / 2);
    }
    /* Where a saturating format's next step and the midpoint to it would be
     * (e4m3: 464 and 480), then well beyond the top. */
    double top = l->val[l->n - 1], step = top - l->val[l->n - 2];
    double beyond[] = {top + step / 2, top + step, top * 1.5, top * 4, top * 1024};
    for (size_t i = 0; i < sizeof beyond / sizeof *beyond; i++)
        if (beyond[i] <= FLT_MAX)
            add_with_neighbours(s, (float)beyond[i]);
}

static input_set encoder_inputs(const ladder *l, int with_sweep)
{
    input_set s = {0};
    add_special_inputs(&s);
    if (l)
        add_ladder_inputs(&s, l);
    add_random_inputs(&s, RANDOM_INPUTS);
    if (with_sweep)
        add_strided_sweep(&s);
    return s;
}

/* ---- checkers ---- */

static void check_decode_all(const minifloat *f)
{
    mismatches mm = {f->name, 0};
    for (uint32_t c = 0; c < code_count(f); c++) {
        double want = ref_decode(f, c);
        float got = f->decode(c);
        if (!same_value(got, want))
            report(&mm, "decode 0x%04x: got %a (0x%08x), want %a", c, (double)got,
                   bits_of(got), want);
    }
    assert_no_mismatches(&mm);
}

static void check_encode(const minifloat *f, int with_sweep)
{
    mismatches mm = {f->name, 0};
    ladder l = build_ladder(f);
    input_set s = encoder_inputs(&l, with_sweep);
    for (size_t i = 0; i < s.n; i++) {
        float x = float_of(s.v[i]);
        uint32_t want = ref_encode(f, &l, x), got = f->encode(x);
        if (got != want)
            report(&mm, "encode 0x%08x (%a): got 0x%04x, want 0x%04x", s.v[i], (double)x, got,
                   want);
    }
    free(s.v);
    free(l.val);
    assert_no_mismatches(&mm);
}

/* ---- anchors: the reference formulas themselves against published values ---- */

typedef struct {
    uint32_t code;
    double value;
} anchor;

static void check_anchors(const minifloat *f, const anchor *a, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        double v = ref_decode(f, a[i].code);
        if (isnan(a[i].value))
            assert_true(isnan(v));
        else
            assert_true(v == a[i].value && signbit(v) == signbit(a[i].value));
    }
}

static void test_reference_formulas_match_published_values(void **state)
{
    (void)state;
    static const anchor f16[] = {{0x3c00, 1}, {0x7bff, 65504}, {0x0001, 0x1p-24},
                                 {0x0400, 0x1p-14}, {0x8000, -0.0}, {0xc000, -2},
                                 {0x7c00, INFINITY}, {0xfc00, -INFINITY}, {0x7e00, NAN}};
    static const anchor bf16[] = {{0x3f80, 1}, {0x7f7f, 0x1.fep127}, {0x0001, 0x1p-133},
                                  {0x0080, 0x1p-126}, {0x7f80, INFINITY}, {0x7fc0, NAN}};
    static const anchor e4m3[] = {{0x7e, 448}, {0xfe, -448}, {0x01, 0x1p-9}, {0x08, 0x1p-6},
                                  {0x38, 1}, {0x78, 256}, {0x7f, NAN}, {0xff, NAN}};
    static const anchor e5m2[] = {{0x7b, 57344}, {0x01, 0x1p-16}, {0x04, 0x1p-14},
                                  {0x3c, 1}, {0x7c, INFINITY}, {0xfc, -INFINITY},
                                  {0x7d, NAN}, {0x7f, NAN}};
    /* OCP MX spec table of e2m1 magnitudes, codes 0..7. */
    static const anchor fp4[] = {{0, 0}, {1, 0.5}, {2, 1}, {3, 1.5}, {4, 2}, {5, 3}, {6, 4},
                                 {7, 6}, {0xf, -6}, {0x9, -0.5}, {0x8, -0.0}};
    check_anchors(&F16, f16, sizeof f16 / sizeof *f16);
    check_anchors(&BF16, bf16, sizeof bf16 / sizeof *bf16);
    check_anchors(&E4M3, e4m3, sizeof e4m3 / sizeof *e4m3);
    check_anchors(&E5M2, e5m2, sizeof e5m2 / sizeof *e5m2);
    check_anchors(&FP4, fp4, sizeof fp4 / sizeof *fp4);
    assert_true(ref_e8m0_decode(127) == 1 && ref_e8m0_decode(0) == 0x1p-127 &&
                ref_e8m0_decode(254) == 0x1p127 && isnan(ref_e8m0_decode(255)));
}

/* Spot checks of the contract's stated boundary cases, readable on their own. */
static void test_documented_boundaries(void **state)
{
    (void)state;
    assert_int_equal(mp_f32_to_f16(65519.0f), 0x7bff);
    assert_int_equal(mp_f32_to_f16(65520.0f), 0x7c00); /* tie: even code is inf */
    assert_int_equal(mp_f32_to_f16(-0.0f), 0x8000);
    assert_int_equal(mp_f32_to_f16(-NAN), 0xfe00);
    assert_int_equal(mp_f32_to_bf16(float_of(0x7f7f8000)), 0x7f80);
    assert_int_equal(mp_f32_to_bf16(float_of(0x3f808000)), 0x3f80); /* tie to even */
    assert_int_equal(mp_f32_to_bf16(float_of(0x3f818000)), 0x3f82);
    assert_int_equal(mp_f32_to_fp8_e4m3(1e9f), 0x7e);
    assert_int_equal(mp_f32_to_fp8_e4m3(-INFINITY), 0xfe);
    assert_int_equal(mp_f32_to_fp8_e4m3(NAN), 0x7f);
    assert_int_equal(mp_f32_to_fp8_e4m3(-NAN), 0xff);
    assert_int_equal(mp_f32_to_fp8_e5m2(nextafterf(61440.0f, 0.0f)), 0x7b);
    assert_int_equal(mp_f32_to_fp8_e5m2(61440.0f), 0x7c);
    assert_int_equal(mp_f32_to_fp8_e5m2(-61440.0f), 0xfc);
    assert_int_equal(mp_f32_to_fp8_e5m2(-NAN), 0xfe);
    assert_int_equal(mp_f32_to_e8m0(1.0f), 127);
    assert_int_equal(mp_f32_to_e8m0(1.0000001f), 128);
    assert_int_equal(mp_f32_to_e8m0(0.75f), 127);
    assert_int_equal(mp_f32_to_e8m0(0.0f), 0x00);
    assert_int_equal(mp_f32_to_e8m0(-8.0f), 0x00);
    assert_int_equal(mp_f32_to_e8m0(INFINITY), 0xfe);
    assert_int_equal(mp_f32_to_e8m0(NAN), 0xff);
    assert_int_equal(mp_f32_to_fp4_e2m1(2.5f), 0x4);
    assert_int_equal(mp_f32_to_fp4_e2m1(5.0f), 0x6);
    assert_int_equal(mp_f32_to_fp4_e2m1(0.25f), 0x0);
    assert_int_equal(mp_f32_to_fp4_e2m1(0.75f), 0x2);
    assert_int_equal(mp_f32_to_fp4_e2m1(-100.0f), 0xf);
    assert_int_equal(mp_f32_to_fp4_e2m1(-NAN), 0xf);
}

/* ---- scalar decode, every bit pattern ---- */

static void test_f16_decode_all(void **state) { (void)state; check_decode_all(&F16); }
static void test_bf16_decode_all(void **state) { (void)state; check_decode_all(&BF16); }
static void test_e4m3_decode_all(void **state) { (void)state; check_decode_all(&E4M3); }
static void test_e5m2_decode_all(void **state) { (void)state; check_decode_all(&E5M2); }

static void test_fp4_decode_all(void **state)
{
    (void)state;
    check_decode_all(&FP4);
    /* Only the low nibble counts: the high bits must be ignored. */
    mismatches mm = {"fp4 high bits", 0};
    for (uint32_t v = 16; v < 256; v++)
        if (bits_of(mp_fp4_e2m1_to_f32((uint8_t)v)) != bits_of(mp_fp4_e2m1_to_f32(v & 0xf)))
            report(&mm, "decode 0x%02x differs from decode 0x%x", v, v & 0xf);
    assert_no_mismatches(&mm);
}

static void test_e8m0_decode_all(void **state)
{
    (void)state;
    mismatches mm = {"e8m0", 0};
    for (uint32_t b = 0; b < 256; b++) {
        float got = mp_e8m0_to_f32((uint8_t)b);
        if (!same_value(got, ref_e8m0_decode(b)))
            report(&mm, "decode 0x%02x: got %a, want %a", b, (double)got, ref_e8m0_decode(b));
    }
    assert_no_mismatches(&mm);
}

/* ---- scalar encode against the brute-force reference ---- */

static void test_f16_encode(void **state) { (void)state; check_encode(&F16, 1); }
static void test_bf16_encode(void **state) { (void)state; check_encode(&BF16, 1); }
static void test_e4m3_encode(void **state) { (void)state; check_encode(&E4M3, 0); }
static void test_e5m2_encode(void **state) { (void)state; check_encode(&E5M2, 0); }
static void test_fp4_encode(void **state) { (void)state; check_encode(&FP4, 0); }

/* Each power of two in range and its f32 neighbours: the points where
 * "smallest power of two >= |x|" changes its answer. */
static void add_e8m0_boundaries(input_set *s)
{
    for (uint32_t b = 0; b < 0xff; b++)
        add_with_neighbours(s, (float)ref_e8m0_decode(b));
}

static void test_e8m0_encode(void **state)
{
    (void)state;
    mismatches mm = {"e8m0", 0};
    input_set s = encoder_inputs(NULL, 0);
    add_e8m0_boundaries(&s);
    for (size_t i = 0; i < s.n; i++) {
        float x = float_of(s.v[i]);
        uint32_t want = ref_e8m0_encode(x), got = mp_f32_to_e8m0(x);
        if (got != want)
            report(&mm, "encode 0x%08x (%a): got 0x%02x, want 0x%02x", s.v[i], (double)x, got,
                   want);
    }
    free(s.v);
    assert_no_mismatches(&mm);
}

/* ---- bulk paths must agree with the scalar ones ---- */

/* A bulk decoder seen through bytes, so 8- and 16-bit sources share one checker. */
typedef struct {
    const char *name;
    size_t elem_size;
    void (*bulk)(const void *src, float *dst, size_t n);
    float (*scalar)(uint32_t code);
} bulk_decoder;

static void bulk_bf16(const void *s, float *d, size_t n) { mp_bf16_to_f32_n(s, d, n); }
static void bulk_f16(const void *s, float *d, size_t n) { mp_f16_to_f32_n(s, d, n); }
static void bulk_e4m3(const void *s, float *d, size_t n) { mp_fp8_e4m3_to_f32_n(s, d, n); }
static void bulk_e5m2(const void *s, float *d, size_t n) { mp_fp8_e5m2_to_f32_n(s, d, n); }

static const bulk_decoder BULK_DECODERS[] = {
    {"bf16_to_f32_n", 2, bulk_bf16, lib_bf16_dec},
    {"f16_to_f32_n", 2, bulk_f16, lib_f16_dec},
    {"fp8_e4m3_to_f32_n", 1, bulk_e4m3, lib_e4m3_dec},
    {"fp8_e5m2_to_f32_n", 1, bulk_e5m2, lib_e5m2_dec},
};

static void store_code(uint8_t *p, size_t elem_size, uint32_t code)
{
    if (elem_size == 2) {
        uint16_t h = (uint16_t)code;
        memcpy(p, &h, 2);
    } else {
        *p = (uint8_t)code;
    }
}

static const float SENTINEL_VALUE = 12345.678f;

/* Decodes codes first..first+n-1 (wrapping) from a buffer of exactly off+n
 * elements at element offset off, so ASan sees any read past the end, and checks
 * the output bit for bit plus the untouched sentinels around it. */
static void check_bulk_decode_run(const bulk_decoder *d, uint32_t first, size_t off, size_t n,
                                  mismatches *mm)
{
    uint32_t ncodes = 1u << (8 * d->elem_size);
    uint8_t *src = malloc((off + n) * d->elem_size + 1);
    float *dst = malloc((off + n + 1) * sizeof *dst);
    assert_true(src && dst);
    for (size_t i = 0; i < off + n + 1; i++)
        dst[i] = SENTINEL_VALUE;
    for (size_t i = 0; i < n; i++)
        store_code(src + (off + i) * d->elem_size, d->elem_size, (first + i) % ncodes);
    d->bulk(src + off * d->elem_size, dst + off, n);
    for (size_t i = 0; i < n; i++) {
        uint32_t code = (first + i) % ncodes;
        float want = d->scalar(code);
        if (bits_of(dst[off + i]) != bits_of(want))
            report(mm, "n=%zu off=%zu code 0x%04x: bulk 0x%08x, scalar 0x%08x", n, off, code,
                   bits_of(dst[off + i]), bits_of(want));
    }
    for (size_t i = 0; i < off; i++)
        if (bits_of(dst[i]) != bits_of(SENTINEL_VALUE))
            report(mm, "n=%zu off=%zu: wrote before the start", n, off);
    if (bits_of(dst[off + n]) != bits_of(SENTINEL_VALUE))
        report(mm, "n=%zu off=%zu: wrote past the end", n, off);
    free(src);
    free(dst);
}

static const size_t ODD_LENGTHS[] = {0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 1001};

static void check_bulk_decoder(const bulk_decoder *d)
{
    mismatches mm = {d->name, 0};
    uint32_t ncodes = 1u << (8 * d->elem_size);
    /* All codes in one call, and again starting mid-way so vector lanes see other codes. */
    check_bulk_decode_run(d, 0, 0, ncodes, &mm);
    check_bulk_decode_run(d, 5, 3, 3 * ncodes + 5, &mm);
    for (size_t i = 0; i < sizeof ODD_LENGTHS / sizeof *ODD_LENGTHS; i++)
        for (size_t off = 0; off < 4; off++)
            check_bulk_decode_run(d, (uint32_t)(i * 977 + off * 131), off, ODD_LENGTHS[i], &mm);
    assert_no_mismatches(&mm);
}

static void test_bulk_decoders_match_scalar(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof BULK_DECODERS / sizeof *BULK_DECODERS; i++)
        check_bulk_decoder(&BULK_DECODERS[i]);
}

typedef struct {
    const char *name;
    void (*bulk)(const float *src, uint16_t *dst, size_t n);
    uint32_t (*scalar)(float f);
} bulk_encoder;

static const bulk_encoder BULK_ENCODERS[] = {
    {"f32_to_bf16_n", mp_f32_to_bf16_n, lib_bf16_enc},
    {"f32_to_f16_n", mp_f32_to_f16_n, lib_f16_enc},
};

static const uint16_t SENTINEL_CODE = 0xa5a5;

/* Encodes inputs[0..n) placed at element offset off in an exactly sized buffer. */
static void check_bulk_encode_run(const bulk_encoder *e, const uint32_t *inputs, size_t off,
                                  size_t n, mismatches *mm)
{
    float *src = malloc((off + n) * sizeof *src + 1);
    uint16_t *dst = malloc((off + n + 1) * sizeof *dst);
    assert_true(src && dst);
    for (size_t i = 0; i < off + n + 1; i++)
        dst[i] = SENTINEL_CODE;
    for (size_t i = 0; i < n; i++)
        src[off + i] = float_of(inputs[i]);
    e->bulk(src + off, dst + off, n);
    for (size_t i = 0; i < n; i++) {
        uint32_t want = e->scalar(src[off + i]);
        if (dst[off + i] != want)
            report(mm, "n=%zu off=%zu input 0x%08x: bulk 0x%04x, scalar 0x%04x", n, off,
                   inputs[i], dst[off + i], want);
    }
    for (size_t i = 0; i < off; i++)
        if (dst[i] != SENTINEL_CODE)
            report(mm, "n=%zu off=%zu: wrote before the start", n, off);
    if (dst[off + n] != SENTINEL_CODE)
        report(mm, "n=%zu off=%zu: wrote past the end", n, off);
    free(src);
    free(dst);
}

static void check_bulk_encoder(const bulk_encoder *e, const input_set *in)
{
    mismatches mm = {e->name, 0};
    check_bulk_encode_run(e, in->v, 0, in->n, &mm);
    check_bulk_encode_run(e, in->v + 1, 1, in->n - 1, &mm);
    for (size_t i = 0; i < sizeof ODD_LENGTHS / sizeof *ODD_LENGTHS; i++)
        for (size_t off = 0; off < 4; off++)
            check_bulk_encode_run(e, in->v + i * 13 + off, off, ODD_LENGTHS[i], &mm);
    assert_no_mismatches(&mm);
}

static void test_bulk_encoders_match_scalar(void **state)
{
    (void)state;
    input_set in = {0};
    add_special_inputs(&in);
    add_random_inputs(&in, RANDOM_INPUTS / 4);
    add_strided_sweep(&in);
    for (size_t i = 0; i < sizeof BULK_ENCODERS / sizeof *BULK_ENCODERS; i++)
        check_bulk_encoder(&BULK_ENCODERS[i], &in);
    free(in.v);
}

/* ---- mp_decode_to_f32 ---- */

static float scalar_f32(uint32_t code) { return float_of(code); }
static float lib_e8m0_dec(uint32_t c) { return mp_e8m0_to_f32((uint8_t)c); }

typedef struct {
    mp_dtype dt;
    size_t elem_size;
    float (*scalar)(uint32_t code);
} decodable;

static const decodable DECODABLE[] = {
    {MP_DT_F32, 4, scalar_f32},       {MP_DT_F16, 2, lib_f16_dec},
    {MP_DT_BF16, 2, lib_bf16_dec},    {MP_DT_F8_E4M3, 1, lib_e4m3_dec},
    {MP_DT_F8_E5M2, 1, lib_e5m2_dec}, {MP_DT_F8_E8M0, 1, lib_e8m0_dec},
};

/* Codes spread over the whole range of the element size: all of them for 8 and
 * 16 bits, a strided sample for 32. */
static uint32_t sample_code(size_t elem_size, size_t i)
{
    if (elem_size == 4)
        return (uint32_t)(i * 65537u * 4099u);
    return (uint32_t)(i % (1u << (8 * elem_size)));
}

/* Writes code little-endian byte by byte: the contract is about bytes in the
 * file, whatever the host order. */
static void store_le(uint8_t *p, size_t elem_size, uint32_t code)
{
    for (size_t b = 0; b < elem_size; b++)
        p[b] = (uint8_t)(code >> (8 * b));
}

/* byte_off = 1 puts every element at an odd address, as a tensor inside a
 * safetensors file may be. */
static void check_decode_to_f32(const decodable *d, size_t byte_off, size_t n, mismatches *mm)
{
    uint8_t *src = malloc(byte_off + n * d->elem_size + 1);
    float *dst = malloc((n + 1) * sizeof *dst);
    assert_true(src && dst);
    for (size_t i = 0; i < n; i++)
        store_le(src + byte_off + i * d->elem_size, d->elem_size, sample_code(d->elem_size, i));
    assert_int_equal(mp_decode_to_f32(d->dt, src + byte_off, dst, n), 0);
    for (size_t i = 0; i < n; i++) {
        uint32_t code = sample_code(d->elem_size, i);
        if (bits_of(dst[i]) != bits_of(d->scalar(code)))
            report(mm, "%s off=%zu code 0x%08x: got 0x%08x, scalar 0x%08x",
                   mp_dtype_name(d->dt), byte_off, code, bits_of(dst[i]),
                   bits_of(d->scalar(code)));
    }
    free(src);
    free(dst);
}

static void test_decode_to_f32_float_dtypes(void **state)
{
    (void)state;
    mismatches mm = {"mp_decode_to_f32", 0};
    for (size_t i = 0; i < sizeof DECODABLE / sizeof *DECODABLE; i++)
        for (size_t off = 0; off < 2; off++) {
            check_decode_to_f32(&DECODABLE[i], off, 70001, &mm);
            check_decode_to_f32(&DECODABLE[i], off, 7, &mm);
        }
    assert_no_mismatches(&mm);
}

static int is_decodable(mp_dtype dt)
{
    for (size_t i = 0; i < sizeof DECODABLE / sizeof *DECODABLE; i++)
        if (DECODABLE[i].dt == dt)
            return 1;
    return 0;
}

static void test_decode_to_f32_rejects_other_dtypes(void **state)
{
    (void)state;
    uint8_t src[64] = {0};
    float dst[8];
    for (int dt = 0; dt < MP_DT_COUNT; dt++)
        if (!is_decodable((mp_dtype)dt))
            assert_int_equal(mp_decode_to_f32((mp_dtype)dt, src, dst, 1), -1);
}

/* ---- names and sizes ---- */

/* The safetensors spellings and element sizes, in enum order. */
static const struct {
    mp_dtype dt;
    const char *name;
    int bits;
} DTYPES[] = {
    {MP_DT_BOOL, "BOOL", 8},        {MP_DT_F4, "F4", 4},
    {MP_DT_F6_E2M3, "F6_E2M3", 6},  {MP_DT_F6_E3M2, "F6_E3M2", 6},
    {MP_DT_U8, "U8", 8},            {MP_DT_I8, "I8", 8},
    {MP_DT_F8_E5M2, "F8_E5M2", 8},  {MP_DT_F8_E4M3, "F8_E4M3", 8},
    {MP_DT_F8_E8M0, "F8_E8M0", 8},  {MP_DT_F8_E4M3FNUZ, "F8_E4M3FNUZ", 8},
    {MP_DT_F8_E5M2FNUZ, "F8_E5M2FNUZ", 8}, {MP_DT_I16, "I16", 16},
    {MP_DT_U16, "U16", 16},         {MP_DT_F16, "F16", 16},
    {MP_DT_BF16, "BF16", 16},       {MP_DT_I32, "I32", 32},
    {MP_DT_U32, "U32", 32},         {MP_DT_F32, "F32", 32},
    {MP_DT_C64, "C64", 64},         {MP_DT_F64, "F64", 64},
    {MP_DT_I64, "I64", 64},         {MP_DT_U64, "U64", 64},
};

static void test_dtype_names_round_trip(void **state)
{
    (void)state;
    assert_int_equal(sizeof DTYPES / sizeof *DTYPES, MP_DT_COUNT);
    for (int i = 0; i < MP_DT_COUNT; i++) {
        assert_int_equal(DTYPES[i].dt, i);
        assert_non_null(mp_dtype_name(DTYPES[i].dt));
        assert_string_equal(mp_dtype_name(DTYPES[i].dt), DTYPES[i].name);
        mp_dtype got = MP_DT_COUNT;
        assert_int_equal(mp_dtype_from_name(DTYPES[i].name, &got), 0);
        assert_int_equal(got, DTYPES[i].dt);
    }
}

static void test_unknown_dtype_names_rejected(void **state)
{
    (void)state;
    static const char *unknown[] = {"", "F", "F8", "BF", "BF166", "F32 ", " F32", "F128",
                                    "I128", "C128", "F8_E4M3FNX", "F8_E4M", "FLOAT32", "XYZ"};
    for (size_t i = 0; i < sizeof unknown / sizeof *unknown; i++) {
        mp_dtype got;
        assert_int_equal(mp_dtype_from_name(unknown[i], &got), -1);
    }
}

static void test_dtype_bits(void **state)
{
    (void)state;
    for (int i = 0; i < MP_DT_COUNT; i++) {
        if (mp_dtype_bits(DTYPES[i].dt) != DTYPES[i].bits)
            print_message("%s: bits %d, want %d\n", DTYPES[i].name,
                          mp_dtype_bits(DTYPES[i].dt), DTYPES[i].bits);
        assert_int_equal(mp_dtype_bits(DTYPES[i].dt), DTYPES[i].bits);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_formulas_match_published_values),
        cmocka_unit_test(test_documented_boundaries),
        cmocka_unit_test(test_f16_decode_all),
        cmocka_unit_test(test_bf16_decode_all),
        cmocka_unit_test(test_e4m3_decode_all),
        cmocka_unit_test(test_e5m2_decode_all),
        cmocka_unit_test(test_e8m0_decode_all),
        cmocka_unit_test(test_fp4_decode_all),
        cmocka_unit_test(test_f16_encode),
        cmocka_unit_test(test_bf16_encode),
        cmocka_unit_test(test_e4m3_encode),
        cmocka_unit_test(test_e5m2_encode),
        cmocka_unit_test(test_e8m0_encode),
        cmocka_unit_test(test_fp4_encode),
        cmocka_unit_test(test_bulk_decoders_match_scalar),
        cmocka_unit_test(test_bulk_encoders_match_scalar),
        cmocka_unit_test(test_decode_to_f32_float_dtypes),
        cmocka_unit_test(test_decode_to_f32_rejects_other_dtypes),
        cmocka_unit_test(test_dtype_names_round_trip),
        cmocka_unit_test(test_unknown_dtype_names_rejected),
        cmocka_unit_test(test_dtype_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
