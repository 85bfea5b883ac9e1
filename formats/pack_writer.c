/* Pack writer: records are appended to their tier file (streamed when stored as
 * is, assembled in memory when compressed), the manifest is written last, and the
 * directory is renamed into place only when complete. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include "../core/cleanup.h"
#include "../core/fileio.h"
#include "../core/outdir.h"
#include "pack.h"

#define OUT_BUFFER (1u << 20)

typedef struct {
    char *path;
    int fd;
    uint64_t offset; /* bytes written, buffer included */
    uint8_t *buf;
    size_t buf_len;
    int n_records;
    bool zstd;
} tier_out;

typedef struct {
    int tensor; /* index in the manifest's tensor array */
    mp_encoding enc;
    int64_t rows, cols;
    uint64_t offset, written, expected;
} part_state;

struct mp_pack_writer {
    char *path, *tmp_dir;
    bool armed; /* tmp_dir is removed on a signal (cleanup.h) until finished or aborted */
    int n_tiers, zstd_level;
    tier_out *tiers;
    json_t *tensors, *records;
    /* the record being written */
    bool in_record, in_part;
    int tier, layer, expert;
    uint64_t rec_offset, rec_raw; /* rec_offset: file offset; rec_raw: raw bytes so far */
    XXH3_state_t *hash;
    uint8_t *raw;                 /* compressed records: the raw bytes */
    uint64_t raw_cap;
    part_state *parts;
    int n_parts, cap_parts;
};

static const uint8_t zeros_4k[4096];

/* ---- buffered tier output ---- */

static int tier_flush(tier_out *t, mp_error *err)
{
    int rc = mp_write_full(t->fd, t->buf, t->buf_len, t->path, err);
    t->buf_len = 0;
    return rc;
}

static int tier_append(tier_out *t, const void *bytes, uint64_t len, mp_error *err)
{
    const uint8_t *p = bytes;
    if (len >= OUT_BUFFER) { /* large writes skip the buffer copy */
        int rc = tier_flush(t, err);
        t->offset += len;
        return rc != MP_OK ? rc : mp_write_full(t->fd, bytes, len, t->path, err);
    }
    t->offset += len;
    while (len > 0) {
        size_t room = OUT_BUFFER - t->buf_len;
        size_t n = len < room ? (size_t)len : room;
        memcpy(t->buf + t->buf_len, p, n);
        t->buf_len += n;
        p += n;
        len -= n;
        if (t->buf_len == OUT_BUFFER && tier_flush(t, err) != MP_OK)
            return err->code;
    }
    return MP_OK;
}

static int tier_pad_to(tier_out *t, uint64_t align, mp_error *err)
{
    while (t->offset % align != 0) {
        uint64_t n = align - t->offset % align;
        int rc = tier_append(t, zeros_4k, n < sizeof zeros_4k ? n : sizeof zeros_4k, err);
        if (rc != MP_OK)
            return rc;
    }
    return MP_OK;
}

/* ---- creation ---- */

