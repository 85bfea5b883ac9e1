/* AVX2 + FMA kernels (x86-64). Compiled with a target pragma so that a generic
 * x86-64-v2 build contains them too; chosen at run time when the CPU has AVX2, FMA and
 * F16C. FAST q4_0 and w4 read the packed nibbles straight into registers (tiles of
 * 4 rows for one token, 2 rows × 4 tokens for more); the other encodings go through
 * the portable tile loops with SIMD inner products. */
#if defined(__x86_64__)
#pragma GCC target("avx2,fma,f16c")
#include <immintrin.h>
#include <string.h>

#include "../formats/ggml_blocks.h"
#include "kern_internal.h"
#include "kern_x86.h"

static float dot_f32(const float *w, const float *x, int64_t k)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= k; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
    }
    for (; i + 8 <= k; i += 8)
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
    float s = hsum(_mm256_add_ps(a0, a1));
    for (; i < k; i++)
        s += w[i] * x[i];
    return s;
}

/* Σ q·x over 32 signed int8 pairs, as 8 int32 lanes: maddubs wants an unsigned first
 * operand, so multiply |q| by x carrying q's sign (llama.cpp's trick). */
static __m256i dot32_signed(__m256i q, __m256i x)
{
    __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(x, q));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

static float dot_q8(const int8_t *q, const float *a, const float *b, const int8_t *xq, const float *xd,
                    const float *xs, int64_t nb)
{
    __m256 acc = _mm256_setzero_ps();
    float off = 0;
    for (int64_t j = 0; j < nb; j++) {
        __m256i p = dot32_signed(_mm256_loadu_si256((const __m256i *)(q + 32 * j)),
                                 _mm256_loadu_si256((const __m256i *)(xq + 32 * j)));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(a[j] * xd[j]), _mm256_cvtepi32_ps(p), acc);
        off += b[j] * xs[j];
    }
    return hsum(acc) + off;
}

static const mp_kern_inner inner = {dot_f32, dot_q8};

/* R rows × T tokens of q4_0 or w4 from registers: every weight block is unpacked once
 * for T tokens, every activation block loaded once for R rows. Output (r, t) gets the
 * same operations in the same order whatever R and T are, so the tiling never changes
 * a result. */
static inline __attribute__((always_inline)) void nibble_tile(const mp_packed *w, const mp_enc_layout *L,
                                                              const mp_kern_xq *xq, bool q4_0, int64_t r,
                                                              int64_t t, int R, int T, float *y)
{
    __m256 acc[4][4];
    int64_t nb = w->cols / 32, per_group = q4_0 ? 1 : w->enc.group / 32;
    int64_t ahead = R * (q4_0 ? nb * 18 : nb * 16);
    row_at ra[4];
#pragma GCC unroll 4
    for (int i = 0; i < R; i++) {
        ra[i] = row_of(w, L, q4_0, r + i);
#pragma GCC unroll 4
        for (int u = 0; u < T; u++)
            acc[i][u] = _mm256_setzero_ps();
    }
    for (int64_t g = 0, j = 0; j < nb; g++) {
        float a[4];
        __m256i zero[4];
#pragma GCC unroll 4
        for (int i = 0; i < R; i++)
            a[i] = group_of(w, L, q4_0, ra[i], g, &zero[i]);
        for (int64_t end = j + per_group; j < end; j++) {
            __m256i q[4], qa[4];
            /* the next tile's rows, at the same place: they stream in while this tile computes */
#pragma GCC unroll 4
            for (int i = 0; i < R; i++)
                _mm_prefetch((const char *)(ra[i].codes + ahead + (q4_0 ? 18 : 16) * j), _MM_HINT_T0);
#pragma GCC unroll 4
            for (int i = 0; i < R; i++) {
                __m256i u = q4_0 ? nibbles_split(ra[i].codes + 18 * j + 2) : nibbles_interleaved(ra[i].codes + 16 * j);
                q[i] = _mm256_sub_epi8(u, zero[i]);
                qa[i] = _mm256_sign_epi8(q[i], q[i]);
            }
#pragma GCC unroll 4
            for (int u = 0; u < T; u++) {
                __m256i x = _mm256_loadu_si256((const __m256i *)(xq->q + (t + u) * w->cols + 32 * j));
                float xd = xq->d[(t + u) * nb + j];
#pragma GCC unroll 4
                for (int i = 0; i < R; i++) {
                    __m256i p = _mm256_maddubs_epi16(qa[i], _mm256_sign_epi8(x, q[i]));
                    p = _mm256_madd_epi16(p, _mm256_set1_epi16(1));
                    acc[i][u] = _mm256_fmadd_ps(_mm256_set1_ps(a[i] * xd), _mm256_cvtepi32_ps(p), acc[i][u]);
                }
            }
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < R; i++)
#pragma GCC unroll 4
        for (int u = 0; u < T; u++)
            y[(t + u) * w->rows + r + i] = hsum(acc[i][u]);
}

static inline __attribute__((always_inline)) void nibble_tiles(const mp_packed *w, const mp_kern_xq *xq, bool q4_0,
                                                               int64_t r0, int64_t r1, int64_t t0, int64_t t1,
                                                               float *y)
{
    mp_enc_layout L;
    mp_encoding_layout(&w->enc, w->rows, w->cols, &L);
    int64_t t = t0;
    for (; t + 4 <= t1; t += 4) {
        int64_t r = r0;
        for (; r + 2 <= r1; r += 2)
            nibble_tile(w, &L, xq, q4_0, r, t, 2, 4, y);
        for (; r < r1; r++)
            nibble_tile(w, &L, xq, q4_0, r, t, 1, 4, y);
    }
    for (; t < t1; t++) {
        int64_t r = r0;
        for (; r + 4 <= r1; r += 4)
            nibble_tile(w, &L, xq, q4_0, r, t, 4, 1, y);
        for (; r < r1; r++)
            nibble_tile(w, &L, xq, q4_0, r, t, 1, 1, y);
    }
}

static void fast_q4_0(const mp_packed *w, const mp_kern_xq *xq, int64_t r0, int64_t r1, int64_t t0, int64_t t1,
                      float *y)
{
    nibble_tiles(w, xq, true, r0, r1, t0, t1, y);
}

static void fast_w4(const mp_packed *w, const mp_kern_xq *xq, int64_t r0, int64_t r1, int64_t t0, int64_t t1,
                    float *y)
{
    nibble_tiles(w, xq, false, r0, r1, t0, t1, y);
}

/* Σ u·x for unsigned codes u ≤ 127 and signed x (no saturation: 2·127·127 < 2^15). */
static __m256i dot32_unsigned(__m256i u, __m256i x)
{
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, x), _mm256_set1_epi16(1));
}

