/* One pread per expert record. O_DIRECT keeps cold experts from filling the page
 * cache twice (once there, once in the cache's own buffer), so the memory budget is
 * the real one; where it is refused (tmpfs, EINVAL) reads go through the page cache. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../core/fileio.h"
#include "expert_io.h"

int mp_expert_io_init(mp_expert_io *io, const mp_pack *p, bool page_cache, mp_error *err)
{
    memset(io, 0, sizeof *io);
    io->pack = p;
    io->direct = !page_cache;
    io->tiers = calloc((size_t)p->n_tiers, sizeof *io->tiers);
    if (!io->tiers)
        return mp_fail(err, MP_EXIT_IO, "%s: out of memory", p->dir);
    for (int t = 0; t < p->n_tiers; t++)
        io->tiers[t].fd = io->tiers[t].direct_fd = -1;
    pthread_mutex_init(&io->lock, NULL);
    return MP_OK;
}

void mp_expert_io_free(mp_expert_io *io)
{
    for (int t = 0; io->tiers && t < io->pack->n_tiers; t++) {
        if (io->tiers[t].fd >= 0)
            close(io->tiers[t].fd);
        if (io->tiers[t].direct_fd >= 0)
            close(io->tiers[t].direct_fd);
    }
    if (io->tiers)
        pthread_mutex_destroy(&io->lock);
    free(io->tiers);
    memset(io, 0, sizeof *io);
}

uint64_t mp_io_round(uint64_t n)
{
    return (n + MP_IO_ALIGN - 1) / MP_IO_ALIGN * MP_IO_ALIGN;
}

uint8_t *mp_io_buffer(uint64_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void mp_io_buffer_free(uint8_t *buf, uint64_t bytes)
{
    if (buf)
        munmap(buf, bytes);
}

static void say_refused(mp_expert_io *io, const char *path)
{
    if (!io->refusal_said)
        fprintf(stderr, "moepack: %s: the filesystem refuses O_DIRECT; expert reads go through the page cache\n", path);
    io->refusal_said = true;
}

/* Opens (once) the files of rec's tier; returns the fds to read with. */
static int tier_fds(mp_expert_io *io, int rec, int *fd, int *direct_fd, mp_error *err)
{
    const mp_pack *p = io->pack;
    int t = p->records[rec].tier, rc = MP_OK;
    pthread_mutex_lock(&io->lock);
    mp_tier_files *f = &io->tiers[t];
    if (!f->opened) {
        rc = mp_pack_tier_open(p, rec, &f->fd, err);
        if (rc == MP_OK && io->direct) {
            f->direct_fd = open(p->tiers[t].path, O_RDONLY | O_DIRECT | O_CLOEXEC);
            if (f->direct_fd < 0)
                say_refused(io, p->tiers[t].path);
        }
        f->opened = rc == MP_OK;
    }
    *fd = f->fd;
    *direct_fd = f->direct_off ? -1 : f->direct_fd;
    pthread_mutex_unlock(&io->lock);
    return rc;
}

static int read_failed(mp_expert_io *io, int rec, const char *why, mp_error *err)
{
    char label[160];
    mp_pack_record_label(io->pack, rec, label, sizeof label);
    return mp_fail(err, MP_EXIT_IO, "%s: %s: %s", io->pack->dir, label, why);
}

/* O_DIRECT: the whole aligned span in one call (looping only on partial reads); a
 * short read is fine when it covers the record (the last record ends the file).
 * Returns -2 when the filesystem refuses the aligned read itself (EINVAL). */
static int read_direct(int fd, const mp_pack_record *r, uint8_t *buf, uint64_t *got)
{
    uint64_t want = mp_io_round(r->length);
    *got = 0;
    errno = 0;
    while (*got < want) {
        ssize_t n = pread(fd, buf + *got, want - *got, (off_t)(r->offset + *got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == EINVAL && *got == 0 ? -2 : -1;
        if (n == 0)
            break;
        *got += (uint64_t)n;
    }
    return *got >= r->length ? 0 : -1;
}

int mp_expert_io_read(mp_expert_io *io, int rec, uint8_t *buf, uint64_t *transferred, mp_error *err)
{
    const mp_pack_record *r = &io->pack->records[rec];
    int fd, direct_fd;
    int rc = tier_fds(io, rec, &fd, &direct_fd, err);
    if (rc != MP_OK)
        return rc;
    if (direct_fd >= 0) {
        int d = read_direct(direct_fd, r, buf, transferred);
        if (d == 0)
            return MP_OK;
        if (d == -1) {
            char why[256];
            snprintf(why, sizeof why, "read %llu of its %llu bytes at offset %llu (%s)", (unsigned long long)*transferred,
                     (unsigned long long)r->length, (unsigned long long)r->offset,
                     errno ? strerror(errno) : "the tier file is truncated");
            return read_failed(io, rec, why, err);
        }
        pthread_mutex_lock(&io->lock);
        io->tiers[r->tier].direct_off = true;
        say_refused(io, io->pack->tiers[r->tier].path);
        pthread_mutex_unlock(&io->lock);
    }
    mp_error why = {0};
    *transferred = r->length;
    if (mp_pread_full(fd, buf, r->length, r->offset, io->pack->tiers[r->tier].path, &why) != MP_OK)
        return read_failed(io, rec, why.msg, err);
    return MP_OK;
}
