/* The bytes of each GGUF tensor, streamed into the writer one pack tensor at a time:
 * copied rows (stacking and the row permutations are whole rows, so a grid or float
 * tensor's rows are copied as they are), w4 turned into Q4_0/Q4_1 blocks code by code,
 * anything else decoded to f32 and encoded in bands of rows. Memory: one pack tensor's
 * stored bytes plus a band. */
#include <stdlib.h>
#include <string.h>

#include "../core/dtype.h"
#include "../core/fileio.h"
#include "../core/progress.h"
#include "gguf_export.h"

#define BAND_VALUES (1u << 20) /* f32 values decoded at a time */

struct gg_data {
    const gg_plan *p;
    mp_progress progress;
    int cached_record;
    uint8_t *record, *part, *out;
    uint64_t record_cap, part_cap, out_cap;
    float *f32;
    uint64_t f32_cap;
};

gg_data *gg_data_new(const gg_plan *p, bool quiet, uint64_t total_bytes)
{
    gg_data *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->p = p;
    d->cached_record = -1;
    mp_progress_start(&d->progress, "gguf", total_bytes, true, quiet);
    return d;
}

void gg_data_free(gg_data *d)
{
    if (!d)
        return;
    mp_progress_finish(&d->progress);
    free(d->record);
    free(d->part);
    free(d->out);
    free(d->f32);
    free(d);
}

static int grow(void **buf, uint64_t *cap, uint64_t need, mp_error *err)
{
    if (need <= *cap)
        return MP_OK;
    void *grown = realloc(*buf, need);
    if (!grown)
        return mp_fail(err, MP_EXIT_IO, "out of memory (%llu bytes)", (unsigned long long)need);
    *buf = grown;
    *cap = need;
    return MP_OK;
}

/* A pack tensor's stored bytes: read alone from an uncompressed record (so a record of
 * three experts is not read three times), else from its whole checked record. */
static int read_part(gg_data *d, int tensor, const uint8_t **bytes, mp_error *err)
{
    const mp_pack *pack = d->p->pack;
    const mp_pack_tensor *pt = &pack->tensors[tensor];
    const mp_pack_record *r = &pack->records[pt->record];
    const mp_pack_part *part = &r->parts[pt->part];
    if (!r->zstd) {
        int rc = grow((void **)&d->part, &d->part_cap, part->length + 1, err);
        if (!rc)
            rc = mp_pread_full(pack->tiers[r->tier].fd, d->part, part->length, r->offset + part->offset,
                               pack->tiers[r->tier].path, err);
        *bytes = d->part;
        return rc;
    }
    if (d->cached_record != pt->record) {
        d->cached_record = -1;
        int rc = grow((void **)&d->record, &d->record_cap, r->raw_length + 1, err);
        if (!rc)
            rc = mp_pack_read_record(pack, pt->record, d->record, err);
        if (rc)
            return rc;
        d->cached_record = pt->record;
    }
    *bytes = d->record + part->offset;
    return MP_OK;
}

static int emit(gg_data *d, mp_gguf_sink *sink, const void *bytes, uint64_t len, mp_error *err)
{
    mp_progress_add(&d->progress, len);
    return mp_gguf_sink_write(sink, bytes, len, err);
}

/* ---- which source row an output row is ---- */

static int64_t source_row(const gg_tensor *t, const mp_config *c, int64_t rows, int64_t r)
{
    if (t->transform == GG_ROPE) {
        int64_t hd = rows / t->heads, h = r / hd, k = r % hd;
        return h * hd + (k % 2) * (hd / 2) + k / 2;
    }
    if (t->transform == GG_MLA_VB) {
        int64_t h = r / c->v_head_dim, k = r % c->v_head_dim;
        return h * (c->qk_nope_dim + c->v_head_dim) + c->qk_nope_dim + k;
    }
    return r;
}

static int64_t output_rows(const gg_tensor *t, const mp_config *c, int64_t rows)
{
    return t->transform == GG_MLA_VB ? (int64_t)t->heads * c->v_head_dim : rows;
}

/* ---- w4 -> Q4_0 / Q4_1, code by code ---- */

static uint8_t nibble(const uint8_t *bytes, uint64_t k)
{
    return (uint8_t)((bytes[k / 2] >> ((k & 1) ? 4 : 0)) & 15);
}

