#include "quant_part.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "../quant/encoder.h"
#include "convert_part.h"

bool mp_encoding_same(const mp_encoding *a, const mp_encoding *b)
{
    if (a->kind != b->kind)
        return false;
    if (a->nm24 != b->nm24)
        return false;
    if (a->kind == MP_ENC_W4)
        return a->group == b->group && a->sym == b->sym;
    return a->kind != MP_ENC_FP8 || a->fp8_scale == b->fp8_scale;
}

/* Per-tensor fp8 needs the amax of the whole tensor before the first row is
 * encoded; max is exact, so the threads' order does not matter. */
static float decoded_amax(const mp_pack_tensor *t, const uint8_t *raw, int64_t chunk, float *scratch)
{
    float amax = 0;
    int64_t n_chunks = (t->rows + chunk - 1) / chunk;
    #pragma omp parallel for schedule(dynamic) reduction(max : amax)
    for (int64_t k = 0; k < n_chunks; k++) {
        int64_t a = k * chunk, b = a + chunk < t->rows ? a + chunk : t->rows;
        float *rows = scratch + (size_t)omp_get_thread_num() * (size_t)(chunk * t->cols);
        mp_encoding_decode_rows(&t->enc, t->rows, t->cols, raw, a, b, rows);
        for (int64_t i = 0; i < (b - a) * t->cols; i++)
            amax = fmaxf(amax, fabsf(rows[i]));
    }
    return amax;
}

/* Rows [r0, r1): threads take chunks of rows, each decoded and encoded while in
 * cache, into the band's slice of the data section. */
static void encode_band(const mp_pack_tensor *t, const uint8_t *raw, mp_encoder *x, int64_t r0, int64_t r1,
                        float *scratch, uint8_t *data)
{
    int64_t chunk = mp_encoder_chunk_rows(x), n_chunks = (r1 - r0 + chunk - 1) / chunk;
    #pragma omp parallel for schedule(dynamic)
    for (int64_t k = 0; k < n_chunks; k++) {
        int64_t a = r0 + k * chunk, b = a + chunk < r1 ? a + chunk : r1;
        float *rows = scratch + (size_t)omp_get_thread_num() * (size_t)(chunk * t->cols);
        mp_encoding_decode_rows(&t->enc, t->rows, t->cols, raw, a, b, rows);
        mp_encoder_rows(x, rows, a, b, data + mp_encoder_data_bytes(x, a - r0));
    }
}

/* The data section band by band (one band of encoded bytes in memory), then the tail. */
static int encode_bands(const mp_pack_tensor *t, const uint8_t *raw, mp_encoder *x, mp_pack_writer *w, mp_error *err)
{
    int64_t band_rows = mp_encoder_band_rows(x), chunk = mp_encoder_chunk_rows(x);
    if (band_rows > t->rows)
        band_rows = t->rows;
    float *scratch = malloc((size_t)omp_get_max_threads() * (size_t)(chunk * t->cols) * sizeof *scratch);
    uint8_t *data = malloc(mp_encoder_data_bytes(x, band_rows) + 1);
    int rc = scratch && data ? MP_OK : mp_fail(err, MP_EXIT_IO, "out of memory for a band of '%s'", t->name);
    if (rc == MP_OK && x->enc.kind == MP_ENC_FP8 && x->enc.fp8_scale == MP_FP8_TENSOR)
        x->tensor_amax = decoded_amax(t, raw, chunk, scratch);
    for (int64_t r0 = 0; r0 < t->rows && rc == MP_OK; r0 += band_rows) {
        int64_t r1 = r0 + band_rows < t->rows ? r0 + band_rows : t->rows;
        encode_band(t, raw, x, r0, r1, scratch, data);
        rc = mp_pack_part_write(w, data, mp_encoder_data_bytes(x, r1 - r0), err);
    }
    free(scratch);
    free(data);
    return rc == MP_OK ? mp_part_write_tail(x, w, err) : rc;
}

int mp_quant_part(const mp_pack_tensor *t, const uint8_t *raw, const mp_encoding *enc, const mp_w4_options *w4,
                  mp_pack_writer *w, mp_error *err)
{
    int64_t shape[2] = {t->rows, t->cols};
    int rc = mp_pack_part_begin(w, t->name, t->source, t->ndim, t->ndim == 2 ? shape : shape + 1, enc, err);
    if (rc != MP_OK)
        return rc;
    if (mp_encoding_same(enc, &t->enc)) {
        mp_enc_layout L;
        mp_encoding_layout(enc, t->rows, t->cols, &L);
        rc = mp_pack_part_write(w, raw, L.total, err);
    } else {
        mp_encoder x;
        rc = mp_encoder_init(&x, enc, t->rows, t->cols, w4, err);
        if (rc == MP_OK)
            rc = encode_bands(t, raw, &x, w, err);
        mp_encoder_free(&x);
    }
    return rc != MP_OK ? rc : mp_pack_part_end(w, err);
}
