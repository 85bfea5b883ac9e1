/* The plain C kernels: always built, the reference the SIMD files are tested against,
 * and the home of what they share (exact span decoding, integer staging, tile loops). */
#include <math.h>
#include <string.h>

#include "../core/dtype.h"
#include "../formats/ggml_blocks.h"
#include "kern_internal.h"

bool mp_kern_fast_kind(mp_enc_kind k)
{
    return k == MP_ENC_W4 || (mp_ggml_is_grid(k) && k != MP_ENC_Q6_K);
}

int64_t mp_kern_row_bytes(const mp_packed *w)
{
    if (w->enc.kind == MP_ENC_W4)
        return w->cols / 2;
    return w->cols / mp_ggml_block_values(w->enc.kind) * mp_ggml_block_bytes(w->enc.kind);
}

/* Sections need not be aligned in memory: read fields bytewise. */
static float load_f32(const uint8_t *p)
{
    float f;
    memcpy(&f, p, 4);
    return f;
}

static float load_f16(const uint8_t *p)
{
    return mp_f16_to_f32((uint16_t)(p[0] | p[1] << 8));
}

/* The w4 zero point of group k (row-major group index), 8 when symmetric. */
static int w4_zero(const mp_packed *w, const mp_enc_layout *L, uint64_t k)
{
    if (w->enc.sym)
        return 8;
    uint8_t zb = w->raw[L->zeros_offset + k / 2];
    return (k & 1) ? zb >> 4 : zb & 15;
}

static void decode_w4_span(const mp_packed *w, const mp_enc_layout *L, int64_t r, int64_t c0, int64_t c1,
                           float *out)
{
    const uint8_t *q = w->raw + r * (w->cols / 2);
    int g = w->enc.group;
    for (int64_t j = c0 / g; j < c1 / g; j++) {
        uint64_t k = (uint64_t)(r * L->groups_per_row + j);
        float s = load_f16(w->raw + L->scales_offset + 2 * k);
        int z = w4_zero(w, L, k);
        for (int64_t c = j * g; c < (j + 1) * g; c += 2) {
            uint8_t b = q[c / 2];
            out[c - c0] = (float)((b & 15) - z) * s;
            out[c - c0 + 1] = (float)((b >> 4) - z) * s;
        }
    }
}

/* fp8 e4m3 (float8_e4m3fn) values by byte, as core/dtype.c decodes them (0x7f and
 * 0xff are NaN): a table lookup instead of the subnormal f32 arithmetic of the bulk
 * converter, which costs a microcode assist per value on x86. */