static int open_tiers(mp_pack_writer *w, const bool *tier_zstd, mp_error *err)
{
    for (int i = 0; i < w->n_tiers; i++) {
        tier_out *t = &w->tiers[i];
        char name[32];
        snprintf(name, sizeof name, "tier-%d.bin", i);
        t->path = mp_path_join(w->tmp_dir, name);
        t->buf = malloc(OUT_BUFFER);
        t->zstd = tier_zstd && tier_zstd[i];
        t->fd = t->path ? open(t->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : -1;
        if (t->fd < 0 || !t->buf)
            return mp_fail_errno(err, "%s: create", t->path ? t->path : w->tmp_dir);
        int rc = tier_append(t, zeros_4k, MP_PACK_HEADER_BYTES, err); /* header written at finish */
        if (rc != MP_OK)
            return rc;
    }
    return MP_OK;
}

mp_pack_writer *mp_pack_writer_new(const char *path, int n_tiers, const bool *tier_zstd, int zstd_level,
                                   mp_error *err)
{
    mp_pack_writer *w = calloc(1, sizeof *w);
    if (!w) {
        mp_fail(err, MP_EXIT_IO, "%s: out of memory", path);
        return NULL;
    }
    w->path = mp_strdup(path);
    w->tmp_dir = mp_temp_name(path);
    w->n_tiers = n_tiers;
    w->zstd_level = zstd_level;
    w->tiers = calloc((size_t)n_tiers, sizeof *w->tiers);
    w->tensors = json_array();
    w->records = json_array();
    w->hash = XXH3_createState();
    for (int i = 0; w->tiers && i < n_tiers; i++)
        w->tiers[i].fd = -1;
    if (!w->path || !w->tmp_dir || !w->tiers || !w->hash) {
        mp_fail(err, MP_EXIT_IO, "%s: out of memory", path);
    } else if (mkdir(w->tmp_dir, 0755) != 0) {
        mp_fail_errno(err, "%s: create directory", w->tmp_dir);
        free(w->tmp_dir); /* not ours: do not remove it on abort */
        w->tmp_dir = NULL;
    } else {
        mp_cleanup_arm_dir(w->tmp_dir); /* every pack written, whichever command writes it */
        w->armed = true;
        if (open_tiers(w, tier_zstd, err) == MP_OK)
            return w;
    }
    mp_pack_writer_abort(w);
    return NULL;
}

/* ---- records ---- */

int mp_pack_record_begin(mp_pack_writer *w, int tier, int layer, int expert, mp_error *err)
{
    if (w->in_record || tier < 0 || tier >= w->n_tiers)
        return mp_fail(err, MP_EXIT_INPUT, "%s: record for tier %d out of order", w->path, tier);
    tier_out *t = &w->tiers[tier];
    int rc = tier_pad_to(t, tier == 0 ? MP_PACK_TIER0_ALIGN : MP_PACK_EXPERT_ALIGN, err);
    if (rc != MP_OK)
        return rc;
    w->in_record = true;
    w->tier = tier;
    w->layer = layer;
    w->expert = expert;
    w->rec_offset = t->offset;
    w->rec_raw = 0;
    w->n_parts = 0;
    XXH3_64bits_reset(w->hash);
    return MP_OK;
}

/* Raw bytes go to the file (and the running checksum) or, for compressed tiers,
 * to the in-memory record. */
static int record_append(mp_pack_writer *w, const void *bytes, uint64_t len, mp_error *err)
{
    if (len == 0)
        return MP_OK;
    if (!w->tiers[w->tier].zstd) {
        XXH3_64bits_update(w->hash, bytes, len);
        w->rec_raw += len;
        return tier_append(&w->tiers[w->tier], bytes, len, err);
    }
    if (w->rec_raw + len > w->raw_cap) {
        uint64_t cap = w->raw_cap ? w->raw_cap : 1 << 16;
        while (cap < w->rec_raw + len)
            cap *= 2;
        uint8_t *grown = realloc(w->raw, cap);
        if (!grown)
            return mp_fail(err, MP_EXIT_IO, "%s: out of memory for a %llu-byte record", w->path,
                           (unsigned long long)cap);
        w->raw = grown;
        w->raw_cap = cap;
    }
    memcpy(w->raw + w->rec_raw, bytes, len);
    w->rec_raw += len;
    return MP_OK;
}

static json_t *encoding_json(const mp_encoding *e)
{
    json_t *o = json_pack("{s:s}", "encoding", mp_encoding_manifest_name(e));
    if (e->kind == MP_ENC_FP8)
        json_object_set_new(o, "scale", json_string(mp_fp8_scale_name(e->fp8_scale)));
    if (e->kind == MP_ENC_W4) {
        json_object_set_new(o, "group", json_integer(e->group));
        json_object_set_new(o, "sym", json_boolean(e->sym));
    }
    return o;
}

static int add_tensor_entry(mp_pack_writer *w, const char *name, const char *source, int ndim,
                            const int64_t *shape, const mp_encoding *e, mp_error *err)
{
    json_t *dims = json_array();
    for (int i = 0; i < ndim; i++)
        json_array_append_new(dims, json_integer(shape[i]));
    json_t *t = json_pack("{s:s, s:s, s:o}", "name", name, "source", source ? source : "", "shape", dims);
    if (!t)
        return mp_fail(err, MP_EXIT_INPUT, "%s: tensor name '%s' is not valid UTF-8", w->path, name);
    json_t *enc = encoding_json(e);
    json_object_update(t, enc);
    json_decref(enc);
    json_object_set_new(t, "record", json_integer((json_int_t)json_array_size(w->records)));
    json_object_set_new(t, "part", json_integer(w->n_parts));
    json_array_append_new(w->tensors, t);
    return MP_OK;
}

int mp_pack_part_begin(mp_pack_writer *w, const char *name, const char *source, int ndim, const int64_t *shape,
                       const mp_encoding *e, mp_error *err)
{
    if (!w->in_record || w->in_part || ndim < 1 || ndim > 2)
        return mp_fail(err, MP_EXIT_INPUT, "%s: tensor '%s' outside a record or of rank %d", w->path, name, ndim);
    int64_t rows = ndim == 2 ? shape[0] : 1, cols = shape[ndim - 1];
    char why[128];
    if (mp_encoding_unfit(e, rows, cols, why, sizeof why))
        return mp_fail(err, MP_EXIT_INPUT, "tensor '%s': %s", name, why);
    uint64_t pad = (MP_PACK_PART_ALIGN - w->rec_raw % MP_PACK_PART_ALIGN) % MP_PACK_PART_ALIGN;
    int rc = record_append(w, zeros_4k, pad, err);
    if (rc == MP_OK)
        rc = add_tensor_entry(w, name, source, ndim, shape, e, err);
    if (rc != MP_OK)
        return rc;
    if (w->n_parts == w->cap_parts) {
        int cap = w->cap_parts ? 2 * w->cap_parts : 8;
        part_state *grown = realloc(w->parts, (size_t)cap * sizeof *grown);
        if (!grown)
            return mp_fail(err, MP_EXIT_IO, "%s: out of memory", w->path);
        w->parts = grown;
        w->cap_parts = cap;
    }
    mp_enc_layout L;
    mp_encoding_layout(e, rows, cols, &L);
    w->parts[w->n_parts] = (part_state){(int)json_array_size(w->tensors) - 1, *e, rows, cols, w->rec_raw, 0, L.total};
    w->in_part = true;
    return MP_OK;
}

int mp_pack_part_write(mp_pack_writer *w, const void *bytes, uint64_t len, mp_error *err)
{
    part_state *p = &w->parts[w->n_parts];
    if (!w->in_part || p->written + len > p->expected)
        return mp_fail(err, MP_EXIT_INPUT, "%s: more bytes than the tensor's encoding holds", w->path);
    p->written += len;
    return record_append(w, bytes, len, err);
}

int mp_pack_part_end(mp_pack_writer *w, mp_error *err)
{
    part_state *p = &w->parts[w->n_parts];
    if (!w->in_part || p->written != p->expected)
        return mp_fail(err, MP_EXIT_INPUT, "%s: tensor %d has %llu of its %llu bytes", w->path, p->tensor,
                       (unsigned long long)p->written, (unsigned long long)p->expected);
    w->in_part = false;
    w->n_parts++;
    return MP_OK;
}

/* zstd records: byte planes, one frame, checksum of the stored bytes. */
static int write_compressed(mp_pack_writer *w, uint64_t *stored, mp_error *err)
{
    for (int i = 0; i < w->n_parts; i++) {
        part_state *p = &w->parts[i];
        mp_pack_planes(&p->enc, w->raw + p->offset, (uint64_t)(p->rows * p->cols), false);
    }
    size_t bound = ZSTD_compressBound(w->rec_raw);
    void *frame = malloc(bound);
    if (!frame)
        return mp_fail(err, MP_EXIT_IO, "%s: out of memory", w->path);
    size_t n = ZSTD_compress(frame, bound, w->raw, w->rec_raw, w->zstd_level);
    int rc = MP_OK;
    if (ZSTD_isError(n))
        rc = mp_fail(err, MP_EXIT_IO, "%s: zstd: %s", w->path, ZSTD_getErrorName(n));
    else {
        XXH3_64bits_update(w->hash, frame, n);
        rc = tier_append(&w->tiers[w->tier], frame, n, err);
        *stored = n;
    }
    free(frame);
    return rc;
}

static json_t *record_json(mp_pack_writer *w, uint64_t stored, bool zstd)
{
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)XXH3_64bits_digest(w->hash));
    json_t *parts = json_array();
    for (int i = 0; i < w->n_parts; i++)
        json_array_append_new(parts, json_pack("{s:i, s:I, s:I}", "tensor", w->parts[i].tensor, "offset",
                                               (json_int_t)w->parts[i].offset, "length",
                                               (json_int_t)w->parts[i].expected));
    return json_pack("{s:i, s:I, s:I, s:I, s:s, s:s, s:i, s:i, s:o}", "tier", w->tier, "offset",
                     (json_int_t)w->rec_offset, "length", (json_int_t)stored, "raw_length",
                     (json_int_t)w->rec_raw, "codec", zstd ? "zstd" : "none", "xxh3", hex, "layer", w->layer,
                     "expert", w->expert, "parts", parts);
}

