#include "encoder.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/dtype.h"
#include "../formats/ggml_blocks.h"
#include "fp8.h"
#include "grid.h"
#include "hqq.h"

int mp_encoder_init(mp_encoder *x, const mp_encoding *e, int64_t rows, int64_t cols, const mp_w4_options *w4,
                    mp_error *err)
{
    memset(x, 0, sizeof *x);
    if (e->nm24) /* pruning needs the whole tensor and its activations: quant/calib_nm.c */
        return mp_fail(err, MP_EXIT_INPUT, "a [%lld, %lld] tensor: 2:4 encodings are made by calibration (--calib)",
                       (long long)rows, (long long)cols);
    x->enc = *e;
    x->rows = rows;
    x->cols = cols;
    if (w4)
        x->w4 = *w4;
    mp_encoding_layout(e, rows, cols, &x->layout);
    uint64_t tail = x->layout.total - x->layout.data_bytes;
    x->tail = calloc(tail + 1, 1);
    x->scales = calloc(x->layout.n_scales + 1, 4);
    if (e->kind == MP_ENC_W4 && !e->sym)
        x->zero_points = calloc(x->layout.n_scales + 1, 1);
    if (!x->tail || !x->scales || (e->kind == MP_ENC_W4 && !e->sym && !x->zero_points))
        return mp_fail(err, MP_EXIT_IO, "out of memory for a [%lld, %lld] tensor", (long long)rows, (long long)cols);
    return MP_OK;
}

int64_t mp_encoder_band_rows(const mp_encoder *x)
{
    int64_t rows = (4 << 20) / (x->cols > 0 ? x->cols : 1); /* about 16 MB of f32 */
    rows = (rows + 127) / 128 * 128;
    return rows < 128 ? 128 : rows;
}

static uint64_t data_bytes(mp_enc_kind kind, uint64_t n)
{
    if (mp_ggml_is_grid(kind))
        return n / (uint64_t)mp_ggml_block_values(kind) * (uint64_t)mp_ggml_block_bytes(kind);
    switch (kind) {
    case MP_ENC_F32:
        return 4 * n;
    case MP_ENC_BF16:
    case MP_ENC_F16:
        return 2 * n;
    case MP_ENC_FP8:
        return n;
    default:
        return n / 2;
    }
}

/* The quantizers see a band as a matrix of its own (rows from 0): every scale of a
 * band's rows is contiguous, so only the scale pointers move. */
static void encode_fp8_band(mp_encoder *x, const float *band, int64_t r0, int64_t r1, uint8_t *out)
{
    float *scales = x->scales;
    int64_t blocks_per_row = (x->cols + MP_FP8_BLOCK_SIZE - 1) / MP_FP8_BLOCK_SIZE;
    if (x->enc.fp8_scale == MP_FP8_CHANNEL)
        scales += r0;
    else if (x->enc.fp8_scale == MP_FP8_BLOCK)
        scales += r0 / MP_FP8_BLOCK_SIZE * blocks_per_row;
    mp_fp8_quantize_rows(&x->enc, r1 - r0, x->cols, band, 0, r1 - r0, x->tensor_amax, out, scales);
}

static void encode_w4_band(mp_encoder *x, const float *band, int64_t r0, int64_t r1, uint8_t *out)
{
    uint16_t *scales = x->scales;
    int64_t first = r0 * x->layout.groups_per_row;
    if (x->w4.method == MP_W4_HQQ) {
        mp_hqq_quantize_rows(&x->enc, r1 - r0, x->cols, band, NULL, out, scales + first,
                             x->zero_points ? x->zero_points + first : NULL);
        return;
    }
    mp_w4_quantize_rows(&x->enc, r1 - r0, x->cols, band, 0, r1 - r0, &x->w4, out, scales + first,
                        x->zero_points ? x->zero_points + first : NULL);
}

int64_t mp_encoder_chunk_rows(const mp_encoder *x)
{
    if (x->enc.kind == MP_ENC_FP8 && x->enc.fp8_scale == MP_FP8_BLOCK)
        return MP_FP8_BLOCK_SIZE;
    int64_t rows = (64 << 10) / (x->cols > 0 ? x->cols : 1); /* 256 KB of f32: stays in L2 */
    return rows < 1 ? 1 : rows;
}

uint64_t mp_encoder_data_bytes(const mp_encoder *x, int64_t n_rows)
{
    return data_bytes(x->enc.kind, (uint64_t)(n_rows * x->cols));
}

void mp_encoder_rows(mp_encoder *x, const float *rows, int64_t r0, int64_t r1, uint8_t *out)
{
    uint64_t n = (uint64_t)((r1 - r0) * x->cols);
    switch (x->enc.kind) {
    case MP_ENC_F32:
        memcpy(out, rows, n * 4);
        break;
    case MP_ENC_BF16:
        mp_f32_to_bf16_n(rows, (uint16_t *)(void *)out, n);
        break;
    case MP_ENC_F16:
        mp_f32_to_f16_n(rows, (uint16_t *)(void *)out, n);
        break;
    case MP_ENC_FP8:
        encode_fp8_band(x, rows, r0, r1, out);
        break;
    case MP_ENC_W4:
        encode_w4_band(x, rows, r0, r1, out);
        break;
    default:
        mp_grid_quantize_rows(x->enc.kind, r1 - r0, x->cols, rows, x->w4.importance, x->w4.method, out);
        break;
    }
}

/* Zero points: one flat nibble sequence, the first of each pair in the low half. */
static void pack_zero_points(mp_encoder *x, uint8_t *out)
{
    for (uint64_t k = 0; k < x->layout.n_scales; k++)
        out[k / 2] |= (uint8_t)((x->zero_points[k] & 15) << ((k & 1) ? 4 : 0));
}

/* Scales are little-endian f32 / f16 bits: copied as they are on this (x86) host. */
void mp_encoder_tail(mp_encoder *x, const uint8_t **tail, uint64_t *len)
{
    const mp_enc_layout *L = &x->layout;
    if (L->n_scales > 0) {
        memset(x->tail, 0, L->total - L->data_bytes);
        memcpy(x->tail + (L->scales_offset - L->data_bytes), x->scales, L->n_scales * L->scale_bytes);
    }
    if (x->zero_points)
        pack_zero_points(x, x->tail + (L->zeros_offset - L->data_bytes));
    *tail = x->tail;
    *len = x->layout.total - x->layout.data_bytes;
}

void mp_encoder_finish(mp_encoder *x, uint8_t *raw)
{
    const uint8_t *tail;
    uint64_t len;
    mp_encoder_tail(x, &tail, &len);
    memcpy(raw + x->layout.data_bytes, tail, len);
}

void mp_encoder_whole(mp_encoder *x, const float *W, uint8_t *raw)
{
    for (int64_t i = 0; i < x->rows * x->cols; i++) /* fp8 per-tensor scales need it first */
        x->tensor_amax = fmaxf(x->tensor_amax, fabsf(W[i]));
    mp_encoder_rows(x, W, 0, x->rows, raw);
    mp_encoder_finish(x, raw);
}

void mp_encoder_free(mp_encoder *x)
{
    free(x->tail);
    free(x->scales);
    free(x->zero_points);
    memset(x, 0, sizeof *x);
}