static const float fp8_e4m3_values[256] = {
    0.0f, 0.001953125f, 0.00390625f, 0.005859375f, 0.0078125f, 0.009765625f, 0.01171875f, 0.013671875f,
    0.015625f, 0.017578125f, 0.01953125f, 0.021484375f, 0.0234375f, 0.025390625f, 0.02734375f, 0.029296875f,
    0.03125f, 0.03515625f, 0.0390625f, 0.04296875f, 0.046875f, 0.05078125f, 0.0546875f, 0.05859375f,
    0.0625f, 0.0703125f, 0.078125f, 0.0859375f, 0.09375f, 0.1015625f, 0.109375f, 0.1171875f,
    0.125f, 0.140625f, 0.15625f, 0.171875f, 0.1875f, 0.203125f, 0.21875f, 0.234375f,
    0.25f, 0.28125f, 0.3125f, 0.34375f, 0.375f, 0.40625f, 0.4375f, 0.46875f,
    0.5f, 0.5625f, 0.625f, 0.6875f, 0.75f, 0.8125f, 0.875f, 0.9375f,
    1.0f, 1.125f, 1.25f, 1.375f, 1.5f, 1.625f, 1.75f, 1.875f,
    2.0f, 2.25f, 2.5f, 2.75f, 3.0f, 3.25f, 3.5f, 3.75f,
    4.0f, 4.5f, 5.0f, 5.5f, 6.0f, 6.5f, 7.0f, 7.5f,
    8.0f, 9.0f, 10.0f, 11.0f, 12.0f, 13.0f, 14.0f, 15.0f,
    16.0f, 18.0f, 20.0f, 22.0f, 24.0f, 26.0f, 28.0f, 30.0f,
    32.0f, 36.0f, 40.0f, 44.0f, 48.0f, 52.0f, 56.0f, 60.0f,
    64.0f, 72.0f, 80.0f, 88.0f, 96.0f, 104.0f, 112.0f, 120.0f,
    128.0f, 144.0f, 160.0f, 176.0f, 192.0f, 208.0f, 224.0f, 240.0f,
    256.0f, 288.0f, 320.0f, 352.0f, 384.0f, 416.0f, 448.0f, NAN,
    -0.0f, -0x1.0000000000000p-9f, -0.00390625f, -0x1.8000000000000p-8f, -0.0078125f, -0x1.4000000000000p-7f, -0.01171875f, -0x1.c000000000000p-7f,
    -0.015625f, -0x1.2000000000000p-6f, -0.01953125f, -0x1.6000000000000p-6f, -0.0234375f, -0x1.a000000000000p-6f, -0.02734375f, -0x1.e000000000000p-6f,
    -0.03125f, -0.03515625f, -0.0390625f, -0.04296875f, -0.046875f, -0.05078125f, -0.0546875f, -0.05859375f,
    -0.0625f, -0.0703125f, -0.078125f, -0.0859375f, -0.09375f, -0.1015625f, -0.109375f, -0.1171875f,
    -0.125f, -0.140625f, -0.15625f, -0.171875f, -0.1875f, -0.203125f, -0.21875f, -0.234375f,
    -0.25f, -0.28125f, -0.3125f, -0.34375f, -0.375f, -0.40625f, -0.4375f, -0.46875f,
    -0.5f, -0.5625f, -0.625f, -0.6875f, -0.75f, -0.8125f, -0.875f, -0.9375f,
    -1.0f, -1.125f, -1.25f, -1.375f, -1.5f, -1.625f, -1.75f, -1.875f,
    -2.0f, -2.25f, -2.5f, -2.75f, -3.0f, -3.25f, -3.5f, -3.75f,
    -4.0f, -4.5f, -5.0f, -5.5f, -6.0f, -6.5f, -7.0f, -7.5f,
    -8.0f, -9.0f, -10.0f, -11.0f, -12.0f, -13.0f, -14.0f, -15.0f,
    -16.0f, -18.0f, -20.0f, -22.0f, -24.0f, -26.0f, -28.0f, -30.0f,
    -32.0f, -36.0f, -40.0f, -44.0f, -48.0f, -52.0f, -56.0f, -60.0f,
    -64.0f, -72.0f, -80.0f, -88.0f, -96.0f, -104.0f, -112.0f, -120.0f,
    -128.0f, -144.0f, -160.0f, -176.0f, -192.0f, -208.0f, -224.0f, -240.0f,
    -256.0f, -288.0f, -320.0f, -352.0f, -384.0f, -416.0f, -448.0f, -NAN,
};

static void decode_fp8_span(const mp_packed *w, const mp_enc_layout *L, int64_t r, int64_t c0, int64_t c1,
                            float *out)
{
    const uint8_t *scales = w->raw + L->scales_offset, *q = w->raw + r * w->cols;
    int64_t bpr = (w->cols + MP_FP8_BLOCK_SIZE - 1) / MP_FP8_BLOCK_SIZE;
    for (int64_t c = c0; c < c1;) {
        int64_t end = c1;
        float s;
        if (w->enc.fp8_scale == MP_FP8_BLOCK) {
            int64_t blk = c / MP_FP8_BLOCK_SIZE;
            s = load_f32(scales + 4 * (uint64_t)((r / MP_FP8_BLOCK_SIZE) * bpr + blk));
            end = (blk + 1) * MP_FP8_BLOCK_SIZE < c1 ? (blk + 1) * MP_FP8_BLOCK_SIZE : c1;
        } else
            s = load_f32(scales + (w->enc.fp8_scale == MP_FP8_CHANNEL ? 4 * r : 0));
        for (; c < end; c++)
            out[c - c0] = fp8_e4m3_values[q[c]] * s;
    }
}

/* q6_K blocks as formats/ggml_blocks.c decodes them, y = d·sc·q with the same f32
 * operations in the same order; restrict and branch-free loops let the compiler
 * vectorize what the shared decoder (char pointers that may alias) cannot. */
