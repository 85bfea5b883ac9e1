/* 2:4 structured pruning of a linear layer's weights W [rows, cols] (rows = outputs):
 * in every group of 4 consecutive input columns of a row, 2 weights are set to zero,
 * so the layer can be stored in the 2:4 sparse encodings (docs/FORMAT.md, "2:4 sparse
 * fp8 and w4"). Two ways of choosing which 2:
 *
 * Wanda (Sun et al. 2023, "A Simple and Effective Pruning Approach for Large Language
 *   Models"; llm-compressor's wanda_sparsify.py): keep the 2 of each 4 with the largest
 *   |W_ij| · ||x_j||_2, ||x_j||_2 = sqrt(H_jj) the norm of input channel j over the
 *   calibration rows (H = sum x x^T, quant/hessian.h). No weight is changed otherwise.
 *   Ties keep the lower column.
 *
 * SparseGPT (Frantar & Alistarh 2023, "SparseGPT: Massive Language Models Can Be
 *   Accurately Pruned in One-Shot"; IST-DASLab/sparsegpt sparsegpt.py, llm-compressor's
 *   sgpt_sparsify.py): GPTQ's column sweep (quant/gptq.h, whose factorization U of
 *   (H + damp)^-1 it shares: mp_gptq_inverse_factor) where, when the sweep reaches the
 *   first column c of a group of 4, the 2 of w_c..w_c+3 (as updated so far) with the
 *   smallest w_k^2 / U_kk^2 are pruned (ties: the higher column is pruned); each column's
 *   value q (0 when pruned, else w itself, or with joint quantization its value on the
 *   w4 group grid) leaves the error e = (w - q) / U_cc, which the later columns absorb:
 *   w_j -= e U_cj. Lazy batches of `block` columns as GPTQ (a multiple of 4 and of the
 *   w4 group). Joint quantization (SparseGPT section 3.5): the w4 group grid is fitted
 *   when the sweep reaches a group's first column, from the group's updated weights
 *   (GPTQ's rule, quant/w4.h mp_w4_group_grid, RTN), pruned values then code to the
 *   zero point and decode to exactly 0.
 *   Numerics and determinism as GPTQ: U in f32, working weights f32, rows in fixed
 *   blocks of 64 (byte-identical at any thread count). When H cannot be factorized even
 *   with the largest damping, the layer falls back to Wanda's mask (*fell_back).
 */
#ifndef MP_QUANT_NM_SPARSE_H
#define MP_QUANT_NM_SPARSE_H

#include <stdbool.h>
#include <stdint.h>

#include "../core/error.h"
#include "../formats/encoding.h"

typedef enum { MP_NM_WANDA, MP_NM_SPARSEGPT } mp_nm_method;

/* "wanda", "sparsegpt" -> 0 and *m; else -1. */
int mp_nm_method_parse(const char *text, mp_nm_method *m);
const char *mp_nm_method_name(mp_nm_method m);

/* Wanda 2:4 on W [rows, cols] (cols a multiple of 4), in place: the pruned weights
 * become 0. Only diag H is read; H NULL: every norm 1 (magnitude pruning). */
void mp_nm_wanda(int64_t rows, int64_t cols, float *W, const double *H);

typedef struct {
    double damp;          /* relative to mean diag H; 0 -> 0.01 */
    int block;            /* lazy-batch columns; 0 -> 128 */
    const mp_encoding *w4; /* joint quantization onto this w4 encoding (nm24 ignored), or NULL */
} mp_sparsegpt_options;

/* SparseGPT 2:4 on W [rows, cols] in place: W receives the result (pruned values 0; with
 * opt->w4 every value is its decoded w4 value). With opt->w4, data / scales / zeros
 * receive the dense w4 arrays as mp_gptq_quantize writes them (zeros NULL when sym),
 * ready for mp_nm24_pack; otherwise they may be NULL. *fell_back (optional): H could
 * not be factorized and Wanda chose the mask (then with opt->w4 the pruned W is rounded
 * to nearest on its groups). Returns MP_OK, MP_EXIT_INPUT for a shape that does not fit,
 * MP_EXIT_IO when out of memory. */
int mp_nm_sparsegpt(int64_t rows, int64_t cols, float *W, const double *H, const mp_sparsegpt_options *opt,
                    uint8_t *data, uint16_t *scales, uint8_t *zeros, bool *fell_back, mp_error *err);

#endif
