/* llama.cpp's quantization grids as pack encodings (docs/FORMAT.md, "llama.cpp grids"):
 * the block byte layouts of ggml-common.h and the values ggml's reference
 * dequantize_row_* functions (ggml-quants.c) give for them, computed with the same f32
 * operations in the same order, so a pack decodes to exactly what llama.cpp decodes.
 *
 * A tensor [rows, cols] is rows x (cols / block) blocks, row-major: a row's blocks
 * follow each other, rows follow each other. This is ggml's own layout for a tensor with
 * ne[0] = cols, ne[1] = rows, so the bytes copy into a GGUF file unchanged. */
#ifndef MP_GGML_BLOCKS_H
#define MP_GGML_BLOCKS_H

#include <stdbool.h>
#include <stdint.h>

#include "encoding.h"

/* The 16 values of iq4_nl and iq4_xs (ggml-common.h kvalues_iq4nl). */
extern const int8_t mp_iq4nl_values[16];

bool mp_ggml_is_grid(mp_enc_kind k);
/* Values per block: 32 (q8_0, q4_0, q4_1, iq4_nl) or 256 (the k-quants, iq4_xs). */
int mp_ggml_block_values(mp_enc_kind k);
/* Bytes per block: 34, 18, 20, 144, 176, 210, 18, 136. */
int mp_ggml_block_bytes(mp_enc_kind k);
/* ggml's type number (GGML_TYPE_*: f32 0, f16 1, q4_0 2, q4_1 3, q8_0 8, q4_K 12, q5_K 13,
 * q6_K 14, iq4_nl 20, iq4_xs 23, bf16 30), or -1 for an encoding GGUF has no type for. */
int mp_ggml_type(mp_enc_kind k);

/* Decodes n_blocks consecutive blocks into out[n_blocks * block values]. */
void mp_ggml_decode_blocks(mp_enc_kind k, const uint8_t *blocks, int64_t n_blocks, float *out);

/* The 6-bit scale and min of sub-block j (0..7) of a q4_K / q5_K block's 12 scale bytes
 * (ggml-quants.c get_scale_min_k4), and the inverse. */
void mp_ggml_k4_scale_min(int j, const uint8_t *scales, uint8_t *sc, uint8_t *m);
void mp_ggml_k4_pack_scales(const uint8_t sc[8], const uint8_t m[8], uint8_t out[12]);

#endif
