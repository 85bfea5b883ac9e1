/* AVX-512 kernels (x86-64: F, BW, VL and VNNI, as on Ice Lake, Sapphire Rapids, Zen 4).
 * The same tiles as kern_avx2.c with VNNI's dpbusd doing the int8 products (prefill
 * tiles two blocks per 512-bit step), and 16-lane f32 products; compiled with a target pragma so that a generic
 * x86-64-v2 build contains them too, chosen at run time. FAST q4_0 and w4 read the packed nibbles straight into registers (tiles of
 * 4 rows for one token, 2 rows × 4 tokens for more); the other encodings go through
 * the portable tile loops with SIMD inner products. */
#if defined(__x86_64__)
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")
#include <immintrin.h>
#include <string.h>

#include "../core/dtype.h"
#include "kern_internal.h"
#include "kern_x86.h"

static float dot_f32(const float *w, const float *x, int64_t k)
{
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= k; i += 32) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(x + i), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 16), _mm512_loadu_ps(x + i + 16), a1);
    }
    for (; i + 16 <= k; i += 16)
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(x + i), a0);
    float s = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
    for (; i < k; i++)
        s += w[i] * x[i];
    return s;
}

/* Σ q·x over 32 signed int8 pairs, as 8 int32 lanes: dpbusd wants an unsigned first
 * operand, so multiply |q| by x carrying q's sign (llama.cpp's trick). */
static __m256i dot32_signed(__m256i q, __m256i x)
{
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(q, q), _mm256_sign_epi8(x, q));
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

/* R rows × one token, a block per 256-bit step: for decode, where the wider step's
 * extra shuffles per row cost more than they save. */
