#include "stats.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "../core/fileio.h"

/* The arrays are written as the host holds them; the format is little-endian. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "stats files are little-endian");

enum {
    MAX_HEADER = 1 << 28,     /* 256 MiB of JSON: ~3 M linears */
    MAX_EXPERTS = 1 << 16,
    MAX_LAYERS = 1 << 20,
    MAX_COLS = 1 << 24,
    MAX_NAME = 255
};

static const uint8_t zeros[64];

static uint64_t align_up(uint64_t x, uint64_t a)
{
    return (x + a - 1) / a * a;
}

/* A linear's array: cols f32 values, padded with zeros to a multiple of 8 bytes. */
static uint64_t linear_bytes(int64_t cols)
{
    return align_up(4 * (uint64_t)cols, 8);
}

static uint64_t table_bytes(int n_layers, int n_experts)
{
    return 8 * (uint64_t)n_layers * (uint64_t)n_experts;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

static void put_u64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* ---- writer ---- */

/* The routing and linear indexes; *data_bytes receives the data section's length. */
static json_t *routing_json(const mp_stats_data *d)
{
    json_t *layers = json_array();
    for (int i = 0; i < d->n_layers; i++)
        json_array_append_new(layers, json_integer(d->layers[i]));
    json_int_t table = (json_int_t)table_bytes(d->n_layers, d->n_experts);
    return json_pack("{s:o, s:i, s:{s:I, s:I}, s:{s:I, s:I}}", "layers", layers, "experts", d->n_experts, "counts",
                     "offset", (json_int_t)0, "bytes", table, "mass", "offset", table, "bytes", table);
}

static json_t *linears_json(const mp_stats_data *d, uint64_t *data_bytes)
{
    json_t *list = json_array();
    uint64_t at = 2 * table_bytes(d->n_layers, d->n_experts);
    for (int i = 0; i < d->n_linears; i++) {
        const mp_stats_linear *l = &d->linears[i];
        json_array_append_new(list, json_pack("{s:s, s:I, s:I, s:I}", "name", l->name, "cols", (json_int_t)l->cols,
                                              "rows", (json_int_t)l->rows, "offset", (json_int_t)at));
        at += linear_bytes(l->cols);
    }
    *data_bytes = at;
    return list;
}

/* format and version first, then the caller's provenance, then the indexes. */
static char *header_text(json_t *provenance, const mp_stats_data *d, uint64_t *data_bytes)
{
    json_t *root = json_pack("{s:s, s:i}", "format", "moepack-stats", "version", MP_STATS_VERSION);
    json_object_update(root, provenance);
    json_decref(provenance);
    json_object_set_new(root, "tokens", json_integer((json_int_t)d->tokens));
    json_object_set_new(root, "routing", routing_json(d));
    json_object_set_new(root, "linears", linears_json(d, data_bytes));
    char *text = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    json_decref(root);
    return text;
}

typedef struct {
    mp_outfile file;
    XXH3_state_t *hash;
} out_file;

static int put(out_file *o, const void *p, uint64_t n, mp_error *err)
{
    XXH3_64bits_update(o->hash, p, (size_t)n);
    return n ? mp_outfile_write(&o->file, p, n, err) : MP_OK;
}

static int put_data(out_file *o, const mp_stats_data *d, mp_error *err)
{
    uint64_t table = table_bytes(d->n_layers, d->n_experts);
    int rc = put(o, d->counts, table, err);
    if (!rc) rc = put(o, d->mass, table, err);
    for (int i = 0; !rc && i < d->n_linears; i++) {
        uint64_t bytes = 4 * (uint64_t)d->linears[i].cols;
        rc = put(o, d->linears[i].mean_sq, bytes, err);
        if (!rc) rc = put(o, zeros, linear_bytes(d->linears[i].cols) - bytes, err);
    }
    return rc;
}

static void fill_prefix(uint8_t *p, uint64_t header_bytes, uint64_t data_bytes, uint64_t header_xxh3,
                        uint64_t data_xxh3)
{
    memset(p, 0, MP_STATS_PREFIX_BYTES);
    memcpy(p, MP_STATS_MAGIC, 8);
    put_u32(p + 8, MP_STATS_VERSION);
    put_u64(p + 16, header_bytes);
    put_u64(p + 24, data_bytes);
    put_u64(p + 32, header_xxh3);
    put_u64(p + 40, data_xxh3);
    put_u64(p + 56, XXH3_64bits(p, 56));
}

/* Header and padding, data, then the prefix (it holds the data's checksum). */
static int write_file(out_file *o, const char *text, const mp_stats_data *d, uint64_t data_bytes, mp_error *err)
{
    uint64_t header_bytes = strlen(text);
    uint64_t pad = align_up(MP_STATS_PREFIX_BYTES + header_bytes, 64) - (MP_STATS_PREFIX_BYTES + header_bytes);
    uint8_t prefix[MP_STATS_PREFIX_BYTES] = {0};
    int rc = mp_outfile_write(&o->file, prefix, sizeof prefix, err);
    XXH3_64bits_reset(o->hash);
    if (!rc) rc = put(o, text, header_bytes, err);
    if (!rc) rc = put(o, zeros, pad, err);
    uint64_t header_xxh3 = XXH3_64bits_digest(o->hash);
    XXH3_64bits_reset(o->hash);
    if (!rc) rc = put_data(o, d, err);
    if (rc)
        return rc;
    fill_prefix(prefix, header_bytes, data_bytes, header_xxh3, XXH3_64bits_digest(o->hash));
    return mp_outfile_pwrite(&o->file, prefix, sizeof prefix, 0, err);
}

int mp_stats_write(const char *path, json_t *header, const mp_stats_data *d, mp_error *err)
{
    uint64_t data_bytes = 0;
    char *text = header_text(header, d, &data_bytes);
    out_file o = {.hash = XXH3_createState()};
    int rc = text && o.hash ? MP_OK : mp_fail(err, MP_EXIT_IO, "%s: out of memory", path);
    if (!rc) rc = mp_outfile_open(&o.file, path, err);
    if (!rc) rc = write_file(&o, text, d, data_bytes, err);
    if (!rc) rc = mp_outfile_commit(&o.file, err);
    mp_outfile_abort(&o.file);
    free(text);
    XXH3_freeState(o.hash);
    return rc;
}

/* ---- reader ---- */

static int field_int(const mp_stats *s, json_t *obj, const char *where, const char *key, int64_t min, int64_t max,
                     int64_t *out, mp_error *err)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return mp_fail(err, MP_EXIT_INPUT, "%s: header field %s%s: expected an integer in [%lld, %lld]", s->path,
                       where, key, (long long)min, (long long)max);
    *out = json_integer_value(v);
    return MP_OK;
}

