#include "dtype.h"

#include <math.h>
#include <string.h>

#if defined(__F16C__) && defined(__AVX2__)
#include <immintrin.h>
#define MP_HAVE_F16C 1
#endif

static const char *const dtype_names[MP_DT_COUNT] = {
    "BOOL",    "F4",          "F6_E2M3",     "F6_E3M2", "U8",  "I8",  "F8_E5M2", "F8_E4M3",
    "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ", "I16",     "U16", "F16", "BF16",    "I32",
    "U32",     "F32",         "C64",         "F64",     "I64", "U64",
};

static const int dtype_bits[MP_DT_COUNT] = {
    8, 4, 6, 6, 8, 8, 8, 8, 8, 8, 8, 16, 16, 16, 16, 32, 32, 32, 64, 64, 64, 64,
};

const char *mp_dtype_name(mp_dtype dt)
{
    return (unsigned)dt < MP_DT_COUNT ? dtype_names[dt] : "?";
}

int mp_dtype_from_name(const char *name, mp_dtype *dt)
{
    for (int i = 0; i < MP_DT_COUNT; i++)
        if (strcmp(name, dtype_names[i]) == 0) {
            *dt = (mp_dtype)i;
            return 0;
        }
    return -1;
}

int mp_dtype_bits(mp_dtype dt)
{
    return (unsigned)dt < MP_DT_COUNT ? dtype_bits[dt] : 0;
}

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ---- bf16 ---- */

float mp_bf16_to_f32(uint16_t b)
{
    return bits_f32((uint32_t)b << 16);
}

uint16_t mp_f32_to_bf16(float f)
{
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)(((u >> 16) & 0x8000u) | 0x7fc0u);
    /* Adding 0x7fff plus the lowest kept bit rounds to nearest, ties to even;
     * a carry into the exponent is the correct overflow to the next binade or inf. */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* ---- f16 ---- */

float mp_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    if (exp == 0x1f) /* inf, or NaN made quiet as the F16C instructions do */
        return bits_f32(sign | 0x7f800000u | (man << 13) | (man ? 0x400000u : 0u));
    if (exp == 0) /* zero or subnormal: man * 2^-24, exact in f32 */
        return bits_f32(sign) + (sign ? -1.0f : 1.0f) * ldexpf((float)man, -24);
    return bits_f32(sign | ((exp + 112u) << 23) | (man << 13));
}

/* Rounds a positive integer-scaled mantissa right by `shift` bits, ties to even. */
static uint32_t shift_round_even(uint32_t m, int shift)
{
    if (shift <= 0)
        return m;
    if (shift > 31)
        return 0;
    uint32_t kept = m >> shift;
    uint32_t rest = m & ((1u << shift) - 1u);
    uint32_t half = 1u << (shift - 1);
    if (rest > half || (rest == half && (kept & 1u)))
        kept++;
    return kept;
}

/* Generic f32 -> small IEEE-like float encoder (round to nearest even).
 * Returns the unsigned code (without sign) for a finite |x|; codes above max_code
 * mean overflow and are handled by the caller. */
static uint32_t encode_small_float(uint32_t abs_bits, int exp_bits, int man_bits)
{
    int bias = (1 << (exp_bits - 1)) - 1;
    int e = (int)(abs_bits >> 23);
    uint32_t m = abs_bits & 0x7fffffu;
    if (e == 0 && m == 0)
        return 0;
    if (e == 0)
        e = 1; /* f32 subnormal: no hidden bit, tiny anyway */
    else
        m |= 0x800000u;
    int target_exp = e - 127 + bias; /* biased exponent in the small format */
    int shift = 23 - man_bits;
    if (target_exp <= 0) { /* subnormal in the small format */
        shift += 1 - target_exp;
        return shift_round_even(m, shift); /* may round up into the first normal: correct code */
    }
    uint32_t rounded = shift_round_even(m, shift); /* 1.xxx with man_bits fraction bits */
    /* A carry to 2.0 moves to the next exponent; the code arithmetic absorbs it. */
    return ((uint32_t)target_exp << man_bits) + rounded - (1u << man_bits);
}

