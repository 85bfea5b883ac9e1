#include "convert_part.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "../quant/encoder.h"
#include "weights.h"

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

/* A checkpoint already in DeepSeek's FP8 128x128 block layout keeps its bits:
 * codes and weight_scale_inv are our data and block scales. */
static bool fp8_passthrough(const mp_model *m, const mp_plan_part *part, const mp_encoding *enc)
{
    const mp_linear *l = &part->lin;
    return enc->kind == MP_ENC_FP8 && enc->fp8_scale == MP_FP8_BLOCK && !part->is_bias && l->scale >= 0 &&
           l->expert < 0 && !l->transposed && m->st->tensors[l->weight].info->dtype == MP_DT_F8_E4M3 &&
           m->cfg.fp8_block_rows == MP_FP8_BLOCK_SIZE && m->cfg.fp8_block_cols == MP_FP8_BLOCK_SIZE;
}

static int copy_fp8(const mp_model *m, const mp_plan_part *part, mp_pack_writer *w, mp_progress *progress,
                    mp_error *err)
{
    const mp_linear *l = &part->lin;
    uint64_t n = (uint64_t)(part->rows * part->cols), chunk = 16u << 20;
    uint64_t scale_bytes = mp_st_nbytes(m->st->tensors[l->scale].info);
    uint8_t *buf = malloc(chunk > scale_bytes ? chunk : scale_bytes);
    static const uint8_t pad[4];
    int rc = buf ? MP_OK : mp_fail(err, MP_EXIT_IO, "out of memory");
    for (uint64_t off = 0; off < n && rc == MP_OK; off += chunk) {
        uint64_t len = n - off < chunk ? n - off : chunk;
        rc = mp_st_set_read(m->st, l->weight, off, len, buf, err);
        if (rc == MP_OK)
            rc = mp_pack_part_write(w, buf, len, err);
        mp_progress_add(progress, len);
    }
    if (rc == MP_OK)
        rc = mp_pack_part_write(w, pad, (4 - n % 4) % 4, err);
    if (rc == MP_OK)
        rc = mp_st_set_read(m->st, l->scale, 0, scale_bytes, buf, err);
    if (rc == MP_OK)
        rc = mp_pack_part_write(w, buf, scale_bytes, err);
    free(buf);
    return rc;
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

static int encode_bands(const mp_model *m, const mp_plan_part *part, mp_encoder *x, mp_pack_writer *w,
                        mp_progress *progress, mp_error *err)
{
    int64_t band_rows = mp_encoder_band_rows(x);
    if (band_rows > part->rows)
        band_rows = part->rows;
    uint64_t source = mp_convert_part_source_bytes(m, part);
    float *band = malloc((size_t)(band_rows * part->cols) * sizeof *band);
    int rc = band ? MP_OK : mp_fail(err, MP_EXIT_IO, "out of memory for a band of '%s'", part->name);
    if (rc == MP_OK && x->enc.kind == MP_ENC_FP8 && x->enc.fp8_scale == MP_FP8_TENSOR)
        rc = tensor_amax(m, part, band_rows, band, &x->tensor_amax, err);
    for (int64_t r0 = 0; r0 < part->rows && rc == MP_OK; r0 += band_rows) {
        int64_t r1 = r0 + band_rows < part->rows ? r0 + band_rows : part->rows;
        const uint8_t *data;
        uint64_t len;
        rc = read_band(m, part, r0, r1, band, err);
        if (rc == MP_OK)
            rc = mp_encoder_band(x, band, r0, r1, &data, &len, err);
        if (rc == MP_OK)
            rc = mp_pack_part_write(w, data, len, err);
        mp_progress_add(progress, source * (uint64_t)(r1 - r0) / (uint64_t)part->rows);
    }
    free(band);
    if (rc == MP_OK) {
        const uint8_t *tail;
        uint64_t len;
        mp_encoder_tail(x, &tail, &len);
        rc = mp_pack_part_write(w, tail, len, err);
    }
    return rc;
}

int mp_convert_part(const mp_model *m, const mp_plan_part *part, const mp_encoding *enc, const mp_w4_options *w4,
                    mp_pack_writer *w, mp_progress *progress, mp_error *err)
{
    int64_t shape[2] = {part->rows, part->cols};
    const int64_t *dims = part->ndim == 2 ? shape : shape + 1;
    int rc = mp_pack_part_begin(w, part->name, part->source, part->ndim, dims, enc, err);
    if (rc != MP_OK)
        return rc;
    if (fp8_passthrough(m, part, enc)) {
        rc = copy_fp8(m, part, w, progress, err);
    } else {
        mp_encoder x;
        rc = mp_encoder_init(&x, enc, part->rows, part->cols, w4, err);
        if (rc == MP_OK)
            rc = encode_bands(m, part, &x, w, progress, err);
        mp_encoder_free(&x);
    }
    return rc != MP_OK ? rc : mp_pack_part_end(w, err);
}
