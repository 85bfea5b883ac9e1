/* Reference-run files (docs/reference.md): what a run of the original model over
 * a text leaves behind so later packs can be verified without it: the tokens of
 * every chunk and, for every scored position, the log-sum-exp of the logits and
 * the top-K log-probabilities, zstd-compressed, with a JSON footer. */
#ifndef MP_REFERENCE_H
#define MP_REFERENCE_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <xxhash.h>
#include <zstd.h>

#include "../core/error.h"

#define MP_REF_MAGIC "MPREF001"
#define MP_REF_END_MAGIC "MPREFEND"

/* The scored positions of one chunk: n rows of (lse, ids[k], logprobs[k]). */
typedef struct {
    int32_t *tokens;   /* ctx tokens as run (BOS applied) */
    float *lse;        /* [n] */
    int32_t *ids;      /* [n * k], most probable first */
    float *logprobs;   /* [n * k] */
} mp_ref_chunk;

typedef struct {
    char *path, *temp;
    FILE *f;
    ZSTD_CCtx *zc;
    XXH3_state_t *hash;
    uint64_t raw_bytes, stored_bytes;
    int ctx, n_scored, k;
    uint8_t *out_buf;
    size_t out_cap;
} mp_ref_writer;

/* n_scored positions per chunk, k log-probs per position. */
int mp_ref_writer_open(mp_ref_writer *w, const char *path, int ctx, int n_scored, int k, mp_error *err);
int mp_ref_writer_chunk(mp_ref_writer *w, const mp_ref_chunk *c, mp_error *err);
/* Adds the payload description to footer (taken over) and renames into place. */
int mp_ref_writer_finish(mp_ref_writer *w, json_t *footer, mp_error *err);
void mp_ref_writer_abort(mp_ref_writer *w);

typedef struct {
    char *path;
    FILE *f;
    json_t *footer;
    int ctx, n_scored, k;
    int64_t n_chunks, next_chunk;
    uint64_t payload_length, payload_raw, raw_read, stored_read;
    uint64_t payload_xxh3;
    ZSTD_DCtx *zd;
    XXH3_state_t *hash;
    uint8_t *in_buf;
    size_t in_cap, in_pos, in_len;
} mp_ref_reader;

int mp_ref_open(mp_ref_reader *r, const char *path, mp_error *err);
/* Reads the next chunk into c (arrays sized for ctx, n_scored and k); the last
 * chunk also checks the payload checksum. */
int mp_ref_read_chunk(mp_ref_reader *r, mp_ref_chunk *c, mp_error *err);
void mp_ref_close(mp_ref_reader *r);

int mp_ref_chunk_alloc(mp_ref_chunk *c, int ctx, int n_scored, int k);
void mp_ref_chunk_free(mp_ref_chunk *c);

#endif
