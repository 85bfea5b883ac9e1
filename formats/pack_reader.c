/* Pack reader: the manifest and tier headers are validated on open, so later
 * reads can trust offsets, sizes and names; every record read is checksummed. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include "../core/fileio.h"
#include "../core/json.h"
#include "pack.h"

#define MAX_MANIFEST_BYTES (1ull << 30)
/* A zstd block of at most 128 KiB takes at least 4 bytes (header + RLE byte), so no
 * frame decodes to more than 32768 times its length: a larger raw_length is a lie
 * that would only make readers allocate it. */
#define MAX_ZSTD_RATIO 32768
/* Shapes: each dimension an int32, and few enough values that layouts fit in u64. */
#define MAX_DIM 2147483647ll
#define MAX_VALUES (1ull << 40)
#define MAX_NAME_INDEX (1 << 24)

bool mp_is_pack(const char *dir)
{
    char *path = mp_path_join(dir, "manifest.json");
    struct stat st;
    bool yes = path && stat(path, &st) == 0 && S_ISREG(st.st_mode);
    free(path);
    return yes;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- manifest fields ---- */

static int field_u64(json_t *obj, const char *key, uint64_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static int field_int(json_t *obj, const char *key, int min, int max, int *out)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return -1;
    *out = (int)json_integer_value(v);
    return 0;
}

static int load_manifest(mp_pack *p, mp_error *err)
{
    char *path = mp_path_join(p->dir, "manifest.json"), *sum_path = mp_path_join(p->dir, "manifest.xxh3");
    char *text = NULL, *sum = NULL;
    size_t len, sum_len;
    uint64_t want = 0;
    int rc = mp_read_small_file(path, MAX_MANIFEST_BYTES, &text, &len, err);
    if (rc == MP_OK)
        rc = mp_read_small_file(sum_path, 64, &sum, &sum_len, err);
    if (rc == MP_OK && (sum_len != 17 || sum[16] != '\n' || (sum[16] = '\0', mp_parse_hex64(sum, &want)) != 0))
        rc = mp_fail(err, MP_EXIT_INPUT, "%s: expected 16 lowercase hex digits and a newline", sum_path);
    if (rc == MP_OK && XXH3_64bits(text, len) != want)
        rc = mp_fail(err, MP_EXIT_IO, "%s: checksum %016" PRIx64 " does not match manifest.xxh3 (%016" PRIx64 "): the manifest is corrupt",
                     path, XXH3_64bits(text, len), want);
    free(text);
    free(sum);
    if (rc == MP_OK)
        rc = mp_json_load_file(path, MAX_MANIFEST_BYTES, &p->manifest, err);
    json_t *fmt = json_object_get(p->manifest, "format");
    int version = 0;
    if (rc == MP_OK && (!json_is_string(fmt) || strcmp(json_string_value(fmt), "moepack-pack") != 0))
        rc = mp_fail(err, MP_EXIT_INPUT, "%s: \"format\" is not \"moepack-pack\"", path);
    if (rc == MP_OK && (field_int(p->manifest, "version", 0, 1 << 30, &version) != 0 || version != MP_PACK_VERSION))
        rc = mp_fail(err, MP_EXIT_INPUT, "%s: pack format version %d, this moepack reads version %d", path,
                     version, MP_PACK_VERSION);
    free(path);
    free(sum_path);
    return rc;
}

/* ---- tiers ---- */

static int check_tier_header(mp_pack_tier *t, int index, mp_error *err)
{
    uint8_t h[MP_PACK_HEADER_BYTES];
    if (t->bytes < sizeof h)
        return mp_fail(err, MP_EXIT_INPUT, "%s: %llu bytes, shorter than its header", t->path,
                       (unsigned long long)t->bytes);
    int rc = mp_pread_full(t->fd, h, sizeof h, 0, t->path, err);
    if (rc != MP_OK)
        return rc;
    if (get_u64(h + 56) != XXH3_64bits(h, 56))
        return mp_fail(err, MP_EXIT_IO, "%s: header checksum mismatch: the tier file is corrupt", t->path);
    if (memcmp(h, "MPKTIER1", 8) != 0 || get_u32(h + 8) != MP_PACK_VERSION || get_u32(h + 12) != (uint32_t)index)
        return mp_fail(err, MP_EXIT_INPUT, "%s: not a version %d header of tier %d", t->path, MP_PACK_VERSION, index);
    for (int i = 32; i < 56; i++)
        if (h[i] != 0)
            return mp_fail(err, MP_EXIT_INPUT, "%s: reserved header bytes are not zero", t->path);
    if (get_u64(h + 16) != t->bytes || get_u64(h + 24) != (uint64_t)t->n_records)
        return mp_fail(err, MP_EXIT_INPUT, "%s: header says %llu bytes and %llu records, the file has %llu and the manifest %d",
                       t->path, (unsigned long long)get_u64(h + 16), (unsigned long long)get_u64(h + 24),
                       (unsigned long long)t->bytes, t->n_records);
    return MP_OK;
}

/* The manifest's entry for tier i: file name, size, record count, codec. */
static int parse_tier_entry(mp_pack *p, int i, json_t *entry, mp_error *err)
{
    mp_pack_tier *t = &p->tiers[i];
    char expected[32];
    snprintf(expected, sizeof expected, "tier-%d.bin", i);
    json_t *file = json_object_get(entry, "file"), *codec = json_object_get(entry, "codec");
    int index;
    if (!json_is_string(file) || strcmp(json_string_value(file), expected) != 0 ||
        field_int(entry, "index", i, i, &index) != 0 || field_u64(entry, "bytes", &t->bytes) != 0 ||
        field_int(entry, "records", 0, 1 << 30, &t->n_records) != 0 || !json_is_string(codec))
        return mp_fail(err, MP_EXIT_INPUT, "%s/manifest.json: tiers[%d]: expected index %d, file \"%s\", bytes, records, codec",
                       p->dir, i, i, expected);
    if (strcmp(json_string_value(codec), "zstd") != 0 && strcmp(json_string_value(codec), "none") != 0)
        return mp_fail(err, MP_EXIT_INPUT, "%s/manifest.json: tiers[%d]: codec \"%s\" is not none or zstd", p->dir, i,
                       json_string_value(codec));
    t->zstd = strcmp(json_string_value(codec), "zstd") == 0;
    t->path = mp_path_join(p->dir, expected);
    return t->path ? MP_OK : mp_fail(err, MP_EXIT_IO, "%s: out of memory", p->dir);
}

/* Opens tier i's file read-only and checks it against the manifest (size, header);
 * *fd is the open descriptor on success, -1 on failure. */
static int open_tier_file(const mp_pack_tier *manifest_tier, int i, int *fd, mp_error *err)
{
    mp_pack_tier t = *manifest_tier;
    t.fd = open(t.path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    int rc = MP_OK;
    if (t.fd < 0 || fstat(t.fd, &st) != 0 || !S_ISREG(st.st_mode))
        rc = mp_fail(err, MP_EXIT_INPUT, "%s: missing or not a regular file", t.path);
    else if ((uint64_t)st.st_size != t.bytes)
        rc = mp_fail(err, MP_EXIT_INPUT, "%s: %lld bytes, the manifest says %llu", t.path, (long long)st.st_size,
                     (unsigned long long)t.bytes);
    else
        rc = check_tier_header(&t, i, err);
    if (rc != MP_OK && t.fd >= 0) {
        close(t.fd);
        t.fd = -1;
    }
    *fd = t.fd;
    return rc;
}

/* Expert tiers (>= 1) stay closed when deferred: they are opened at first need. */
static int open_tiers(mp_pack *p, bool deferred, mp_error *err)
{
    json_t *tiers = json_object_get(p->manifest, "tiers");
    if (!json_is_array(tiers) || json_array_size(tiers) == 0 || json_array_size(tiers) > 1024)
        return mp_fail(err, MP_EXIT_INPUT, "%s/manifest.json: \"tiers\" must be a non-empty array", p->dir);
    p->n_tiers = (int)json_array_size(tiers);
    p->tiers = calloc((size_t)p->n_tiers, sizeof *p->tiers);
    if (!p->tiers)
        return mp_fail(err, MP_EXIT_IO, "%s: out of memory", p->dir);
    for (int i = 0; i < p->n_tiers; i++)
        p->tiers[i].fd = -1;
    for (int i = 0; i < p->n_tiers; i++) {
        int rc = parse_tier_entry(p, i, json_array_get(tiers, (size_t)i), err);
        p->tiers[i].deferred = deferred && i >= 1;
        if (rc == MP_OK && !p->tiers[i].deferred)
            rc = open_tier_file(&p->tiers[i], i, &p->tiers[i].fd, err);
        if (rc != MP_OK)
            return rc;
    }
    return MP_OK;
}

/* ---- records ---- */

void mp_pack_record_label(const mp_pack *p, int rec, char *buf, size_t cap)
{
    const mp_pack_record *r = &p->records[rec];
    if (r->expert >= 0)
        snprintf(buf, cap, "tier-%d.bin record %d (layer %d expert %d)", r->tier, rec, r->layer, r->expert);
    else if (r->n_parts > 0 && r->parts[0].tensor < p->n_tensors && p->tensors[r->parts[0].tensor].name)
        snprintf(buf, cap, "tier-%d.bin record %d (%s)", r->tier, rec, p->tensors[r->parts[0].tensor].name);
    else
        snprintf(buf, cap, "tier-%d.bin record %d", r->tier, rec);
}

static int parse_parts(mp_pack *p, int i, json_t *parts, mp_error *err)
{
    mp_pack_record *r = &p->records[i];
    if (!json_is_array(parts) || json_array_size(parts) == 0)
        return mp_fail(err, MP_EXIT_INPUT, "%s/manifest.json: records[%d]: \"parts\" must be a non-empty array", p->dir, i);
    r->n_parts = (int)json_array_size(parts);
    r->parts = calloc((size_t)r->n_parts, sizeof *r->parts);
    if (!r->parts)
        return mp_fail(err, MP_EXIT_IO, "%s: out of memory", p->dir);
    uint64_t end = 0;
    for (int k = 0; k < r->n_parts; k++) {
        json_t *e = json_array_get(parts, (size_t)k);
        mp_pack_part *part = &r->parts[k];
        if (field_int(e, "tensor", 0, p->n_tensors - 1, &part->tensor) != 0 || field_u64(e, "offset", &part->offset) != 0 ||
            field_u64(e, "length", &part->length) != 0 || part->offset % MP_PACK_PART_ALIGN != 0 || part->offset < end ||
            part->length > r->raw_length || part->offset > r->raw_length - part->length)
            return mp_fail(err, MP_EXIT_INPUT,
                           "%s/manifest.json: records[%d].parts[%d]: expected a tensor index and a 64-byte aligned span inside the record's %llu raw bytes, after the previous part",
                           p->dir, i, k, (unsigned long long)r->raw_length);
        end = part->offset + part->length;
    }
    return MP_OK;
}

static int parse_record(mp_pack *p, int i, json_t *e, mp_error *err)
{
    mp_pack_record *r = &p->records[i];
    json_t *codec = json_object_get(e, "codec");
    json_t *sum = json_object_get(e, "xxh3");
    if (field_int(e, "tier", 0, p->n_tiers - 1, &r->tier) != 0 || field_u64(e, "offset", &r->offset) != 0 ||
        field_u64(e, "length", &r->length) != 0 || field_u64(e, "raw_length", &r->raw_length) != 0 ||
        field_int(e, "layer", -1, 1 << 20, &r->layer) != 0 || field_int(e, "expert", -1, 1 << 24, &r->expert) != 0 ||
        !json_is_string(codec) || mp_parse_hex64(json_string_value(sum), &r->xxh3) != 0)
        return mp_fail(err, MP_EXIT_INPUT,
                       "%s/manifest.json: records[%d]: expected tier, offset, length, raw_length, codec, xxh3, layer, expert",
                       p->dir, i);
    if ((r->tier == 0) != (r->expert < 0))
        return mp_fail(err, MP_EXIT_INPUT, "%s/manifest.json: records[%d]: tier %d with expert %d (tier 0 holds no routed expert, other tiers only routed experts)",
                       p->dir, i, r->tier, r->expert);
    r->zstd = strcmp(json_string_value(codec), "zstd") == 0;
    if (!r->zstd && (strcmp(json_string_value(codec), "none") != 0 || r->length != r->raw_length))
        return mp_fail(err, MP_EXIT_INPUT, "%s/manifest.json: records[%d]: codec must be none (length = raw_length) or zstd",
                       p->dir, i);
    if (r->zstd && r->raw_length / MAX_ZSTD_RATIO > r->length)
        return mp_fail(err, MP_EXIT_INPUT, "%s/manifest.json: records[%d]: raw_length %llu is more than a zstd frame of %llu bytes can hold",
                       p->dir, i, (unsigned long long)r->raw_length, (unsigned long long)r->length);
    int rc = parse_parts(p, i, json_object_get(e, "parts"), err);
    const mp_pack_part *last = rc == MP_OK ? &r->parts[r->n_parts - 1] : NULL;
    if (last && last->offset + last->length != r->raw_length)
        return mp_fail(err, MP_EXIT_INPUT, "%s/manifest.json: records[%d]: raw_length %llu, its last part ends at %llu",
                       p->dir, i, (unsigned long long)r->raw_length, (unsigned long long)(last->offset + last->length));
    return rc;
}

/* Records of a tier are aligned, in increasing order, inside the file, and the
 * last one ends the file. */
static int check_record_placement(mp_pack *p, mp_error *err)
{
    uint64_t *end = calloc((size_t)p->n_tiers, sizeof *end);
    int *count = calloc((size_t)p->n_tiers, sizeof *count);
    int rc = end && count ? MP_OK : mp_fail(err, MP_EXIT_IO, "%s: out of memory", p->dir);
    for (int t = 0; t < p->n_tiers && rc == MP_OK; t++)
        end[t] = MP_PACK_HEADER_BYTES;
    for (int i = 0; i < p->n_records && rc == MP_OK; i++) {
        mp_pack_record *r = &p->records[i];
        const mp_pack_tier *t = &p->tiers[r->tier];
        uint64_t align = r->tier == 0 ? MP_PACK_TIER0_ALIGN : MP_PACK_EXPERT_ALIGN;
        char label[160];
        mp_pack_record_label(p, i, label, sizeof label);
        if (r->offset % align != 0 || r->offset < end[r->tier] || r->length > t->bytes || r->offset > t->bytes - r->length)
            rc = mp_fail(err, MP_EXIT_INPUT, "%s: %s: span [%llu, +%llu) is unaligned, overlaps the previous record or runs past the file",
                         p->dir, label, (unsigned long long)r->offset, (unsigned long long)r->length);
        else if (r->zstd != t->zstd)
            rc = mp_fail(err, MP_EXIT_INPUT, "%s: %s: codec differs from its tier's", p->dir, label);
        end[r->tier] = r->offset + r->length;
        count[r->tier]++;
    }
    for (int t = 0; t < p->n_tiers && rc == MP_OK; t++)
        if (count[t] != p->tiers[t].n_records || (count[t] > 0 && end[t] != p->tiers[t].bytes))
            rc = mp_fail(err, MP_EXIT_INPUT, "%s: %d records end at %llu, the tier lists %d records and %llu bytes",
                         p->tiers[t].path, count[t], (unsigned long long)end[t], p->tiers[t].n_records,
                         (unsigned long long)p->tiers[t].bytes);
    free(end);
    free(count);
    return rc;
}

static int parse_records(mp_pack *p, mp_error *err)
{
    json_t *records = json_object_get(p->manifest, "records");
    if (!json_is_array(records))
        return mp_fail(err, MP_EXIT_INPUT, "%s/manifest.json: \"records\" must be an array", p->dir);
    p->n_records = (int)json_array_size(records);
    p->records = calloc((size_t)p->n_records + 1, sizeof *p->records);
    if (!p->records)
        return mp_fail(err, MP_EXIT_IO, "%s: out of memory", p->dir);
    for (int i = 0; i < p->n_records; i++) {
        int rc = parse_record(p, i, json_array_get(records, (size_t)i), err);
        if (rc != MP_OK)
            return rc;
    }
    return check_record_placement(p, err);
}

/* ---- tensors ---- */

static int parse_encoding(json_t *e, mp_encoding *enc)
{
    json_t *kind = json_object_get(e, "encoding");
    const char *k = json_is_string(kind) ? json_string_value(kind) : "";
    memset(enc, 0, sizeof *enc);
    if (strcmp(k, "w4_2:4") == 0 || strcmp(k, "fp8_e4m3_2:4") == 0) {
        enc->nm24 = true;
        k = k[0] == 'w' ? "w4" : "fp8_e4m3";
    }
    if (strcmp(k, "w4") == 0) {
        json_t *sym = json_object_get(e, "sym");
        enc->kind = MP_ENC_W4;
        enc->sym = json_is_true(sym);
        return field_int(e, "group", 32, 128, &enc->group) == 0 && json_is_boolean(sym) ? 0 : -1;
    }
    if (strcmp(k, "fp8_e4m3") == 0) {
        json_t *scale = json_object_get(e, "scale");
        const char *s = json_is_string(scale) ? json_string_value(scale) : "";
        enc->kind = MP_ENC_FP8;
        for (int i = MP_FP8_TENSOR; i <= MP_FP8_BLOCK; i++)
            if (strcmp(s, mp_fp8_scale_name((mp_fp8_scale)i)) == 0) {
                enc->fp8_scale = (mp_fp8_scale)i;
                return 0;
            }
        return -1;
    }
    for (int i = MP_ENC_F32; i <= MP_ENC_IQ4_XS; i++)
        if (i != MP_ENC_FP8 && i != MP_ENC_W4 && strcmp(k, mp_encoding_kind_name((mp_enc_kind)i)) == 0) {
            enc->kind = (mp_enc_kind)i;
            return 0;
        }
    return -1;
}

static int parse_tensor(mp_pack *p, int i, json_t *e, mp_error *err)
{
    mp_pack_tensor *t = &p->tensors[i];
    json_t *name = json_object_get(e, "name"), *source = json_object_get(e, "source"), *shape = json_object_get(e, "shape");
    char why[128];
    if (!json_is_string(name) || !json_is_string(source) || !json_is_array(shape) || json_array_size(shape) < 1 ||
        json_array_size(shape) > 2)
        return mp_fail(err, MP_EXIT_INPUT, "%s/manifest.json: tensors[%d]: expected name, source and a 1-D or 2-D shape", p->dir, i);
    t->name = json_string_value(name);
    t->source = json_string_value(source);
    t->ndim = (int)json_array_size(shape);
    json_t *d0 = json_array_get(shape, 0), *d1 = json_array_get(shape, (size_t)t->ndim - 1);
    if (!json_is_integer(d0) || !json_is_integer(d1) || json_integer_value(d0) < 1 || json_integer_value(d1) < 1 ||
        json_integer_value(d0) > MAX_DIM || json_integer_value(d1) > MAX_DIM)
        return mp_fail(err, MP_EXIT_INPUT, "%s/manifest.json: tensor '%s': dimensions must be integers in 1..%lld", p->dir,
                       t->name, MAX_DIM);
    t->rows = t->ndim == 2 ? json_integer_value(d0) : 1;
    t->cols = json_integer_value(d1);
    if ((uint64_t)t->rows * (uint64_t)t->cols > MAX_VALUES)
        return mp_fail(err, MP_EXIT_INPUT, "%s/manifest.json: tensor '%s': shape [%lld, %lld] holds more than 2^40 values",
                       p->dir, t->name, (long long)t->rows, (long long)t->cols);
    if (parse_encoding(e, &t->enc) != 0)
        return mp_fail(err, MP_EXIT_INPUT, "%s/manifest.json: tensor '%s': unknown encoding", p->dir, t->name);
    if (mp_encoding_unfit(&t->enc, t->rows, t->cols, why, sizeof why))
        return mp_fail(err, MP_EXIT_INPUT, "%s/manifest.json: tensor '%s': %s", p->dir, t->name, why);
    if (field_int(e, "record", 0, p->n_records - 1, &t->record) != 0 ||
        field_int(e, "part", 0, p->records[t->record].n_parts - 1, &t->part) != 0 ||
        p->records[t->record].parts[t->part].tensor != i)
        return mp_fail(err, MP_EXIT_INPUT, "%s/manifest.json: tensor '%s': record/part do not point back to it", p->dir, t->name);
    mp_enc_layout L;
    mp_encoding_layout(&t->enc, t->rows, t->cols, &L);
    if (L.total != p->records[t->record].parts[t->part].length)
        return mp_fail(err, MP_EXIT_INPUT, "%s/manifest.json: tensor '%s': part holds %llu bytes, its encoding needs %llu",
                       p->dir, t->name, (unsigned long long)p->records[t->record].parts[t->part].length,
                       (unsigned long long)L.total);
    return MP_OK;
}

static int parse_tensors(mp_pack *p, mp_error *err)
{
    json_t *tensors = json_object_get(p->manifest, "tensors");
    if (!json_is_array(tensors))
        return mp_fail(err, MP_EXIT_INPUT, "%s/manifest.json: \"tensors\" must be an array", p->dir);
    p->n_tensors = (int)json_array_size(tensors);
    p->tensors = calloc((size_t)p->n_tensors + 1, sizeof *p->tensors);
    p->names = calloc((size_t)p->n_tensors + 1, sizeof *p->names);
    if (!p->tensors || !p->names)
        return mp_fail(err, MP_EXIT_IO, "%s: out of memory", p->dir);
    return MP_OK;
}

/* "N." at *s, N a decimal without sign or leading zero: N, with *s moved past the
 * dot; -1 otherwise. */
static int take_index(const char **s)
{
    const char *c = *s;
    int v = 0;
    if (*c < '0' || *c > '9' || (c[0] == '0' && c[1] != '.'))
        return -1;
    for (; *c >= '0' && *c <= '9'; c++)
        if ((v = v * 10 + (*c - '0')) > MAX_NAME_INDEX)
            return -1;
    if (*c != '.')
        return -1;
    *s = c + 1;
    return v;
}

/* The layer and routed expert a tensor belongs to by its name (FORMAT.md "Tensor
 * names" and "Records"): layers.L.… is layer L, mtp.J.… layer n_layers + J, with
 * experts.E.… expert E; any other name -1, -1. -1 for a malformed index. */
static int place_of_name(const char *name, int n_layers, int *layer, int *expert)
{
    const char *s = name;
    int base = 0;
    *layer = *expert = -1;
    if (strncmp(s, "mtp.", 4) == 0 && n_layers >= 0) {
        s += 4;
        base = n_layers;
    } else if (strncmp(s, "layers.", 7) == 0) {
        s += 7;
    } else {
        return strncmp(s, "mtp.", 4) == 0 ? -1 : 0; /* mtp without the model's layer count */
    }
    int index = take_index(&s);
    if (index < 0)
        return -1;
    *layer = base + index;
    if (strncmp(s, "experts.", 8) != 0)
        return 0;
    s += 8;
    *expert = take_index(&s);
    return *expert >= 0 ? 0 : -1;
}

/* The model's layer count, which places MTP layers after the others; -1 if absent. */
static int manifest_layers(const mp_pack *p)
{
    int n = -1;
    if (field_int(json_object_get(p->manifest, "model"), "layers", 0, MAX_NAME_INDEX, &n) != 0)
        return -1;
    return n;
}

/* Each part is its tensor's one place, and a record's layer and expert are those of
 * the tensors it holds, so a reader looking up an expert by either finds the same bytes. */
static int check_record_contents(const mp_pack *p, int i, int n_layers, mp_error *err)
{
    const mp_pack_record *r = &p->records[i];
    for (int k = 0; k < r->n_parts; k++) {
        const mp_pack_tensor *t = &p->tensors[r->parts[k].tensor];
        int layer, expert;
        if (t->record != i || t->part != k)
            return mp_fail(err, MP_EXIT_INPUT, "%s/manifest.json: records[%d].parts[%d]: tensor '%s' is stored in records[%d].parts[%d]",
                           p->dir, i, k, t->name, t->record, t->part);
        if (place_of_name(t->name, n_layers, &layer, &expert) != 0)
            return mp_fail(err, MP_EXIT_INPUT, "%s/manifest.json: tensor '%s': malformed layer or expert index in the name%s",
                           p->dir, t->name, n_layers < 0 ? " (or an MTP name without model.layers)" : "");
        if (layer != r->layer || expert != r->expert)
            return mp_fail(err, MP_EXIT_INPUT, "%s/manifest.json: records[%d]: layer %d expert %d, but its tensor '%s' is of layer %d expert %d",
                           p->dir, i, r->layer, r->expert, t->name, layer, expert);
    }
    return MP_OK;
}

static int finish_tensors(mp_pack *p, mp_error *err)
{
    json_t *tensors = json_object_get(p->manifest, "tensors");
    for (int i = 0; i < p->n_tensors; i++) {
        int rc = parse_tensor(p, i, json_array_get(tensors, (size_t)i), err);
        if (rc != MP_OK)
            return rc;
        p->names[i] = p->tensors[i].name;
    }
    if (mp_name_index_build(&p->index, p->names, p->n_tensors) != 0)
        return mp_fail(err, MP_EXIT_IO, "%s: out of memory", p->dir);
    for (int i = 0; i < p->n_tensors; i++)
        if (mp_name_index_find(&p->index, p->names, p->names[i]) != i)
            return mp_fail(err, MP_EXIT_INPUT, "%s/manifest.json: tensor '%s' listed twice", p->dir, p->names[i]);
    int n_layers = manifest_layers(p);
    for (int i = 0; i < p->n_records; i++) {
        int rc = check_record_contents(p, i, n_layers, err);
        if (rc != MP_OK)
            return rc;
    }
    return MP_OK;
}

static int open_pack(mp_pack *p, const char *dir, bool deferred, mp_error *err)
{
    memset(p, 0, sizeof *p);
    p->dir = mp_strdup(dir);
    int rc = p->dir ? load_manifest(p, err) : mp_fail(err, MP_EXIT_IO, "out of memory");
    if (rc == MP_OK)
        rc = open_tiers(p, deferred, err);
    if (rc == MP_OK)
        rc = parse_tensors(p, err); /* counts first: records check their part indices */
    if (rc == MP_OK)
        rc = parse_records(p, err);
    if (rc == MP_OK)
        rc = finish_tensors(p, err);
    if (rc != MP_OK)
        mp_pack_close(p);
    return rc;
}

int mp_pack_open(mp_pack *p, const char *dir, mp_error *err)
{
    return open_pack(p, dir, false, err);
}

int mp_pack_open_deferred(mp_pack *p, const char *dir, mp_error *err)
{
    return open_pack(p, dir, true, err);
}

int mp_pack_tier_open(const mp_pack *p, int rec, int *fd, mp_error *err)
{
    const mp_pack_record *r = &p->records[rec];
    mp_error why = {0};
    if (open_tier_file(&p->tiers[r->tier], r->tier, fd, &why) == MP_OK)
        return MP_OK;
    char label[160];
    mp_pack_record_label(p, rec, label, sizeof label);
    return mp_fail(err, MP_EXIT_IO, "%s: %s is needed but its tier file is unusable: %s", p->dir, label, why.msg);
}

void mp_pack_close(mp_pack *p)
{
    for (int i = 0; p->tiers && i < p->n_tiers; i++) {
        if (p->tiers[i].fd >= 0)
            close(p->tiers[i].fd);
        free(p->tiers[i].path);
    }
    for (int i = 0; p->records && i < p->n_records; i++)
        free(p->records[i].parts);
    mp_name_index_free(&p->index);
    free(p->tiers);
    free(p->records);
    free(p->tensors);
    free(p->names);
    free(p->dir);
    json_decref(p->manifest);
    memset(p, 0, sizeof *p);
}

int mp_pack_find(const mp_pack *p, const char *name)
{
    return mp_name_index_find(&p->index, p->names, name);
}

/* ---- reading ---- */

static int decompress_record(const mp_pack *p, int rec, const uint8_t *stored, uint8_t *raw, mp_error *err)
{
    const mp_pack_record *r = &p->records[rec];
    char label[160];
    size_t n = ZSTD_decompress(raw, r->raw_length, stored, r->length);
    if (ZSTD_isError(n) || n != r->raw_length) {
        mp_pack_record_label(p, rec, label, sizeof label);
        return mp_fail(err, MP_EXIT_IO, "%s: %s: zstd frame does not decode to %llu bytes (%s)", p->dir, label,
                       (unsigned long long)r->raw_length, ZSTD_isError(n) ? ZSTD_getErrorName(n) : "wrong size");
    }
    for (int k = 0; k < r->n_parts; k++) {
        const mp_pack_tensor *t = &p->tensors[r->parts[k].tensor];
        mp_pack_planes(&t->enc, raw + r->parts[k].offset, (uint64_t)(t->rows * t->cols), true);
    }
    return MP_OK;
}

int mp_pack_decode_record(const mp_pack *p, int rec, const uint8_t *stored, uint8_t *raw, mp_error *err)
{
    const mp_pack_record *r = &p->records[rec];
    if (XXH3_64bits(stored, r->length) != r->xxh3) {
        char label[160];
        mp_pack_record_label(p, rec, label, sizeof label);
        return mp_fail(err, MP_EXIT_IO, "%s: %s: checksum mismatch, the record is corrupt", p->dir, label);
    }
    if (r->zstd)
        return decompress_record(p, rec, stored, raw, err);
    if (stored != raw)
        memcpy(raw, stored, r->length);
    return MP_OK;
}

/* A deferred tier is opened for this one read: a reader without a cache of its own
 * still fails at first need, naming the record. */
static int read_stored(const mp_pack *p, int rec, uint8_t *stored, mp_error *err)
{
    const mp_pack_record *r = &p->records[rec];
    const mp_pack_tier *t = &p->tiers[r->tier];
    int fd = t->fd, rc = MP_OK;
    if (fd < 0)
        rc = mp_pack_tier_open(p, rec, &fd, err);
    if (rc == MP_OK)
        rc = mp_pread_full(fd, stored, r->length, r->offset, t->path, err);
    if (fd >= 0 && fd != t->fd)
        close(fd);
    return rc;
}

int mp_pack_read_record(const mp_pack *p, int rec, uint8_t *raw, mp_error *err)
{
    const mp_pack_record *r = &p->records[rec];
    uint8_t *stored = r->zstd ? malloc(r->length ? r->length : 1) : raw;
    if (!stored)
        return mp_fail(err, MP_EXIT_IO, "%s: out of memory", p->dir);
    int rc = read_stored(p, rec, stored, err);
    if (rc == MP_OK)
        rc = mp_pack_decode_record(p, rec, stored, raw, err);
    if (r->zstd)
        free(stored);
    return rc;
}

static int check_zero_span(const mp_pack_tier *t, uint64_t from, uint64_t to, mp_error *err)
{
    uint8_t buf[4096];
    for (uint64_t off = from; off < to;) {
        uint64_t n = to - off < sizeof buf ? to - off : sizeof buf;
        int rc = mp_pread_full(t->fd, buf, n, off, t->path, err);
        if (rc != MP_OK)
            return rc;
        for (uint64_t i = 0; i < n; i++)
            if (buf[i] != 0)
                return mp_fail(err, MP_EXIT_IO, "%s: byte %llu between records is not zero: the tier file is corrupt",
                               t->path, (unsigned long long)(off + i));
        off += n;
    }
    return MP_OK;
}

int mp_pack_check_padding(const mp_pack *p, int t, mp_error *err)
{
    uint64_t end = MP_PACK_HEADER_BYTES;
    for (int i = 0; i < p->n_records; i++) {
        const mp_pack_record *r = &p->records[i];
        if (r->tier != t)
            continue;
        int rc = check_zero_span(&p->tiers[t], end, r->offset, err);
        if (rc != MP_OK)
            return rc;
        end = r->offset + r->length;
    }
    return check_zero_span(&p->tiers[t], end, p->tiers[t].bytes, err);
}