/* An {"offset", "bytes"} pair that must equal what the layout gives. */
static int field_range(const mp_stats *s, const char *key, uint64_t offset, uint64_t bytes, mp_error *err)
{
    json_t *r = json_object_get(json_object_get(s->header, "routing"), key);
    json_t *o = json_object_get(r, "offset"), *b = json_object_get(r, "bytes");
    if (!json_is_integer(o) || !json_is_integer(b) || (uint64_t)json_integer_value(o) != offset ||
        (uint64_t)json_integer_value(b) != bytes)
        return mp_fail(err, MP_EXIT_INPUT, "%s: header field routing.%s: expected {\"offset\": %llu, \"bytes\": %llu}",
                       s->path, key, (unsigned long long)offset, (unsigned long long)bytes);
    return MP_OK;
}

/* The 64-byte prefix: magic, its own checksum, version, and lengths that add up
 * to the file's size. */
static int read_prefix(mp_stats *s, uint64_t size, uint64_t *header_bytes, uint64_t *header_xxh3, mp_error *err)
{
    uint8_t p[MP_STATS_PREFIX_BYTES];
    if (size < MP_STATS_PREFIX_BYTES)
        return mp_fail(err, MP_EXIT_INPUT, "%s: truncated: %llu bytes, shorter than the %d-byte prefix", s->path,
                       (unsigned long long)size, MP_STATS_PREFIX_BYTES);
    int rc = mp_pread_full(s->fd, p, sizeof p, 0, s->path, err);
    if (rc)
        return rc;
    if (memcmp(p, MP_STATS_MAGIC, 8) != 0)
        return mp_fail(err, MP_EXIT_INPUT, "%s: not a moepack stats file (no %s magic)", s->path, MP_STATS_MAGIC);
    if (get_u64(p + 56) != XXH3_64bits(p, 56))
        return mp_fail(err, MP_EXIT_IO, "%s: prefix checksum mismatch (the file is corrupt)", s->path);
    uint32_t version;
    memcpy(&version, p + 8, 4);
    if (version != MP_STATS_VERSION)
        return mp_fail(err, MP_EXIT_INPUT, "%s: prefix field version: %u, this moepack reads version %d", s->path,
                       version, MP_STATS_VERSION);
    *header_bytes = get_u64(p + 16);
    s->data_bytes = get_u64(p + 24);
    *header_xxh3 = get_u64(p + 32);
    s->data_xxh3 = get_u64(p + 40);
    if (*header_bytes > MAX_HEADER)
        return mp_fail(err, MP_EXIT_INPUT, "%s: prefix field header length: %llu bytes, at most %d", s->path,
                       (unsigned long long)*header_bytes, MAX_HEADER);
    if (s->data_bytes > size)
        return mp_fail(err, MP_EXIT_INPUT, "%s: truncated: %llu bytes, the prefix gives %llu bytes of data", s->path,
                       (unsigned long long)size, (unsigned long long)s->data_bytes);
    s->data_start = align_up(MP_STATS_PREFIX_BYTES + *header_bytes, 64);
    if (s->data_start + s->data_bytes != size)
        return mp_fail(err, MP_EXIT_INPUT, "%s: truncated or extended: %llu bytes, expected %llu (header %llu, "
                       "data %llu)", s->path, (unsigned long long)size,
                       (unsigned long long)(s->data_start + s->data_bytes), (unsigned long long)*header_bytes,
                       (unsigned long long)s->data_bytes);
    return MP_OK;
}

