#include "weights.h"

#include <stdlib.h>
#include <string.h>

#include "../core/dtype.h"

static const mp_st_tensor *info(const mp_model *m, int tensor)
{
    return m->st->tensors[tensor].info;
}

mp_linear mp_linear_of_tensor(const mp_model *m, int tensor)
{
    const mp_st_tensor *t = info(m, tensor);
    mp_linear lin = {.weight = tensor, .scale = -1, .bias = -1, .expert = -1, .row_stride = 1};
    lin.rows = t->ndim == 2 ? t->shape[0] : 1;
    lin.cols = t->ndim >= 1 ? t->shape[t->ndim - 1] : 1;
    return lin;
}

/* Stored rows of one expert's slab (the whole tensor when not stacked). */
static int64_t physical_rows(const mp_st_tensor *t, const mp_linear *lin)
{
    return lin->expert >= 0 ? t->shape[1] : (t->ndim == 2 ? t->shape[0] : 1);
}

/* The checkpoint file that holds the tensor, for messages. */
static const char *file_of(const mp_model *m, int tensor)
{
    return m->st->files[m->st->tensors[tensor].file].path;
}

static int nonfinite_error(const mp_model *m, int tensor, uint64_t index, mp_error *err)
{
    return mp_fail(err, MP_EXIT_INPUT,
                   "%s: tensor \"%s\": non-finite value (NaN or infinity) at flat index %llu; --allow-nonfinite carries such weights",
                   file_of(m, tensor), info(m, tensor)->name, (unsigned long long)index);
}

/* Index of the first NaN or infinity among n floats, or n. The first pass only ORs
 * exponent tests, which the compiler vectorizes: weights are almost always clean. */
static uint64_t first_nonfinite(const float *v, uint64_t n)
{
    const uint32_t *bits = (const uint32_t *)(const void *)v;
    uint32_t any = 0;
    for (uint64_t i = 0; i < n; i++)
        any |= (bits[i] & 0x7f800000u) == 0x7f800000u;
    if (!any)
        return n;
    uint64_t i = 0;
    while (i < n && (bits[i] & 0x7f800000u) != 0x7f800000u)
        i++;
    return i;
}

/* Decoded values v[0..n) of tensor, the first at flat index first_index. */
static int check_decoded(const mp_model *m, int tensor, const float *v, uint64_t n, uint64_t first_index,
                         mp_error *err)
{
    if (m->allow_nonfinite)
        return MP_OK;
    uint64_t bad = first_nonfinite(v, n);
    return bad < n ? nonfinite_error(m, tensor, first_index + bad, err) : MP_OK;
}

/* Whether a stored value is NaN or infinite, by its encoding: all-ones exponents of
 * f32/bf16/f16, E4M3's NaN codes (it has no infinities), E8M0's NaN (0xff). */
static bool stored_nonfinite(mp_dtype dt, const uint8_t *p)
{
    uint16_t h;
    uint32_t w;
    switch (dt) {
    case MP_DT_F32:
        memcpy(&w, p, 4);
        return (w & 0x7f800000u) == 0x7f800000u;
    case MP_DT_BF16:
        memcpy(&h, p, 2);
        return (h & 0x7f80u) == 0x7f80u;
    case MP_DT_F16:
        memcpy(&h, p, 2);
        return (h & 0x7c00u) == 0x7c00u;
    case MP_DT_F8_E4M3:
        return (p[0] & 0x7fu) == 0x7fu;
    case MP_DT_F8_E8M0:
        return p[0] == 0xffu;
    default:
        return false;
    }
}

int mp_ckpt_check_stored(const mp_model *m, int tensor, const void *bytes, uint64_t offset, uint64_t len,
                         mp_error *err)
{
    mp_dtype dt = info(m, tensor)->dtype;
    uint64_t esize = (uint64_t)mp_dtype_bits(dt) / 8;
    if (m->allow_nonfinite || esize == 0)
        return MP_OK;
    const uint8_t *p = bytes;
    for (uint64_t i = 0; i + esize <= len; i += esize)
        if (stored_nonfinite(dt, p + i))
            return nonfinite_error(m, tensor, (offset + i) / esize, err);
    return MP_OK;
}

uint64_t mp_ckpt_linear_bytes(const mp_model *m, const mp_linear *lin)
{
    const mp_st_tensor *t = info(m, lin->weight);
    uint64_t bytes = mp_st_nbytes(t);
    if (lin->scale >= 0)
        bytes += mp_st_nbytes(info(m, lin->scale));
    if (lin->expert >= 0)
        bytes /= (uint64_t)t->shape[0];
    return bytes / (uint64_t)lin->row_stride;
}