int mp_pack_record_end(mp_pack_writer *w, mp_error *err)
{
    if (!w->in_record || w->in_part || w->n_parts == 0)
        return mp_fail(err, MP_EXIT_INPUT, "%s: empty or unfinished record", w->path);
    bool zstd = w->tiers[w->tier].zstd;
    uint64_t stored = w->rec_raw;
    int rc = zstd ? write_compressed(w, &stored, err) : MP_OK;
    if (rc != MP_OK)
        return rc;
    json_array_append_new(w->records, record_json(w, stored, zstd));
    w->tiers[w->tier].n_records++;
    w->in_record = false;
    return MP_OK;
}

/* ---- finish ---- */

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static int finish_tier(tier_out *t, int index, mp_error *err)
{
    int rc = tier_flush(t, err);
    if (rc != MP_OK)
        return rc;
    uint8_t h[MP_PACK_HEADER_BYTES] = {0};
    memcpy(h, "MPKTIER1", 8);
    put_u32(h + 8, MP_PACK_VERSION);
    put_u32(h + 12, (uint32_t)index);
    put_u64(h + 16, t->offset);
    put_u64(h + 24, (uint64_t)t->n_records);
    put_u64(h + 56, XXH3_64bits(h, 56));
    rc = mp_pwrite_full(t->fd, h, sizeof h, 0, t->path, err);
    if (rc != MP_OK)
        return rc;
    if (close(t->fd) != 0) {
        t->fd = -1;
        return mp_fail_errno(err, "%s: close", t->path);
    }
    t->fd = -1;
    return MP_OK;
}

