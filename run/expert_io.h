/* Reads of routed-expert records for the expert cache (internal to run/): tier files
 * opened at first need, O_DIRECT with 4 KiB-aligned buffers and lengths, falling
 * back to ordinary reads where the filesystem refuses O_DIRECT. */
#ifndef MP_EXPERT_IO_H
#define MP_EXPERT_IO_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "../formats/pack.h"

#define MP_IO_ALIGN 4096

typedef struct {
    int fd, direct_fd; /* -1 until opened; direct_fd stays -1 where O_DIRECT is refused */
    bool opened, direct_off; /* direct_off: the filesystem refused an aligned read */
} mp_tier_files;

typedef struct {
    const mp_pack *pack;
    bool direct;      /* O_DIRECT wanted (no page cache) */
    bool refusal_said; /* the fallback is said once per cache */
    mp_tier_files *tiers;
    pthread_mutex_t lock; /* guards opening and the fallback */
} mp_expert_io;

int mp_expert_io_init(mp_expert_io *io, const mp_pack *p, bool page_cache, mp_error *err);
void mp_expert_io_free(mp_expert_io *io);
uint64_t mp_io_round(uint64_t n);
/* A zeroed, page-aligned buffer of bytes (a multiple of 4096) from the OS, so that
 * freeing it gives the memory back; NULL when out of memory. */
uint8_t *mp_io_buffer(uint64_t bytes);
void mp_io_buffer_free(uint8_t *buf, uint64_t bytes);
/* Reads record rec's stored bytes (length) into buf (aligned, mp_io_round(length)
 * bytes); *transferred is what the read moved. Exit 3 naming the record on failure. */
int mp_expert_io_read(mp_expert_io *io, int rec, uint8_t *buf, uint64_t *transferred, mp_error *err);

#endif