/* The JSON header and its padding, checked against their checksum before parsing. */
static int read_header(mp_stats *s, uint64_t header_bytes, uint64_t header_xxh3, mp_error *err)
{
    uint64_t span = s->data_start - MP_STATS_PREFIX_BYTES;
    char *text = malloc(span + 1);
    if (!text)
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    int rc = mp_pread_full(s->fd, text, span, MP_STATS_PREFIX_BYTES, s->path, err);
    if (!rc && XXH3_64bits(text, span) != header_xxh3)
        rc = mp_fail(err, MP_EXIT_IO, "%s: header checksum mismatch (the file is corrupt)", s->path);
    json_error_t je;
    if (!rc && !(s->header = json_loadb(text, header_bytes, JSON_REJECT_DUPLICATES, &je)))
        rc = mp_fail(err, MP_EXIT_INPUT, "%s: header: %s (line %d)", s->path, je.text, je.line);
    free(text);
    if (!rc && !json_is_object(s->header))
        rc = mp_fail(err, MP_EXIT_INPUT, "%s: header: expected a JSON object", s->path);
    return rc;
}

static int read_layers(mp_stats *s, mp_error *err)
{
    json_t *routing = json_object_get(s->header, "routing");
    json_t *layers = json_object_get(routing, "layers");
    int64_t experts;
    int rc = field_int(s, routing, "routing.", "experts", 1, MAX_EXPERTS, &experts, err);
    if (rc)
        return rc;
    if (!json_is_array(layers) || json_array_size(layers) > MAX_LAYERS)
        return mp_fail(err, MP_EXIT_INPUT, "%s: header field routing.layers: expected an array of layer indices",
                       s->path);
    s->n_experts = (int)experts;
    s->n_layers = (int)json_array_size(layers);
    s->layers = malloc(((size_t)s->n_layers + 1) * sizeof *s->layers);
    if (!s->layers)
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    for (int i = 0; i < s->n_layers; i++) {
        json_t *v = json_array_get(layers, (size_t)i);
        int64_t min = i ? s->layers[i - 1] + 1 : 0;
        if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) >= MAX_LAYERS)
            return mp_fail(err, MP_EXIT_INPUT, "%s: header field routing.layers[%d]: expected an integer in [%lld, %d)",
                           s->path, i, (long long)min, MAX_LAYERS);
        s->layers[i] = (int)json_integer_value(v);
    }
    uint64_t table = table_bytes(s->n_layers, s->n_experts);
    rc = field_range(s, "counts", 0, table, err);
    if (!rc) rc = field_range(s, "mass", table, table, err);
    return rc;
}