/* FP8 rows: codes times the block scale of DeepSeek's weight_scale_inv. */
static int read_fp8_rows(const mp_model *m, const mp_linear *lin, int64_t r0, int64_t r1, float *out, mp_error *err)
{
    int64_t cols = lin->cols, br = m->cfg.fp8_block_rows, bc = m->cfg.fp8_block_cols;
    int64_t blocks_per_row = (cols + bc - 1) / bc;
    uint64_t n = (uint64_t)((r1 - r0) * cols);
    uint8_t *codes = malloc(n ? n : 1);
    float *scales = malloc((size_t)blocks_per_row * sizeof *scales);
    int rc = codes && scales ? mp_st_set_read(m->st, lin->weight, (uint64_t)(r0 * cols), n, codes, err)
                             : mp_fail(err, MP_EXIT_IO, "out of memory");
    for (int64_t r = r0; r < r1 && rc == MP_OK; r++) {
        uint64_t scale_index = (uint64_t)((r / br) * blocks_per_row);
        if (r == r0 || r % br == 0)
            rc = mp_st_set_read(m->st, lin->scale, scale_index * 4, (uint64_t)blocks_per_row * 4, scales, err);
        if (rc == MP_OK)
            rc = check_decoded(m, lin->scale, scales, (uint64_t)blocks_per_row, scale_index, err);
        float *o = out + (r - r0) * cols;
        mp_fp8_e4m3_to_f32_n(codes + (r - r0) * cols, o, (size_t)cols);
        for (int64_t c = 0; c < cols; c++)
            o[c] *= scales[c / bc];
        if (rc == MP_OK)
            rc = check_decoded(m, lin->weight, o, (uint64_t)cols, (uint64_t)(r * cols), err);
    }
    free(codes);
    free(scales);
    return rc;
}

/* MXFP4 row: 16-byte blocks of 32 e2m1 values (low nibble first) and one e8m0
 * exponent per block. */
static int read_mxfp4_row(const mp_model *m, const mp_linear *lin, int64_t prow, float *out, mp_error *err)
{
    const mp_st_tensor *blocks = info(m, lin->weight);
    int64_t nblocks = lin->cols / 32, rows_per_expert = blocks->shape[1];
    uint64_t row_index = (uint64_t)(lin->expert * rows_per_expert + prow);
    uint8_t *codes = malloc((size_t)nblocks * 16), *exps = malloc((size_t)nblocks);
    int rc = codes && exps ? mp_st_set_read(m->st, lin->weight, row_index * (uint64_t)nblocks * 16, (uint64_t)nblocks * 16, codes, err)
                           : mp_fail(err, MP_EXIT_IO, "out of memory");
    if (rc == MP_OK)
        rc = mp_st_set_read(m->st, lin->scale, row_index * (uint64_t)nblocks, (uint64_t)nblocks, exps, err);
    /* e2m1 codes are all finite; an e8m0 exponent (stored as U8) of 0xff is NaN */
    for (int64_t b = 0; b < nblocks && rc == MP_OK && !m->allow_nonfinite; b++)
        if (exps[b] == 0xff)
            rc = nonfinite_error(m, lin->scale, row_index * (uint64_t)nblocks + (uint64_t)b, err);
    for (int64_t b = 0; b < nblocks && rc == MP_OK; b++) {
        float scale = mp_e8m0_to_f32(exps[b]);
        for (int k = 0; k < 16; k++) {
            uint8_t byte = codes[b * 16 + k];
            out[b * 32 + 2 * k] = mp_fp4_e2m1_to_f32(byte & 15) * scale;
            out[b * 32 + 2 * k + 1] = mp_fp4_e2m1_to_f32(byte >> 4) * scale;
        }
    }
    free(codes);
    free(exps);
    return rc;
}

/* bf16 to f32 is a shift. The generic decoders loop over bytes with a run-time count,
 * which GCC's -O2 cost model leaves scalar; blocks of a constant 16 from a uint16_t
 * buffer vectorize, and bf16 is what most checkpoints hold. */
static void bf16_to_f32(const uint16_t *src, float *dst, uint64_t n)
{
    uint32_t *out = (uint32_t *)(void *)dst;
    uint64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 16; k++)
            out[i + k] = (uint32_t)src[i + k] << 16;
    for (; i < n; i++)
        out[i] = (uint32_t)src[i] << 16;
}

/* Plain dtypes, rows p0..p0+n-1 of the (expert's) stored matrix, contiguous. Read
 * through a small stack buffer: no allocation or mapping per call, which matters when
 * threads read many small chunks. */