static void w4_row_to_q4(const mp_pack_tensor *pt, const uint8_t *raw, int64_t r, bool q4_1, uint8_t *out)
{
    mp_enc_layout L;
    mp_encoding_layout(&pt->enc, pt->rows, pt->cols, &L);
    const uint8_t *codes = raw + (uint64_t)r * (uint64_t)pt->cols / 2;
    const uint8_t *scales = raw + L.scales_offset, *zeros = raw + L.zeros_offset;
    for (int64_t b = 0; b < pt->cols / 32; b++) {
        uint64_t group = (uint64_t)r * (uint64_t)L.groups_per_row + (uint64_t)(b * 32 / pt->enc.group);
        uint16_t s;
        memcpy(&s, scales + 2 * group, 2);
        memcpy(out, &s, 2);
        out += 2;
        if (q4_1) {
            uint16_t m = mp_f32_to_f16(-(float)nibble(zeros, group) * mp_f16_to_f32(s));
            memcpy(out, &m, 2);
            out += 2;
        }
        for (int i = 0; i < 16; i++)
            *out++ = (uint8_t)(nibble(codes, (uint64_t)(b * 32 + i)) | nibble(codes, (uint64_t)(b * 32 + i + 16)) << 4);
    }
}

/* ---- rows of one source ---- */

static int emit_converted_dense(gg_data *d, const gg_tensor *t, const mp_pack_tensor *pt, const uint8_t *raw,
                                int64_t n_out, mp_gguf_sink *sink, mp_error *err);

/* A 2:4 w4 tensor is a dense w4 one whose pruned codes are the zero point: densified,
 * it goes into Q4_0 / Q4_1 code by code like any w4 tensor. */
static int emit_converted(gg_data *d, const gg_tensor *t, const mp_pack_tensor *pt, const uint8_t *raw,
                          int64_t n_out, mp_gguf_sink *sink, mp_error *err)
{
    if (!pt->enc.nm24 || pt->enc.kind != MP_ENC_W4)
        return emit_converted_dense(d, t, pt, raw, n_out, sink, err);
    mp_pack_tensor dense = *pt;
    dense.enc.nm24 = false;
    mp_enc_layout L;
    mp_encoding_layout(&dense.enc, pt->rows, pt->cols, &L);
    uint8_t *buf = malloc(L.total ? L.total : 1);
    if (!buf)
        return mp_fail(err, MP_EXIT_IO, "%s: out of memory densifying its 2:4 w4 codes", t->name);
    mp_nm24_densify(&pt->enc, pt->rows, pt->cols, raw, buf);
    int rc = emit_converted_dense(d, t, &dense, buf, n_out, sink, err);
    free(buf);
    return rc;
}

static int emit_converted_dense(gg_data *d, const gg_tensor *t, const mp_pack_tensor *pt, const uint8_t *raw,
                                int64_t n_out, mp_gguf_sink *sink, mp_error *err)
{
    const mp_config *c = d->p->cfg;
    mp_enc_kind k = t->target.kind;
    uint64_t row_bytes = gg_row_bytes(k, pt->cols);
    int64_t band = BAND_VALUES / (uint64_t)pt->cols;
    band = band < 1 ? 1 : band > n_out ? n_out : band;
    int rc = grow((void **)&d->out, &d->out_cap, row_bytes * (uint64_t)band, err);
    if (!rc)
        rc = grow((void **)&d->f32, &d->f32_cap, 4 * (uint64_t)(band * pt->cols), err);
    bool from_w4 = pt->enc.kind == MP_ENC_W4 && (k == MP_ENC_Q4_0 || k == MP_ENC_Q4_1);
    for (int64_t r0 = 0; r0 < n_out && !rc; r0 += band) {
        int64_t r1 = r0 + band < n_out ? r0 + band : n_out;
        for (int64_t r = r0; r < r1; r++) {
            int64_t s = source_row(t, c, pt->rows, r);
            if (from_w4)
                w4_row_to_q4(pt, raw, s, k == MP_ENC_Q4_1, d->out + (uint64_t)(r - r0) * row_bytes);
            else
                mp_encoding_decode_rows(&pt->enc, pt->rows, pt->cols, raw, s, s + 1,
                                        d->f32 + (uint64_t)(r - r0) * (uint64_t)pt->cols);
        }
        if (!from_w4)
            gg_encode_rows(k, r1 - r0, pt->cols, d->f32, d->out);
        rc = emit(d, sink, d->out, (uint64_t)(r1 - r0) * row_bytes, err);
    }
    return rc;
}

