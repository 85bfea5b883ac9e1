/* Turns a tensor, given as bands of f32 rows, into its encoding's sections in
 * FORMAT.md order: the data section band by band, then a tail (padding, scales,
 * zeros) once the last band is in. Memory: one band plus the scale sections. */
#ifndef MP_ENCODER_H
#define MP_ENCODER_H

#include "../core/error.h"
#include "../formats/encoding.h"
#include "w4.h"

typedef struct {
    mp_encoding enc;
    int64_t rows, cols;
    mp_enc_layout layout;
    mp_w4_options w4;
    float tensor_amax;    /* fp8 per-tensor scale: set before the first band */
    void *scales;         /* the whole tensor's scales: f32 (fp8) or f16 bits (w4) */
    uint8_t *zero_points; /* w4 asymmetric: one byte per group until packed */
    uint8_t *tail;        /* padding, scales and packed zeros, assembled at the end */
} mp_encoder;

int mp_encoder_init(mp_encoder *x, const mp_encoding *e, int64_t rows, int64_t cols, const mp_w4_options *w4,
                    mp_error *err);
/* Rows per band that suit the encoding (a multiple of 128 for fp8 blocks). */
int64_t mp_encoder_band_rows(const mp_encoder *x);
/* Rows per chunk: a band is split into chunks that threads read and encode while
 * they are in cache (128 rows for fp8 blocks, which share their scales). */
int64_t mp_encoder_chunk_rows(const mp_encoder *x);
/* Bytes of the data section that n_rows rows take. */
uint64_t mp_encoder_data_bytes(const mp_encoder *x, int64_t n_rows);
/* Encodes rows [r0, r1) (given as rows[(r - r0) * cols]) into out, their bytes of the
 * data section; their scales go to the tail. Calls for disjoint rows may run in parallel. */
void mp_encoder_rows(mp_encoder *x, const float *rows, int64_t r0, int64_t r1, uint8_t *out);
/* The bytes that follow the data section (empty for f32/bf16/f16). */
void mp_encoder_tail(mp_encoder *x, const uint8_t **tail, uint64_t *len);
/* Copies the tail after the data section of a whole tensor's raw bytes (layout.total). */
void mp_encoder_finish(mp_encoder *x, uint8_t *raw);
/* Encodes a whole tensor W[rows, cols] held in memory into raw (layout.total bytes). */
void mp_encoder_whole(mp_encoder *x, const float *W, uint8_t *raw);
void mp_encoder_free(mp_encoder *x);

#endif