/* Every linear entry: a unique name, its width, rows and the offset the layout gives. */
static int read_linears(mp_stats *s, mp_error *err)
{
    json_t *list = json_object_get(s->header, "linears");
    if (!json_is_array(list) || json_array_size(list) > MAX_HEADER / 16)
        return mp_fail(err, MP_EXIT_INPUT, "%s: header field linears: expected an array", s->path);
    s->n_linears = (int)json_array_size(list);
    s->linears = calloc((size_t)s->n_linears + 1, sizeof *s->linears);
    s->names = calloc((size_t)s->n_linears + 1, sizeof *s->names);
    if (!s->linears || !s->names)
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    uint64_t at = 2 * table_bytes(s->n_layers, s->n_experts);
    int rc = MP_OK;
    for (int i = 0; i < s->n_linears && !rc; i++) {
        json_t *e = json_array_get(list, (size_t)i);
        const char *name = json_string_value(json_object_get(e, "name"));
        char where[48];
        int64_t cols = 0, rows = 0, offset = 0;
        snprintf(where, sizeof where, "linears[%d].", i);
        if (!name || !name[0] || strlen(name) > MAX_NAME)
            return mp_fail(err, MP_EXIT_INPUT, "%s: header field %sname: expected a name of 1 to %d bytes", s->path,
                           where, MAX_NAME);
        rc = field_int(s, e, where, "cols", 1, MAX_COLS, &cols, err);
        if (!rc) rc = field_int(s, e, where, "rows", 0, INT64_MAX, &rows, err);
        if (!rc) rc = field_int(s, e, where, "offset", (int64_t)at, (int64_t)at, &offset, err);
        s->linears[i] = (mp_stats_entry){name, cols, (uint64_t)rows, (uint64_t)offset};
        s->names[i] = name;
        at += rc ? 0 : linear_bytes(cols);
    }
    if (!rc && at != s->data_bytes)
        rc = mp_fail(err, MP_EXIT_INPUT, "%s: header field linears: the arrays end at byte %llu of the data, the "
                     "prefix gives %llu", s->path, (unsigned long long)at, (unsigned long long)s->data_bytes);
    return rc;
}

static int index_names(mp_stats *s, mp_error *err)
{
    if (mp_name_index_build(&s->index, s->names, s->n_linears) != 0)
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    for (int i = 0; i < s->n_linears; i++)
        if (mp_name_index_find(&s->index, s->names, s->names[i]) != i)
            return mp_fail(err, MP_EXIT_INPUT, "%s: header field linears[%d].name: \"%s\" appears twice", s->path, i,
                           s->names[i]);
    return MP_OK;
}

/* The routing arrays, with the values a profile can produce: no expert routed
 * more often than there were tokens, finite non-negative mass. */
static int read_routing(mp_stats *s, mp_error *err)
{
    size_t n = (size_t)s->n_layers * (size_t)s->n_experts;
    uint64_t table = table_bytes(s->n_layers, s->n_experts);
    s->counts = malloc(n * sizeof *s->counts + 1);
    s->mass = malloc(n * sizeof *s->mass + 1);
    if (!s->counts || !s->mass)
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    int rc = mp_pread_full(s->fd, s->counts, table, s->data_start, s->path, err);
    if (!rc) rc = mp_pread_full(s->fd, s->mass, table, s->data_start + table, s->path, err);
    for (size_t i = 0; !rc && i < n; i++) {
        int layer = s->layers[i / (size_t)s->n_experts], expert = (int)(i % (size_t)s->n_experts);
        if (s->counts[i] > s->tokens)
            rc = mp_fail(err, MP_EXIT_INPUT, "%s: routing counts: layer %d expert %d routed %llu times, more than "
                         "the %llu tokens", s->path, layer, expert, (unsigned long long)s->counts[i],
                         (unsigned long long)s->tokens);
        else if (!(s->mass[i] >= 0 && s->mass[i] <= 1e300))
            rc = mp_fail(err, MP_EXIT_INPUT, "%s: routing mass: layer %d expert %d has %g, expected a finite "
                         "non-negative sum", s->path, layer, expert, s->mass[i]);
    }
    return rc;
}