static void decode_q6_k(const uint8_t *restrict b, int64_t n_blocks, float *restrict y)
{
    for (int64_t i = 0; i < n_blocks; i++, b += 210) {
        const uint8_t *ql = b, *qh = b + 128;
        const int8_t *sc = (const int8_t *)(b + 192);
        float d = load_f16(b + 208);
        for (int n = 0; n < 2; n++, ql += 64, qh += 32, sc += 8, y += 128)
            for (int is = 0; is < 2; is++) {
                float d1 = d * (float)sc[is], d2 = d * (float)sc[is + 2];
                float d3 = d * (float)sc[is + 4], d4 = d * (float)sc[is + 6];
                for (int l = 16 * is; l < 16 * is + 16; l++) {
                    y[l] = d1 * (float)(((ql[l] & 0xF) | ((qh[l] & 3) << 4)) - 32);
                    y[l + 32] = d2 * (float)(((ql[l + 32] & 0xF) | ((qh[l] >> 2 & 3) << 4)) - 32);
                    y[l + 64] = d3 * (float)(((ql[l] >> 4) | ((qh[l] >> 4 & 3) << 4)) - 32);
                    y[l + 96] = d4 * (float)(((ql[l + 32] >> 4) | ((qh[l] >> 6 & 3) << 4)) - 32);
                }
            }
    }
}

void mp_kern_decode_span(const mp_packed *w, const mp_enc_layout *L, int64_t r, int64_t c0, int64_t c1,
                         float *out)
{
    uint64_t at = (uint64_t)(r * w->cols + c0), n = (uint64_t)(c1 - c0);
    if (w->enc.nm24) {
        mp_nm24_decode_span(&w->enc, L, w->cols, w->raw, r, c0, c1, out);
        return;
    }
    switch (w->enc.kind) {
    case MP_ENC_F32:
        memcpy(out, w->raw + 4 * at, 4 * n);
        break;
    case MP_ENC_BF16:
        mp_decode_to_f32(MP_DT_BF16, w->raw + 2 * at, out, n);
        break;
    case MP_ENC_F16:
        mp_decode_to_f32(MP_DT_F16, w->raw + 2 * at, out, n);
        break;
    case MP_ENC_FP8:
        decode_fp8_span(w, L, r, c0, c1, out);
        break;
    case MP_ENC_W4:
        decode_w4_span(w, L, r, c0, c1, out);
        break;
    default: {
        int B = mp_ggml_block_values(w->enc.kind);
        const uint8_t *b = w->raw + r * mp_kern_row_bytes(w) + c0 / B * mp_ggml_block_bytes(w->enc.kind);
        if (w->enc.kind == MP_ENC_Q6_K)
            decode_q6_k(b, (int64_t)n / B, out);
        else
            mp_ggml_decode_blocks(w->enc.kind, b, (int64_t)n / B, out);
        break;
    }
    }
}

/* ---- integer staging: per 32 values int8 codes q and a, b with w ≈ a·q + b ---- */

static void stage_w4(const mp_packed *w, int64_t r, int64_t c0, int64_t c1, int8_t *q, float *a, float *b)
{
    mp_enc_layout L;
    mp_encoding_layout(&w->enc, w->rows, w->cols, &L);
    const uint8_t *p = w->raw + r * (w->cols / 2);
    int g = w->enc.group;
    for (int64_t c = c0; c < c1; c += 32) {
        uint64_t k = (uint64_t)(r * L.groups_per_row + c / g);
        int z = w4_zero(w, &L, k);
        a[(c - c0) / 32] = load_f16(w->raw + L.scales_offset + 2 * k);
        b[(c - c0) / 32] = 0;
        for (int i = 0; i < 32; i += 2) {
            uint8_t v = p[(c + i) / 2];
            q[c - c0 + i] = (int8_t)((v & 15) - z);
            q[c - c0 + i + 1] = (int8_t)((v >> 4) - z);
        }
    }
}

/* 16 bytes of nibbles: low nibbles are values 0..15, high nibbles 16..31. */
static void split_nibbles(const uint8_t *restrict nib, int8_t *restrict q, int minus)
{
    for (int j = 0; j < 16; j++) {
        q[j] = (int8_t)((nib[j] & 15) - minus);
        q[j + 16] = (int8_t)((nib[j] >> 4) - minus);
    }
}

/* One 32-value block of q8_0, q4_0, q4_1 or iq4_nl. */
static void stage_block32(mp_enc_kind k, const uint8_t *restrict blk, int8_t *restrict q, float *a, float *b)
{
    *a = load_f16(blk);
    *b = 0;
    switch (k) {
    case MP_ENC_Q8_0:
        memcpy(q, blk + 2, 32);
        break;
    case MP_ENC_Q4_0:
        split_nibbles(blk + 2, q, 8);
        break;
    case MP_ENC_Q4_1:
        *b = load_f16(blk + 2);
        split_nibbles(blk + 4, q, 0);
        break;
    default: /* iq4_nl */
        for (int j = 0; j < 16; j++) {
            q[j] = mp_iq4nl_values[blk[2 + j] & 15];
            q[j + 16] = mp_iq4nl_values[blk[2 + j] >> 4];
        }
        break;
    }
}

