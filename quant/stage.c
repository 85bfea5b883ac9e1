#include "stage.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/fileio.h"

int mp_stage_open(mp_stage *s, const char *path, mp_error *err)
{
    memset(s, 0, sizeof *s);
    s->path = strdup(path);
    s->fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (!s->path || s->fd < 0) {
        int rc = mp_fail(err, MP_EXIT_IO, "%s: cannot create the calibration scratch file", path);
        free(s->path);
        s->path = NULL;
        s->fd = -1;
        return rc;
    }
    /* Anonymous from here on: no scratch file outlives the process, even on SIGKILL. */
    unlink(path);
    return MP_OK;
}

static mp_staged *entry_for(mp_stage *s, const char *name)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->entries[i].name, name) == 0)
            return &s->entries[i];
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        mp_staged *grown = realloc(s->entries, (size_t)cap * sizeof *grown);
        if (!grown)
            return NULL;
        s->entries = grown;
        s->cap = cap;
    }
    mp_staged *t = &s->entries[s->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    return t;
}

static int write_at(mp_stage *s, const uint8_t *bytes, uint64_t len, mp_error *err)
{
    while (len > 0) {
        ssize_t got = pwrite(s->fd, bytes, len > (1u << 30) ? (1u << 30) : len, (off_t)s->size);
        if (got <= 0)
            return mp_fail(err, MP_EXIT_IO, "%s: write failed (disk full?)", s->path);
        bytes += got;
        len -= (uint64_t)got;
        s->size += (uint64_t)got;
    }
    return MP_OK;
}

int mp_stage_put(mp_stage *s, const char *name, const mp_encoding *enc, const uint8_t *data, uint64_t data_len,
                 const uint8_t *tail, uint64_t tail_len, mp_error *err)
{
    mp_staged *t = entry_for(s, name);
    if (!t)
        return mp_fail(err, MP_EXIT_IO, "out of memory staging %s", name);
    t->enc = *enc;
    t->offset = s->size;
    t->len = data_len + tail_len;
    int rc = write_at(s, data, data_len, err);
    return rc == MP_OK ? write_at(s, tail, tail_len, err) : rc;
}

const mp_staged *mp_stage_find(const mp_stage *s, const char *name)
{
    for (int i = 0; s && i < s->n; i++)
        if (strcmp(s->entries[i].name, name) == 0)
            return &s->entries[i];
    return NULL;
}

int mp_stage_copy(const mp_stage *s, const mp_staged *t, mp_pack_writer *w, mp_error *err)
{
    const uint64_t chunk = 4u << 20;
    uint8_t *buf = malloc(chunk);
    int rc = buf ? MP_OK : mp_fail(err, MP_EXIT_IO, "out of memory");
    for (uint64_t off = 0; off < t->len && rc == MP_OK; off += chunk) {
        uint64_t len = t->len - off < chunk ? t->len - off : chunk;
        rc = mp_pread_full(s->fd, buf, len, t->offset + off, s->path, err);
        if (rc == MP_OK)
            rc = mp_pack_part_write(w, buf, len, err);
    }
    free(buf);
    return rc;
}

void mp_stage_close(mp_stage *s)
{
    if (s->fd >= 0)
        close(s->fd);
    free(s->path);
    free(s->entries);
    memset(s, 0, sizeof *s);
    s->fd = -1;
}
