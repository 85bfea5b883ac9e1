#include "reference.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../core/fileio.h"

static uint64_t chunk_raw_bytes(int ctx, int n_scored, int k, int vocab)
{
    uint64_t row = k > 0 ? 4ull + 8ull * (uint64_t)k : 8ull + 2ull * (uint64_t)vocab;
    return 4ull * (uint64_t)ctx + (uint64_t)n_scored * row;
}

int mp_ref_chunk_alloc(mp_ref_chunk *c, int ctx, int n_scored, int k, int vocab)
{
    memset(c, 0, sizeof *c);
    c->tokens = malloc((size_t)ctx * sizeof *c->tokens);
    c->lse = malloc((size_t)n_scored * sizeof *c->lse);
    if (k > 0) {
        c->ids = malloc((size_t)n_scored * (size_t)k * sizeof *c->ids);
        c->logprobs = malloc((size_t)n_scored * (size_t)k * sizeof *c->logprobs);
        return c->tokens && c->lse && c->ids && c->logprobs ? 0 : -1;
    }
    c->max_lp = malloc((size_t)n_scored * sizeof *c->max_lp);
    c->q = malloc((size_t)n_scored * (size_t)vocab * sizeof *c->q);
    return c->tokens && c->lse && c->max_lp && c->q ? 0 : -1;
}

void mp_ref_quantize_row(const float *logits, int vocab, double lse, float *max_lp, uint16_t *q)
{
    float top = logits[0];
    for (int i = 1; i < vocab; i++)
        if (logits[i] > top)
            top = logits[i];
    *max_lp = (float)(top - lse);
    for (int i = 0; i < vocab; i++) {
        double steps = ((double)top - logits[i]) / MP_REF_LP_STEP + 0.5;
        q[i] = steps >= 65535 ? 65535 : (uint16_t)steps;
    }
}

void mp_ref_chunk_free(mp_ref_chunk *c)
{
    free(c->tokens);
    free(c->lse);
    free(c->ids);
    free(c->logprobs);
    free(c->max_lp);
    free(c->q);
    memset(c, 0, sizeof *c);
}

/* ---- writer ---- */

int mp_ref_writer_open(mp_ref_writer *w, const char *path, int ctx, int n_scored, int k, int vocab, mp_error *err)
{
    memset(w, 0, sizeof *w);
    w->out.fd = -1;
    w->vocab = vocab;
    w->ctx = ctx;
    w->n_scored = n_scored;
    w->k = k;
    w->zc = ZSTD_createCCtx();
    w->hash = XXH3_createState();
    w->out_cap = ZSTD_CStreamOutSize();
    w->out_buf = malloc(w->out_cap);
    if (!w->zc || !w->hash || !w->out_buf) {
        mp_ref_writer_abort(w);
        return mp_fail(err, MP_EXIT_IO, "%s: out of memory", path);
    }
    XXH3_64bits_reset(w->hash);
    ZSTD_CCtx_setParameter(w->zc, ZSTD_c_compressionLevel, 3);
    int rc = mp_outfile_open(&w->out, path, err);
    if (rc == MP_OK)
        rc = mp_outfile_write(&w->out, MP_REF_MAGIC, 8, err);
    if (rc != MP_OK)
        mp_ref_writer_abort(w);
    return rc;
}

static int compress_bytes(mp_ref_writer *w, const void *src, size_t len, ZSTD_EndDirective mode, mp_error *err)
{
    ZSTD_inBuffer in = {src, len, 0};
    for (;;) {
        ZSTD_outBuffer out = {w->out_buf, w->out_cap, 0};
        size_t left = ZSTD_compressStream2(w->zc, &out, &in, mode);
        if (ZSTD_isError(left))
            return mp_fail(err, MP_EXIT_IO, "%s: zstd: %s", w->out.temp, ZSTD_getErrorName(left));
        int rc = mp_outfile_write(&w->out, w->out_buf, out.pos, err);
        if (rc != MP_OK)
            return rc;
        w->stored_bytes += out.pos;
        bool done = mode == ZSTD_e_end ? left == 0 : in.pos == in.size;
        if (done)
            return MP_OK;
    }
}

static int put(mp_ref_writer *w, const void *src, size_t len, mp_error *err)
{
    XXH3_64bits_update(w->hash, src, len);
    w->raw_bytes += len;
    return compress_bytes(w, src, len, ZSTD_e_continue, err);
}

int mp_ref_writer_chunk(mp_ref_writer *w, const mp_ref_chunk *c, mp_error *err)
{
    int rc = put(w, c->tokens, (size_t)w->ctx * 4, err);
    for (int i = 0; !rc && i < w->n_scored; i++) {
        rc = put(w, &c->lse[i], 4, err);
        if (!rc && w->k > 0) {
            rc = put(w, c->ids + (size_t)i * w->k, (size_t)w->k * 4, err);
            if (!rc) rc = put(w, c->logprobs + (size_t)i * w->k, (size_t)w->k * 4, err);
        } else if (!rc) {
            rc = put(w, &c->max_lp[i], 4, err);
            if (!rc) rc = put(w, c->q + (size_t)i * w->vocab, (size_t)w->vocab * 2, err);
        }
    }
    return rc;
}

