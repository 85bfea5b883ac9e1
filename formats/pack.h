/* The pack (docs/FORMAT.md): a directory with manifest.json, manifest.xxh3 and tier
 * files of checksummed records. The writer streams records; the reader validates
 * structure on open and checksums on every read. */
#ifndef MP_PACK_H
#define MP_PACK_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "../core/error.h"
#include "../core/name_index.h"
#include "encoding.h"

#define MP_PACK_VERSION 1
#define MP_PACK_HEADER_BYTES 64
#define MP_PACK_TIER0_ALIGN 64
#define MP_PACK_EXPERT_ALIGN 4096
#define MP_PACK_PART_ALIGN 64

/* ---- writer ---- */

typedef struct mp_pack_writer mp_pack_writer;

/* Creates "<path>.tmp-PID/" with n_tiers tier files; tier_zstd[i] selects the zstd
 * codec for tier i's records. The directory is armed for removal on a signal
 * (cleanup.h) until finish or abort; one writer at a time. */
mp_pack_writer *mp_pack_writer_new(const char *path, int n_tiers, const bool *tier_zstd, int zstd_level,
                                   mp_error *err);
int mp_pack_record_begin(mp_pack_writer *w, int tier, int layer, int expert, mp_error *err);
/* A tensor of the current record; its bytes follow through mp_pack_part_write in
 * the encoding's section order, totalling the encoding's layout size. */
int mp_pack_part_begin(mp_pack_writer *w, const char *name, const char *source, int ndim, const int64_t *shape,
                       const mp_encoding *e, mp_error *err);
int mp_pack_part_write(mp_pack_writer *w, const void *bytes, uint64_t len, mp_error *err);
int mp_pack_part_end(mp_pack_writer *w, mp_error *err);
int mp_pack_record_end(mp_pack_writer *w, mp_error *err);
/* Writes the manifest (taking ownership of model, provenance and routing_stats, any
 * of which may be NULL), copies the tokenizer/config files found in copy_from, and
 * renames the pack into place; with replace, an existing pack at path is replaced. */
int mp_pack_writer_finish(mp_pack_writer *w, json_t *model, json_t *provenance, json_t *routing_stats,
                          const char *copy_from, bool replace, mp_error *err);
/* Removes the temporary directory (safe on NULL). */
void mp_pack_writer_abort(mp_pack_writer *w);
/* Bytes written so far to tier files (for progress and summaries). */
uint64_t mp_pack_writer_bytes(const mp_pack_writer *w);
/* The temporary directory being written (side files written beside the records). */
const char *mp_pack_writer_temp_dir(const mp_pack_writer *w);

/* ---- reader ---- */

typedef struct {
    int tensor;
    uint64_t offset, length; /* within the record's raw bytes */
} mp_pack_part;

typedef struct {
    int tier;
    uint64_t offset, length, raw_length, xxh3;
    bool zstd;
    int layer, expert;
    int n_parts;
    mp_pack_part *parts;
} mp_pack_record;

typedef struct {
    const char *name, *source; /* owned by the manifest JSON */
    int ndim;
    int64_t rows, cols; /* a vector [n] is rows 1, cols n */
    mp_encoding enc;
    int record, part;
} mp_pack_tensor;

typedef struct {
    char *path;
    int fd;
    uint64_t bytes;
    int n_records;
    bool zstd;
    bool deferred; /* opened at first need (mp_pack_open_deferred): fd stays -1 */
} mp_pack_tier;

typedef struct {
    char *dir;
    json_t *manifest;
    int n_tiers;
    mp_pack_tier *tiers;
    int n_tensors;
    mp_pack_tensor *tensors;
    const char **names;
    mp_name_index index;
    int n_records;
    mp_pack_record *records;
} mp_pack;

/* True when dir looks like a pack (has manifest.json). */
bool mp_is_pack(const char *dir);
/* Reads and validates the manifest and tier headers (exit 2 for a malformed pack,
 * 3 for a checksum mismatch of the manifest or a tier header). That tensor names
 * belong to the manifest's model is the model layer's check: commands open packs
 * through mp_model_pack_open (model/pack_open.h). */
int mp_pack_open(mp_pack *p, const char *dir, mp_error *err);
/* As mp_pack_open, but the expert tier files (tiers >= 1) are neither opened nor
 * checked: a runtime that pages experts opens them at first need (mp_pack_tier_open),
 * so a missing cold tier is an error naming the record that needed it. */
int mp_pack_open_deferred(mp_pack *p, const char *dir, mp_error *err);
void mp_pack_close(mp_pack *p);
/* Opens the tier file of record rec read-only into *fd (the caller closes it) after
 * checking its size and header against the manifest; failure is exit 3 naming rec. */
int mp_pack_tier_open(const mp_pack *p, int rec, int *fd, mp_error *err);
int mp_pack_find(const mp_pack *p, const char *name);
/* Reads record rec into raw (raw_length bytes): stored bytes, checksum, zstd and the
 * byte-plane inverse. A mismatch is exit 3 naming the record. Every read checks:
 * XXH3 costs a small fraction of the read itself, and a reader that skipped it would
 * compute with corrupt weights. A deferred tier is opened and checked for the read. */
int mp_pack_read_record(const mp_pack *p, int rec, uint8_t *raw, mp_error *err);
/* The second half of mp_pack_read_record, for callers that read the stored bytes
 * (length) themselves: checksum, then zstd and the byte-plane inverse into raw;
 * without zstd the bytes are copied, or left in place when stored == raw. */
int mp_pack_decode_record(const mp_pack *p, int rec, const uint8_t *stored, uint8_t *raw, mp_error *err);
/* Checks that every byte of tier t outside its records and header is zero. */
int mp_pack_check_padding(const mp_pack *p, int t, mp_error *err);
/* "tier-1.bin record 17 (layer 2 expert 5)" for messages. */
void mp_pack_record_label(const mp_pack *p, int rec, char *buf, size_t cap);

/* ---- codec (pack_codec.c) ---- */

/* The byte-plane transform of FORMAT.md on one part's data section, in place
 * (inverse = false: before compression). */
void mp_pack_planes(const mp_encoding *e, uint8_t *data, uint64_t n_elements, bool inverse);

#endif