uint16_t mp_f32_to_f16(float f)
{
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u)
        return sign | 0x7e00u;
    if (a >= 0x47800000u) /* >= 65536: inf whatever the rounding */
        return sign | 0x7c00u;
    uint32_t code = encode_small_float(a, 5, 10);
    return (uint16_t)(sign | (code > 0x7c00u ? 0x7c00u : code));
}

/* ---- fp8 e4m3fn ---- */

float mp_fp8_e4m3_to_f32(uint8_t v)
{
    float sign = (v & 0x80) ? -1.0f : 1.0f;
    int exp = (v >> 3) & 0xf;
    int man = v & 7;
    if ((v & 0x7f) == 0x7f)
        return bits_f32(((uint32_t)(v & 0x80) << 24) | 0x7fc00000u);
    if (exp == 0)
        return sign * ldexpf((float)man, -9);
    return sign * ldexpf((float)(8 + man), exp - 10);
}

uint8_t mp_f32_to_fp8_e4m3(float f)
{
    uint32_t u = f32_bits(f);
    uint8_t sign = (uint8_t)((u >> 24) & 0x80u);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u)
        return sign | 0x7f;
    if (a >= 0x43e00000u) /* >= 448 (and inf): saturate */
        return sign | 0x7e;
    uint32_t code = encode_small_float(a, 4, 3);
    return (uint8_t)(sign | (code > 0x7e ? 0x7e : code));
}

/* ---- fp8 e5m2 ---- */

float mp_fp8_e5m2_to_f32(uint8_t v)
{
    return mp_f16_to_f32((uint16_t)(v << 8));
}

uint8_t mp_f32_to_fp8_e5m2(float f)
{
    uint32_t u = f32_bits(f);
    uint8_t sign = (uint8_t)((u >> 24) & 0x80u);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u)
        return sign | 0x7e;
    if (a >= 0x47800000u)
        return sign | 0x7c;
    uint32_t code = encode_small_float(a, 5, 2);
    return (uint8_t)(sign | (code > 0x7c ? 0x7c : code));
}

/* ---- e8m0 ---- */

float mp_e8m0_to_f32(uint8_t v)
{
    if (v == 0xff)
        return NAN;
    return ldexpf(1.0f, (int)v - 127);
}

uint8_t mp_f32_to_e8m0(float f)
{
    if (isnan(f))
        return 0xff;
    if (!(f > 0.0f))
        return 0x00;
    if (isinf(f))
        return 254;
    int e;
    float m = frexpf(f, &e); /* f = m * 2^e, m in [0.5, 1) */
    int exp = (m == 0.5f) ? e - 1 : e; /* ceil(log2 f) */
    exp += 127;
    if (exp < 0)
        exp = 0;
    if (exp > 254)
        exp = 254;
    return (uint8_t)exp;
}

/* ---- fp4 e2m1 ---- */

static const float fp4_values[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};

float mp_fp4_e2m1_to_f32(uint8_t nibble)
{
    float v = fp4_values[nibble & 7];
    return (nibble & 8) ? -v : v;
}

uint8_t mp_f32_to_fp4_e2m1(float f)
{
    uint8_t sign = signbit(f) ? 8 : 0;
    if (isnan(f))
        return sign | 7;
    uint32_t a = f32_bits(f) & 0x7fffffffu;
    if (a >= 0x40c00000u) /* >= 6 */
        return sign | 7;
    uint32_t code = encode_small_float(a, 2, 1);
    return (uint8_t)(sign | (code > 7 ? 7 : code));
}

/* ---- bulk paths ---- */

void mp_bf16_to_f32_n(const uint16_t *src, float *dst, size_t n)
{
    uint32_t *out = (uint32_t *)(void *)dst;
    for (size_t i = 0; i < n; i++) /* a shift: the compiler vectorizes it */
        out[i] = (uint32_t)src[i] << 16;
}

/* The scalar rule without branches, so the loop vectorizes. */
void mp_f32_to_bf16_n(const float *src, uint16_t *dst, size_t n)
{
    const uint32_t *in = (const uint32_t *)(const void *)src;
    for (size_t i = 0; i < n; i++) {
        uint32_t u = in[i];
        uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
        uint32_t nan = ((u >> 16) & 0x8000u) | 0x7fc0u;
        dst[i] = (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? nan : rounded);
    }
}