/* The header's model identity as far as the file's own counts depend on it. */
static int read_model_counts(const mp_stats *s, int64_t *top_k, mp_error *err)
{
    json_t *model = json_object_get(s->header, "model");
    int64_t experts, layers;
    int rc = field_int(s, model, "model.", "experts", s->n_experts, s->n_experts, &experts, err);
    if (!rc) rc = field_int(s, model, "model.", "top_k", 1, experts, top_k, err);
    if (!rc) rc = field_int(s, model, "model.", "layers", 1, MAX_LAYERS, &layers, err);
    for (int i = 0; !rc && i < s->n_layers; i++)
        if (s->layers[i] >= layers)
            rc = mp_fail(err, MP_EXIT_INPUT, "%s: header field routing.layers[%d]: layer %d, the model (header field "
                         "model.layers) has %lld", s->path, i, s->layers[i], (long long)layers);
    return rc;
}

/* tokens is every position of every chunk: text.n_chunks x text.ctx. */
static int check_tokens(const mp_stats *s, mp_error *err)
{
    json_t *text = json_object_get(s->header, "text");
    int64_t ctx, n_chunks;
    if (!json_is_object(text))
        return mp_fail(err, MP_EXIT_INPUT, "%s: header field text: expected an object", s->path);
    int rc = field_int(s, text, "text.", "ctx", 1, INT64_MAX, &ctx, err);
    if (!rc) rc = field_int(s, text, "text.", "n_chunks", 0, INT64_MAX / ctx, &n_chunks, err);
    if (!rc && s->tokens != (uint64_t)(ctx * n_chunks))
        rc = mp_fail(err, MP_EXIT_INPUT, "%s: header field tokens: %llu, text.n_chunks %lld x text.ctx %lld gives "
                     "%lld", s->path, (unsigned long long)s->tokens, (long long)n_chunks, (long long)ctx,
                     (long long)(ctx * n_chunks));
    return rc;
}

/* Every token is routed to top_k experts of every listed layer. */
static int check_layer_sums(const mp_stats *s, int64_t top_k, mp_error *err)
{
    if (s->tokens > UINT64_MAX / (uint64_t)top_k)
        return mp_fail(err, MP_EXIT_INPUT, "%s: header field tokens: %llu x model.top_k %lld overflows", s->path,
                       (unsigned long long)s->tokens, (long long)top_k);
    uint64_t want = s->tokens * (uint64_t)top_k;
    for (int l = 0; l < s->n_layers; l++) {
        uint64_t sum = 0;
        for (int e = 0; e < s->n_experts; e++)
            sum += s->counts[(size_t)l * s->n_experts + e]; /* each <= tokens: no overflow */
        if (sum != want)
            return mp_fail(err, MP_EXIT_INPUT, "%s: routing counts: layer %d sums to %llu, tokens %llu x model.top_k "
                           "%lld gives %llu", s->path, s->layers[l], (unsigned long long)sum,
                           (unsigned long long)s->tokens, (long long)top_k, (unsigned long long)want);
    }
    return MP_OK;
}