static json_t *tiers_json(const mp_pack_writer *w)
{
    json_t *a = json_array();
    for (int i = 0; i < w->n_tiers; i++) {
        char name[32];
        snprintf(name, sizeof name, "tier-%d.bin", i);
        json_array_append_new(a, json_pack("{s:i, s:s, s:I, s:i, s:s}", "index", i, "file", name, "bytes",
                                           (json_int_t)w->tiers[i].offset, "records", w->tiers[i].n_records,
                                           "codec", w->tiers[i].zstd ? "zstd" : "none"));
    }
    return a;
}

static int write_text_file(const char *dir, const char *name, const char *text, mp_error *err)
{
    char *path = mp_path_join(dir, name);
    int fd = path ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : -1;
    int rc = fd < 0 ? mp_fail_errno(err, "%s: create", path ? path : dir)
                    : mp_write_full(fd, text, strlen(text), path, err);
    if (fd >= 0 && close(fd) != 0 && rc == MP_OK)
        rc = mp_fail_errno(err, "%s: close", path);
    free(path);
    return rc;
}

static int write_manifest(mp_pack_writer *w, json_t *model, json_t *provenance, json_t *stats, mp_error *err)
{
    json_t *m = json_pack("{s:s, s:i, s:o, s:o, s:o, s:O, s:O, s:o}", "format", "moepack-pack", "version",
                          MP_PACK_VERSION, "model", model ? model : json_object(), "provenance",
                          provenance ? provenance : json_object(), "tiers", tiers_json(w), "tensors", w->tensors,
                          "records", w->records, "routing_stats", stats ? stats : json_null());
    char *text = m ? json_dumps(m, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL; /* DeepSeek-sized packs list ~100k tensors */
    json_decref(m);
    if (!text)
        return mp_fail(err, MP_EXIT_IO, "%s: cannot serialise the manifest", w->path);
    char sum[32];
    snprintf(sum, sizeof sum, "%016llx\n", (unsigned long long)XXH3_64bits(text, strlen(text)));
    int rc = write_text_file(w->tmp_dir, "manifest.json", text, err);
    if (rc == MP_OK)
        rc = write_text_file(w->tmp_dir, "manifest.xxh3", sum, err);
    free(text);
    return rc;
}

/* Tokenizer and generation files travel with the pack so it runs on its own. */
static int copy_side_files(const mp_pack_writer *w, const char *from, mp_error *err)
{
    static const char *const names[] = {"config.json", "generation_config.json", "tokenizer.json",
                                        "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
                                        "chat_template.jinja"};
    for (size_t i = 0; from && i < sizeof names / sizeof *names; i++) {
        char *src = mp_path_join(from, names[i]);
        char *text = NULL;
        size_t len = 0;
        struct stat st;
        int rc = MP_OK;
        if (src && stat(src, &st) == 0 && S_ISREG(st.st_mode)) {
            rc = mp_read_small_file(src, 256u << 20, &text, &len, err);
            char *dst = rc == MP_OK ? mp_path_join(w->tmp_dir, names[i]) : NULL;
            int fd = dst ? open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : -1;
            if (rc == MP_OK)
                rc = fd < 0 ? mp_fail_errno(err, "%s: create", dst) : mp_write_full(fd, text, len, dst, err);
            if (fd >= 0 && close(fd) != 0 && rc == MP_OK)
                rc = mp_fail_errno(err, "%s: close", dst);
            free(dst);
        }
        free(text);
        free(src);
        if (rc != MP_OK)
            return rc;
    }
    return MP_OK;
}

int mp_pack_writer_finish(mp_pack_writer *w, json_t *model, json_t *provenance, json_t *routing_stats,
                          const char *copy_from, bool replace, mp_error *err)
{
    int rc = w->in_record ? mp_fail(err, MP_EXIT_INPUT, "%s: unfinished record", w->path) : MP_OK;
    for (int i = 0; i < w->n_tiers && rc == MP_OK; i++)
        rc = finish_tier(&w->tiers[i], i, err);
    if (rc == MP_OK)
        rc = write_manifest(w, model, provenance, routing_stats, err);
    else {
        json_decref(model);
        json_decref(provenance);
        json_decref(routing_stats);
    }
    if (rc == MP_OK)
        rc = copy_side_files(w, copy_from, err);
    if (rc == MP_OK)
        rc = mp_outdir_commit(w->tmp_dir, w->path, replace, err);
    if (rc == MP_OK) {
        free(w->tmp_dir);
        w->tmp_dir = NULL; /* nothing left to remove */
    }
    mp_pack_writer_abort(w);
    return rc;
}

void mp_pack_writer_abort(mp_pack_writer *w)
{
    if (!w)
        return;
    for (int i = 0; w->tiers && i < w->n_tiers; i++) {
        if (w->tiers[i].fd >= 0)
            close(w->tiers[i].fd);
        free(w->tiers[i].path);
        free(w->tiers[i].buf);
    }
    if (w->tmp_dir)
        mp_remove_tree(w->tmp_dir);
    if (w->armed)
        mp_cleanup_arm(NULL, NULL);
    json_decref(w->tensors);
    json_decref(w->records);
    if (w->hash)
        XXH3_freeState(w->hash);
    free(w->tiers);
    free(w->raw);
    free(w->parts);
    free(w->tmp_dir);
    free(w->path);
    free(w);
}

uint64_t mp_pack_writer_bytes(const mp_pack_writer *w)
{
    uint64_t n = 0;
    for (int i = 0; i < w->n_tiers; i++)
        n += w->tiers[i].offset;
    return n;
}

const char *mp_pack_writer_temp_dir(const mp_pack_writer *w)
{
    return w->tmp_dir;
}
