/* GGUF metadata and tensor infos in memory, and their serialization (gguf_internal.h).
 * Writing the files is gguf_files.c. */
#include <stdlib.h>
#include <string.h>

#include "../core/fileio.h"
#include "gguf_internal.h"

/* ggml type number -> bytes and values per block (ggml.c type_traits). */
static const struct {
    int type, block_bytes, block_values;
    const char *name;
} known_types[] = {
    {0, 4, 1, "F32"},      {1, 2, 1, "F16"},      {2, 18, 32, "Q4_0"},    {3, 20, 32, "Q4_1"},
    {8, 34, 32, "Q8_0"},   {12, 144, 256, "Q4_K"}, {13, 176, 256, "Q5_K"}, {14, 210, 256, "Q6_K"},
    {20, 18, 32, "IQ4_NL"}, {23, 136, 256, "IQ4_XS"}, {30, 2, 1, "BF16"},
};
enum { N_KNOWN_TYPES = sizeof known_types / sizeof known_types[0] };

static int type_index(int ggml_type)
{
    for (int i = 0; i < N_KNOWN_TYPES; i++)
        if (known_types[i].type == ggml_type)
            return i;
    return -1;
}

int mp_gguf_type_block_bytes(int ggml_type)
{
    int i = type_index(ggml_type);
    return i < 0 ? 0 : known_types[i].block_bytes;
}

int mp_gguf_type_block_values(int ggml_type)
{
    int i = type_index(ggml_type);
    return i < 0 ? 0 : known_types[i].block_values;
}

const char *mp_gguf_type_name(int ggml_type)
{
    int i = type_index(ggml_type);
    return i < 0 ? "?" : known_types[i].name;
}

int mp_gguf_elem_size(mp_gguf_type t)
{
    switch (t) {
    case MP_GGUF_U8:
    case MP_GGUF_I8:
    case MP_GGUF_BOOL:
        return 1;
    case MP_GGUF_U16:
    case MP_GGUF_I16:
        return 2;
    case MP_GGUF_U32:
    case MP_GGUF_I32:
    case MP_GGUF_F32:
        return 4;
    case MP_GGUF_U64:
    case MP_GGUF_I64:
    case MP_GGUF_F64:
        return 8;
    default:
        return 0;
    }
}

mp_gguf *mp_gguf_new(void)
{
    return calloc(1, sizeof(mp_gguf));
}

static void kv_clear(gguf_kv *kv)
{
    free(kv->str);
    free(kv->numbers);
    if (kv->strings)
        for (uint64_t i = 0; i < kv->n; i++)
            free(kv->strings[i]);
    free(kv->strings);
    kv->str = NULL;
    kv->numbers = NULL;
    kv->strings = NULL;
    kv->n = 0;
}

void mp_gguf_free(mp_gguf *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->n_kv; i++) {
        kv_clear(&g->kv[i]);
        free(g->kv[i].key);
    }
    free(g->kv);
    free(g->tensors);
    free(g);
}

static int find_key(const mp_gguf *g, const char *key)
{
    for (int i = 0; i < g->n_kv; i++)
        if (strcmp(g->kv[i].key, key) == 0)
            return i;
    return -1;
}

bool mp_gguf_has(const mp_gguf *g, const char *key)
{
    return find_key(g, key) >= 0;
}

/* The entry for key, emptied of any previous value; NULL when out of memory. */
static gguf_kv *slot(mp_gguf *g, const char *key, mp_gguf_type type)
{
    int i = find_key(g, key);
    if (i < 0) {
        if (g->n_kv == g->cap_kv) {
            int cap = g->cap_kv ? 2 * g->cap_kv : 32;
            gguf_kv *grown = realloc(g->kv, (size_t)cap * sizeof *grown);
            if (!grown)
                return NULL;
            g->kv = grown;
            g->cap_kv = cap;
        }
        char *copy = mp_strdup(key);
        if (!copy)
            return NULL;
        i = g->n_kv++;
        memset(&g->kv[i], 0, sizeof g->kv[i]);
        g->kv[i].key = copy;
    }
    kv_clear(&g->kv[i]);
    g->kv[i].type = type;
    return &g->kv[i];
}

static int set_scalar(mp_gguf *g, const char *key, mp_gguf_type type, const void *v)
{
    gguf_kv *kv = slot(g, key, type);
    if (!kv)
        return -1;
    memcpy(kv->scalar, v, (size_t)mp_gguf_elem_size(type));
    return 0;
}

int mp_gguf_set_u16(mp_gguf *g, const char *key, uint16_t v)
{
    return set_scalar(g, key, MP_GGUF_U16, &v);
}

