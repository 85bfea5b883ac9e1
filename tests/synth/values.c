/* Deterministic tensor values and their stored encodings.
 *
 * Every element is a pure function of (tensor seed, logical element index): a
 * counter-based splitmix64 stream. That lets a tensor be produced row by row, its
 * FP8 scales be recomputed from the same values when the scale tensor is written,
 * and the GPT-OSS experts come out the same in the MXFP4 and the bf16 layouts. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "synth.h"

/* splitmix64's output function. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The idx-th output of the splitmix64 sequence started at seed (random access). */
static uint64_t stream_at(uint64_t seed, uint64_t idx)
{
    return mix64(seed + (idx + 1) * 0x9e3779b97f4a7c15ull);
}

uint64_t synth_hash_name(uint64_t seed, const char *name)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ull;
    }
    return mix64(h ^ mix64(seed));
}

static double unit_uniform(uint64_t h)
{
    return (double)(h >> 11) / 9007199254740992.0; /* [0, 1) with 53 bits */
}

/* Sum of four 16-bit uniforms (Irwin-Hall), rescaled to mean 0, std 1, range
 * +-3.46. Integer sums and one multiply: no libm, so the same bits everywhere. */
static double gaussish(uint64_t h)
{
    uint64_t sum = (h & 0xffff) + ((h >> 16) & 0xffff) + ((h >> 32) & 0xffff) + (h >> 48);
    return ((double)sum - 131070.0) / 65536.0 * 1.7320508075688772;
}

typedef struct {
    const synth_tensor *t;
    double offset;
    float *col_std; /* standard deviation of each logical column */
} value_source;

/* Trained LLMs have a few input channels with outsized weights (they meet the
 * outlier activation channels), and quantizers treat them differently: 2 of every
 * 64 input channels (1 in a narrower last group) get 10-30x the magnitude. The
 * positions depend only on the global seed and the width, so all linears reading
 * the same hidden state share them; the factors differ per tensor. */
static void mark_outlier_channels(const synth_tensor *t, float *col_std)
{
    for (int64_t start = 0; start < t->cols; start += 64) {
        int64_t width = t->cols - start < 64 ? t->cols - start : 64;
        int count = (int)((2 * width + 63) / 64);
        uint64_t h = stream_at(t->channel_seed ^ (uint64_t)t->cols, (uint64_t)start);
        int64_t pick[2];
        pick[0] = (int64_t)(h % (uint64_t)width);
        if (count == 2) /* width > 32 here, so the second pick differs from the first */
            pick[1] = (pick[0] + 1 + (int64_t)((h >> 32) % (uint64_t)(width - 1))) % width;
        for (int k = 0; k < count; k++) {
            int64_t col = start + pick[k];
            double factor = 10.0 + 20.0 * unit_uniform(stream_at(~t->seed, (uint64_t)col));
            col_std[col] = (float)(col_std[col] * factor);
        }
    }
}

/* --outliers: trained LLMs carry a few residual channels far larger than the rest
 * ("massive activations"), which every RMSNorm and linear then sees. 1 of every 64
 * embedding columns (hidden channels) gets 20x the magnitude; the positions depend
 * only on the global seed and the width, and mostly differ from the weight ones. */
static void mark_hot_channels(const synth_tensor *t, float *col_std)
{
    for (int64_t start = 0; start < t->cols; start += 64) {
        int64_t width = t->cols - start < 64 ? t->cols - start : 64;
        uint64_t h = stream_at(t->channel_seed ^ 0x686f742063686e73ull ^ (uint64_t)t->cols, (uint64_t)start);
        col_std[start + (int64_t)(h % (uint64_t)width)] *= 20.0f;
    }
}

static int source_init(value_source *s, const synth_tensor *t)
{
    double std = 0.0;
    s->t = t;
    s->offset = 0.0;
    switch (t->values) {
    case VAL_LINEAR: /* per-tensor gain in [0.5, 0.8) over sqrt(fan_in) */
        std = (0.5 + 0.3 * unit_uniform(mix64(t->seed))) / sqrt((double)t->cols);
        break;
    case VAL_EMBED:
        std = 0.5 / sqrt((double)t->cols);
        break;
    case VAL_NORM:
        s->offset = 1.0;
        std = 0.1;
        break;
    case VAL_BIAS:
        std = 0.05;
        break;
    case VAL_SINK:
        std = 0.5;
        break;
    }
    s->col_std = malloc((size_t)t->cols * sizeof *s->col_std);
    if (!s->col_std)
        return -1;
    for (int64_t c = 0; c < t->cols; c++)
        s->col_std[c] = (float)std;
    if (t->values == VAL_LINEAR)
        mark_outlier_channels(t, s->col_std);
    if (t->values == VAL_EMBED && t->hot_channels)
        mark_hot_channels(t, s->col_std);
    return 0;
}

