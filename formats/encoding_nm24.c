/* 2:4 structured-sparse fp8 and w4 (docs/FORMAT.md, "2:4 sparse fp8 and w4"): of each
 * group of 4 consecutive values along a row only 2 codes are stored, with their
 * positions in one nibble (bits 0-1 the first, bits 2-3 the second, increasing), as
 * NVIDIA's sparse tensor cores and xFormers' sparse24 keep 2:4 metadata. Scales and zero
 * points are the dense encoding's sections, unchanged. */
#include <string.h>

#include "../core/dtype.h"
#include "encoding.h"

static float load_f32(const uint8_t *p)
{
    float f;
    memcpy(&f, p, 4);
    return f;
}

static uint8_t nibble(const uint8_t *bytes, uint64_t k)
{
    return (uint8_t)((bytes[k / 2] >> ((k & 1) ? 4 : 0)) & 15);
}

static void set_nibble(uint8_t *bytes, uint64_t k, uint8_t v)
{
    int shift = (k & 1) ? 4 : 0;
    bytes[k / 2] = (uint8_t)((bytes[k / 2] & ~(15 << shift)) | (v & 15) << shift);
}

/* The w4 zero point of quantization group k (row-major), 8 when symmetric. */
static int w4_zero(const mp_encoding *e, const mp_enc_layout *L, const uint8_t *raw, uint64_t k)
{
    return e->sym ? 8 : nibble(raw + L->zeros_offset, k);
}

static float fp8_scale(const mp_encoding *e, const mp_enc_layout *L, int64_t cols, const uint8_t *raw, int64_t r,
                       int64_t c)
{
    const uint8_t *scales = raw + L->scales_offset;
    if (e->fp8_scale == MP_FP8_BLOCK) {
        int64_t bpr = (cols + MP_FP8_BLOCK_SIZE - 1) / MP_FP8_BLOCK_SIZE;
        return load_f32(scales + 4 * (uint64_t)((r / MP_FP8_BLOCK_SIZE) * bpr + c / MP_FP8_BLOCK_SIZE));
    }
    return load_f32(scales + (e->fp8_scale == MP_FP8_CHANNEL ? 4 * (uint64_t)r : 0));
}

/* The stored code of slot i (0 or 1) of 4-group k (row-major over the whole tensor). */
static uint8_t kept_code(const mp_encoding *e, const uint8_t *raw, uint64_t k, int i)
{
    return e->kind == MP_ENC_FP8 ? raw[2 * k + (uint64_t)i] : nibble(raw, 2 * k + (uint64_t)i);
}

void mp_nm24_decode_span(const mp_encoding *e, const mp_enc_layout *L, int64_t cols, const uint8_t *raw, int64_t r,
                         int64_t c0, int64_t c1, float *out)
{
    const uint8_t *meta = raw + L->meta_offset;
    /* a pruned value is 0 times the scale, as the dense twin decodes its zero code: the
     * same bits (a negative scale gives -0), so dense exports are bit-exact */
    for (int64_t c = c0; c < c1; c += 4) {
        uint64_t k = (uint64_t)(r * (cols / 4) + c / 4);
        uint8_t m = nibble(meta, k);
        float *o = out + (c - c0);
        if (e->kind == MP_ENC_FP8) {
            float s = fp8_scale(e, L, cols, raw, r, c);
            o[0] = o[1] = o[2] = o[3] = 0.0f * s;
            o[m & 3] = mp_fp8_e4m3_to_f32(raw[2 * k]) * s;
            o[m >> 2] = mp_fp8_e4m3_to_f32(raw[2 * k + 1]) * s;
        } else {
            uint64_t g = (uint64_t)(r * L->groups_per_row + c / e->group);
            float s = mp_f16_to_f32((uint16_t)(raw[L->scales_offset + 2 * g] | raw[L->scales_offset + 2 * g + 1] << 8));
            int z = w4_zero(e, L, raw, g);
            o[0] = o[1] = o[2] = o[3] = 0.0f * s;
            o[m & 3] = (float)(nibble(raw, 2 * k) - z) * s;
            o[m >> 2] = (float)(nibble(raw, 2 * k + 1) - z) * s;
        }
    }
}

void mp_nm24_w4_stage(const mp_encoding *e, const mp_enc_layout *L, int64_t cols, const uint8_t *raw, int64_t r,
                      int64_t c0, int64_t c1, int8_t *q)
{
    const uint8_t *meta = raw + L->meta_offset;
    memset(q, 0, (size_t)(c1 - c0));
    uint64_t k = (uint64_t)(r * (cols / 4) + c0 / 4);
    /* group by group: the kernels call this for every token, a division per value cost */
    for (int64_t c = c0; c < c1;) {
        int64_t g = c / e->group, end = (g + 1) * e->group < c1 ? (g + 1) * e->group : c1;
        int z = w4_zero(e, L, raw, (uint64_t)(r * L->groups_per_row + g));
        for (; c < end; c += 4, k++) {
            uint8_t m = nibble(meta, k), codes = raw[k];
            int8_t *o = q + (c - c0);
            o[m & 3] = (int8_t)((codes & 15) - z);
            o[m >> 2] = (int8_t)((codes >> 4) - z);
        }
    }
}

