/* Writing a GGUF (gguf_writer.h): which tensors go to which file, the files' names, a
 * temporary directory beside the output, streaming each file, renaming into place. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/cleanup.h"
#include "../core/fileio.h"
#include "gguf_internal.h"

#define OUT_BUFFER (4u << 20)

struct mp_gguf_sink {
    gguf_out *out;
    uint64_t written;
};

int mp_gguf_sink_write(mp_gguf_sink *s, const void *bytes, uint64_t len, mp_error *err)
{
    (void)err;
    gguf_out_put(s->out, bytes, len);
    s->written += len;
    return s->out->rc;
}

/* The keys a file carries besides g's own: general.alignment (when g lacks it, and in
 * every split file after the first), and the split keys. */
typedef struct {
    gguf_kv kv[4];
    int n;
} extra_keys;

static void extra_scalar(extra_keys *x, const char *key, mp_gguf_type type, uint32_t v)
{
    gguf_kv *kv = &x->kv[x->n++];
    memset(kv, 0, sizeof *kv);
    kv->key = (char *)key;
    kv->type = type;
    memcpy(kv->scalar, &v, (size_t)mp_gguf_elem_size(type));
}

static void file_keys(const mp_gguf *g, bool split, int index, int n_files, extra_keys *x)
{
    x->n = 0;
    if (!mp_gguf_has(g, "general.alignment") || (split && index > 0))
        extra_scalar(x, "general.alignment", MP_GGUF_U32, MP_GGUF_ALIGNMENT);
    if (split) {
        extra_scalar(x, "split.no", MP_GGUF_U16, (uint32_t)index);
        extra_scalar(x, "split.count", MP_GGUF_U16, (uint32_t)n_files);
        extra_scalar(x, "split.tensors.count", MP_GGUF_I32, (uint32_t)g->n_tensors);
    }
}

/* Bytes of a file's header before its tensor infos: magic, version, the two counts and
 * the key-value pairs (the split keys' values do not change their size). */
static uint64_t header_base_bytes(const mp_gguf *g, bool split, int index)
{
    extra_keys x;
    file_keys(g, split, index, 1, &x);
    gguf_out o = {.fd = -1};
    for (int i = 0; index == 0 && i < g->n_kv; i++)
        gguf_put_kv(&o, &g->kv[i]);
    for (int i = 0; i < x.n; i++)
        gguf_put_kv(&o, &x.kv[i]);
    return 4 + 4 + 8 + 8 + o.total;
}

static uint64_t info_bytes(const gguf_tensor *t)
{
    return 8 + strlen(t->name) + 4 + 8 * (uint64_t)t->n_dims + 4 + 8;
}

static int push_boundary(mp_gguf_files *f, int tensor)
{
    int *grown = realloc(f->first_tensor, (size_t)(f->n_files + 2) * sizeof *grown);
    if (!grown)
        return -1;
    f->first_tensor = grown;
    f->first_tensor[f->n_files++] = tensor;
    return 0;
}

/* Greedy: a file takes tensors while its whole size (header, infos, padded data) stays
 * within split_max; a file always takes at least one tensor. */
static int plan_files(const mp_gguf *g, uint64_t split_max, mp_gguf_files *f, mp_error *err)
{
    bool split = split_max > 0;
    uint64_t header = 0, data = 0;
    for (int t = 0; t < g->n_tensors || f->n_files == 0; t++) {
        uint64_t add_info = t < g->n_tensors ? info_bytes(&g->tensors[t]) : 0;
        uint64_t add_data = t < g->n_tensors ? gguf_padded(g->tensors[t].bytes) : 0;
        bool open_new = f->n_files == 0 ||
                        (split && t > f->first_tensor[f->n_files - 1] &&
                         gguf_padded(header + add_info) + data + add_data > split_max);
        if (open_new) {
            if (push_boundary(f, t) != 0)
                return mp_fail(err, MP_EXIT_IO, "out of memory");
            header = header_base_bytes(g, split, f->n_files - 1);
            data = 0;
        }
        header += add_info;
        data += add_data;
        if (t >= g->n_tensors)
            break;
    }
    f->first_tensor[f->n_files] = g->n_tensors;
    return MP_OK;
}

static char *split_path(const char *out, int index, int n_files)
{
    size_t len = strlen(out);
    if (len > 5 && strcmp(out + len - 5, ".gguf") == 0)
        len -= 5;
    size_t cap = len + 32;
    char *p = malloc(cap);
    if (p)
        snprintf(p, cap, "%.*s-%05d-of-%05d.gguf", (int)len, out, index + 1, n_files);
    return p;
}

