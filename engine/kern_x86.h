/* The x86 helpers that kern_avx2.c and kern_avx512.c share: reading q4_0 and w4
 * rows (codes, scales, zero points) into 256-bit registers, and small reductions.
 * Included after each file's target pragma, so every copy is compiled for the
 * instruction set of the file that includes it. */
#ifndef MP_KERN_X86_H
#define MP_KERN_X86_H

#include <immintrin.h>
#include <string.h>

#include "kern_internal.h"

static inline float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float f16_at(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* 32 codes of a q4_0 block: 16 bytes, low nibbles values 0..15, high nibbles 16..31. */
static inline __m256i nibbles_split(const uint8_t *p)
{
    __m128i b = _mm_loadu_si128((const __m128i *)p);
    __m256i v = _mm256_set_m128i(_mm_srli_epi16(b, 4), b);
    return _mm256_and_si256(v, _mm256_set1_epi8(15));
}

/* 32 codes of w4: byte k holds values 2k (low nibble) and 2k + 1 (high). */
static inline __m256i nibbles_interleaved(const uint8_t *p)
{
    __m128i b = _mm_loadu_si128((const __m128i *)p), m = _mm_set1_epi8(15);
    __m128i lo = _mm_and_si128(b, m), hi = _mm_and_si128(_mm_srli_epi16(b, 4), m);
    return _mm256_set_m128i(_mm_unpackhi_epi8(lo, hi), _mm_unpacklo_epi8(lo, hi));
}

/* Where row r's codes, scales and zeros are; one "group" is a q4_0 block or a w4 group. */
typedef struct {
    const uint8_t *codes;
    uint64_t group0; /* w4: index of the row's first group */
} row_at;

static inline __attribute__((always_inline)) row_at row_of(const mp_packed *w, const mp_enc_layout *L, bool q4_0,
                                                           int64_t r)
{
    row_at ra;
    ra.codes = w->raw + r * (q4_0 ? w->cols / 32 * 18 : w->cols / 2);
    ra.group0 = (uint64_t)(r * L->groups_per_row);
    return ra;
}

/* The scale and the code offset (8, or the w4 zero point) of group g of a row. */
static inline __attribute__((always_inline)) float group_of(const mp_packed *w, const mp_enc_layout *L, bool q4_0,
                                                            row_at ra, int64_t g, __m256i *zero)
{
    if (q4_0) {
        *zero = _mm256_set1_epi8(8);
        return f16_at(ra.codes + 18 * g);
    }
    uint64_t k = ra.group0 + (uint64_t)g;
    int z = 8;
    if (!w->enc.sym) {
        uint8_t zb = w->raw[L->zeros_offset + k / 2];
        z = (k & 1) ? zb >> 4 : zb & 15;
    }
    *zero = _mm256_set1_epi8((char)z);
    return f16_at(w->raw + L->scales_offset + 2 * k);
}

#endif
