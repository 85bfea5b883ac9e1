/* safetensors streaming writer: tensors are declared first (the header needs every
 * offset), then their bytes are appended in declaration order. */
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/fileio.h"
#include "safetensors.h"

struct mp_st_writer {
    char *path, *tmp_path;
    int fd;
    json_t *header;   /* tensor entries and __metadata__, in declaration order */
    uint64_t *sizes;  /* bytes of each declared tensor */
    int n_tensors, cap_tensors;
    uint64_t data_bytes; /* sum of sizes: the next tensor's offset */
    int current;      /* tensor being written; -1 before the header is out */
    uint64_t written; /* bytes of the current tensor written so far */
};

mp_st_writer *mp_st_writer_new(const char *path)
{
    mp_st_writer *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->fd = -1;
    w->current = -1;
    w->path = mp_strdup(path);
    w->tmp_path = mp_temp_name(path);
    w->header = json_object();
    if (!w->path || !w->tmp_path || !w->header) {
        mp_st_writer_abort(w);
        return NULL;
    }
    return w;
}

int mp_st_writer_metadata(mp_st_writer *w, const char *key, const char *value, mp_error *err)
{
    if (w->current >= 0)
        return mp_fail(err, MP_EXIT_INPUT, "%s: metadata '%s' added after tensor data", w->path, key);
    json_t *meta = json_object_get(w->header, "__metadata__");
    if (!meta) {
        meta = json_object();
        json_object_set_new(w->header, "__metadata__", meta);
    }
    if (json_object_set_new(meta, key, json_string(value)) != 0)
        return mp_fail(err, MP_EXIT_INPUT, "%s: metadata '%s' is not valid UTF-8", w->path, key);
    return MP_OK;
}

static json_t *tensor_entry(mp_dtype dt, int ndim, const int64_t *shape, uint64_t begin, uint64_t end)
{
    json_t *dims = json_array();
    for (int i = 0; i < ndim; i++)
        json_array_append_new(dims, json_integer(shape[i]));
    return json_pack("{s:s, s:o, s:[I,I]}", "dtype", mp_dtype_name(dt), "shape", dims, "data_offsets",
                     (json_int_t)begin, (json_int_t)end);
}

int mp_st_writer_add(mp_st_writer *w, const char *name, mp_dtype dt, int ndim, const int64_t *shape,
                     mp_error *err)
{
    if (w->current >= 0)
        return mp_fail(err, MP_EXIT_INPUT, "%s: tensor '%s' declared after tensor data", w->path, name);
    if (ndim < 0 || ndim > MP_ST_MAX_DIMS || (unsigned)dt >= MP_DT_COUNT || strcmp(name, "__metadata__") == 0)
        return mp_fail(err, MP_EXIT_INPUT, "%s: tensor '%s': invalid name, rank or dtype", w->path, name);
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0)
            return mp_fail(err, MP_EXIT_INPUT, "%s: tensor '%s': negative dimension", w->path, name);
    if (json_object_get(w->header, name))
        return mp_fail(err, MP_EXIT_INPUT, "%s: tensor '%s' declared twice", w->path, name);
    mp_st_tensor t = {.dtype = dt, .ndim = ndim};
    for (int i = 0; i < ndim; i++)
        t.shape[i] = shape[i];
    if (mp_st_nelem(&t) * (uint64_t)mp_dtype_bits(dt) % 8 != 0)
        return mp_fail(err, MP_EXIT_INPUT, "%s: tensor '%s': elements do not fill whole bytes", w->path, name);
    if (w->n_tensors == w->cap_tensors) {
        int cap = w->cap_tensors ? 2 * w->cap_tensors : 64;
        uint64_t *sizes = realloc(w->sizes, (size_t)cap * sizeof *sizes);
        if (!sizes)
            return mp_fail(err, MP_EXIT_IO, "%s: out of memory", w->path);
        w->sizes = sizes;
        w->cap_tensors = cap;
    }
    uint64_t begin = w->data_bytes;
    if (json_object_set_new(w->header, name, tensor_entry(dt, ndim, shape, begin, begin + mp_st_nbytes(&t))) != 0)
        return mp_fail(err, MP_EXIT_INPUT, "%s: tensor name '%s' is not valid UTF-8", w->path, name);
    w->sizes[w->n_tensors++] = mp_st_nbytes(&t);
    w->data_bytes += mp_st_nbytes(&t);
    return MP_OK;
}