void mp_f16_to_f32_n(const uint16_t *src, float *dst, size_t n)
{
    size_t i = 0;
#ifdef MP_HAVE_F16C
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)(const void *)(src + i));
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
    }
#endif
    for (; i < n; i++)
        dst[i] = mp_f16_to_f32(src[i]);
}

void mp_f32_to_f16_n(const float *src, uint16_t *dst, size_t n)
{
    size_t i = 0;
#ifdef MP_HAVE_F16C
    for (; i + 8 <= n; i += 8) {
        __m256 f = _mm256_loadu_ps(src + i);
        if (_mm256_movemask_ps(_mm256_cmp_ps(f, f, _CMP_UNORD_Q)) != 0)
            break; /* a NaN: the hardware keeps its payload, the contract wants 0x7e00 */
        __m128i h = _mm256_cvtps_ph(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm_storeu_si128((__m128i *)(void *)(dst + i), h);
    }
#endif
    for (; i < n; i++)
        dst[i] = mp_f32_to_f16(src[i]);
}

/* fp8 -> f32 without branches, so the loops vectorize: move the exponent and
 * mantissa bits into f32 position and rescale by 2^(127 - bias); f32 subnormal
 * arithmetic makes the fp8 subnormals come out exact. */
void mp_fp8_e4m3_to_f32_n(const uint8_t *src, float *dst, size_t n)
{
    const float rebias = 0x1p120f;
    uint32_t *out = (uint32_t *)(void *)dst;
    for (size_t i = 0; i < n; i++) {
        uint32_t v = src[i];
        float mag = bits_f32((v & 0x7fu) << 20) * rebias;
        uint32_t bits = f32_bits(mag) | ((v & 0x80u) << 24);
        out[i] = (v & 0x7fu) == 0x7fu ? (bits & 0x80000000u) | 0x7fc00000u : bits;
    }
}

void mp_fp8_e5m2_to_f32_n(const uint8_t *src, float *dst, size_t n)
{
    const float rebias = 0x1p112f;
    uint32_t *out = (uint32_t *)(void *)dst;
    for (size_t i = 0; i < n; i++) {
        uint32_t v = src[i];
        float mag = bits_f32((v & 0x7fu) << 21) * rebias;
        uint32_t special = 0x7f800000u | ((v & 3u) << 21) | ((v & 3u) ? 0x400000u : 0u); /* inf, quiet NaN */
        uint32_t bits = (v & 0x7cu) == 0x7cu ? special : f32_bits(mag);
        out[i] = bits | ((v & 0x80u) << 24);
    }
}

/* Tensor bytes may start at any offset: 16-bit elements are loaded with memcpy,
 * which the compiler turns into unaligned vector loads. */
static void decode_bf16_bytes(const unsigned char *src, float *dst, size_t n)
{
    uint32_t *out = (uint32_t *)(void *)dst;
    for (size_t i = 0; i < n; i++) {
        uint16_t v;
        memcpy(&v, src + 2 * i, 2);
        out[i] = (uint32_t)v << 16;
    }
}

static void decode_f16_bytes(const unsigned char *src, float *dst, size_t n)
{
    size_t i = 0;
#ifdef MP_HAVE_F16C
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(src + 2 * i))));
#endif
    for (; i < n; i++) {
        uint16_t v;
        memcpy(&v, src + 2 * i, 2);
        dst[i] = mp_f16_to_f32(v);
    }
}

int mp_decode_to_f32(mp_dtype dt, const void *src, float *dst, size_t n)
{
    switch (dt) {
    case MP_DT_F32:
        memcpy(dst, src, n * 4);
        return 0;
    case MP_DT_BF16:
        decode_bf16_bytes(src, dst, n);
        return 0;
    case MP_DT_F16:
        decode_f16_bytes(src, dst, n);
        return 0;
    case MP_DT_F8_E4M3:
        mp_fp8_e4m3_to_f32_n(src, dst, n);
        return 0;
    case MP_DT_F8_E5M2:
        mp_fp8_e5m2_to_f32_n(src, dst, n);
        return 0;
    case MP_DT_F8_E8M0:
        for (size_t i = 0; i < n; i++)
            dst[i] = mp_e8m0_to_f32(((const uint8_t *)src)[i]);
        return 0;
    default:
        return -1;
    }
}