static int emit_copied(gg_data *d, const gg_tensor *t, const mp_pack_tensor *pt, const uint8_t *raw, int64_t n_out,
                       mp_gguf_sink *sink, mp_error *err)
{
    uint64_t row_bytes = gg_row_bytes(pt->enc.kind, pt->cols);
    if (t->transform == GG_ROWS)
        return emit(d, sink, raw, row_bytes * (uint64_t)n_out, err);
    int rc = MP_OK;
    for (int64_t r = 0; r < n_out && !rc; r++)
        rc = emit(d, sink, raw + (uint64_t)source_row(t, d->p->cfg, pt->rows, r) * row_bytes, row_bytes, err);
    return rc;
}

/* A vector whose elements are permuted (llama's q/k biases): as one f32 row. */
static int emit_vector_rope(gg_data *d, const gg_tensor *t, const mp_pack_tensor *pt, const uint8_t *raw,
                            mp_gguf_sink *sink, mp_error *err)
{
    int rc = grow((void **)&d->f32, &d->f32_cap, 8 * (uint64_t)pt->cols, err);
    if (rc)
        return rc;
    float *in = d->f32, *out = d->f32 + pt->cols;
    mp_encoding_decode_rows(&pt->enc, 1, pt->cols, raw, 0, 1, in);
    for (int64_t i = 0; i < pt->cols; i++)
        out[i] = in[source_row(t, d->p->cfg, pt->cols, i)];
    return emit(d, sink, out, 4 * (uint64_t)pt->cols, err);
}

/* MLA k_b: per head h, element (c, j) = kv_b[h (nope + v) + j][c]. */
static int emit_k_b(gg_data *d, const gg_tensor *t, const mp_pack_tensor *pt, const uint8_t *raw, mp_gguf_sink *sink,
                    mp_error *err)
{
    const mp_config *c = d->p->cfg;
    int64_t nope = c->qk_nope_dim, per_head = c->qk_nope_dim + c->v_head_dim, rank = pt->cols;
    uint64_t n = (uint64_t)(pt->rows * pt->cols);
    int rc = grow((void **)&d->f32, &d->f32_cap, 4 * (n + (uint64_t)(t->heads * rank * nope)), err);
    uint64_t bytes = gg_row_bytes(t->target.kind, nope) * (uint64_t)(t->heads * rank);
    if (!rc)
        rc = grow((void **)&d->out, &d->out_cap, bytes, err);
    if (rc)
        return rc;
    float *kv = d->f32, *kt = d->f32 + n;
    mp_encoding_decode_rows(&pt->enc, pt->rows, pt->cols, raw, 0, pt->rows, kv);
    for (int64_t h = 0; h < t->heads; h++)
        for (int64_t col = 0; col < rank; col++)
            for (int64_t j = 0; j < nope; j++)
                kt[(h * rank + col) * nope + j] = kv[(h * per_head + j) * rank + col];
    gg_encode_rows(t->target.kind, t->heads * rank, nope, kt, d->out);
    return emit(d, sink, d->out, bytes, err);
}

static int emit_source(gg_data *d, const gg_tensor *t, int tensor, mp_gguf_sink *sink, mp_error *err)
{
    const mp_pack_tensor *pt = &d->p->pack->tensors[tensor];
    const uint8_t *raw;
    int rc = read_part(d, tensor, &raw, err);
    if (rc)
        return rc;
    if (t->transform == GG_MLA_KB)
        return emit_k_b(d, t, pt, raw, sink, err);
    if (t->transform == GG_ROPE && pt->ndim == 1)
        return emit_vector_rope(d, t, pt, raw, sink, err);
    int64_t n_out = output_rows(t, d->p->cfg, pt->rows);
    if (pt->enc.kind == t->target.kind)
        return emit_copied(d, t, pt, raw, n_out, sink, err);
    return emit_converted(d, t, pt, raw, n_out, sink, err);
}

int gg_data_fill(void *ctx, int tensor, mp_gguf_sink *sink, mp_error *err)
{
    gg_data *d = ctx;
    const gg_tensor *t = &d->p->t[tensor];
    int rc = MP_OK;
    for (int s = 0; s < t->n_src && rc == MP_OK; s++)
        rc = emit_source(d, t, t->src[s], sink, err);
    return rc;
}
