#include "reference.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../core/fileio.h"
#include "../core/json.h"

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

/* zstd's densest block is an RLE block: 4 bytes for ZSTD_BLOCKSIZE_MAX (128 KiB) of
 * output. A raw_length beyond that ratio cannot come out of the payload, and
 * refusing it bounds what a reader allocates by the file's size. */
enum { MAX_ZSTD_RATIO = 1 << 15 };

/* where: the path of obj in the footer ("", "model.", "payload."), for messages. */
static int footer_int(mp_ref_reader *r, json_t *obj, const char *where, const char *key, int64_t min, int64_t max,
                      int64_t *out, mp_error *err)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return mp_fail(err, MP_EXIT_INPUT, "%s: footer field %s%s: expected an integer in [%lld, %lld]", r->path,
                       where, key, (long long)min, (long long)max);
    *out = json_integer_value(v);
    return MP_OK;
}

/* A field whose value follows from others (why says how). */
static int footer_derived(mp_ref_reader *r, const char *key, int64_t want, const char *why, int64_t *out,
                          mp_error *err)
{
    json_t *v = json_object_get(r->footer, key);
    if (!json_is_integer(v) || json_integer_value(v) != want)
        return mp_fail(err, MP_EXIT_INPUT, "%s: footer field %s: expected %lld (%s)", r->path, key, (long long)want,
                       why);
    *out = want;
    return MP_OK;
}

/* A string field that must be one of the values listed (NULL-terminated). */
static int footer_choice(mp_ref_reader *r, json_t *obj, const char *where, const char *key,
                         const char *const *values, mp_error *err)
{
    const char *v = json_string_value(json_object_get(obj, key));
    for (int i = 0; v && values[i]; i++)
        if (strcmp(v, values[i]) == 0)
            return MP_OK;
    char list[128] = "";
    for (int i = 0; values[i]; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s\"%s\"", i ? " or " : "", values[i]);
    return mp_fail(err, MP_EXIT_INPUT, "%s: footer field %s%s: expected %s", r->path, where, key, list);
}

static int footer_number(mp_ref_reader *r, const char *key, double min, mp_error *err)
{
    json_t *v = json_object_get(r->footer, key);
    if (!json_is_number(v) || !isfinite(json_number_value(v)) || json_number_value(v) < min)
        return mp_fail(err, MP_EXIT_INPUT, "%s: footer field %s: expected a finite number of at least %g", r->path,
                       key, min);
    return MP_OK;
}

static int read_footer(mp_ref_reader *r, uint64_t size, uint64_t *footer_len, mp_error *err)
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
    if (!json_is_object(r->footer))
        return mp_fail(err, MP_EXIT_INPUT, "%s: footer: expected a JSON object", r->path);
    *footer_len = len;
    return MP_OK;
}

/* What the file is: format, version, the model's vocabulary, its BOS and numerics. */
static int read_identity(mp_ref_reader *r, mp_error *err)
{
    static const char *const format[] = {"moepack-reference", NULL};
    static const char *const acts[] = {"f32", "bf16", "fp8", NULL};
    int64_t version = 0, vocab = 0, bos = 0;
    json_t *model = json_object_get(r->footer, "model");
    int rc = footer_choice(r, r->footer, "", "format", format, err);
    if (!rc) rc = footer_int(r, r->footer, "", "version", 1, 1, &version, err);
    if (!rc && !json_is_object(model))
        rc = mp_fail(err, MP_EXIT_INPUT, "%s: footer field model: expected the model's identity (an object)",
                     r->path);
    if (!rc) rc = footer_int(r, model, "model.", "vocab", 1, 1 << 24, &vocab, err);
    if (!rc) rc = footer_int(r, r->footer, "", "bos", -1, vocab - 1, &bos, err);
    if (!rc) rc = footer_choice(r, r->footer, "", "act", acts, err);
    r->vocab = (int)vocab;
    r->bos = (int)bos;
    return rc;
}

/* The chunking: llama.cpp's protocol scores positions ctx/2 ... ctx-2 of every chunk
 * (docs/reference.md), so first_scored and scored_per_chunk follow from ctx; a file
 * that says otherwise would have its rows compared with the wrong positions. */