/* A linear's rows: its expert's routing count for layers.L.experts.E.*, else tokens. */
static int check_rows(const mp_stats *s, int i, mp_error *err)
{
    const mp_stats_entry *e = &s->linears[i];
    int layer, expert, end = 0;
    bool routed = sscanf(e->name, "layers.%d.experts.%d.%n", &layer, &expert, &end) == 2 && end > 0;
    uint64_t want = s->tokens;
    if (routed) {
        int row = mp_stats_layer_row(s, layer);
        if (row < 0 || expert < 0 || expert >= s->n_experts)
            return mp_fail(err, MP_EXIT_INPUT, "%s: header field linears[%d].name: \"%s\" names an expert the "
                           "routing (routing.layers, routing.experts) does not have", s->path, i, e->name);
        want = s->counts[(size_t)row * s->n_experts + expert];
    }
    if (e->rows != want)
        return mp_fail(err, MP_EXIT_INPUT, "%s: header field linears[%d].rows: %llu for %s, expected %llu (%s)",
                       s->path, i, (unsigned long long)e->rows, e->name, (unsigned long long)want,
                       routed ? "its routing count" : "tokens");
    return MP_OK;
}

/* The counts against each other: tokens, routing counts, linear rows. */
static int check_counts(const mp_stats *s, mp_error *err)
{
    int64_t top_k = 0;
    int rc = read_model_counts(s, &top_k, err);
    if (!rc) rc = check_tokens(s, err);
    if (!rc) rc = check_layer_sums(s, top_k, err);
    for (int i = 0; !rc && i < s->n_linears; i++)
        rc = check_rows(s, i, err);
    return rc;
}

static int verify_data(const mp_stats *s, mp_error *err)
{
    enum { BUF = 1 << 20 };
    uint8_t *buf = malloc(BUF);
    XXH3_state_t *hash = XXH3_createState();
    int rc = buf && hash ? MP_OK : mp_fail(err, MP_EXIT_IO, "out of memory");
    if (!rc)
        XXH3_64bits_reset(hash);
    for (uint64_t at = 0; !rc && at < s->data_bytes; at += BUF) {
        uint64_t n = s->data_bytes - at < BUF ? s->data_bytes - at : BUF;
        rc = mp_pread_full(s->fd, buf, n, s->data_start + at, s->path, err);
        if (!rc)
            XXH3_64bits_update(hash, buf, (size_t)n);
    }
    if (!rc && XXH3_64bits_digest(hash) != s->data_xxh3)
        rc = mp_fail(err, MP_EXIT_IO, "%s: data checksum mismatch (the file is corrupt)", s->path);
    free(buf);
    XXH3_freeState(hash);
    return rc;
}

static int open_file(mp_stats *s, uint64_t *size, mp_error *err)
{
    s->fd = open(s->path, O_RDONLY | O_CLOEXEC);
    if (s->fd < 0 && errno == ENOENT)
        return mp_fail(err, MP_EXIT_INPUT, "%s: no such file", s->path);
    if (s->fd < 0)
        return mp_fail_errno(err, "%s: cannot open", s->path);
    struct stat st;
    if (fstat(s->fd, &st) != 0 || !S_ISREG(st.st_mode))
        return mp_fail(err, MP_EXIT_INPUT, "%s: not a regular file", s->path);
    *size = (uint64_t)st.st_size;
    return MP_OK;
}

static int check_identity(mp_stats *s, mp_error *err)
{
    const char *format = json_string_value(json_object_get(s->header, "format"));
    int64_t version, tokens = 0;
    if (!format || strcmp(format, "moepack-stats") != 0)
        return mp_fail(err, MP_EXIT_INPUT, "%s: header field format: expected \"moepack-stats\"", s->path);
    int rc = field_int(s, s->header, "", "version", MP_STATS_VERSION, MP_STATS_VERSION, &version, err);
    if (!rc) rc = field_int(s, s->header, "", "tokens", 0, INT64_MAX, &tokens, err);
    if (!rc && !json_is_object(json_object_get(s->header, "model")))
        rc = mp_fail(err, MP_EXIT_INPUT, "%s: header field model: expected the model's identity (an object)", s->path);
    s->tokens = (uint64_t)tokens;
    return rc;
}