/* q4_K / q5_K (layout in formats/ggml_blocks.c qk_block): sub-block j has
 * w = d·sc_j·q − dmin·m_j. Sub-blocks 2k and 2k + 1 are the low and high nibbles of
 * the same 32 bytes; the loops are branch-free so the compiler vectorizes them. */
static void stage_qk(const uint8_t *restrict blk, bool five, int8_t *restrict q, float *a, float *b)
{
    float d = load_f16(blk), dmin = load_f16(blk + 2);
    const uint8_t *scales = blk + 4, *qh = blk + 16, *ql = blk + (five ? 48 : 16);
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        mp_ggml_k4_scale_min(j, scales, &sc, &m);
        a[j] = d * (float)sc;
        b[j] = -(dmin * (float)m);
    }
    for (int k = 0; k < 4; k++) {
        int8_t *lo = q + 64 * k, *hi = lo + 32;
        for (int l = 0; l < 32; l++) {
            lo[l] = (int8_t)(ql[32 * k + l] & 15);
            hi[l] = (int8_t)(ql[32 * k + l] >> 4);
        }
        if (five)
            for (int l = 0; l < 32; l++) {
                lo[l] = (int8_t)(lo[l] | ((qh[l] >> (2 * k) & 1) << 4));
                hi[l] = (int8_t)(hi[l] | ((qh[l] >> (2 * k + 1) & 1) << 4));
            }
    }
}

static void stage_iq4_xs(const uint8_t *restrict blk, int8_t *restrict q, float *a, float *b)
{
    float d = load_f16(blk);
    unsigned scales_h = (unsigned)(blk[2] | blk[3] << 8);
    const uint8_t *scales_l = blk + 4, *qs = blk + 8;
    for (int ib = 0; ib < 8; ib++, qs += 16) {
        int ls = ((scales_l[ib / 2] >> 4 * (ib % 2)) & 0xF) | (int)(((scales_h >> 2 * ib) & 3) << 4);
        a[ib] = d * (float)(ls - 32);
        b[ib] = 0;
        for (int j = 0; j < 16; j++) {
            q[32 * ib + j] = mp_iq4nl_values[qs[j] & 0xF];
            q[32 * ib + j + 16] = mp_iq4nl_values[qs[j] >> 4];
        }
    }
}

/* w4 2:4: the dense twin's staging (pruned values are the zero code, so q = 0). */
static void stage_w4_nm24(const mp_packed *w, int64_t r, int64_t c0, int64_t c1, int8_t *q, float *a, float *b)
{
    mp_enc_layout L;
    mp_encoding_layout(&w->enc, w->rows, w->cols, &L);
    mp_nm24_w4_stage(&w->enc, &L, w->cols, w->raw, r, c0, c1, q);
    for (int64_t c = c0; c < c1; c += 32) {
        uint64_t k = (uint64_t)(r * L.groups_per_row + c / w->enc.group);
        a[(c - c0) / 32] = load_f16(w->raw + L.scales_offset + 2 * k);
        b[(c - c0) / 32] = 0;
    }
}

void mp_kern_stage_span(const mp_packed *w, int64_t r, int64_t c0, int64_t c1, int8_t *q, float *a, float *b)
{
    mp_enc_kind k = w->enc.kind;
    if (w->enc.nm24) {
        stage_w4_nm24(w, r, c0, c1, q, a, b);
        return;
    }
    if (k == MP_ENC_W4) {
        stage_w4(w, r, c0, c1, q, a, b);
        return;
    }
    int B = mp_ggml_block_values(k), S = mp_ggml_block_bytes(k);
    const uint8_t *row = w->raw + r * mp_kern_row_bytes(w);
    for (int64_t c = c0; c < c1; c += B) {
        const uint8_t *blk = row + c / B * S;
        int64_t o = c - c0;
        if (B == 32)
            stage_block32(k, blk, q + o, a + o / 32, b + o / 32);
        else if (k == MP_ENC_IQ4_XS)
            stage_iq4_xs(blk, q + o, a + o / 32, b + o / 32);
        else
            stage_qk(blk, k == MP_ENC_Q5_K, q + o, a + o / 32, b + o / 32);
    }
}

/* ---- tile loops: RT rows × the token range, MP_KERN_KC columns at a time ---- */