static int read_chunking(mp_ref_reader *r, mp_error *err)
{
    int64_t ctx = 0, first = 0, n_scored = 0, k = 0, n_chunks = 0, n_tokens = 0, total = 0;
    char why[96];
    int rc = footer_int(r, r->footer, "", "ctx", 2, 1 << 20, &ctx, err);
    snprintf(why, sizeof why, "ctx/2 for ctx %lld", (long long)ctx);
    if (!rc) rc = footer_derived(r, "first_scored", ctx / 2, why, &first, err);
    snprintf(why, sizeof why, "ctx - 1 - first_scored for ctx %lld", (long long)ctx);
    if (!rc) rc = footer_derived(r, "scored_per_chunk", ctx - 1 - first, why, &n_scored, err);
    if (!rc) rc = footer_int(r, r->footer, "", "top_k", 0, r->vocab - 1, &k, err);
    if (!rc) rc = footer_int(r, r->footer, "", "n_chunks", 1, INT64_MAX / ctx, &n_chunks, err);
    if (!rc) rc = footer_int(r, r->footer, "", "n_tokens", n_chunks * ctx, INT64_MAX, &n_tokens, err);
    snprintf(why, sizeof why, "n_chunks %lld x scored_per_chunk %lld", (long long)n_chunks, (long long)n_scored);
    if (!rc) rc = footer_derived(r, "n_scored", n_chunks * n_scored, why, &total, err);
    if (!rc) rc = footer_number(r, "nll_mean", 0, err);
    if (!rc) rc = footer_number(r, "ppl", 1, err);
    r->ctx = (int)ctx;
    r->first_scored = (int)first;
    r->n_scored = (int)n_scored;
    r->k = (int)k;
    r->n_chunks = n_chunks;
    return rc;
}

/* The payload fills the file between the magic and the footer exactly, and
 * decompresses to n_chunks chunk records. */