int mp_gguf_set_u32(mp_gguf *g, const char *key, uint32_t v)
{
    return set_scalar(g, key, MP_GGUF_U32, &v);
}

int mp_gguf_set_i32(mp_gguf *g, const char *key, int32_t v)
{
    return set_scalar(g, key, MP_GGUF_I32, &v);
}

int mp_gguf_set_f32(mp_gguf *g, const char *key, float v)
{
    return set_scalar(g, key, MP_GGUF_F32, &v);
}

int mp_gguf_set_bool(mp_gguf *g, const char *key, bool v)
{
    uint8_t b = v ? 1 : 0;
    return set_scalar(g, key, MP_GGUF_BOOL, &b);
}

int mp_gguf_set_str(mp_gguf *g, const char *key, const char *v)
{
    gguf_kv *kv = slot(g, key, MP_GGUF_STRING);
    if (!kv)
        return -1;
    kv->str = mp_strdup(v);
    return kv->str ? 0 : -1;
}

int mp_gguf_set_arr(mp_gguf *g, const char *key, mp_gguf_type elem, const void *values, uint64_t n)
{
    int size = mp_gguf_elem_size(elem);
    gguf_kv *kv = size ? slot(g, key, MP_GGUF_ARRAY) : NULL;
    if (!kv)
        return -1;
    kv->elem = elem;
    kv->numbers = malloc(n ? n * (uint64_t)size : 1);
    if (!kv->numbers)
        return -1;
    memcpy(kv->numbers, values, n * (uint64_t)size);
    kv->n = n;
    return 0;
}

int mp_gguf_set_arr_str(mp_gguf *g, const char *key, const char *const *values, uint64_t n)
{
    gguf_kv *kv = slot(g, key, MP_GGUF_ARRAY);
    if (!kv)
        return -1;
    kv->elem = MP_GGUF_STRING;
    kv->strings = calloc(n ? n : 1, sizeof *kv->strings);
    if (!kv->strings)
        return -1;
    kv->n = n;
    for (uint64_t i = 0; i < n; i++)
        if (!(kv->strings[i] = mp_strdup(values[i])))
            return -1;
    return 0;
}

static int check_tensor(const mp_gguf *g, const char *name, int n_dims, const int64_t *ne, int type, mp_error *err)
{
    if (strlen(name) >= MP_GGUF_MAX_NAME)
        return mp_fail(err, MP_EXIT_INPUT, "GGUF tensor name \"%s\": %d bytes or more", name, MP_GGUF_MAX_NAME);
    for (int i = 0; i < g->n_tensors; i++)
        if (strcmp(g->tensors[i].name, name) == 0)
            return mp_fail(err, MP_EXIT_INPUT, "GGUF tensor %s: given twice", name);
    if (n_dims < 1 || n_dims > MP_GGUF_MAX_DIMS)
        return mp_fail(err, MP_EXIT_INPUT, "GGUF tensor %s: %d dimensions", name, n_dims);
    if (type_index(type) < 0)
        return mp_fail(err, MP_EXIT_INPUT, "GGUF tensor %s: ggml type %d is not written here", name, type);
    for (int i = 0; i < n_dims; i++)
        if (ne[i] < 1)
            return mp_fail(err, MP_EXIT_INPUT, "GGUF tensor %s: dimension %d is %lld", name, i, (long long)ne[i]);
    if (ne[0] % mp_gguf_type_block_values(type) != 0)
        return mp_fail(err, MP_EXIT_INPUT, "GGUF tensor %s: rows of %lld values are not whole %s blocks", name,
                       (long long)ne[0], mp_gguf_type_name(type));
    return MP_OK;
}

int mp_gguf_add_tensor(mp_gguf *g, const char *name, int n_dims, const int64_t *ne, int ggml_type, mp_error *err)
{
    int rc = check_tensor(g, name, n_dims, ne, ggml_type, err);
    if (rc)
        return rc;
    if (g->n_tensors == g->cap_tensors) {
        int cap = g->cap_tensors ? 2 * g->cap_tensors : 64;
        gguf_tensor *grown = realloc(g->tensors, (size_t)cap * sizeof *grown);
        if (!grown)
            return mp_fail(err, MP_EXIT_IO, "out of memory");
        g->tensors = grown;
        g->cap_tensors = cap;
    }
    gguf_tensor *t = &g->tensors[g->n_tensors++];
    memset(t, 0, sizeof *t);
    strcpy(t->name, name);
    t->n_dims = n_dims;
    t->type = ggml_type;
    uint64_t values = 1;
    for (int i = 0; i < MP_GGUF_MAX_DIMS; i++) {
        t->ne[i] = i < n_dims ? ne[i] : 1;
        values *= (uint64_t)t->ne[i];
    }
    t->bytes = values / (uint64_t)mp_gguf_type_block_values(ggml_type) * (uint64_t)mp_gguf_type_block_bytes(ggml_type);
    return MP_OK;
}

