/* Tensor encodings of the pack (docs/FORMAT.md, "Tensors and encodings"): their
 * byte layout and their decoding. Choosing the codes is the quantizers' job (quant/). */
#ifndef MP_ENCODING_H
#define MP_ENCODING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Q8_0 .. IQ4_XS are llama.cpp's grids (formats/ggml_blocks.h), in this order. */
typedef enum {
    MP_ENC_F32,
    MP_ENC_BF16,
    MP_ENC_F16,
    MP_ENC_FP8,
    MP_ENC_W4,
    MP_ENC_Q8_0,
    MP_ENC_Q4_0,
    MP_ENC_Q4_1,
    MP_ENC_Q4_K,
    MP_ENC_Q5_K,
    MP_ENC_Q6_K,
    MP_ENC_IQ4_NL,
    MP_ENC_IQ4_XS
} mp_enc_kind;
typedef enum { MP_FP8_TENSOR, MP_FP8_CHANNEL, MP_FP8_BLOCK } mp_fp8_scale;

#define MP_FP8_BLOCK_SIZE 128

typedef struct {
    mp_enc_kind kind;
    int group;              /* w4: 32, 64 or 128 */
    bool sym;               /* w4: symmetric (no zeros section) */
    mp_fp8_scale fp8_scale; /* fp8: scale granularity */
    bool nm24;              /* fp8, w4: 2:4 structured sparse (FORMAT.md "2:4 sparse fp8 and w4") */
} mp_encoding;

/* Where each section of an encoded [rows, cols] tensor lies, in bytes. */
typedef struct {
    uint64_t data_bytes;
    uint64_t scales_offset, n_scales, scale_bytes; /* scale_bytes: one scale (4 fp8, 2 w4) */
    uint64_t zeros_offset, zeros_bytes;
    uint64_t meta_offset; /* 2:4: where the position nibbles start (inside the data section) */
    uint64_t total;
    int64_t groups_per_row; /* w4 groups, or grid blocks, per row */
} mp_enc_layout;

void mp_encoding_layout(const mp_encoding *e, int64_t rows, int64_t cols, mp_enc_layout *out);

/* NULL when e can hold a [rows, cols] tensor, else why not (e.g. "cols 2880 is not a
 * multiple of group 128"); the text lives in why[cap]. */
const char *mp_encoding_unfit(const mp_encoding *e, int64_t rows, int64_t cols, char *why, size_t cap);

/* Names: "f32", "bf16", "f16", "fp8" (= "fp8-block"), "fp8-tensor", "fp8-channel",
 * "fp8-block", "w4g32", "w4g64", "w4g128", each w4 optionally with "-sym", each fp8 and
 * w4 name optionally followed by "-2:4" (e.g. "fp8-channel-2:4", "w4g128-sym-2:4"), and
 * the grids "q8_0", "q4_0", "q4_1", "q4_k", "q5_k", "q6_k", "iq4_nl", "iq4_xs".
 * Returns 0, or -1 for an unknown name. */
int mp_encoding_parse(const char *text, mp_encoding *e);
void mp_encoding_format(const mp_encoding *e, char *buf, size_t cap);
/* The manifest spelling of the kind: "f32", "bf16", "f16", "fp8_e4m3", "w4", and the
 * grids by their names above. */
const char *mp_encoding_kind_name(mp_enc_kind k);
/* The manifest's "encoding" string of e: the kind's name, or "fp8_e4m3_2:4" / "w4_2:4". */
const char *mp_encoding_manifest_name(const mp_encoding *e);
const char *mp_fp8_scale_name(mp_fp8_scale s);

/* Decodes rows [r0, r1) of an encoded [rows, cols] tensor held whole in raw into
 * out[(r1 - r0) * cols]. */
void mp_encoding_decode_rows(const mp_encoding *e, int64_t rows, int64_t cols, const uint8_t *raw,
                             int64_t r0, int64_t r1, float *out);

/* ---- 2:4 sparse fp8 and w4 (formats/encoding_nm24.c) ---- */

/* Decodes columns [c0, c1) of row r of a 2:4 tensor (c0, c1 multiples of 4) into
 * out[c1 - c0], with the same f32 values the dense encoding gives. */
void mp_nm24_decode_span(const mp_encoding *e, const mp_enc_layout *L, int64_t cols, const uint8_t *raw, int64_t r,
                         int64_t c0, int64_t c1, float *out);
/* The integer codes of columns [c0, c1) of row r of a w4 2:4 tensor (c0, c1 multiples
 * of 4), minus their group's zero point, 0 where pruned: with the group's scale s the
 * values are s * q, as mp_nm24_decode_span gives them. For integer kernels. */
void mp_nm24_w4_stage(const mp_encoding *e, const mp_enc_layout *L, int64_t cols, const uint8_t *raw, int64_t r,
                      int64_t c0, int64_t c1, int8_t *q);
/* Stores a dense fp8 or w4 tensor (dense_raw in the layout of sparse with nm24 false)
 * whose every group of 4 holds at most 2 nonzero values as the 2:4 encoding sparse, into
 * out[layout total]. Which values are nonzero: those of values[rows * cols] that are not
 * 0 (the pruned f32 weights the codes were made from; their other codes are dropped), or
 * with values NULL the codes that do not decode to zero. Returns 0, or -1 with
 * *bad_group the first row-major group of 4 holding more than 2 nonzero values. */
int mp_nm24_pack(const mp_encoding *sparse, int64_t rows, int64_t cols, const uint8_t *dense_raw, const float *values,
                 uint8_t *out, int64_t *bad_group);
/* The inverse: the dense encoding's bytes (same values; pruned slots hold the zero code). */
void mp_nm24_densify(const mp_encoding *sparse, int64_t rows, int64_t cols, const uint8_t *raw, uint8_t *dense_out);
/* The first row-major group of 4 whose two positions are not strictly increasing, or -1. */
int64_t mp_nm24_bad_positions(const mp_encoding *sparse, int64_t rows, int64_t cols, const uint8_t *raw);

#endif
