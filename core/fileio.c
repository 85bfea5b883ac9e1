#include "fileio.h"

#include "cleanup.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define OUTFILE_BUFFER (1u << 16)

int mp_pread_full(int fd, void *dst, uint64_t len, uint64_t off, const char *path, mp_error *err)
{
    char *p = dst;
    while (len > 0) {
        size_t chunk = len > (1u << 30) ? (1u << 30) : (size_t)len;
        ssize_t got = pread(fd, p, chunk, (off_t)off);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return mp_fail_errno(err, "%s: read at byte %llu", path, (unsigned long long)off);
        if (got == 0)
            return mp_fail(err, MP_EXIT_IO, "%s: file ends at byte %llu, expected %llu more bytes",
                           path, (unsigned long long)off, (unsigned long long)len);
        p += got;
        off += (uint64_t)got;
        len -= (uint64_t)got;
    }
    return MP_OK;
}

int mp_write_full(int fd, const void *src, uint64_t len, const char *path, mp_error *err)
{
    const char *p = src;
    while (len > 0) {
        size_t chunk = len > (1u << 30) ? (1u << 30) : (size_t)len;
        ssize_t put = write(fd, p, chunk);
        if (put < 0 && errno == EINTR)
            continue;
        if (put < 0)
            return mp_fail_errno(err, "%s: write", path);
        if (put == 0) /* no progress and no error: retrying could spin forever */
            return mp_fail(err, MP_EXIT_IO, "%s: write: nothing written", path);
        p += put;
        len -= (uint64_t)put;
    }
    return MP_OK;
}

int mp_pwrite_full(int fd, const void *src, uint64_t len, uint64_t off, const char *path, mp_error *err)
{
    const char *p = src;
    while (len > 0) {
        size_t chunk = len > (1u << 30) ? (1u << 30) : (size_t)len;
        ssize_t put = pwrite(fd, p, chunk, (off_t)off);
        if (put < 0 && errno == EINTR)
            continue;
        if (put < 0)
            return mp_fail_errno(err, "%s: write at byte %llu", path, (unsigned long long)off);
        if (put == 0)
            return mp_fail(err, MP_EXIT_IO, "%s: write at byte %llu: nothing written", path, (unsigned long long)off);
        p += put;
        off += (uint64_t)put;
        len -= (uint64_t)put;
    }
    return MP_OK;
}

int mp_read_small_file(const char *path, uint64_t max_bytes, char **out, size_t *len, mp_error *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block us */
    if (fd < 0)
        return errno == ENOENT ? mp_fail(err, MP_EXIT_INPUT, "%s: no such file", path)
                               : mp_fail_errno(err, "%s: open", path);
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return mp_fail(err, MP_EXIT_INPUT, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > max_bytes) {
        close(fd);
        return mp_fail(err, MP_EXIT_INPUT, "%s: %lld bytes, expected at most %llu", path,
                       (long long)st.st_size, (unsigned long long)max_bytes);
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        close(fd);
        return mp_fail(err, MP_EXIT_IO, "%s: out of memory", path);
    }
    int rc = mp_pread_full(fd, buf, (uint64_t)st.st_size, 0, path, err);
    close(fd);
    if (rc != MP_OK) {
        free(buf);
        return rc;
    }
    buf[st.st_size] = '\0';
    *out = buf;
    *len = (size_t)st.st_size;
    return MP_OK;
}

char *mp_temp_name(const char *path)
{
    size_t n = strlen(path) + 32;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s.tmp-%ld", path, (long)getpid());
    return s;
}

char *mp_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

char *mp_path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s/%s", dir, name);
    return s;
}

int mp_lines_appendf(char ***lines, int *n, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    char **grown = realloc(*lines, (size_t)(*n + 1) * sizeof *grown);
    if (!grown)
        return -1;
    *lines = grown;
    if (!(grown[*n] = mp_strdup(line)))
        return -1;
    (*n)++;
    return 0;
}

/* ---- output files ---- */

int mp_outfile_open(mp_outfile *f, const char *path, mp_error *err)
{
    memset(f, 0, sizeof *f);
    f->fd = -1;
    f->path = mp_strdup(path);
    f->temp = mp_temp_name(path);
    f->buf = malloc(OUTFILE_BUFFER);
    if (!f->path || !f->temp || !f->buf) {
        mp_outfile_abort(f);
        return mp_fail(err, MP_EXIT_IO, "%s: out of memory", path);
    }
    f->fd = open(f->temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (f->fd < 0) {
        int rc = mp_fail_errno(err, "%s: create", f->temp);
        free(f->temp); /* not ours: leave whatever is there */
        f->temp = NULL;
        mp_outfile_abort(f);
        return rc;
    }
    mp_cleanup_file(f->temp);
    return MP_OK;
}

static int outfile_flush(mp_outfile *f, mp_error *err)
{
    int rc = mp_write_full(f->fd, f->buf, f->len, f->temp, err);
    f->len = 0;
    return rc;
}

int mp_outfile_write(mp_outfile *f, const void *src, uint64_t len, mp_error *err)
{
    if (f->len + len > OUTFILE_BUFFER) {
        int rc = outfile_flush(f, err);
        if (rc != MP_OK || len >= OUTFILE_BUFFER)
            return rc != MP_OK ? rc : mp_write_full(f->fd, src, len, f->temp, err);
    }
    memcpy(f->buf + f->len, src, (size_t)len);
    f->len += (size_t)len;
    return MP_OK;
}

int mp_outfile_printf(mp_outfile *f, mp_error *err, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof line)
        return mp_fail(err, MP_EXIT_INPUT, "%s: a line longer than %zu bytes", f->path, sizeof line - 1);
    return mp_outfile_write(f, line, (uint64_t)n, err);
}

int mp_outfile_pwrite(mp_outfile *f, const void *src, uint64_t len, uint64_t off, mp_error *err)
{
    int rc = outfile_flush(f, err);
    return rc != MP_OK ? rc : mp_pwrite_full(f->fd, src, len, off, f->temp, err);
}

int mp_outfile_commit(mp_outfile *f, mp_error *err)
{
    int rc = outfile_flush(f, err);
    if (rc == MP_OK && fsync(f->fd) != 0)
        rc = mp_fail_errno(err, "%s: sync", f->temp);
    int fd = f->fd;
    f->fd = -1;
    if (close(fd) != 0 && rc == MP_OK)
        rc = mp_fail_errno(err, "%s: close", f->temp);
    if (rc == MP_OK && rename(f->temp, f->path) != 0)
        rc = mp_fail_errno(err, "%s: rename to %s", f->temp, f->path);
    if (rc == MP_OK) {
        free(f->temp);
        f->temp = NULL; /* renamed: nothing left to remove */
    }
    mp_outfile_abort(f);
    return rc;
}

/* Safe on a zeroed mp_outfile, never opened: its buffer is NULL. */
void mp_outfile_abort(mp_outfile *f)
{
    if (f->buf && f->fd >= 0)
        close(f->fd);
    if (f->temp) {
        unlink(f->temp);
        mp_cleanup_file(NULL);
    }
    free(f->temp);
    free(f->path);
    free(f->buf);
    memset(f, 0, sizeof *f);
    f->fd = -1;
}
