/* Quantizers onto llama.cpp's grids (formats/ggml_blocks.h): q8_0, q4_0, q4_1, q4_k,
 * q5_k, q6_k, iq4_nl, iq4_xs.
 *
 * A block (32 or 256 values) is cut into sub-blocks (the whole block for the 32-value
 * grids, 32 values for q4_k, q5_k and iq4_xs, 16 for q6_k). Code q of sub-block s decodes
 * to
 *      value = mult[s] * level(q) - off[s]
 * with mult and off the f32 numbers ggml's dequantization computes from the stored
 * scales (q4_k: mult = d * sc, off = dmin * m; q6_k: mult = d * sc; iq4_xs: mult =
 * d * (ls - 32); q4_1: off = -m), and level(q) = q - 128 (q8_0), q - 8 (q4_0), q - 32
 * (q6_k), q (q4_1, q4_k, q5_k) or the iq4_nl table entry q. So mp_grid_value equals the
 * pack's decoded value bit for bit.
 *
 * Fitting a block (mp_grid_fit, method RTN, MSE or HQQ) has three steps:
 *   1. per sub-block, a real (mult, off): the RTN rule (symmetric grids: the value of
 *      largest magnitude goes to the most negative level, like Q4_0; affine grids: min
 *      and max, the k-quants' min clamped to <= 0); with HQQ, HQQ's half-quadratic
 *      iterations from there (quant/hqq.h: lp shrink of the residual in steps of the RTN
 *      scale, least-squares refit of (mult, off) for fixed codes, p 0.7, beta 10 x 1.01,
 *      20 steps, stop when the lp error rises); with MSE (`search` below), the best of
 *      candidate ranges (the RTN range shrunk by p = 1.0, 0.98, ... 0.70 and, for affine
 *      grids, its lower end moved), each followed by a weighted least-squares refit of
 *      (mult, off) for its codes: the candidate with the least weighted error
 *          E = sum_i importance_i (value_i - x_i)^2
 *      wins (importance 1 when NULL);
 *   2. the stored numbers: f16 scales (32-value grids), or for the super-block grids the
 *      f16 super-scales d (and dmin) from the largest sub-block scale and integer
 *      sub-block scales (6-bit for q4_k/q5_k/iq4_xs, int8 for q6_k) by rounding;
 *   3. with `search`, the super-scale tried at 0.94 ... 1.06 times its value and each
 *      sub-block's integer scale (and min) moved by +-1 around its rounding, keeping the
 *      least E. The codes are then the nearest levels under the stored numbers.
 * With MSE or HQQ the block is also fitted by RTN and the fit with the smaller error once
 * stored wins (E for MSE, HQQ's lp error for HQQ): never worse than RTN by its method's
 * own measure.
 * Non-finite values get the code of level 0 (or the lowest level) and are ignored by
 * the fits. Every function is per block: rows and blocks are independent, so results
 * are identical at any thread count. */
#ifndef MP_QUANT_GRID_H
#define MP_QUANT_GRID_H

#include <stdbool.h>
#include <stdint.h>

#include "../formats/encoding.h"
#include "w4.h"

enum { MP_GRID_MAX_SUB = 16 };

typedef struct {
    mp_enc_kind kind;
    int n_sub, sub;                     /* sub-blocks and values per sub-block */
    float mult[MP_GRID_MAX_SUB], off[MP_GRID_MAX_SUB];
    uint16_t d, dmin;                   /* f16 bits: the scale(s) stored once per block (q4_1: d, m) */
    int sc[MP_GRID_MAX_SUB], mn[MP_GRID_MAX_SUB]; /* stored sub-block scales and mins */
} mp_grid_block;

/* Fits the grid of one block x[block values] (importance: one weight >= 0 per value, or
 * NULL for 1). */
void mp_grid_fit(mp_enc_kind k, const float *x, const float *importance, mp_w4_method method, mp_grid_block *b);
/* The code of value i of the block for x, and the value a code decodes to. */
uint8_t mp_grid_code(const mp_grid_block *b, int i, float x);
float mp_grid_value(const mp_grid_block *b, int i, uint8_t q);
/* The block's bytes (ggml's layout) from its grid and codes[block values]. */
void mp_grid_pack(const mp_grid_block *b, const uint8_t *codes, uint8_t *out);

/* Quantizes rows [0, n_rows) of band (n_rows x cols, cols a multiple of the block)
 * into out (whole blocks, row-major); importance: one weight per column or NULL. */
void mp_grid_quantize_rows(mp_enc_kind k, int64_t n_rows, int64_t cols, const float *band, const float *importance,
                           mp_w4_method method, uint8_t *out);

#endif