/* Header: compact JSON, padded with spaces so the data starts 8-byte aligned. */
static int write_header(mp_st_writer *w, mp_error *err)
{
    w->fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->fd < 0)
        return mp_fail_errno(err, "%s: create", w->tmp_path);
    char *text = json_dumps(w->header, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!text)
        return mp_fail(err, MP_EXIT_IO, "%s: out of memory", w->path);
    size_t len = strlen(text);
    size_t padded = (len + 7) & ~(size_t)7;
    unsigned char prefix[8];
    for (int i = 0; i < 8; i++)
        prefix[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    int rc = mp_write_full(w->fd, prefix, 8, w->tmp_path, err);
    if (rc == MP_OK)
        rc = mp_write_full(w->fd, text, len, w->tmp_path, err);
    if (rc == MP_OK)
        rc = mp_write_full(w->fd, "       ", padded - len, w->tmp_path, err);
    free(text);
    w->current = 0;
    w->written = 0;
    return rc;
}

/* Moves past finished (and empty) tensors. */
static void skip_complete(mp_st_writer *w)
{
    while (w->current < w->n_tensors && w->written == w->sizes[w->current]) {
        w->current++;
        w->written = 0;
    }
}

int mp_st_writer_write(mp_st_writer *w, const void *data, uint64_t len, mp_error *err)
{
    int rc = MP_OK;
    if (w->current < 0 && (rc = write_header(w, err)) != MP_OK)
        return rc;
    skip_complete(w);
    const char *p = data;
    while (len > 0) {
        if (w->current >= w->n_tensors)
            return mp_fail(err, MP_EXIT_INPUT, "%s: more bytes written than the tensors declared", w->path);
        uint64_t room = w->sizes[w->current] - w->written;
        uint64_t n = len < room ? len : room;
        if ((rc = mp_write_full(w->fd, p, n, w->tmp_path, err)) != MP_OK)
            return rc;
        w->written += n;
        p += n;
        len -= n;
        skip_complete(w);
    }
    return MP_OK;
}

static void free_writer(mp_st_writer *w)
{
    if (w->fd >= 0)
        close(w->fd);
    json_decref(w->header);
    free(w->sizes);
    free(w->path);
    free(w->tmp_path);
    free(w);
}

int mp_st_writer_finish(mp_st_writer *w, mp_error *err)
{
    int rc = MP_OK;
    if (w->current < 0)
        rc = write_header(w, err);
    if (rc == MP_OK) {
        skip_complete(w);
        if (w->current < w->n_tensors)
            rc = mp_fail(err, MP_EXIT_INPUT, "%s: tensor %d of %d not completely written", w->path,
                         w->current + 1, w->n_tensors);
    }
    if (close(w->fd) != 0 && rc == MP_OK)
        rc = mp_fail_errno(err, "%s: close", w->tmp_path);
    w->fd = -1;
    if (rc == MP_OK && rename(w->tmp_path, w->path) != 0)
        rc = mp_fail_errno(err, "%s: rename to %s", w->tmp_path, w->path);
    if (rc != MP_OK)
        unlink(w->tmp_path);
    free_writer(w);
    return rc;
}

void mp_st_writer_abort(mp_st_writer *w)
{
    if (!w)
        return;
    if (w->fd >= 0 || w->current >= 0)
        unlink(w->tmp_path);
    free_writer(w);
}
