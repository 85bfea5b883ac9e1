#include "convert_part.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "../model/weights.h"
#include "../quant/encoder.h"

uint64_t mp_convert_part_source_bytes(const mp_model *m, const mp_plan_part *part)
{
    if (!part->is_bias)
        return mp_ckpt_linear_bytes(m, &part->lin);
    const mp_st_tensor *t = m->st->tensors[part->lin.bias].info;
    return mp_st_nbytes(t) / (t->ndim == 2 ? (uint64_t)t->shape[0] : 1);
}

/* Reading and decoding a band is as much work as quantizing it: the threads split
 * its rows (pread is safe to share), and the first failure in row order is kept. */
static int read_band(const mp_model *m, const mp_plan_part *part, int64_t r0, int64_t r1, float *band, mp_error *err)
{
    if (part->is_bias)
        return mp_ckpt_read_bias(m, &part->lin, band, err);
    int chunks = omp_get_max_threads();
    if (chunks > r1 - r0)
        chunks = (int)(r1 - r0);
    mp_error errs[64] = {0};
    if (chunks > 64)
        chunks = 64;
    #pragma omp parallel for schedule(static)
    for (int k = 0; k < chunks; k++) {
        int64_t a = r0 + (r1 - r0) * k / chunks, b = r0 + (r1 - r0) * (k + 1) / chunks;
        mp_ckpt_read_rows(m, &part->lin, a, b, band + (a - r0) * part->cols, &errs[k]);
    }
    for (int k = 0; k < chunks; k++)
        if (errs[k].code != MP_OK)
            return mp_fail(err, errs[k].code, "%s", errs[k].msg);
    return MP_OK;
}

static bool plain_layout(const mp_plan_part *part)
{
    const mp_linear *l = &part->lin;
    return !part->is_bias && l->expert < 0 && !l->transposed && l->row_stride == 1 && l->row_offset == 0;
}

/* A tensor whose stored bytes already are its encoding is copied as is: bf16, f16
 * and f32 kept at their precision, and DeepSeek's FP8 128x128 blocks (codes and
 * weight_scale_inv are our data and block scales). */
static bool stored_as_encoded(const mp_model *m, const mp_plan_part *part, const mp_encoding *enc)
{
    const mp_linear *l = &part->lin;
    mp_dtype dt = m->st->tensors[l->weight].info->dtype;
    if (!plain_layout(part))
        return false;
    if (enc->kind == MP_ENC_FP8)
        return enc->fp8_scale == MP_FP8_BLOCK && l->scale >= 0 && dt == MP_DT_F8_E4M3 &&
               m->cfg.fp8_block_rows == MP_FP8_BLOCK_SIZE && m->cfg.fp8_block_cols == MP_FP8_BLOCK_SIZE;
    return l->scale < 0 && ((enc->kind == MP_ENC_BF16 && dt == MP_DT_BF16) || (enc->kind == MP_ENC_F16 && dt == MP_DT_F16) ||
                            (enc->kind == MP_ENC_F32 && dt == MP_DT_F32));
}

static int copy_tensor_bytes(const mp_model *m, int tensor, mp_pack_writer *w, mp_progress *progress, mp_error *err)
{
    const uint64_t chunk = 16u << 20;
    uint64_t n = mp_st_nbytes(m->st->tensors[tensor].info);
    int rc = MP_OK;
    for (uint64_t off = 0; off < n && rc == MP_OK; off += chunk) {
        mp_st_map map;
        uint64_t len = n - off < chunk ? n - off : chunk;
        rc = mp_st_set_map(m->st, tensor, off, len, &map, err);
        if (rc == MP_OK) /* bytes kept as stored are never decoded: check them here */
            rc = mp_ckpt_check_stored(m, tensor, map.data, off, len, err);
        if (rc == MP_OK)
            rc = mp_pack_part_write(w, map.data, len, err);
        mp_st_unmap(&map);
        if (progress)
            mp_progress_add(progress, len);
    }
    return rc;
}

static int copy_stored(const mp_model *m, const mp_plan_part *part, mp_pack_writer *w, mp_progress *progress,
                       mp_error *err)
{
    static const uint8_t pad[4];
    const mp_linear *l = &part->lin;
    int rc = copy_tensor_bytes(m, l->weight, w, progress, err);
    if (rc != MP_OK || l->scale < 0)
        return rc;
    uint64_t n = (uint64_t)(part->rows * part->cols);
    rc = mp_pack_part_write(w, pad, (4 - n % 4) % 4, err);
    return rc == MP_OK ? copy_tensor_bytes(m, l->scale, w, NULL, err) : rc;
}

/* Per-tensor FP8 needs the amax of the whole tensor before the first band. */
static int tensor_amax(const mp_model *m, const mp_plan_part *part, int64_t band_rows, float *buf, float *amax,
                       mp_error *err)
{
    *amax = 0;
    for (int64_t r0 = 0; r0 < part->rows; r0 += band_rows) {
        int64_t r1 = r0 + band_rows < part->rows ? r0 + band_rows : part->rows;
        int rc = read_band(m, part, r0, r1, buf, err);
        if (rc != MP_OK)
            return rc;
        for (int64_t i = 0; i < (r1 - r0) * part->cols; i++)
            if (fabsf(buf[i]) > *amax)
                *amax = fabsf(buf[i]);
    }
    return MP_OK;
}