int mp_ref_writer_finish(mp_ref_writer *w, json_t *footer, mp_error *err)
{
    int rc = compress_bytes(w, NULL, 0, ZSTD_e_end, err);
    json_t *payload = json_pack("{s:I, s:I, s:I, s:s}", "offset", (json_int_t)8, "length",
                                (json_int_t)w->stored_bytes, "raw_length", (json_int_t)w->raw_bytes, "codec", "zstd");
    char hash[17];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)XXH3_64bits_digest(w->hash));
    json_object_set_new(payload, "xxh3", json_string(hash));
    json_object_set_new(footer, "payload", payload);
    char *text = rc ? NULL : json_dumps(footer, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    json_decref(footer);
    if (!rc && !text)
        rc = mp_fail(err, MP_EXIT_IO, "out of memory");
    uint64_t len = text ? strlen(text) : 0;
    if (!rc)
        rc = mp_outfile_write(&w->out, text, len, err);
    if (!rc)
        rc = mp_outfile_write(&w->out, &len, 8, err);
    if (!rc)
        rc = mp_outfile_write(&w->out, MP_REF_END_MAGIC, 8, err);
    free(text);
    if (!rc)
        rc = mp_outfile_commit(&w->out, err);
    mp_ref_writer_abort(w);
    return rc;
}

void mp_ref_writer_abort(mp_ref_writer *w)
{
    mp_outfile_abort(&w->out); /* after a commit there is nothing left to remove */
    ZSTD_freeCCtx(w->zc);
    XXH3_freeState(w->hash);
    free(w->out_buf);
    memset(w, 0, sizeof *w);
    w->out.fd = -1;
}

/* ---- reader ---- */

static int footer_int(mp_ref_reader *r, json_t *obj, const char *key, int64_t min, int64_t max, int64_t *out,
                      mp_error *err)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return mp_fail(err, MP_EXIT_INPUT, "%s: footer field %s: expected an integer in [%lld, %lld]", r->path, key,
                       (long long)min, (long long)max);
    *out = json_integer_value(v);
    return MP_OK;
}

static int read_footer(mp_ref_reader *r, uint64_t size, mp_error *err)
{
    char tail[16];
    uint64_t len;
    if (size < 32 || fseeko(r->f, (off_t)(size - 16), SEEK_SET) != 0 || fread(tail, 1, 16, r->f) != 16 ||
        memcmp(tail + 8, MP_REF_END_MAGIC, 8) != 0)
        return mp_fail(err, MP_EXIT_INPUT, "%s: not a moepack reference file (no %s trailer)", r->path,
                       MP_REF_END_MAGIC);
    memcpy(&len, tail, 8);
    if (len > size - 24 || len > (64u << 20))
        return mp_fail(err, MP_EXIT_INPUT, "%s: footer length %llu does not fit the file", r->path,
                       (unsigned long long)len);
    char *text = malloc(len + 1);
    if (!text)
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    int ok = fseeko(r->f, (off_t)(size - 16 - len), SEEK_SET) == 0 && fread(text, 1, len, r->f) == len;
    json_error_t je;
    r->footer = ok ? json_loadb(text, len, JSON_REJECT_DUPLICATES, &je) : NULL;
    free(text);
    if (!r->footer)
        return mp_fail(err, MP_EXIT_INPUT, "%s: footer: %s", r->path, ok ? je.text : "unreadable");
    return MP_OK;
}

static int read_layout(mp_ref_reader *r, uint64_t size, mp_error *err)
{
    int64_t ctx, n_scored, k, vocab, n_chunks, off, length, raw;
    json_t *p = json_object_get(r->footer, "payload");
    const char *hash = json_string_value(json_object_get(p, "xxh3"));
    int rc = footer_int(r, r->footer, "ctx", 2, 1 << 20, &ctx, err);
    if (!rc) rc = footer_int(r, r->footer, "scored_per_chunk", 1, ctx, &n_scored, err);
    if (!rc) rc = footer_int(r, r->footer, "top_k", 0, 1 << 20, &k, err);
    if (!rc) rc = footer_int(r, json_object_get(r->footer, "model"), "vocab", 1, 1 << 24, &vocab, err);
    if (!rc) rc = footer_int(r, r->footer, "n_chunks", 1, INT64_MAX / 2, &n_chunks, err);
    if (!rc) rc = footer_int(r, p, "offset", 8, 8, &off, err);
    if (!rc) rc = footer_int(r, p, "length", 0, (int64_t)size, &length, err);
    if (!rc) rc = footer_int(r, p, "raw_length", 0, INT64_MAX / 2, &raw, err);
    if (rc)
        return rc;
    if (!hash || strlen(hash) != 16)
        return mp_fail(err, MP_EXIT_INPUT, "%s: footer field payload.xxh3: expected 16 hex digits", r->path);
    r->ctx = (int)ctx;
    r->n_scored = (int)n_scored;
    r->k = (int)k;
    r->vocab = (int)vocab;
    r->n_chunks = n_chunks;
    r->payload_length = (uint64_t)length;
    r->payload_raw = (uint64_t)raw;
    r->payload_xxh3 = strtoull(hash, NULL, 16);
    if ((uint64_t)raw != (uint64_t)n_chunks * chunk_raw_bytes(r->ctx, r->n_scored, r->k, r->vocab))
        return mp_fail(err, MP_EXIT_INPUT, "%s: payload.raw_length %lld does not match %lld chunks", r->path,
                       (long long)raw, (long long)n_chunks);
    char magic[8];
    if (fseeko(r->f, 0, SEEK_SET) != 0 || fread(magic, 1, 8, r->f) != 8 || memcmp(magic, MP_REF_MAGIC, 8) != 0)
        return mp_fail(err, MP_EXIT_INPUT, "%s: expected the magic %s at offset 0", r->path, MP_REF_MAGIC);
    if (8 + (uint64_t)length > size)
        return mp_fail(err, MP_EXIT_INPUT, "%s: payload of %lld bytes runs past the end of the file", r->path,
                       (long long)length);
    return MP_OK;
}

