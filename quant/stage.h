/* Tensors that calibration has already encoded, waiting for the pack writer: their
 * bytes (exactly as a pack part holds them) in one scratch file beside the pack,
 * and an index by canonical name. Calibration runs layer by layer, the pack is
 * written record by record in tier order; the stage joins the two orders while
 * holding no tensor in memory. */
#ifndef MP_QUANT_STAGE_H
#define MP_QUANT_STAGE_H

#include <stdint.h>

#include "../core/error.h"
#include "../formats/encoding.h"
#include "../formats/pack.h"

typedef struct {
    char name[96];
    mp_encoding enc;
    uint64_t offset, len;
} mp_staged;

typedef struct {
    int fd;
    char *path;
    uint64_t size;
    mp_staged *entries;
    int n, cap;
} mp_stage;

/* Creates the scratch file at path and unlinks it at once: it lives as long as the
 * descriptor, so nothing is left behind however the process ends. */
int mp_stage_open(mp_stage *s, const char *path, mp_error *err);
/* Appends a tensor: its data section, then its tail (scales, zeros). Replaces an
 * earlier entry of the same name. */
int mp_stage_put(mp_stage *s, const char *name, const mp_encoding *enc, const uint8_t *data, uint64_t data_len,
                 const uint8_t *tail, uint64_t tail_len, mp_error *err);
const mp_staged *mp_stage_find(const mp_stage *s, const char *name);
/* Streams a staged tensor's bytes into the pack part being written. */
int mp_stage_copy(const mp_stage *s, const mp_staged *t, mp_pack_writer *w, mp_error *err);
/* Closes (and so frees) the scratch file. */
void mp_stage_close(mp_stage *s);

#endif