void mp_kern_exact_tiles(const mp_kern_inner *in, const mp_packed *w, const float *x, int64_t r0, int64_t r1,
                         int64_t t0, int64_t t1, float *y)
{
    mp_enc_layout L;
    mp_encoding_layout(&w->enc, w->rows, w->cols, &L);
    float buf[MP_KERN_RT][MP_KERN_KC];
    float acc[MP_KERN_TCH][MP_KERN_RT];
    int64_t cols = w->cols;
    for (int64_t r = r0; r < r1; r += MP_KERN_RT) {
        int nr = r1 - r < MP_KERN_RT ? (int)(r1 - r) : MP_KERN_RT;
        memset(acc, 0, sizeof acc);
        for (int64_t c0 = 0; c0 < cols; c0 += MP_KERN_KC) {
            int64_t k = cols - c0 < MP_KERN_KC ? cols - c0 : MP_KERN_KC;
            for (int i = 0; i < nr; i++)
                mp_kern_decode_span(w, &L, r + i, c0, c0 + k, buf[i]);
            for (int64_t t = t0; t < t1; t++)
                for (int i = 0; i < nr; i++)
                    acc[t - t0][i] += in->dot_f32(buf[i], x + t * cols + c0, k);
        }
        for (int64_t t = t0; t < t1; t++)
            for (int i = 0; i < nr; i++)
                y[t * w->rows + r + i] = acc[t - t0][i];
    }
}

void mp_kern_fast_tiles(const mp_kern_inner *in, const mp_packed *w, const mp_kern_xq *xq, int64_t r0,
                        int64_t r1, int64_t t0, int64_t t1, float *y)
{
    int8_t q[MP_KERN_RT][MP_KERN_KC];
    float a[MP_KERN_RT][MP_KERN_KC / 32], b[MP_KERN_RT][MP_KERN_KC / 32];
    float acc[MP_KERN_TCH][MP_KERN_RT];
    int64_t cols = w->cols, nb = cols / 32;
    for (int64_t r = r0; r < r1; r += MP_KERN_RT) {
        int nr = r1 - r < MP_KERN_RT ? (int)(r1 - r) : MP_KERN_RT;
        memset(acc, 0, sizeof acc);
        for (int64_t c0 = 0; c0 < cols; c0 += MP_KERN_KC) {
            int64_t k = cols - c0 < MP_KERN_KC ? cols - c0 : MP_KERN_KC;
            for (int i = 0; i < nr; i++)
                mp_kern_stage_span(w, r + i, c0, c0 + k, q[i], a[i], b[i]);
            for (int64_t t = t0; t < t1; t++) {
                const int8_t *xqt = xq->q + t * cols + c0;
                const float *xd = xq->d + t * nb + c0 / 32, *xs = xq->s + t * nb + c0 / 32;
                for (int i = 0; i < nr; i++)
                    acc[t - t0][i] += in->dot_q8(q[i], a[i], b[i], xqt, xd, xs, k / 32);
            }
        }
        for (int64_t t = t0; t < t1; t++)
            for (int i = 0; i < nr; i++)
                y[t * w->rows + r + i] = acc[t - t0][i];
    }
}

/* ---- the portable inner products: one sum, in order ---- */

static float dot_f32(const float *w, const float *x, int64_t k)
{
    float s = 0;
    for (int64_t i = 0; i < k; i++)
        s += w[i] * x[i];
    return s;
}

static float dot_q8(const int8_t *q, const float *a, const float *b, const int8_t *xq, const float *xd,
                    const float *xs, int64_t nb)
{
    float s = 0;
    for (int64_t j = 0; j < nb; j++) {
        int32_t isum = 0;
        for (int i = 0; i < 32; i++)
            isum += q[32 * j + i] * xq[32 * j + i];
        s += xd[j] * (a[j] * (float)isum) + b[j] * xs[j];
    }
    return s;
}

static const mp_kern_inner portable_inner = {dot_f32, dot_q8};

static void exact(const mp_packed *w, const float *x, int64_t r0, int64_t r1, int64_t t0, int64_t t1, float *y)
{
    mp_kern_exact_tiles(&portable_inner, w, x, r0, r1, t0, t1, y);
}

static void fast(const mp_packed *w, const mp_kern_xq *xq, int64_t r0, int64_t r1, int64_t t0, int64_t t1,
                 float *y)
{
    mp_kern_fast_tiles(&portable_inner, w, xq, r0, r1, t0, t1, y);
}

const mp_kern_ops *mp_kern_portable(void)
{
    static const mp_kern_ops ops = {"portable", exact, fast};
    return &ops;
}