/* The dense code of value (r, c) and the code that means zero there. */
static uint8_t dense_code(const mp_encoding *e, const mp_enc_layout *D, int64_t cols, const uint8_t *dense,
                          int64_t r, int64_t c, uint8_t *zero)
{
    uint64_t at = (uint64_t)(r * cols + c);
    if (e->kind == MP_ENC_FP8) {
        *zero = 0;
        return dense[at];
    }
    *zero = (uint8_t)w4_zero(e, D, dense, (uint64_t)(r * D->groups_per_row + c / e->group));
    return nibble(dense, at);
}

static bool is_zero_code(const mp_encoding *e, uint8_t code, uint8_t zero)
{
    return e->kind == MP_ENC_FP8 ? (code & 0x7f) == 0 : code == zero;
}

static void store_kept(const mp_encoding *e, uint8_t *raw, uint64_t k, int i, uint8_t code)
{
    if (e->kind == MP_ENC_FP8)
        raw[2 * k + (uint64_t)i] = code;
    else
        set_nibble(raw, 2 * k + (uint64_t)i, code);
}

/* Picks the positions of one group: its nonzero values, then the lowest free
 * positions, in increasing order. Returns -1 when more than 2 are nonzero. */
static int pick_positions(const bool nonzero[4], int pos[2])
{
    int free_slots = 2;
    for (int i = 0; i < 4; i++)
        free_slots -= nonzero[i];
    if (free_slots < 0)
        return -1;
    int got = 0;
    for (int i = 0; i < 4 && got < 2; i++) {
        if (nonzero[i])
            pos[got++] = i;
        else if (free_slots > 0) {
            free_slots--;
            pos[got++] = i;
        }
    }
    return 0;
}

int mp_nm24_pack(const mp_encoding *sparse, int64_t rows, int64_t cols, const uint8_t *dense_raw, const float *values,
                 uint8_t *out, int64_t *bad_group)
{
    mp_encoding de = *sparse;
    de.nm24 = false;
    mp_enc_layout D, L;
    mp_encoding_layout(&de, rows, cols, &D);
    mp_encoding_layout(sparse, rows, cols, &L);
    memset(out, 0, L.total);
    memcpy(out + L.scales_offset, dense_raw + D.scales_offset, D.total - D.scales_offset);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c += 4) {
            uint64_t k = (uint64_t)(r * (cols / 4) + c / 4);
            uint8_t codes[4], zero;
            bool nonzero[4];
            for (int i = 0; i < 4; i++) {
                codes[i] = dense_code(&de, &D, cols, dense_raw, r, c + i, &zero);
                nonzero[i] = values ? values[r * cols + c + i] != 0.0f : !is_zero_code(&de, codes[i], zero);
            }
            int pos[2];
            if (pick_positions(nonzero, pos) != 0) {
                *bad_group = (int64_t)k;
                return -1;
            }
            store_kept(sparse, out, k, 0, codes[pos[0]]);
            store_kept(sparse, out, k, 1, codes[pos[1]]);
            set_nibble(out + L.meta_offset, k, (uint8_t)(pos[0] | pos[1] << 2));
        }
    return 0;
}

void mp_nm24_densify(const mp_encoding *sparse, int64_t rows, int64_t cols, const uint8_t *raw, uint8_t *dense_out)
{
    mp_encoding de = *sparse;
    de.nm24 = false;
    mp_enc_layout D, L;
    mp_encoding_layout(&de, rows, cols, &D);
    mp_encoding_layout(sparse, rows, cols, &L);
    memset(dense_out, 0, D.total);
    memcpy(dense_out + D.scales_offset, raw + L.scales_offset, L.total - L.scales_offset);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c += 4) {
            uint64_t k = (uint64_t)(r * (cols / 4) + c / 4), at = (uint64_t)(r * cols + c);
            uint8_t m = nibble(raw + L.meta_offset, k);
            if (sparse->kind == MP_ENC_FP8) {
                dense_out[at + (m & 3)] = raw[2 * k];
                dense_out[at + (m >> 2)] = raw[2 * k + 1];
                continue;
            }
            uint8_t z = (uint8_t)w4_zero(sparse, &L, raw, (uint64_t)(r * L.groups_per_row + c / sparse->group));
            for (int i = 0; i < 4; i++)
                set_nibble(dense_out, at + (uint64_t)i, z);
            set_nibble(dense_out, at + (m & 3), kept_code(sparse, raw, k, 0));
            set_nibble(dense_out, at + (m >> 2), kept_code(sparse, raw, k, 1));
        }
}

int64_t mp_nm24_bad_positions(const mp_encoding *sparse, int64_t rows, int64_t cols, const uint8_t *raw)
{
    mp_enc_layout L;
    mp_encoding_layout(sparse, rows, cols, &L);
    for (uint64_t k = 0; k < (uint64_t)(rows * (cols / 4)); k++) {
        uint8_t m = nibble(raw + L.meta_offset, k);
        if ((m & 3) >= (m >> 2))
            return (int64_t)k;
    }
    return -1;
}
