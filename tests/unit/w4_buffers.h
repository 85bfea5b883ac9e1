/* The unit tests' w4 outputs: the arrays a quantizer fills (codes, f16 scales, one
 * zero point per byte) and the tensor they make once assembled as FORMAT.md lays it
 * out, decoded by formats/encoding.c, the pack's own decoder. Include after cmocka.h. */
#ifndef MP_TEST_W4_BUFFERS_H
#define MP_TEST_W4_BUFFERS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../formats/encoding.h"

typedef struct {
    mp_encoding e;
    int64_t rows, cols, G;
    uint8_t *data;
    uint16_t *scales;
    uint8_t *zeros;   /* one per byte, as the quantizers write them */
    float *dequant;   /* what a calibrated quantizer says it decodes to */
    double loss;      /* and the output error it reports */
    bool fell_back;
} w4_out;

static inline w4_out w4_alloc(int group, bool sym, int64_t rows, int64_t cols)
{
    w4_out o = {.e = {.kind = MP_ENC_W4, .group = group, .sym = sym}, .rows = rows, .cols = cols};
    o.G = cols / group;
    o.data = calloc((size_t)(rows * cols / 2), 1);
    o.scales = calloc((size_t)(rows * o.G), sizeof *o.scales);
    o.zeros = calloc((size_t)(rows * o.G), 1);
    o.dequant = calloc((size_t)(rows * cols), sizeof *o.dequant);
    assert_true(o.data && o.scales && o.zeros && o.dequant);
    return o;
}

static inline void w4_free(w4_out *o)
{
    free(o->data);
    free(o->scales);
    free(o->zeros);
    free(o->dequant);
}

/* The encoded tensor (zeros packed two per byte, first low). */
static inline uint8_t *w4_assemble(const w4_out *o)
{
    mp_enc_layout L;
    mp_encoding_layout(&o->e, o->rows, o->cols, &L);
    uint8_t *raw = calloc((size_t)L.total, 1);
    assert_non_null(raw);
    memcpy(raw, o->data, (size_t)L.data_bytes);
    for (uint64_t k = 0; k < L.n_scales; k++) {
        raw[L.scales_offset + 2 * k] = (uint8_t)(o->scales[k] & 0xff);
        raw[L.scales_offset + 2 * k + 1] = (uint8_t)(o->scales[k] >> 8);
        if (!o->e.sym)
            raw[L.zeros_offset + k / 2] |= (uint8_t)(o->zeros[k] << ((k & 1) ? 4 : 0));
    }
    return raw;
}

static inline float *w4_decode(const w4_out *o)
{
    uint8_t *raw = w4_assemble(o);
    float *w = calloc((size_t)(o->rows * o->cols), sizeof *w);
    assert_non_null(w);
    mp_encoding_decode_rows(&o->e, o->rows, o->cols, raw, 0, o->rows, w);
    free(raw);
    return w;
}

static inline int w4_code(const w4_out *o, int64_t r, int64_t c)
{
    uint8_t b = o->data[(r * o->cols + c) / 2];
    return (c & 1) ? b >> 4 : b & 15;
}

#endif
