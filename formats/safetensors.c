/* safetensors single-file reader: parse and validate the header; read tensor bytes. */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/fileio.h"

uint64_t mp_st_nelem(const mp_st_tensor *t)
{
    uint64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= (uint64_t)t->shape[i];
    return n;
}

uint64_t mp_st_nbytes(const mp_st_tensor *t)
{
    return mp_st_nelem(t) * (uint64_t)mp_dtype_bits(t->dtype) / 8;
}

static int read_u64_offset(json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static int parse_shape(const char *path, const char *name, json_t *shape, mp_st_tensor *t,
                       mp_error *err)
{
    if (!json_is_array(shape))
        return mp_fail(err, MP_EXIT_INPUT, "%s: tensor '%s': \"shape\" must be an array of integers",
                       path, name);
    size_t nd = json_array_size(shape);
    if (nd > MP_ST_MAX_DIMS)
        return mp_fail(err, MP_EXIT_INPUT, "%s: tensor '%s': %zu dimensions, at most %d supported",
                       path, name, nd, MP_ST_MAX_DIMS);
    t->ndim = (int)nd;
    uint64_t nelem = 1;
    for (size_t i = 0; i < nd; i++) {
        json_t *d = json_array_get(shape, i);
        if (!json_is_integer(d) || json_integer_value(d) < 0)
            return mp_fail(err, MP_EXIT_INPUT,
                           "%s: tensor '%s': shape[%zu] must be a non-negative integer", path, name, i);
        t->shape[i] = json_integer_value(d);
        uint64_t dim = (uint64_t)t->shape[i];
        if (dim != 0 && nelem > UINT64_MAX / 64 / dim)
            return mp_fail(err, MP_EXIT_INPUT, "%s: tensor '%s': shape overflows 64 bits", path, name);
        nelem *= dim;
    }
    if (nelem * (uint64_t)mp_dtype_bits(t->dtype) % 8 != 0)
        return mp_fail(err, MP_EXIT_INPUT,
                       "%s: tensor '%s': %llu elements of %s do not fill whole bytes", path, name,
                       (unsigned long long)nelem, mp_dtype_name(t->dtype));
    return MP_OK;
}

static int parse_tensor(const char *path, const char *name, json_t *info, mp_st_tensor *t,
                        mp_error *err)
{
    if (!json_is_object(info))
        return mp_fail(err, MP_EXIT_INPUT, "%s: tensor '%s': expected an object with dtype, shape, data_offsets",
                       path, name);
    json_t *dtype = json_object_get(info, "dtype");
    if (!json_is_string(dtype))
        return mp_fail(err, MP_EXIT_INPUT, "%s: tensor '%s': missing string \"dtype\"", path, name);
    if (mp_dtype_from_name(json_string_value(dtype), &t->dtype) != 0)
        return mp_fail(err, MP_EXIT_INPUT, "%s: tensor '%s': unknown dtype \"%s\"", path, name,
                       json_string_value(dtype));
    int rc = parse_shape(path, name, json_object_get(info, "shape"), t, err);
    if (rc != MP_OK)
        return rc;
    json_t *offs = json_object_get(info, "data_offsets");
    if (!json_is_array(offs) || json_array_size(offs) != 2 ||
        read_u64_offset(json_array_get(offs, 0), &t->begin) != 0 ||
        read_u64_offset(json_array_get(offs, 1), &t->end) != 0)
        return mp_fail(err, MP_EXIT_INPUT,
                       "%s: tensor '%s': \"data_offsets\" must be [begin, end] with non-negative integers",
                       path, name);
    if (t->end < t->begin)
        return mp_fail(err, MP_EXIT_INPUT, "%s: tensor '%s': data_offsets end %llu before begin %llu",
                       path, name, (unsigned long long)t->end, (unsigned long long)t->begin);
    if (t->end - t->begin != mp_st_nbytes(t))
        return mp_fail(err, MP_EXIT_INPUT,
                       "%s: tensor '%s': data_offsets span %llu bytes, shape and %s need %llu", path,
                       name, (unsigned long long)(t->end - t->begin), mp_dtype_name(t->dtype),
                       (unsigned long long)mp_st_nbytes(t));
    t->name = mp_strdup(name);
    return t->name ? MP_OK : mp_fail(err, MP_EXIT_IO, "%s: out of memory", path);
}

static int parse_metadata(mp_st_file *f, json_t *meta, mp_error *err)
{
    if (!json_is_object(meta))
        return mp_fail(err, MP_EXIT_INPUT, "%s: \"__metadata__\" must be an object of strings", f->path);
    size_t n = json_object_size(meta);
    f->metadata_keys = calloc(n + 1, sizeof(char *));
    f->metadata_values = calloc(n + 1, sizeof(char *));
    if (!f->metadata_keys || !f->metadata_values)
        return mp_fail(err, MP_EXIT_IO, "%s: out of memory", f->path);
    const char *key;
    json_t *value;
    json_object_foreach(meta, key, value) {
        if (!json_is_string(value))
            return mp_fail(err, MP_EXIT_INPUT, "%s: __metadata__ key '%s': expected a string value",
                           f->path, key);
        f->metadata_keys[f->n_metadata] = mp_strdup(key);
        f->metadata_values[f->n_metadata] = mp_strdup(json_string_value(value));
        f->n_metadata++;
    }
    return MP_OK;
}

static int compare_by_offset(const void *a, const void *b)
{
    const mp_st_tensor *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* The data buffer must be covered exactly: first tensor at 0, each begins where the
 * previous ended, the last ends at the end of the file. */
static int check_layout(mp_st_file *f, mp_error *err)
{
    qsort(f->tensors, (size_t)f->n_tensors, sizeof *f->tensors, compare_by_offset);
    uint64_t expected = 0;
    for (int i = 0; i < f->n_tensors; i++) {
        const mp_st_tensor *t = &f->tensors[i];
        if (t->begin < expected)
            return mp_fail(err, MP_EXIT_INPUT,
                           "%s: tensor '%s': data [%llu, %llu) overlaps '%s' which ends at %llu",
                           f->path, t->name, (unsigned long long)t->begin, (unsigned long long)t->end,
                           f->tensors[i - 1].name, (unsigned long long)expected);
        if (t->begin > expected)
            return mp_fail(err, MP_EXIT_INPUT,
                           "%s: tensor '%s': data begins at %llu, expected %llu (gap in the data buffer)",
                           f->path, t->name, (unsigned long long)t->begin, (unsigned long long)expected);
        expected = t->end;
    }
    uint64_t data_len = f->file_size - f->data_start;
    if (expected != data_len)
        return mp_fail(err, MP_EXIT_INPUT,
                       "%s: tensor data ends at %llu but the data buffer holds %llu bytes (%s)",
                       f->path, (unsigned long long)expected, (unsigned long long)data_len,
                       expected < data_len ? "trailing bytes" : "file truncated");
    return MP_OK;
}

static int parse_header(mp_st_file *f, const char *text, size_t len, mp_error *err)
{
    if (len == 0 || text[0] != '{')
        return mp_fail(err, MP_EXIT_INPUT, "%s: header must be a JSON object starting with '{'", f->path);
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return mp_fail(err, MP_EXIT_INPUT, "%s: header JSON: %s (byte %d)", f->path, jerr.text,
                       jerr.position);
    if (!json_is_object(root)) {
        json_decref(root);
        return mp_fail(err, MP_EXIT_INPUT, "%s: header must be a JSON object", f->path);
    }
    f->tensors = calloc(json_object_size(root) + 1, sizeof *f->tensors);
    if (!f->tensors) {
        json_decref(root);
        return mp_fail(err, MP_EXIT_IO, "%s: out of memory", f->path);
    }
    int rc = MP_OK;
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value) {
        if (strcmp(key, "__metadata__") == 0)
            rc = json_is_null(value) ? MP_OK : parse_metadata(f, value, err);
        else {
            rc = parse_tensor(f->path, key, value, &f->tensors[f->n_tensors], err);
            if (rc == MP_OK)
                f->n_tensors++;
        }
        if (rc != MP_OK)
            break;
    }
    json_decref(root);
    return rc != MP_OK ? rc : check_layout(f, err);
}

static int read_header(mp_st_file *f, mp_error *err)
{
    if (f->file_size < 8)
        return mp_fail(err, MP_EXIT_INPUT, "%s: %llu bytes, too small for a safetensors header",
                       f->path, (unsigned long long)f->file_size);
    unsigned char len_bytes[8];
    int rc = mp_pread_full(f->fd, len_bytes, 8, 0, f->path, err);
    if (rc != MP_OK)
        return rc;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | len_bytes[i];
    if (n > MP_ST_MAX_HEADER)
        return mp_fail(err, MP_EXIT_INPUT, "%s: header length %llu exceeds the 100 MB limit", f->path,
                       (unsigned long long)n);
    if (n > f->file_size - 8)
        return mp_fail(err, MP_EXIT_INPUT, "%s: header length %llu runs past the end of the file (%llu bytes)",
                       f->path, (unsigned long long)n, (unsigned long long)f->file_size);
    f->data_start = 8 + n;
    char *text = malloc(n + 1);
    if (!text)
        return mp_fail(err, MP_EXIT_IO, "%s: out of memory", f->path);
    rc = mp_pread_full(f->fd, text, n, 8, f->path, err);
    if (rc == MP_OK) {
        size_t len = (size_t)n;
        while (len > 0 && text[len - 1] == ' ') /* the writer pads with spaces */
            len--;
        rc = parse_header(f, text, len, err);
    }
    free(text);
    return rc;
}

int mp_st_open(mp_st_file *f, const char *path, mp_error *err)
{
    memset(f, 0, sizeof *f);
    f->fd = -1;
    f->path = mp_strdup(path);
    if (!f->path)
        return mp_fail(err, MP_EXIT_IO, "%s: out of memory", path);
    f->fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block us */
    if (f->fd < 0) {
        int rc = errno == ENOENT ? mp_fail(err, MP_EXIT_INPUT, "%s: no such file", path)
                                 : mp_fail_errno(err, "%s: open", path);
        mp_st_close(f);
        return rc;
    }
    struct stat st;
    if (fstat(f->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        mp_st_close(f);
        return mp_fail(err, MP_EXIT_INPUT, "%s: not a regular file", path);
    }
    f->file_size = (uint64_t)st.st_size;
    int rc = read_header(f, err);
    if (rc != MP_OK)
        mp_st_close(f);
    return rc;
}

void mp_st_close(mp_st_file *f)
{
    if (f->fd >= 0)
        close(f->fd);
    for (int i = 0; i < f->n_tensors; i++)
        free(f->tensors[i].name);
    free(f->tensors);
    for (int i = 0; i < f->n_metadata; i++) {
        free(f->metadata_keys[i]);
        free(f->metadata_values[i]);
    }
    free(f->metadata_keys);
    free(f->metadata_values);
    free(f->path);
    memset(f, 0, sizeof *f);
    f->fd = -1;
}

int mp_st_read(const mp_st_file *f, const mp_st_tensor *t, uint64_t off, uint64_t len, void *dst,
               mp_error *err)
{
    uint64_t size = t->end - t->begin;
    if (off > size || len > size - off)
        return mp_fail(err, MP_EXIT_INPUT, "%s: tensor '%s': read of [%llu, +%llu) outside its %llu bytes",
                       f->path, t->name, (unsigned long long)off, (unsigned long long)len,
                       (unsigned long long)size);
    return mp_pread_full(f->fd, dst, len, f->data_start + t->begin + off, f->path, err);
}

int mp_st_map_range(const mp_st_file *f, const mp_st_tensor *t, uint64_t off, uint64_t len, mp_st_map *map,
                    mp_error *err)
{
    uint64_t size = t->end - t->begin;
    memset(map, 0, sizeof *map);
    if (off > size || len > size - off)
        return mp_fail(err, MP_EXIT_INPUT, "%s: tensor '%s': map of [%llu, +%llu) outside its %llu bytes",
                       f->path, t->name, (unsigned long long)off, (unsigned long long)len,
                       (unsigned long long)size);
    if (len == 0)
        return MP_OK;
    uint64_t start = f->data_start + t->begin + off;
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), aligned = start - start % page;
    map->length = (size_t)(len + (start - aligned));
    map->base = mmap(NULL, map->length, PROT_READ, MAP_PRIVATE | MAP_POPULATE, f->fd, (off_t)aligned);
    if (map->base == MAP_FAILED) {
        map->base = NULL;
        return mp_fail_errno(err, "%s: map tensor '%s'", f->path, t->name);
    }
    map->data = (const uint8_t *)map->base + (start - aligned);
    return MP_OK;
}

void mp_st_unmap(mp_st_map *map)
{
    if (map->base)
        munmap(map->base, map->length);
    memset(map, 0, sizeof *map);
}