static float value_at(const value_source *s, int64_t expert, int64_t row, int64_t col)
{
    const synth_tensor *t = s->t;
    uint64_t index = ((uint64_t)expert * (uint64_t)t->rows + (uint64_t)row) * (uint64_t)t->cols + (uint64_t)col;
    return (float)(s->offset + gaussish(stream_at(t->seed, index)) * s->col_std[col]);
}

static void fill_row(const value_source *s, int64_t expert, int64_t row, float *out)
{
    for (int64_t c = 0; c < s->t->cols; c++)
        out[c] = value_at(s, expert, row, c);
}

/* ---- little-endian encoders ---- */

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_f32(uint8_t *p, float f)
{
    uint32_t v;
    memcpy(&v, &f, sizeof v);
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Encodes n floats in dtype dt (F32, BF16 or F16); returns the bytes written. */
static size_t encode_plain(mp_dtype dt, const float *x, int64_t n, uint8_t *out)
{
    for (int64_t i = 0; i < n; i++) {
        if (dt == MP_DT_F32)
            put_f32(out + 4 * i, x[i]);
        else if (dt == MP_DT_F16)
            put_u16(out + 2 * i, mp_f32_to_f16(x[i]));
        else
            put_u16(out + 2 * i, mp_f32_to_bf16(x[i]));
    }
    return (size_t)n * (dt == MP_DT_F32 ? 4 : 2);
}

/* DeepSeek block scale (scale_inv): amax/448 over the block, so the largest element
 * maps to the largest e4m3 value. Edge blocks use only the elements they have. */
static void band_block_scales(const float *band, int64_t band_rows, int64_t cols, float *scales)
{
    for (int64_t b = 0; b * 128 < cols; b++) {
        int64_t end = (b + 1) * 128 < cols ? (b + 1) * 128 : cols;
        float amax = 0.0f;
        for (int64_t r = 0; r < band_rows; r++)
            for (int64_t c = b * 128; c < end; c++) {
                float a = band[r * cols + c] < 0 ? -band[r * cols + c] : band[r * cols + c];
                if (a > amax)
                    amax = a;
            }
        scales[b] = amax > 0.0f ? amax / 448.0f : 1.0f;
    }
}

/* MXFP4 of one row: per 32 values the smallest power-of-two scale that keeps the
 * largest value within e2m1's +-6 (no clipping); byte = even element in the low
 * nibble, odd element in the high nibble (HF GPT-OSS layout). */
static void mxfp4_row(const float *row, int64_t cols, uint8_t *blocks, uint8_t *scales)
{
    for (int64_t k = 0; k < cols / 32; k++) {
        const float *x = row + 32 * k;
        float amax = 0.0f;
        for (int i = 0; i < 32; i++) {
            float a = x[i] < 0 ? -x[i] : x[i];
            if (a > amax)
                amax = a;
        }
        uint8_t code = mp_f32_to_e8m0(amax / 6.0f);
        float scale = mp_e8m0_to_f32(code);
        if (scales)
            scales[k] = code;
        if (blocks)
            for (int j = 0; j < 16; j++)
                blocks[16 * k + j] = (uint8_t)(mp_f32_to_fp4_e2m1(x[2 * j] / scale) |
                                               mp_f32_to_fp4_e2m1(x[2 * j + 1] / scale) << 4);
    }
}

/* ---- chunked output ---- */

typedef struct {
    uint8_t *data;
    size_t len, cap;
    synth_sink sink;
    void *ctx;
} out_buffer;

static int out_flush(out_buffer *b, mp_error *err)
{
    int rc = b->len ? b->sink(b->ctx, b->data, b->len, err) : MP_OK;
    b->len = 0;
    return rc;
}

/* Room for `need` more bytes, flushing first when the buffer is full. */
static uint8_t *out_reserve(out_buffer *b, size_t need, int *rc, mp_error *err)
{
    if (b->len + need > b->cap && (*rc = out_flush(b, err)) != MP_OK)
        return NULL;
    uint8_t *p = b->data + b->len;
    b->len += need;
    return p;
}

/* Rows of the stored layout, generated one unit (row or 128-row band) at a time. */
static int emit_plain(const value_source *s, float *rowbuf, out_buffer *b, mp_error *err)
{
    const synth_tensor *t = s->t;
    int bytes = t->dtype == MP_DT_F32 ? 4 : 2;
    int rc = MP_OK;
    for (int64_t e = 0; e < t->experts; e++)
        for (int64_t r = 0; r < t->rows; r++) {
            uint8_t *p = out_reserve(b, (size_t)(t->cols * bytes), &rc, err);
            if (!p)
                return rc;
            fill_row(s, e, r, rowbuf);
            encode_plain(t->dtype, rowbuf, t->cols, p);
        }
    return MP_OK;
}

static int emit_transposed(const value_source *s, float *colbuf, out_buffer *b, mp_error *err)
{
    const synth_tensor *t = s->t;
    int bytes = t->dtype == MP_DT_F32 ? 4 : 2;
    int rc = MP_OK;
    for (int64_t e = 0; e < t->experts; e++)
        for (int64_t c = 0; c < t->cols; c++) {
            uint8_t *p = out_reserve(b, (size_t)(t->rows * bytes), &rc, err);
            if (!p)
                return rc;
            for (int64_t r = 0; r < t->rows; r++)
                colbuf[r] = value_at(s, e, r, c);
            encode_plain(t->dtype, colbuf, t->rows, p);
        }
    return MP_OK;
}

static int emit_fp8(const value_source *s, float *band, float *scales, out_buffer *b, mp_error *err)
{
    const synth_tensor *t = s->t;
    int64_t n_col_blocks = (t->cols + 127) / 128;
    int rc = MP_OK;
    for (int64_t r0 = 0; r0 < t->rows; r0 += 128) {
        int64_t band_rows = t->rows - r0 < 128 ? t->rows - r0 : 128;
        for (int64_t r = 0; r < band_rows; r++)
            fill_row(s, 0, r0 + r, band + r * t->cols);
        band_block_scales(band, band_rows, t->cols, scales);
        size_t need = t->enc == ENC_FP8 ? (size_t)(band_rows * t->cols) : (size_t)n_col_blocks * 4;
        uint8_t *p = out_reserve(b, need, &rc, err);
        if (!p)
            return rc;
        if (t->enc == ENC_FP8_SCALE) {
            for (int64_t k = 0; k < n_col_blocks; k++)
                put_f32(p + 4 * k, scales[k]);
            continue;
        }
        for (int64_t r = 0; r < band_rows; r++)
            for (int64_t c = 0; c < t->cols; c++)
                p[r * t->cols + c] = mp_f32_to_fp8_e4m3(band[r * t->cols + c] / scales[c / 128]);
    }
    return MP_OK;
}

static int emit_mxfp4(const value_source *s, float *rowbuf, out_buffer *b, mp_error *err)
{
    const synth_tensor *t = s->t;
    bool blocks = t->enc == ENC_MXFP4_BLOCKS;
    size_t need = blocks ? (size_t)(t->cols / 2) : (size_t)(t->cols / 32);
    int rc = MP_OK;
    for (int64_t e = 0; e < t->experts; e++)
        for (int64_t r = 0; r < t->rows; r++) {
            uint8_t *p = out_reserve(b, need, &rc, err);
            if (!p)
                return rc;
            fill_row(s, e, r, rowbuf);
            mxfp4_row(rowbuf, t->cols, blocks ? p : NULL, blocks ? NULL : p);
        }
    return MP_OK;
}

/* The largest unit any emit_* function generates at once: a 128-row band for FP8,
 * one stored row (or transposed column) otherwise. */
static size_t unit_floats(const synth_tensor *t)
{
    if (t->enc == ENC_FP8 || t->enc == ENC_FP8_SCALE)
        return (size_t)((t->rows < 128 ? t->rows : 128) * t->cols);
    return (size_t)(t->rows > t->cols ? t->rows : t->cols);
}

int synth_emit_tensor(const synth_tensor *t, synth_sink sink, void *ctx, mp_error *err)
{
    value_source s = {0};
    size_t floats = unit_floats(t);
    /* a unit encodes to at most 4 bytes a value; small units are batched up to 64 KiB */
    out_buffer b = {.cap = 4 * floats > 65536 ? 4 * floats : 65536, .sink = sink, .ctx = ctx};
    b.data = malloc(b.cap);
    float *work = malloc(floats * sizeof *work);
    float *scales = malloc((size_t)((t->cols + 127) / 128) * sizeof *scales);
    int rc = MP_OK;
    if (!b.data || !work || !scales || source_init(&s, t) != 0) {
        rc = mp_fail(err, MP_EXIT_IO, "%s: out of memory", t->name);
    } else if (t->enc == ENC_PLAIN) {
        rc = emit_plain(&s, work, &b, err);
    } else if (t->enc == ENC_TRANSPOSED) {
        rc = emit_transposed(&s, work, &b, err);
    } else if (t->enc == ENC_FP8 || t->enc == ENC_FP8_SCALE) {
        rc = emit_fp8(&s, work, scales, &b, err);
    } else {
        rc = emit_mxfp4(&s, work, &b, err);
    }
    if (rc == MP_OK)
        rc = out_flush(&b, err);
    free(s.col_std);
    free(scales);
    free(work);
    free(b.data);
    return rc;
}