int mp_ref_open(mp_ref_reader *r, const char *path, mp_error *err)
{
    memset(r, 0, sizeof *r);
    r->path = mp_strdup(path);
    r->f = fopen(path, "rb");
    if (!r->f) {
        mp_fail_errno(err, "%s: cannot open reference", path);
        mp_ref_close(r);
        return MP_EXIT_INPUT;
    }
    int rc = fseeko(r->f, 0, SEEK_END) != 0 ? mp_fail_errno(err, "%s: cannot seek", path) : MP_OK;
    uint64_t size = rc ? 0 : (uint64_t)ftello(r->f);
    if (!rc) rc = read_footer(r, size, err);
    if (!rc) rc = read_layout(r, size, err);
    r->zd = ZSTD_createDCtx();
    r->hash = XXH3_createState();
    r->in_cap = ZSTD_DStreamInSize();
    r->in_buf = malloc(r->in_cap);
    if (!rc && (!r->zd || !r->hash || !r->in_buf))
        rc = mp_fail(err, MP_EXIT_IO, "out of memory");
    if (rc) {
        mp_ref_close(r);
        return rc;
    }
    XXH3_64bits_reset(r->hash);
    return MP_OK;
}

/* Fills dst with the next len bytes of the decompressed payload. */
static int get(mp_ref_reader *r, void *dst, size_t len, mp_error *err)
{
    ZSTD_outBuffer out = {dst, len, 0};
    while (out.pos < out.size) {
        if (r->in_pos == r->in_len) {
            uint64_t left = r->payload_length - r->stored_read;
            size_t want = left < r->in_cap ? (size_t)left : r->in_cap;
            if (want == 0 || fread(r->in_buf, 1, want, r->f) != want)
                return mp_fail(err, MP_EXIT_INPUT, "%s: payload truncated after %llu bytes", r->path,
                               (unsigned long long)r->raw_read);
            r->stored_read += want;
            r->in_pos = 0;
            r->in_len = want;
        }
        ZSTD_inBuffer in = {r->in_buf, r->in_len, r->in_pos};
        size_t ret = ZSTD_decompressStream(r->zd, &out, &in);
        r->in_pos = in.pos;
        if (ZSTD_isError(ret))
            return mp_fail(err, MP_EXIT_INPUT, "%s: payload: zstd: %s", r->path, ZSTD_getErrorName(ret));
    }
    XXH3_64bits_update(r->hash, dst, len);
    r->raw_read += len;
    return MP_OK;
}

int mp_ref_read_chunk(mp_ref_reader *r, mp_ref_chunk *c, mp_error *err)
{
    if (r->next_chunk >= r->n_chunks)
        return mp_fail(err, MP_EXIT_INPUT, "%s: read past the last chunk", r->path);
    int rc = get(r, c->tokens, (size_t)r->ctx * 4, err);
    for (int i = 0; !rc && i < r->n_scored; i++) {
        rc = get(r, &c->lse[i], 4, err);
        if (!rc && r->k > 0) {
            rc = get(r, c->ids + (size_t)i * r->k, (size_t)r->k * 4, err);
            if (!rc) rc = get(r, c->logprobs + (size_t)i * r->k, (size_t)r->k * 4, err);
        } else if (!rc) {
            rc = get(r, &c->max_lp[i], 4, err);
            if (!rc) rc = get(r, c->q + (size_t)i * r->vocab, (size_t)r->vocab * 2, err);
        }
    }
    if (rc)
        return rc;
    if (++r->next_chunk == r->n_chunks && XXH3_64bits_digest(r->hash) != r->payload_xxh3)
        return mp_fail(err, MP_EXIT_IO, "%s: payload checksum mismatch (the file is corrupt)", r->path);
    return MP_OK;
}

void mp_ref_close(mp_ref_reader *r)
{
    if (r->f)
        fclose(r->f);
    json_decref(r->footer);
    ZSTD_freeDCtx(r->zd);
    XXH3_freeState(r->hash);
    free(r->in_buf);
    free(r->path);
    memset(r, 0, sizeof *r);
}
