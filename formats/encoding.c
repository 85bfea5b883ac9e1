#include "encoding.h"

#include <stdio.h>
#include <string.h>

#include "../core/dtype.h"
#include "ggml_blocks.h"

static uint64_t ceil_div(uint64_t a, uint64_t b)
{
    return (a + b - 1) / b;
}

static uint64_t fp8_scale_count(mp_fp8_scale s, int64_t rows, int64_t cols)
{
    switch (s) {
    case MP_FP8_TENSOR:
        return 1;
    case MP_FP8_CHANNEL:
        return (uint64_t)rows;
    default:
        return ceil_div((uint64_t)rows, MP_FP8_BLOCK_SIZE) * ceil_div((uint64_t)cols, MP_FP8_BLOCK_SIZE);
    }
}

/* 2:4: per group of 4 values, 2 codes (fp8: 2 bytes; w4: 1 byte) then, after all the
 * codes, one position nibble per group. */
static uint64_t nm24_data(const mp_encoding *e, uint64_t n, uint64_t *meta_offset)
{
    *meta_offset = e->kind == MP_ENC_FP8 ? n / 2 : n / 4;
    return *meta_offset + ceil_div(n / 4, 2);
}

void mp_encoding_layout(const mp_encoding *e, int64_t rows, int64_t cols, mp_enc_layout *out)
{
    uint64_t n = (uint64_t)rows * (uint64_t)cols;
    memset(out, 0, sizeof *out);
    switch (e->kind) {
    case MP_ENC_F32:
        out->data_bytes = 4 * n;
        break;
    case MP_ENC_BF16:
    case MP_ENC_F16:
        out->data_bytes = 2 * n;
        break;
    case MP_ENC_FP8:
        out->data_bytes = e->nm24 ? nm24_data(e, n, &out->meta_offset) : n;
        out->scales_offset = (out->data_bytes + 3) & ~(uint64_t)3;
        out->n_scales = fp8_scale_count(e->fp8_scale, rows, cols);
        out->scale_bytes = 4;
        break;
    case MP_ENC_W4:
        out->data_bytes = e->nm24 ? nm24_data(e, n, &out->meta_offset) : n / 2;
        out->groups_per_row = cols / e->group;
        out->scales_offset = out->data_bytes;
        out->n_scales = (uint64_t)rows * (uint64_t)out->groups_per_row;
        out->scale_bytes = 2;
        out->zeros_offset = out->scales_offset + 2 * out->n_scales;
        out->zeros_bytes = e->sym ? 0 : ceil_div(out->n_scales, 2);
        break;
    default: /* a llama.cpp grid: whole blocks, scales inside them */
        out->groups_per_row = cols / mp_ggml_block_values(e->kind);
        out->data_bytes = (uint64_t)rows * (uint64_t)out->groups_per_row * (uint64_t)mp_ggml_block_bytes(e->kind);
        break;
    }
    out->total = out->scales_offset ? out->scales_offset + out->n_scales * out->scale_bytes + out->zeros_bytes
                                    : out->data_bytes;
}

const char *mp_encoding_unfit(const mp_encoding *e, int64_t rows, int64_t cols, char *why, size_t cap)
{
    if (mp_ggml_is_grid(e->kind)) {
        int block = mp_ggml_block_values(e->kind);
        if (cols % block == 0)
            return rows >= 0 ? NULL : "negative rows";
        snprintf(why, cap, "%lld input columns are not a multiple of %s's block of %d", (long long)cols,
                 mp_encoding_kind_name(e->kind), block);
        return why;
    }
    if (e->nm24 && e->kind != MP_ENC_FP8 && e->kind != MP_ENC_W4) {
        snprintf(why, cap, "2:4 sparsity applies to fp8 and w4 only, not %s", mp_encoding_kind_name(e->kind));
        return why;
    }
    if (e->nm24 && cols % 4 != 0) {
        snprintf(why, cap, "%lld input columns are not a multiple of 4, as 2:4 sparsity needs", (long long)cols);
        return why;
    }
    if (e->kind != MP_ENC_W4)
        return NULL;
    if (e->group != 32 && e->group != 64 && e->group != 128)
        snprintf(why, cap, "w4 group %d is not 32, 64 or 128", e->group);
    else if (cols % e->group != 0)
        snprintf(why, cap, "%lld input columns are not a multiple of the w4 group %d", (long long)cols, e->group);
    else
        return rows >= 0 ? NULL : "negative rows";
    return why;
}