/* One band: threads take chunks of rows, each read, decoded and encoded while in
 * cache, into the band's slice of the data section. Errors: the first chunk's. */
static int encode_band(const mp_model *m, const mp_plan_part *part, mp_encoder *x, int64_t r0, int64_t r1,
                       float *scratch, uint8_t *data, mp_error *err)
{
    int64_t chunk = mp_encoder_chunk_rows(x), n_chunks = (r1 - r0 + chunk - 1) / chunk;
    mp_error *errs = calloc((size_t)n_chunks, sizeof *errs);
    if (!errs)
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    #pragma omp parallel for schedule(dynamic)
    for (int64_t k = 0; k < n_chunks; k++) {
        int64_t a = r0 + k * chunk, b = a + chunk < r1 ? a + chunk : r1;
        float *rows = scratch + (size_t)omp_get_thread_num() * (size_t)(chunk * part->cols);
        int rc = part->is_bias ? mp_ckpt_read_bias(m, &part->lin, rows, &errs[k])
                               : mp_ckpt_read_rows(m, &part->lin, a, b, rows, &errs[k]);
        if (rc == MP_OK)
            mp_encoder_rows(x, rows, a, b, data + mp_encoder_data_bytes(x, a - r0));
    }
    int rc = MP_OK;
    for (int64_t k = 0; k < n_chunks && rc == MP_OK; k++)
        if (errs[k].code != MP_OK)
            rc = mp_fail(err, errs[k].code, "%s", errs[k].msg);
    free(errs);
    return rc;
}

static int encode_bands(const mp_model *m, const mp_plan_part *part, mp_encoder *x, mp_pack_writer *w,
                        mp_progress *progress, mp_error *err)
{
    int64_t band_rows = mp_encoder_band_rows(x), chunk = mp_encoder_chunk_rows(x);
    if (band_rows > part->rows)
        band_rows = part->rows;
    uint64_t source = mp_convert_part_source_bytes(m, part);
    size_t scratch_floats = (size_t)omp_get_max_threads() * (size_t)(chunk * part->cols);
    float *scratch = malloc(scratch_floats * sizeof *scratch);
    uint8_t *data = malloc(mp_encoder_data_bytes(x, band_rows) + 1);
    int rc = scratch && data ? MP_OK : mp_fail(err, MP_EXIT_IO, "out of memory for a band of '%s'", part->name);
    if (rc == MP_OK && x->enc.kind == MP_ENC_FP8 && x->enc.fp8_scale == MP_FP8_TENSOR) {
        float *band = malloc((size_t)(band_rows * part->cols) * sizeof *band);
        rc = band ? tensor_amax(m, part, band_rows, band, &x->tensor_amax, err) : mp_fail(err, MP_EXIT_IO, "out of memory");
        free(band);
    }
    for (int64_t r0 = 0; r0 < part->rows && rc == MP_OK; r0 += band_rows) {
        int64_t r1 = r0 + band_rows < part->rows ? r0 + band_rows : part->rows;
        rc = encode_band(m, part, x, r0, r1, scratch, data, err);
        if (rc == MP_OK)
            rc = mp_pack_part_write(w, data, mp_encoder_data_bytes(x, r1 - r0), err);
        mp_progress_add(progress, source * (uint64_t)(r1 - r0) / (uint64_t)part->rows);
    }
    free(scratch);
    free(data);
    return rc == MP_OK ? mp_part_write_tail(x, w, err) : rc;
}

int mp_part_write_tail(mp_encoder *x, mp_pack_writer *w, mp_error *err)
{
    const uint8_t *tail;
    uint64_t len;
    mp_encoder_tail(x, &tail, &len);
    return mp_pack_part_write(w, tail, len, err);
}

int mp_convert_part(const mp_model *m, const mp_plan_part *part, const mp_encoding *enc, const mp_w4_options *w4,
                    mp_pack_writer *w, mp_progress *progress, mp_error *err)
{
    int64_t shape[2] = {part->rows, part->cols};
    const int64_t *dims = part->ndim == 2 ? shape : shape + 1;
    int rc = mp_pack_part_begin(w, part->name, part->source, part->ndim, dims, enc, err);
    if (rc != MP_OK)
        return rc;
    if (stored_as_encoded(m, part, enc)) {
        rc = copy_stored(m, part, w, progress, err);
    } else {
        mp_encoder x;
        rc = mp_encoder_init(&x, enc, part->rows, part->cols, w4, err);
        if (rc == MP_OK)
            rc = encode_bands(m, part, &x, w, progress, err);
        mp_encoder_free(&x);
    }
    return rc != MP_OK ? rc : mp_pack_part_end(w, err);
}