/* One q4_K row against one token, straight from the blocks: sub-block j has
 * w = d·sc_j·q − dmin·m_j with q unsigned, so Σ w·x = Σ_j d·sc_j·xd_j·Σ q·xq −
 * dmin·m_j·xs_j; the 8 scales and mins of a block are multiplied as vectors. */
static float q4_k_row(const uint8_t *row, int64_t blocks, const int8_t *xq, const float *xd, const float *xs)
{
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), mins = _mm256_setzero_ps();
    __m256i low4 = _mm256_set1_epi8(15);
    for (int64_t b = 0; b < blocks; b++) {
        const uint8_t *blk = row + 144 * b;
        uint8_t sc[8], m[8];
        for (int j = 0; j < 8; j++)
            mp_ggml_k4_scale_min(j, blk + 4, &sc[j], &m[j]);
        __m256 scf = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)sc)));
        __m256 mf = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)m)));
        __m256 s = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(f16_at(blk)), scf), _mm256_loadu_ps(xd + 8 * b));
        mins = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(f16_at(blk + 2)), mf), _mm256_loadu_ps(xs + 8 * b), mins);
        const int8_t *x = xq + 256 * b;
        for (int k = 0; k < 4; k++) {
            __m256i bytes = _mm256_loadu_si256((const __m256i *)(blk + 16 + 32 * k));
            __m256i lo = _mm256_and_si256(bytes, low4), hi = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), low4);
            __m256i plo = dot32_unsigned(lo, _mm256_loadu_si256((const __m256i *)(x + 64 * k)));
            __m256i phi = dot32_unsigned(hi, _mm256_loadu_si256((const __m256i *)(x + 64 * k + 32)));
            acc0 = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(s, _mm256_set1_epi32(2 * k)), _mm256_cvtepi32_ps(plo), acc0);
            acc1 = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(s, _mm256_set1_epi32(2 * k + 1)), _mm256_cvtepi32_ps(phi),
                                   acc1);
        }
    }
    return hsum(_mm256_add_ps(acc0, acc1)) - hsum(mins);
}

void mp_kern_avx2_fast_q4_k(const mp_packed *w, const mp_kern_xq *xq, int64_t r0, int64_t r1, int64_t t0, int64_t t1,
                            float *y)
{
    int64_t blocks = w->cols / 256, nb = w->cols / 32;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = w->raw + r * blocks * 144;
        for (int64_t t = t0; t < t1; t++)
            y[t * w->rows + r] = q4_k_row(row, blocks, xq->q + t * w->cols, xq->d + t * nb, xq->s + t * nb);
    }
}

static void exact(const mp_packed *w, const float *x, int64_t r0, int64_t r1, int64_t t0, int64_t t1, float *y)
{
    mp_kern_exact_tiles(&inner, w, x, r0, r1, t0, t1, y);
}

static void fast(const mp_packed *w, const mp_kern_xq *xq, int64_t r0, int64_t r1, int64_t t0, int64_t t1,
                 float *y)
{
    if (w->enc.nm24) /* staged as its dense twin */
        mp_kern_fast_tiles(&inner, w, xq, r0, r1, t0, t1, y);
    else if (w->enc.kind == MP_ENC_Q4_0)
        fast_q4_0(w, xq, r0, r1, t0, t1, y);
    else if (w->enc.kind == MP_ENC_W4)
        fast_w4(w, xq, r0, r1, t0, t1, y);
    else if (w->enc.kind == MP_ENC_Q4_K && t1 - t0 < 4) /* decode; prefill reuses staging */
        mp_kern_avx2_fast_q4_k(w, xq, r0, r1, t0, t1, y);
    else
        mp_kern_fast_tiles(&inner, w, xq, r0, r1, t0, t1, y);
}

const mp_kern_ops *mp_kern_avx2(void)
{
    static const mp_kern_ops ops = {"avx2", exact, fast};
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
        return &ops;
    return NULL;
}

#else
#include "kern_internal.h"

const mp_kern_ops *mp_kern_avx2(void)
{
    return NULL;
}
#endif