const char *mp_encoding_kind_name(mp_enc_kind k)
{
    static const char *const names[] = {"f32",  "bf16", "f16",  "fp8_e4m3", "w4",     "q8_0",  "q4_0",
                                        "q4_1", "q4_k", "q5_k", "q6_k",     "iq4_nl", "iq4_xs"};
    return (unsigned)k <= MP_ENC_IQ4_XS ? names[k] : "?";
}

const char *mp_fp8_scale_name(mp_fp8_scale s)
{
    static const char *const names[] = {"tensor", "channel", "block"};
    return (unsigned)s <= MP_FP8_BLOCK ? names[s] : "?";
}

const char *mp_encoding_manifest_name(const mp_encoding *e)
{
    if (e->nm24 && e->kind == MP_ENC_FP8)
        return "fp8_e4m3_2:4";
    if (e->nm24 && e->kind == MP_ENC_W4)
        return "w4_2:4";
    return mp_encoding_kind_name(e->kind);
}

static int parse_grid(const char *text, mp_encoding *e)
{
    for (int k = MP_ENC_Q8_0; k <= MP_ENC_IQ4_XS; k++)
        if (strcmp(text, mp_encoding_kind_name((mp_enc_kind)k)) == 0) {
            e->kind = (mp_enc_kind)k;
            return 0;
        }
    return -1;
}

static int parse_dense(const char *text, mp_encoding *e)
{
    memset(e, 0, sizeof *e);
    if (strcmp(text, "f32") == 0)
        e->kind = MP_ENC_F32;
    else if (strcmp(text, "bf16") == 0)
        e->kind = MP_ENC_BF16;
    else if (strcmp(text, "f16") == 0)
        e->kind = MP_ENC_F16;
    else if (strcmp(text, "fp8") == 0 || strcmp(text, "fp8-block") == 0)
        *e = (mp_encoding){.kind = MP_ENC_FP8, .fp8_scale = MP_FP8_BLOCK};
    else if (strcmp(text, "fp8-channel") == 0)
        *e = (mp_encoding){.kind = MP_ENC_FP8, .fp8_scale = MP_FP8_CHANNEL};
    else if (strcmp(text, "fp8-tensor") == 0)
        *e = (mp_encoding){.kind = MP_ENC_FP8, .fp8_scale = MP_FP8_TENSOR};
    else if (parse_grid(text, e) == 0)
        return 0;
    else {
        int group, used = 0;
        if (sscanf(text, "w4g%d%n", &group, &used) != 1 || (group != 32 && group != 64 && group != 128))
            return -1;
        const char *rest = text + used;
        if (*rest != '\0' && strcmp(rest, "-sym") != 0)
            return -1;
        *e = (mp_encoding){.kind = MP_ENC_W4, .group = group, .sym = *rest != '\0'};
    }
    return 0;
}

int mp_encoding_parse(const char *text, mp_encoding *e)
{
    static const char suffix[] = "-2:4";
    size_t n = strlen(text), k = sizeof suffix - 1;
    if (n <= k || strcmp(text + n - k, suffix) != 0)
        return parse_dense(text, e);
    char dense[32];
    if (n - k >= sizeof dense)
        return -1;
    memcpy(dense, text, n - k);
    dense[n - k] = '\0';
    if (parse_dense(dense, e) != 0 || (e->kind != MP_ENC_FP8 && e->kind != MP_ENC_W4))
        return -1;
    e->nm24 = true;
    return 0;
}

void mp_encoding_format(const mp_encoding *e, char *buf, size_t cap)
{
    const char *nm = e->nm24 ? "-2:4" : "";
    if (e->kind == MP_ENC_W4)
        snprintf(buf, cap, "w4g%d%s%s", e->group, e->sym ? "-sym" : "", nm);
    else if (e->kind == MP_ENC_FP8)
        snprintf(buf, cap, "fp8-%s%s", mp_fp8_scale_name(e->fp8_scale), nm);
    else
        snprintf(buf, cap, "%s", mp_encoding_kind_name(e->kind));
}