static int read_payload(mp_ref_reader *r, uint64_t size, uint64_t footer_len, mp_error *err)
{
    static const char *const codecs[] = {"zstd", NULL};
    int64_t off, length, raw;
    json_t *p = json_object_get(r->footer, "payload");
    uint64_t chunk = chunk_raw_bytes(r->ctx, r->n_scored, r->k, r->vocab);
    uint64_t between = size - 24 - footer_len; /* magic, footer length, end magic; read_footer checked */
    int rc = json_is_object(p) ? MP_OK
                               : mp_fail(err, MP_EXIT_INPUT, "%s: footer field payload: expected an object", r->path);
    if (!rc) rc = footer_int(r, p, "payload.", "offset", 8, 8, &off, err);
    if (!rc) rc = footer_int(r, p, "payload.", "length", (int64_t)between, (int64_t)between, &length, err);
    if (!rc) rc = footer_int(r, p, "payload.", "raw_length", 1, INT64_MAX, &raw, err);
    if (!rc) rc = footer_choice(r, p, "payload.", "codec", codecs, err);
    if (!rc && mp_parse_hex64(json_string_value(json_object_get(p, "xxh3")), &r->payload_xxh3) != 0)
        rc = mp_fail(err, MP_EXIT_INPUT, "%s: footer field payload.xxh3: expected 16 lowercase hex digits", r->path);
    if (rc)
        return rc;
    if ((uint64_t)raw / (uint64_t)MAX_ZSTD_RATIO > (uint64_t)length)
        return mp_fail(err, MP_EXIT_INPUT, "%s: footer field payload.raw_length: %lld bytes cannot come out of "
                       "%lld compressed bytes", r->path, (long long)raw, (long long)length);
    if ((uint64_t)raw % chunk != 0 || (uint64_t)raw / chunk != (uint64_t)r->n_chunks)
        return mp_fail(err, MP_EXIT_INPUT, "%s: footer field payload.raw_length: %lld bytes, %lld chunks of %llu "
                       "bytes expected", r->path, (long long)raw, (long long)r->n_chunks, (unsigned long long)chunk);
    r->payload_length = (uint64_t)length;
    r->payload_raw = (uint64_t)raw;
    char magic[8];
    if (fseeko(r->f, 0, SEEK_SET) != 0 || fread(magic, 1, 8, r->f) != 8 || memcmp(magic, MP_REF_MAGIC, 8) != 0)
        return mp_fail(err, MP_EXIT_INPUT, "%s: expected the magic %s at offset 0", r->path, MP_REF_MAGIC);
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
    uint64_t footer_len = 0;
    if (!rc) rc = read_footer(r, size, &footer_len, err);
    if (!rc) rc = read_identity(r, err);
    if (!rc) rc = read_chunking(r, err);
    if (!rc) rc = read_payload(r, size, footer_len, err);
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

/* The next want bytes of the stored payload into the input buffer. */
static int refill(mp_ref_reader *r, mp_error *err)
{
    uint64_t left = r->payload_length - r->stored_read;
    size_t want = left < r->in_cap ? (size_t)left : r->in_cap;
    if (want == 0 || fread(r->in_buf, 1, want, r->f) != want)
        return mp_fail(err, MP_EXIT_INPUT, "%s: payload truncated after %llu bytes", r->path,
                       (unsigned long long)r->raw_read);
    r->stored_read += want;
    r->in_pos = 0;
    r->in_len = want;
    return MP_OK;
}

/* Fills dst with the next len bytes of the decompressed payload. */
static int get(mp_ref_reader *r, void *dst, size_t len, mp_error *err)
{
    ZSTD_outBuffer out = {dst, len, 0};
    while (out.pos < out.size) {
        if (r->in_pos == r->in_len) {
            int rc = refill(r, err);
            if (rc)
                return rc;
        }
        ZSTD_inBuffer in = {r->in_buf, r->in_len, r->in_pos};
        size_t ret = ZSTD_decompressStream(r->zd, &out, &in);
        r->in_pos = in.pos;
        if (ZSTD_isError(ret))
            return mp_fail(err, MP_EXIT_INPUT, "%s: payload: zstd: %s", r->path, ZSTD_getErrorName(ret));
        r->frame_left = ret;
    }
    XXH3_64bits_update(r->hash, dst, len);
    r->raw_read += len;
    return MP_OK;
}

/* After the last chunk: the zstd frame ends there and so do payload.length bytes. */
static int check_payload_end(mp_ref_reader *r, mp_error *err)
{
    uint8_t extra;
    while (r->frame_left != 0) {
        if (r->in_pos == r->in_len && refill(r, err) != MP_OK)
            return mp_fail(err, MP_EXIT_INPUT, "%s: payload: the zstd frame does not end", r->path);
        ZSTD_outBuffer out = {&extra, 1, 0};
        ZSTD_inBuffer in = {r->in_buf, r->in_len, r->in_pos};
        size_t ret = ZSTD_decompressStream(r->zd, &out, &in);
        r->in_pos = in.pos;
        if (ZSTD_isError(ret))
            return mp_fail(err, MP_EXIT_INPUT, "%s: payload: zstd: %s", r->path, ZSTD_getErrorName(ret));
        if (out.pos)
            return mp_fail(err, MP_EXIT_INPUT, "%s: footer field payload.raw_length: the payload holds more than "
                           "%llu bytes", r->path, (unsigned long long)r->payload_raw);
        r->frame_left = ret;
    }
    if (r->in_pos != r->in_len || r->stored_read != r->payload_length)
        return mp_fail(err, MP_EXIT_INPUT, "%s: footer field payload.length: the zstd frame ends before %llu bytes",
                       r->path, (unsigned long long)r->payload_length);
    return MP_OK;
}

/* What verify uses as indexes or numbers: token and top-K ids inside the
 * vocabulary, BOS first where the footer names one, finite log-probs. */
static int check_chunk(const mp_ref_reader *r, const mp_ref_chunk *c, mp_error *err)
{
    long long chunk = (long long)r->next_chunk;
    for (int i = 0; i < r->ctx; i++)
        if (c->tokens[i] < 0 || c->tokens[i] >= r->vocab)
            return mp_fail(err, MP_EXIT_INPUT, "%s: chunk %lld token %d: id %d outside the vocabulary of %d (footer "
                           "field model.vocab)", r->path, chunk, i, c->tokens[i], r->vocab);
    if (r->bos >= 0 && c->tokens[0] != r->bos)
        return mp_fail(err, MP_EXIT_INPUT, "%s: chunk %lld starts with token %d, footer field bos says %d", r->path,
                       chunk, c->tokens[0], r->bos);
    for (int j = 0; j < r->n_scored; j++) {
        bool finite = isfinite(c->lse[j]) && (r->k > 0 || (isfinite(c->max_lp[j]) && c->max_lp[j] <= 0));
        if (!finite)
            return mp_fail(err, MP_EXIT_INPUT, "%s: chunk %lld row %d: lse or max_lp is not a finite log-probability",
                           r->path, chunk, j);
        for (int i = 0; i < r->k; i++) {
            int32_t id = c->ids[(size_t)j * r->k + i];
            float lp = c->logprobs[(size_t)j * r->k + i];
            if (id < 0 || id >= r->vocab)
                return mp_fail(err, MP_EXIT_INPUT, "%s: chunk %lld row %d: top-K id %d outside the vocabulary of %d "
                               "(footer field model.vocab)", r->path, chunk, j, id, r->vocab);
            if (!isfinite(lp) || lp > 0)
                return mp_fail(err, MP_EXIT_INPUT, "%s: chunk %lld row %d: top-K log-prob %g, expected a finite "
                               "value <= 0", r->path, chunk, j, lp);
        }
    }
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
    if (!rc) rc = check_chunk(r, c, err);
    if (rc)
        return rc;
    if (++r->next_chunk < r->n_chunks)
        return MP_OK;
    if (XXH3_64bits_digest(r->hash) != r->payload_xxh3)
        return mp_fail(err, MP_EXIT_IO, "%s: payload checksum mismatch (the file is corrupt)", r->path);
    return check_payload_end(r, err);
}

int mp_ref_reader_chunk_alloc(const mp_ref_reader *r, mp_ref_chunk *c)
{
    return mp_ref_chunk_alloc(c, r->ctx, r->n_scored, r->k, r->vocab);
}

int mp_ref_check_model(const mp_ref_reader *r, int vocab, int bos, mp_error *err)
{
    if (r->vocab != vocab)
        return mp_fail(err, MP_EXIT_INPUT, "%s: footer field model.vocab: %d, the model has a vocabulary of %d",
                       r->path, r->vocab, vocab);
    if (bos != MP_REF_BOS_UNKNOWN && r->bos != bos)
        return mp_fail(err, MP_EXIT_INPUT, "%s: footer field bos: %d, the model's tokenizer gives %d", r->path,
                       r->bos, bos);
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