static inline __attribute__((always_inline)) void nibble_tile_ymm(const mp_packed *w, const mp_enc_layout *L,
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
            __m256i u8[4];
            /* the next tile's rows, at the same place: they stream in while this tile computes */
#pragma GCC unroll 4
            for (int i = 0; i < R; i++)
                _mm_prefetch((const char *)(ra[i].codes + ahead + (q4_0 ? 18 : 16) * j), _MM_HINT_T0);
#pragma GCC unroll 4
            for (int i = 0; i < R; i++)
                u8[i] = q4_0 ? nibbles_split(ra[i].codes + 18 * j + 2) : nibbles_interleaved(ra[i].codes + 16 * j);
#pragma GCC unroll 4
            for (int u = 0; u < T; u++) {
                __m256i x = _mm256_loadu_si256((const __m256i *)(xq->q + (t + u) * w->cols + 32 * j));
                float xd = xq->d[(t + u) * nb + j];
#pragma GCC unroll 4
                for (int i = 0; i < R; i++) {
                    /* Σ (u − z)·x = Σ u·x − Σ z·x: the unsigned codes go straight into
                     * dpbusd, which starts from −Σ z·x per lane (the same integers as
                     * subtracting z first) */
                    __m256i bias = _mm256_sub_epi32(_mm256_setzero_si256(),
                                                    _mm256_dpbusd_epi32(_mm256_setzero_si256(), zero[i], x));
                    __m256i p = _mm256_dpbusd_epi32(bias, u8[i], x);
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

/* Signed codes (u − zero) of block j of a row. */
static inline __attribute__((always_inline)) __m256i codes_of(row_at ra, bool q4_0, int64_t j, __m256i zero)
{
    __m256i u = q4_0 ? nibbles_split(ra.codes + 18 * j + 2) : nibbles_interleaved(ra.codes + 16 * j);
    return _mm256_sub_epi8(u, zero);
}

static __m512 halves_ps(float lo, float hi)
{
    /* insertf64x4 on the bits: insertf32x8 would need AVX512DQ */
    __m512d wide = _mm512_castps_pd(_mm512_set1_ps(lo));
    return _mm512_castpd_ps(_mm512_insertf64x4(wide, _mm256_castps_pd(_mm256_set1_ps(hi)), 1));
}

/* R rows × T tokens (prefill: 4 × 4) of q4_0 or w4 from registers, two blocks (64 values) per
 * step in 512-bit registers: every weight block is unpacked once for T tokens, every activation
 * block loaded once for R rows. Output (r, t) gets the same operations in the same
 * order whatever R and T are (block pairs from 0, a lone last block apart), so the
 * tiling never changes a result. */
static inline __attribute__((always_inline)) void nibble_tile_zmm(const mp_packed *w, const mp_enc_layout *L,
                                                              const mp_kern_xq *xq, bool q4_0, int64_t r,
                                                              int64_t t, int R, int T, float *y)
{
    __m512 acc[4][4];
    __m256 tail[4][4];
    int64_t nb = w->cols / 32;
    int shift = q4_0 ? 0 : w->enc.group == 128 ? 2 : w->enc.group == 64 ? 1 : 0;
    row_at ra[4];
#pragma GCC unroll 4
    for (int i = 0; i < R; i++) {
        ra[i] = row_of(w, L, q4_0, r + i);
#pragma GCC unroll 4
        for (int u = 0; u < T; u++) {
            acc[i][u] = _mm512_setzero_ps();
            tail[i][u] = _mm256_setzero_ps();
        }
    }
    int64_t j = 0;
    for (; j + 2 <= nb; j += 2) {
        __m512i u8[4], zero[4];
        __m512 a[4];
#pragma GCC unroll 4
        for (int i = 0; i < R; i++) {
            __m256i z0, z1;
            float a0 = group_of(w, L, q4_0, ra[i], j >> shift, &z0), a1 = a0;
            if (shift == 0)
                a1 = group_of(w, L, q4_0, ra[i], j + 1, &z1);
            else
                z1 = z0;
            u8[i] = _mm512_inserti64x4(_mm512_castsi256_si512(codes_of(ra[i], q4_0, j, _mm256_setzero_si256())),
                                       codes_of(ra[i], q4_0, j + 1, _mm256_setzero_si256()), 1);
            zero[i] = _mm512_inserti64x4(_mm512_castsi256_si512(z0), z1, 1);
            a[i] = halves_ps(a0, a1);
        }
#pragma GCC unroll 4
        for (int u = 0; u < T; u++) {
            __m512i x = _mm512_loadu_si512((const void *)(xq->q + (t + u) * w->cols + 32 * j));
            const float *xd = xq->d + (t + u) * nb + j;
            __m512 d = halves_ps(xd[0], xd[1]);
#pragma GCC unroll 4
            for (int i = 0; i < R; i++) {
                /* Σ (u − z)·x = Σ u·x − Σ z·x, as in the decode tile; where every row's z
                 * is 8 (q4_0, symmetric w4) the compiler computes −Σ z·x once per token */
                __m512i bias = _mm512_sub_epi32(_mm512_setzero_si512(),
                                                _mm512_dpbusd_epi32(_mm512_setzero_si512(), zero[i], x));
                __m512i p = _mm512_dpbusd_epi32(bias, u8[i], x);
                acc[i][u] = _mm512_fmadd_ps(_mm512_mul_ps(a[i], d), _mm512_cvtepi32_ps(p), acc[i][u]);
            }
        }
    }
    if (j < nb) {
        __m256i q[4], qa[4];
        float a[4];
#pragma GCC unroll 4
        for (int i = 0; i < R; i++) {
            __m256i z;
            a[i] = group_of(w, L, q4_0, ra[i], j >> shift, &z);
            q[i] = codes_of(ra[i], q4_0, j, z);
            qa[i] = _mm256_sign_epi8(q[i], q[i]);
        }
#pragma GCC unroll 4
        for (int u = 0; u < T; u++) {
            __m256i x = _mm256_loadu_si256((const __m256i *)(xq->q + (t + u) * w->cols + 32 * j));
            float xd = xq->d[(t + u) * nb + j];
#pragma GCC unroll 4
            for (int i = 0; i < R; i++) {
                __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), qa[i], _mm256_sign_epi8(x, q[i]));
                tail[i][u] = _mm256_mul_ps(_mm256_set1_ps(a[i] * xd), _mm256_cvtepi32_ps(p));
            }
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < R; i++)
#pragma GCC unroll 4
        for (int u = 0; u < T; u++)
            y[(t + u) * w->rows + r + i] = _mm512_reduce_add_ps(acc[i][u]) + hsum(tail[i][u]);
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
        for (; r + 4 <= r1; r += 4)
            nibble_tile_zmm(w, &L, xq, q4_0, r, t, 4, 4, y);
        for (; r < r1; r++)
            nibble_tile_zmm(w, &L, xq, q4_0, r, t, 1, 4, y);
    }
    for (; t < t1; t++) {
        int64_t r = r0;
        for (; r + 4 <= r1; r += 4)
            nibble_tile_ymm(w, &L, xq, q4_0, r, t, 4, 1, y);
        for (; r < r1; r++)
            nibble_tile_ymm(w, &L, xq, q4_0, r, t, 1, 1, y);
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

/* bf16 rows straight from their bits (a bf16 is the top half of an f32), for decode,
 * where staging them through a buffer costs more than the products (the output head). */
static void exact_bf16(const mp_packed *w, const float *x, int64_t r0, int64_t r1, int64_t t0, int64_t t1,
                       float *y)
{
    int64_t cols = w->cols;
    for (int64_t r = r0; r < r1; r++) {
        const uint16_t *row = (const uint16_t *)w->raw + r * cols;
        _mm_prefetch((const char *)(row + 4 * cols), _MM_HINT_T0);
        for (int64_t t = t0; t < t1; t++) {
            const float *xt = x + t * cols;
            __m512 acc = _mm512_setzero_ps();
            int64_t c = 0;
            for (; c + 16 <= cols; c += 16) {
                __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(row + c)));
                acc = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(wide, 16)), _mm512_loadu_ps(xt + c), acc);
            }
            float sum = _mm512_reduce_add_ps(acc);
            for (; c < cols; c++)
                sum += mp_bf16_to_f32(row[c]) * xt[c];
            y[t * w->rows + r] = sum;
        }
    }
}

static void exact(const mp_packed *w, const float *x, int64_t r0, int64_t r1, int64_t t0, int64_t t1, float *y)
{
    if (w->enc.kind == MP_ENC_BF16 && t1 - t0 < 4)
        exact_bf16(w, x, r0, r1, t0, t1, y);
    else
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
    else if (w->enc.kind == MP_ENC_Q4_K && t1 - t0 < 4) /* decode (every AVX-512 CPU has AVX2) */
        mp_kern_avx2_fast_q4_k(w, xq, r0, r1, t0, t1, y);
    else
        mp_kern_fast_tiles(&inner, w, xq, r0, r1, t0, t1, y);
}

const mp_kern_ops *mp_kern_avx512(void)
{
    static const mp_kern_ops ops = {"avx512", exact, fast};
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
        __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
        return &ops;
    return NULL;
}

#else
#include "kern_internal.h"

const mp_kern_ops *mp_kern_avx512(void)
{
    return NULL;
}
#endif