static int name_files(const char *out, bool split, mp_gguf_files *f, bool force, mp_error *err)
{
    f->paths = calloc((size_t)f->n_files, sizeof *f->paths);
    f->bytes = calloc((size_t)f->n_files, sizeof *f->bytes);
    if (!f->paths || !f->bytes)
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    for (int i = 0; i < f->n_files; i++) {
        f->paths[i] = split ? split_path(out, i, f->n_files) : mp_strdup(out);
        if (!f->paths[i])
            return mp_fail(err, MP_EXIT_IO, "out of memory");
        struct stat st;
        if (!force && lstat(f->paths[i], &st) == 0)
            return mp_fail(err, MP_EXIT_INPUT, "%s exists (use --force to replace it)", f->paths[i]);
    }
    return MP_OK;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static int write_tensor(const mp_gguf *g, int t, gguf_out *o, mp_gguf_fill_fn fill, void *ctx, mp_error *err)
{
    mp_gguf_sink sink = {.out = o};
    int rc = fill(ctx, t, &sink, err);
    if (rc == MP_OK)
        rc = o->rc;
    if (rc == MP_OK && sink.written != g->tensors[t].bytes)
        return mp_fail(err, MP_EXIT_IO, "GGUF tensor %s: %llu bytes written, %llu expected", g->tensors[t].name,
                       (unsigned long long)sink.written, (unsigned long long)g->tensors[t].bytes);
    if (rc == MP_OK)
        gguf_out_zeros(o, gguf_padded(sink.written) - sink.written);
    return rc ? rc : o->rc;
}

typedef struct {
    const mp_gguf *g;
    const mp_gguf_files *f;
    bool split;
    char *tmp_dir;
    char **tmp_paths;
    uint8_t *buf;
    mp_gguf_fill_fn fill;
    void *ctx;
} write_job;

static int write_file(write_job *j, int i, mp_error *err)
{
    const char *path = j->tmp_paths[i];
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return mp_fail_errno(err, "%s: create", path);
    gguf_out o = {.fd = fd, .path = path, .buf = j->buf, .cap = OUT_BUFFER, .err = err};
    extra_keys x;
    file_keys(j->g, j->split, i, j->f->n_files, &x);
    int t0 = j->f->first_tensor[i], t1 = j->f->first_tensor[i + 1];
    gguf_put_header(&o, j->g, i == 0, x.kv, x.n, t0, t1);
    int rc = o.rc;
    for (int t = t0; t < t1 && rc == MP_OK; t++)
        rc = write_tensor(j->g, t, &o, j->fill, j->ctx, err);
    if (rc == MP_OK)
        rc = gguf_out_flush(&o);
    j->f->bytes[i] = o.total;
    if (close(fd) != 0 && rc == MP_OK)
        rc = mp_fail_errno(err, "%s: close", path);
    return rc;
}

static void remove_temp(write_job *j)
{
    for (int i = 0; j->tmp_paths && i < j->f->n_files; i++)
        if (j->tmp_paths[i])
            unlink(j->tmp_paths[i]);
    if (j->tmp_dir)
        rmdir(j->tmp_dir);
}

static void free_job(write_job *j)
{
    for (int i = 0; j->tmp_paths && i < j->f->n_files; i++)
        free(j->tmp_paths[i]);
    free(j->tmp_paths);
    free(j->tmp_dir);
    free(j->buf);
}

/* The temporary directory "OUT.tmp-PID" holds the files under their final names, so
 * that an interrupt removes exactly them (mp_cleanup_arm, up to its file limit). */
static int make_temp(write_job *j, const char *out, mp_error *err)
{
    j->tmp_dir = mp_temp_name(out);
    j->tmp_paths = calloc((size_t)j->f->n_files, sizeof *j->tmp_paths);
    j->buf = malloc(OUT_BUFFER);
    if (!j->tmp_dir || !j->tmp_paths || !j->buf)
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    if (mkdir(j->tmp_dir, 0755) != 0) {
        int rc = mp_fail_errno(err, "%s: mkdir", j->tmp_dir);
        free(j->tmp_dir);
        j->tmp_dir = NULL;
        return rc;
    }
    const char *names[33] = {0};
    for (int i = 0; i < j->f->n_files; i++) {
        j->tmp_paths[i] = mp_path_join(j->tmp_dir, base_name(j->f->paths[i]));
        if (!j->tmp_paths[i])
            return mp_fail(err, MP_EXIT_IO, "out of memory");
        if (i < 32)
            names[i] = base_name(j->f->paths[i]);
    }
    mp_cleanup_arm(j->tmp_dir, names);
    return MP_OK;
}

/* A split GGUF is whole or absent: when one rename fails, the files already renamed
 * are removed again (the temporaries left go with the temporary directory). */
static int rename_all(write_job *j, mp_error *err)
{
    for (int i = 0; i < j->f->n_files; i++) {
        if (rename(j->tmp_paths[i], j->f->paths[i]) != 0) {
            int rc = mp_fail_errno(err, "%s: rename to %s", j->tmp_paths[i], j->f->paths[i]);
            while (--i >= 0)
                unlink(j->f->paths[i]);
            return rc;
        }
        free(j->tmp_paths[i]);
        j->tmp_paths[i] = NULL;
    }
    return MP_OK;
}

int mp_gguf_write(const mp_gguf *g, const char *out, uint64_t split_max, bool force, mp_gguf_fill_fn fill, void *ctx,
                  mp_gguf_files *files, mp_error *err)
{
    memset(files, 0, sizeof *files);
    write_job j = {.g = g, .f = files, .split = split_max > 0, .fill = fill, .ctx = ctx};
    int rc = plan_files(g, split_max, files, err);
    if (rc == MP_OK)
        rc = name_files(out, j.split, files, force, err);
    if (rc == MP_OK)
        rc = make_temp(&j, out, err);
    for (int i = 0; rc == MP_OK && i < files->n_files; i++)
        rc = write_file(&j, i, err);
    if (rc == MP_OK)
        rc = rename_all(&j, err);
    remove_temp(&j);
    mp_cleanup_arm(NULL, NULL);
    free_job(&j);
    return rc;
}

void mp_gguf_files_free(mp_gguf_files *f)
{
    for (int i = 0; f->paths && i < f->n_files; i++)
        free(f->paths[i]);
    free(f->paths);
    free(f->first_tensor);
    free(f->bytes);
    memset(f, 0, sizeof *f);
}
