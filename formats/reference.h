/* Reference-run files (docs/reference.md): what a run of the original model over
 * a text leaves behind so later packs can be verified without it: the tokens of
 * every chunk and, for every scored position, the log-sum-exp of the logits and
 * either the log-probabilities of the whole vocabulary quantized to 16 bits (the
 * default, as llama.cpp's --kl-divergence-base stores them) or the top-K exactly,
 * zstd-compressed, with a JSON footer. */
#ifndef MP_REFERENCE_H
#define MP_REFERENCE_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <xxhash.h>
#include <zstd.h>

#include "../core/error.h"
#include "../core/fileio.h"

#define MP_REF_MAGIC "MPREF001"
#define MP_REF_END_MAGIC "MPREFEND"
/* Full mode: log-prob = max_lp - q * MP_REF_LP_STEP, q in 0..65535 (16 nats below the top). */
#define MP_REF_LP_RANGE 16.0
#define MP_REF_LP_STEP (MP_REF_LP_RANGE / 65535.0)

/* The scored positions of one chunk: n rows of (lse, ids[k], logprobs[k]) in
 * top-K mode (k > 0), or of (lse, max_lp, q[vocab]) in full mode (k = 0). */
typedef struct {
    int32_t *tokens;   /* ctx tokens as run (BOS applied) */
    float *lse;        /* [n] */
    int32_t *ids;      /* top-K: [n * k], most probable first */
    float *logprobs;   /* top-K: [n * k] */
    float *max_lp;     /* full: [n] the largest log-prob of the row */
    uint16_t *q;       /* full: [n * vocab] */
} mp_ref_chunk;

typedef struct {
    mp_outfile out; /* under a temporary name until finished */
    ZSTD_CCtx *zc;
    XXH3_state_t *hash;
    uint64_t raw_bytes, stored_bytes;
    int ctx, n_scored, k, vocab;
    uint8_t *out_buf;
    size_t out_cap;
} mp_ref_writer;

/* n_scored positions per chunk; k log-probs per position, or k = 0 for all vocab. */
int mp_ref_writer_open(mp_ref_writer *w, const char *path, int ctx, int n_scored, int k, int vocab, mp_error *err);
int mp_ref_writer_chunk(mp_ref_writer *w, const mp_ref_chunk *c, mp_error *err);
/* Adds the payload description to footer (taken over) and renames into place. */
int mp_ref_writer_finish(mp_ref_writer *w, json_t *footer, mp_error *err);
void mp_ref_writer_abort(mp_ref_writer *w);

/* An opened reference file. mp_ref_open checks every footer field against its
 * type, range and the others (docs/reference.md), so ctx, first_scored, n_scored,
 * k, vocab, bos and n_chunks can be trusted; mp_ref_read_chunk checks each chunk's
 * ids against the vocabulary. */
typedef struct {
    char *path;
    FILE *f;
    json_t *footer;
    int ctx, first_scored, n_scored, k, vocab;
    int bos;           /* -1: none */
    size_t frame_left; /* zstd's hint: 0 once the frame is complete */
    int64_t n_chunks, next_chunk;
    uint64_t payload_length, payload_raw, raw_read, stored_read;
    uint64_t payload_xxh3;
    ZSTD_DCtx *zd;
    XXH3_state_t *hash;
    uint8_t *in_buf;
    size_t in_cap, in_pos, in_len;
} mp_ref_reader;

/* Exit 2 when the file is malformed, 3 when it cannot be read. */
int mp_ref_open(mp_ref_reader *r, const char *path, mp_error *err);
/* Reads the next chunk into c (allocated by mp_ref_reader_chunk_alloc) and checks
 * it; the last chunk also checks the payload checksum (exit 3) and its end. */
int mp_ref_read_chunk(mp_ref_reader *r, mp_ref_chunk *c, mp_error *err);
void mp_ref_close(mp_ref_reader *r);
/* A chunk sized for r's records; -1 when out of memory. */
int mp_ref_reader_chunk_alloc(const mp_ref_reader *r, mp_ref_chunk *c);

/* The one check of a reference against the model it is used with: its vocabulary
 * and, unless bos is MP_REF_BOS_UNKNOWN, its BOS id (-1: none). Exit 2, naming the
 * file and the footer field. */
#define MP_REF_BOS_UNKNOWN (-2)
int mp_ref_check_model(const mp_ref_reader *r, int vocab, int bos, mp_error *err);

int mp_ref_chunk_alloc(mp_ref_chunk *c, int ctx, int n_scored, int k, int vocab);
/* Full mode: the quantized log-probs of one row of logits (lse given). */
void mp_ref_quantize_row(const float *logits, int vocab, double lse, float *max_lp, uint16_t *q);
void mp_ref_chunk_free(mp_ref_chunk *c);

#endif