int mp_stats_open(mp_stats *s, const char *path, bool verify, mp_error *err)
{
    memset(s, 0, sizeof *s);
    s->fd = -1;
    s->path = mp_strdup(path);
    if (!s->path)
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    uint64_t size = 0, header_bytes = 0, header_xxh3 = 0;
    int rc = open_file(s, &size, err);
    if (!rc) rc = read_prefix(s, size, &header_bytes, &header_xxh3, err);
    if (!rc) rc = read_header(s, header_bytes, header_xxh3, err);
    if (!rc) rc = check_identity(s, err);
    if (!rc) rc = read_layers(s, err);
    if (!rc) rc = read_linears(s, err);
    if (!rc) rc = index_names(s, err);
    if (!rc && verify) rc = verify_data(s, err);
    if (!rc) rc = read_routing(s, err);
    if (!rc) rc = check_counts(s, err);
    if (rc)
        mp_stats_close(s);
    return rc;
}

void mp_stats_close(mp_stats *s)
{
    if (s->fd >= 0)
        close(s->fd);
    json_decref(s->header);
    mp_name_index_free(&s->index);
    free(s->path);
    free(s->layers);
    free(s->counts);
    free(s->mass);
    free(s->linears);
    free(s->names);
    memset(s, 0, sizeof *s);
    s->fd = -1;
}

int mp_stats_find(const mp_stats *s, const char *name)
{
    return mp_name_index_find(&s->index, s->names, name);
}

int mp_stats_read_linear(const mp_stats *s, int i, float *mean_sq, mp_error *err)
{
    if (i < 0 || i >= s->n_linears)
        return mp_fail(err, MP_EXIT_INPUT, "%s: no linear %d (the file has %d)", s->path, i, s->n_linears);
    const mp_stats_entry *e = &s->linears[i];
    return mp_pread_full(s->fd, mean_sq, 4 * (uint64_t)e->cols, s->data_start + e->offset, s->path, err);
}

static int check_identity_against(const mp_stats *s, const mp_stats_model *m, mp_error *err)
{
    json_t *id = json_object_get(s->header, "model");
    const char *arch = json_string_value(json_object_get(id, "architecture"));
    if (!arch || strcmp(arch, m->architecture) != 0)
        return mp_fail(err, MP_EXIT_INPUT, "%s: header field model.architecture: profiled a %s, %s is a %s: the "
                       "statistics must come from the same model", s->path, arch ? arch : "model of unknown "
                       "architecture", m->path, m->architecture);
    const char *keys[] = {"vocab", "hidden", "layers", "experts", "top_k"};
    int want[] = {m->vocab, m->hidden, m->n_layers, m->n_experts, m->top_k};
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
        json_t *v = json_object_get(id, keys[k]);
        if (!json_is_integer(v))
            return mp_fail(err, MP_EXIT_INPUT, "%s: header field model.%s: expected an integer", s->path, keys[k]);
        if (json_integer_value(v) != want[k])
            return mp_fail(err, MP_EXIT_INPUT, "%s: header field model.%s is %lld, %d in %s: the statistics must come "
                           "from the same model", s->path, keys[k], (long long)json_integer_value(v), want[k],
                           m->path);
    }
    return MP_OK;
}

int mp_stats_check_model(const mp_stats *s, const mp_stats_model *m, mp_error *err)
{
    int rc = check_identity_against(s, m, err);
    for (int li = 0; !rc && li < m->n_layers; li++)
        if (m->moe[li] && mp_stats_layer_row(s, li) < 0)
            rc = mp_fail(err, MP_EXIT_INPUT, "%s: header field routing.layers: no routing counts for layer %d, an "
                         "MoE layer of %s", s->path, li, m->path);
    for (int i = 0; !rc && i < m->n_linears; i++) {
        int at = mp_stats_find(s, m->names[i]);
        if (at >= 0 && s->linears[at].cols != m->cols[i])
            rc = mp_fail(err, MP_EXIT_INPUT, "%s: header field linears[%d].cols: %lld for %s, which has %lld input "
                         "channels in %s", s->path, at, (long long)s->linears[at].cols, m->names[i],
                         (long long)m->cols[i], m->path);
    }
    return rc;
}

int mp_stats_layer_row(const mp_stats *s, int layer)
{
    for (int i = 0; i < s->n_layers; i++)
        if (s->layers[i] == layer)
            return i;
    return -1;
}
