#include "ggml_blocks.h"

#include <string.h>

#include "../core/dtype.h"

const int8_t mp_iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

bool mp_ggml_is_grid(mp_enc_kind k)
{
    return k >= MP_ENC_Q8_0 && k <= MP_ENC_IQ4_XS;
}

int mp_ggml_block_values(mp_enc_kind k)
{
    switch (k) {
    case MP_ENC_Q4_K:
    case MP_ENC_Q5_K:
    case MP_ENC_Q6_K:
    case MP_ENC_IQ4_XS:
        return 256;
    default:
        return mp_ggml_is_grid(k) ? 32 : 1;
    }
}

int mp_ggml_block_bytes(mp_enc_kind k)
{
    switch (k) {
    case MP_ENC_Q8_0:
        return 34;
    case MP_ENC_Q4_0:
    case MP_ENC_IQ4_NL:
        return 18;
    case MP_ENC_Q4_1:
        return 20;
    case MP_ENC_Q4_K:
        return 144;
    case MP_ENC_Q5_K:
        return 176;
    case MP_ENC_Q6_K:
        return 210;
    case MP_ENC_IQ4_XS:
        return 136;
    default:
        return 0;
    }
}

int mp_ggml_type(mp_enc_kind k)
{
    switch (k) {
    case MP_ENC_F32:
        return 0;
    case MP_ENC_F16:
        return 1;
    case MP_ENC_BF16:
        return 30;
    case MP_ENC_Q4_0:
        return 2;
    case MP_ENC_Q4_1:
        return 3;
    case MP_ENC_Q8_0:
        return 8;
    case MP_ENC_Q4_K:
        return 12;
    case MP_ENC_Q5_K:
        return 13;
    case MP_ENC_Q6_K:
        return 14;
    case MP_ENC_IQ4_NL:
        return 20;
    case MP_ENC_IQ4_XS:
        return 23;
    default:
        return -1;
    }
}

static float half(const uint8_t *p)
{
    return mp_f16_to_f32((uint16_t)(p[0] | p[1] << 8));
}

void mp_ggml_k4_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *m)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

void mp_ggml_k4_pack_scales(const uint8_t sc[8], const uint8_t m[8], uint8_t out[12])
{
    memset(out, 0, 12);
    for (int j = 0; j < 4; j++) {
        out[j] = (uint8_t)((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
        out[j + 4] = (uint8_t)((m[j] & 63) | ((m[j + 4] >> 4) << 6));
        out[j + 8] = (uint8_t)((sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4));
    }
}

/* Each decoder below mirrors its ggml dequantize_row_* expression for expression: the
 * integer is converted to float, products and sums are single f32 operations in
 * ggml's order (C11 without FP contraction: no fused multiply-add). */

static void q8_0_block(const uint8_t *b, float *y)
{
    float d = half(b);
    for (int j = 0; j < 32; j++)
        y[j] = (float)(int8_t)b[2 + j] * d;
}

static void q4_0_block(const uint8_t *b, float *y)
{
    float d = half(b);
    for (int j = 0; j < 16; j++) {
        y[j] = (float)((b[2 + j] & 0x0F) - 8) * d;
        y[j + 16] = (float)((b[2 + j] >> 4) - 8) * d;
    }
}

static void q4_1_block(const uint8_t *b, float *y)
{
    float d = half(b), m = half(b + 2);
    for (int j = 0; j < 16; j++) {
        y[j] = (float)(b[4 + j] & 0x0F) * d + m;
        y[j + 16] = (float)(b[4 + j] >> 4) * d + m;
    }
}

/* q4_K and q5_K: d, dmin, 12 scale bytes, (q5_K: 32 high-bit bytes), 128 nibble bytes;
 * each 64 values are 32 low nibbles (sub-block 2k) then 32 high nibbles (2k + 1). */
static void qk_block(const uint8_t *b, bool five, float *y)
{
    float d = half(b), dmin = half(b + 2);
    const uint8_t *scales = b + 4, *qh = b + 16, *ql = b + (five ? 48 : 16);
    for (int k = 0; k < 4; k++) {
        for (int half_ = 0; half_ < 2; half_++) {
            uint8_t sc, m;
            mp_ggml_k4_scale_min(2 * k + half_, scales, &sc, &m);
            float d1 = d * (float)sc, m1 = dmin * (float)m;
            int bit = 2 * k + half_;
            for (int l = 0; l < 32; l++) {
                int q = half_ ? ql[32 * k + l] >> 4 : ql[32 * k + l] & 0xF;
                if (five && (qh[l] >> bit & 1))
                    q += 16;
                y[64 * k + 32 * half_ + l] = d1 * (float)q - m1;
            }
        }
    }
}

/* q6_K: 128 low-nibble bytes, 64 bytes of 2-bit highs, 16 int8 scales, d. */
static void q6_k_block(const uint8_t *b, float *y)
{
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    float d = half(b + 208);
    for (int n = 0; n < 2; n++, ql += 64, qh += 32, sc += 8, y += 128)
        for (int l = 0; l < 32; l++) {
            int is = l / 16;
            int q1 = ((ql[l] & 0xF) | ((qh[l] >> 0 & 3) << 4)) - 32;
            int q2 = ((ql[l + 32] & 0xF) | ((qh[l] >> 2 & 3) << 4)) - 32;
            int q3 = ((ql[l] >> 4) | ((qh[l] >> 4 & 3) << 4)) - 32;
            int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6 & 3) << 4)) - 32;
            y[l] = d * (float)sc[is] * (float)q1;
            y[l + 32] = d * (float)sc[is + 2] * (float)q2;
            y[l + 64] = d * (float)sc[is + 4] * (float)q3;
            y[l + 96] = d * (float)sc[is + 6] * (float)q4;
        }
}

