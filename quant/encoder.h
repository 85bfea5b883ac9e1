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
    uint8_t *data;        /* one band's data section */
    uint64_t data_cap;
    void *scales;         /* the whole tensor's scales: f32 (fp8) or f16 bits (w4) */
    uint8_t *zero_points; /* w4 asymmetric: one byte per group until packed */
    uint8_t *tail;        /* padding, scales and packed zeros, assembled at the end */
} mp_encoder;

int mp_encoder_init(mp_encoder *x, const mp_encoding *e, int64_t rows, int64_t cols, const mp_w4_options *w4,
                    mp_error *err);
/* Rows per band that suit the encoding (a multiple of 128 for fp8 blocks). */
int64_t mp_encoder_band_rows(const mp_encoder *x);
/* Encodes rows [r0, r1); *data / *len: the band's bytes of the data section. */
int mp_encoder_band(mp_encoder *x, const float *band, int64_t r0, int64_t r1, const uint8_t **data,
                    uint64_t *len, mp_error *err);
/* The bytes that follow the data section (empty for f32/bf16/f16). */
void mp_encoder_tail(mp_encoder *x, const uint8_t **tail, uint64_t *len);
void mp_encoder_free(mp_encoder *x);

#endif