static int read_plain_rows(const mp_model *m, const mp_linear *lin, int64_t p0, int64_t n, float *out, mp_error *err)
{
    const mp_st_tensor *t = info(m, lin->weight);
    uint64_t esize = (uint64_t)mp_dtype_bits(t->dtype) / 8;
    uint64_t row_bytes = (uint64_t)lin->cols * esize;
    uint64_t first = (uint64_t)(lin->expert >= 0 ? lin->expert * physical_rows(t, lin) : 0) + (uint64_t)p0;
    uint64_t total = (uint64_t)(n * lin->cols), per_read = sizeof(uint16_t[16384]) / esize;
    uint16_t buf[16384];
    for (uint64_t done = 0; done < total; done += per_read) {
        uint64_t k = total - done < per_read ? total - done : per_read;
        int rc = mp_st_set_read(m->st, lin->weight, first * row_bytes + done * esize, k * esize, buf, err);
        if (rc != MP_OK)
            return rc;
        if (t->dtype == MP_DT_BF16)
            bf16_to_f32(buf, out + done, k);
        else if (mp_decode_to_f32(t->dtype, buf, out + done, (size_t)k) != 0)
            return mp_fail(err, MP_EXIT_INPUT, "%s: dtype %s is not a float type", t->name, mp_dtype_name(t->dtype));
        rc = check_decoded(m, lin->weight, out + done, k, first * (uint64_t)lin->cols + done, err);
        if (rc != MP_OK)
            return rc;
    }
    return MP_OK;
}

/* GPT-OSS bf16 experts are stored [in, out]: read the expert's slab, then gather. */
static int read_transposed_rows(const mp_model *m, const mp_linear *lin, int64_t r0, int64_t r1, float *out, mp_error *err)
{
    const mp_st_tensor *t = info(m, lin->weight);
    int64_t in = t->shape[1], out_phys = t->shape[2];
    mp_linear slab = {.weight = lin->weight, .expert = lin->expert, .rows = in, .cols = out_phys};
    float *all = malloc((size_t)(in * out_phys) * sizeof *all);
    int rc = all ? read_plain_rows(m, &slab, 0, in, all, err) : mp_fail(err, MP_EXIT_IO, "out of memory");
    for (int64_t r = r0; r < r1 && rc == MP_OK; r++) {
        int64_t p = lin->row_offset + r * lin->row_stride;
        for (int64_t c = 0; c < lin->cols; c++)
            out[(r - r0) * lin->cols + c] = all[c * out_phys + p];
    }
    free(all);
    return rc;
}

int mp_ckpt_read_rows(const mp_model *m, const mp_linear *lin, int64_t r0, int64_t r1, float *out, mp_error *err)
{
    const mp_st_tensor *t = info(m, lin->weight);
    if (lin->transposed)
        return read_transposed_rows(m, lin, r0, r1, out, err);
    if (t->dtype == MP_DT_F8_E4M3 && lin->scale >= 0 && lin->expert < 0)
        return read_fp8_rows(m, lin, r0, r1, out, err);
    if (t->dtype == MP_DT_U8 && lin->scale >= 0) {
        int rc = MP_OK;
        for (int64_t r = r0; r < r1 && rc == MP_OK; r++)
            rc = read_mxfp4_row(m, lin, lin->row_offset + r * lin->row_stride, out + (r - r0) * lin->cols, err);
        return rc;
    }
    if (lin->row_stride == 1)
        return read_plain_rows(m, lin, lin->row_offset + r0, r1 - r0, out, err);
    int rc = MP_OK;
    for (int64_t r = r0; r < r1 && rc == MP_OK; r++)
        rc = read_plain_rows(m, lin, lin->row_offset + r * lin->row_stride, 1, out + (r - r0) * lin->cols, err);
    return rc;
}

int mp_ckpt_read_bias(const mp_model *m, const mp_linear *lin, float *out, mp_error *err)
{
    const mp_st_tensor *t = info(m, lin->bias);
    int64_t phys = t->ndim == 2 ? t->shape[1] : t->shape[0];
    mp_linear row = {.weight = lin->bias, .expert = -1, .rows = 1, .cols = phys};
    float *all = malloc((size_t)phys * sizeof *all);
    int64_t first = lin->expert >= 0 ? lin->expert : 0;
    int rc = all ? read_plain_rows(m, &row, first, 1, all, err) : mp_fail(err, MP_EXIT_IO, "out of memory");
    for (int64_t r = 0; r < lin->rows && rc == MP_OK; r++)
        out[r] = all[lin->row_offset + r * lin->row_stride];
    free(all);
    return rc;
}