/* Scales and zeros are read with memcpy: sections need not be aligned in memory. */
static float load_f32(const uint8_t *p)
{
    float f;
    memcpy(&f, p, 4);
    return f;
}

static uint16_t load_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static void decode_fp8_rows(const mp_encoding *e, const mp_enc_layout *L, int64_t cols, const uint8_t *raw,
                            int64_t r0, int64_t r1, float *out)
{
    const uint8_t *scales = raw + L->scales_offset;
    int64_t blocks_per_row = (cols + MP_FP8_BLOCK_SIZE - 1) / MP_FP8_BLOCK_SIZE;
    for (int64_t r = r0; r < r1; r++) {
        float *o = out + (r - r0) * cols;
        mp_fp8_e4m3_to_f32_n(raw + r * cols, o, (size_t)cols);
        if (e->fp8_scale == MP_FP8_BLOCK) {
            const uint8_t *srow = scales + 4 * (uint64_t)((r / MP_FP8_BLOCK_SIZE) * blocks_per_row);
            for (int64_t c = 0; c < cols; c++)
                o[c] *= load_f32(srow + 4 * (c / MP_FP8_BLOCK_SIZE));
        } else {
            float s = load_f32(scales + (e->fp8_scale == MP_FP8_CHANNEL ? 4 * r : 0));
            for (int64_t c = 0; c < cols; c++)
                o[c] *= s;
        }
    }
}

static void decode_w4_rows(const mp_encoding *e, const mp_enc_layout *L, int64_t cols, const uint8_t *raw,
                           int64_t r0, int64_t r1, float *out)
{
    int64_t G = L->groups_per_row, g = e->group;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *q = raw + r * (cols / 2);
        float *o = out + (r - r0) * cols;
        for (int64_t j = 0; j < G; j++) {
            uint64_t k = (uint64_t)(r * G + j);
            float s = mp_f16_to_f32(load_u16(raw + L->scales_offset + 2 * k));
            int z = 8;
            if (!e->sym) {
                uint8_t zb = raw[L->zeros_offset + k / 2];
                z = (k & 1) ? zb >> 4 : zb & 15;
            }
            for (int64_t c = j * g; c < (j + 1) * g; c += 2) {
                uint8_t b = q[c / 2];
                o[c] = (float)((b & 15) - z) * s;
                o[c + 1] = (float)((b >> 4) - z) * s;
            }
        }
    }
}

void mp_encoding_decode_rows(const mp_encoding *e, int64_t rows, int64_t cols, const uint8_t *raw,
                             int64_t r0, int64_t r1, float *out)
{
    mp_enc_layout L;
    mp_encoding_layout(e, rows, cols, &L);
    size_t n = (size_t)((r1 - r0) * cols);
    if (e->nm24) {
        for (int64_t r = r0; r < r1; r++)
            mp_nm24_decode_span(e, &L, cols, raw, r, 0, cols, out + (r - r0) * cols);
        return;
    }
    switch (e->kind) {
    case MP_ENC_F32:
        memcpy(out, raw + 4 * (uint64_t)(r0 * cols), 4 * n);
        break;
    case MP_ENC_BF16:
        mp_decode_to_f32(MP_DT_BF16, raw + 2 * (uint64_t)(r0 * cols), out, n);
        break;
    case MP_ENC_F16:
        mp_decode_to_f32(MP_DT_F16, raw + 2 * (uint64_t)(r0 * cols), out, n);
        break;
    case MP_ENC_FP8:
        decode_fp8_rows(e, &L, cols, raw, r0, r1, out);
        break;
    case MP_ENC_W4:
        decode_w4_rows(e, &L, cols, raw, r0, r1, out);
        break;
    default:
        mp_ggml_decode_blocks(e->kind, raw + (uint64_t)r0 * (L.data_bytes / (uint64_t)(rows ? rows : 1)),
                              (r1 - r0) * L.groups_per_row, out);
        break;
    }
}