static void iq4_nl_block(const uint8_t *b, float *y)
{
    float d = half(b);
    for (int j = 0; j < 16; j++) {
        y[j] = d * (float)mp_iq4nl_values[b[2 + j] & 0xF];
        y[j + 16] = d * (float)mp_iq4nl_values[b[2 + j] >> 4];
    }
}

/* iq4_xs: d, 16-bit high scale bits (2 per sub-block), 4 bytes of low scale nibbles,
 * 128 nibble bytes (per sub-block of 32: 16 low nibbles then 16 high). */
static void iq4_xs_block(const uint8_t *b, float *y)
{
    float d = half(b);
    unsigned scales_h = (unsigned)(b[2] | b[3] << 8);
    const uint8_t *scales_l = b + 4, *qs = b + 8;
    for (int ib = 0; ib < 8; ib++, qs += 16, y += 32) {
        int ls = ((scales_l[ib / 2] >> 4 * (ib % 2)) & 0xF) | (int)(((scales_h >> 2 * ib) & 3) << 4);
        float dl = d * (float)(ls - 32);
        for (int j = 0; j < 16; j++) {
            y[j] = dl * (float)mp_iq4nl_values[qs[j] & 0xF];
            y[j + 16] = dl * (float)mp_iq4nl_values[qs[j] >> 4];
        }
    }
}

void mp_ggml_decode_blocks(mp_enc_kind k, const uint8_t *blocks, int64_t n_blocks, float *out)
{
    int bytes = mp_ggml_block_bytes(k), values = mp_ggml_block_values(k);
    for (int64_t i = 0; i < n_blocks; i++) {
        const uint8_t *b = blocks + i * bytes;
        float *y = out + i * values;
        switch (k) {
        case MP_ENC_Q8_0:
            q8_0_block(b, y);
            break;
        case MP_ENC_Q4_0:
            q4_0_block(b, y);
            break;
        case MP_ENC_Q4_1:
            q4_1_block(b, y);
            break;
        case MP_ENC_Q4_K:
        case MP_ENC_Q5_K:
            qk_block(b, k == MP_ENC_Q5_K, y);
            break;
        case MP_ENC_Q6_K:
            q6_k_block(b, y);
            break;
        case MP_ENC_IQ4_NL:
            iq4_nl_block(b, y);
            break;
        case MP_ENC_IQ4_XS:
            iq4_xs_block(b, y);
            break;
        default:
            break;
        }
    }
}