int mp_gguf_tensor_count(const mp_gguf *g)
{
    return g->n_tensors;
}

uint64_t mp_gguf_tensor_bytes(const mp_gguf *g, int tensor)
{
    return g->tensors[tensor].bytes;
}

/* ---- serialization (all integers little-endian, as on every machine we build for) ---- */

void gguf_out_put(gguf_out *o, const void *bytes, uint64_t len)
{
    if (o->rc != MP_OK)
        return;
    o->total += len;
    if (o->fd < 0)
        return;
    if (o->n + len > o->cap) {
        if (gguf_out_flush(o) != MP_OK)
            return;
        if (len > o->cap) {
            o->rc = mp_write_full(o->fd, bytes, len, o->path, o->err);
            return;
        }
    }
    memcpy(o->buf + o->n, bytes, (size_t)len);
    o->n += (size_t)len;
}

void gguf_out_zeros(gguf_out *o, uint64_t len)
{
    static const uint8_t zeros[256];
    while (len > 0) {
        uint64_t chunk = len < sizeof zeros ? len : sizeof zeros;
        gguf_out_put(o, zeros, chunk);
        len -= chunk;
    }
}

int gguf_out_flush(gguf_out *o)
{
    if (o->rc == MP_OK && o->fd >= 0 && o->n > 0) {
        o->rc = mp_write_full(o->fd, o->buf, o->n, o->path, o->err);
        o->n = 0;
    }
    return o->rc;
}

static void put_u32(gguf_out *o, uint32_t v)
{
    gguf_out_put(o, &v, 4);
}

static void put_u64(gguf_out *o, uint64_t v)
{
    gguf_out_put(o, &v, 8);
}

static void put_string(gguf_out *o, const char *s)
{
    uint64_t len = strlen(s);
    put_u64(o, len);
    gguf_out_put(o, s, len);
}

void gguf_put_kv(gguf_out *o, const gguf_kv *kv)
{
    put_string(o, kv->key);
    put_u32(o, (uint32_t)kv->type);
    if (kv->type == MP_GGUF_STRING) {
        put_string(o, kv->str);
    } else if (kv->type == MP_GGUF_ARRAY) {
        put_u32(o, (uint32_t)kv->elem);
        put_u64(o, kv->n);
        if (kv->elem == MP_GGUF_STRING)
            for (uint64_t i = 0; i < kv->n; i++)
                put_string(o, kv->strings[i]);
        else
            gguf_out_put(o, kv->numbers, kv->n * (uint64_t)mp_gguf_elem_size(kv->elem));
    } else {
        gguf_out_put(o, kv->scalar, (uint64_t)mp_gguf_elem_size(kv->type));
    }
}

uint64_t gguf_padded(uint64_t n)
{
    return (n + MP_GGUF_ALIGNMENT - 1) / MP_GGUF_ALIGNMENT * MP_GGUF_ALIGNMENT;
}

void gguf_put_header(gguf_out *o, const mp_gguf *g, bool own_kv, const gguf_kv *extra, int n_extra, int t0, int t1)
{
    gguf_out_put(o, "GGUF", 4);
    put_u32(o, MP_GGUF_VERSION);
    put_u64(o, (uint64_t)(t1 - t0));
    put_u64(o, (uint64_t)((own_kv ? g->n_kv : 0) + n_extra));
    for (int i = 0; own_kv && i < g->n_kv; i++)
        gguf_put_kv(o, &g->kv[i]);
    for (int i = 0; i < n_extra; i++)
        gguf_put_kv(o, &extra[i]);
    uint64_t offset = 0;
    for (int i = t0; i < t1; i++) {
        const gguf_tensor *t = &g->tensors[i];
        put_string(o, t->name);
        put_u32(o, (uint32_t)t->n_dims);
        for (int d = 0; d < t->n_dims; d++)
            put_u64(o, (uint64_t)t->ne[d]);
        put_u32(o, (uint32_t)t->type);
        put_u64(o, offset);
        offset += gguf_padded(t->bytes);
    }
    gguf_out_zeros(o, gguf_padded(o->total) - o->total);
}
