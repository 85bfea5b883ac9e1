/* GPTQ (Frantar et al. 2022, "GPTQ: Accurate Post-Training Quantization for Generative
 * Pre-trained Transformers"; IST-DASLab/gptq gptq.py) onto the pack's w4 encoding and
 * llama.cpp's grids (quant/grid.h).
 *
 * Goal: codes Q for W [rows, cols] that minimise tr(dW H dW^T), dW = dequant(Q) - W,
 * where H = sum x x^T over the calibration inputs x of the layer (the scale of H does
 * not matter: 2/n in the paper only rescales the loss). Every row is an independent
 * problem with the same H. GPTQ quantizes the columns one at a time and moves each
 * column's rounding error onto the columns not yet quantized, in the direction the
 * inverse Hessian says costs least (Optimal Brain Surgeon, one column at a time):
 *
 *   H' = H + damp I, damp = opt->damp * mean(diag H)   (diag H == 0: "dead" columns,
 *        set to 1 first, like gptq.py; their weights are quantized normally, NOT zeroed:
 *        a zero input column makes the weight irrelevant to this H, but the same expert
 *        may see other inputs, so the nearest code is the safer choice)
 *   U  = the upper Cholesky factor of H'^-1 (H'^-1 = U^T U), in double, as the inverse of
 *        the Cholesky factor of H' taken in reversed column order (LAPACK dpotrf + dtrtri:
 *        the same U as gptq.py's Cholesky, inverse, Cholesky, in half the flops and
 *        without forming H'^-1; gptq.c, inverse_upper_factor)
 *   for column i = 0 .. cols-1 (act_order: in the order of decreasing diag H):
 *       q = code(w_i) on the column's group grid,  e = (w_i - decode(q)) / U[i,i]
 *       w_j -= e U[i,j] for every later column j
 *
 * The later-column update is done lazily, as in the paper: inside a block of `block`
 * columns the update is applied at once (rank-1, per row), the columns after the block
 * get all of the block's errors in one product W[:, rest] -= E U[block, rest] (sgemm).
 * The result is the same as the column-by-column form up to f32 summation order.
 *
 * Choices:
 *   - Precision: H, damping, the factorization and the loss in double; the
 *     working weights, the errors and U (rounded once to f32) in f32, like the f32
 *     weights they update (gptq.py does the same in f32 on the GPU, and the codes
 *     agree with a float64 implementation on >= 99.5 %: tests/cli/test_gptq_ref.sh).
 *   - Group grids: mp_w4_group_grid of quant/w4.h, so a grid is exactly what RTN / MSE
 *     would choose for those values: opt->mse_grid selects MP_W4_MSE with importance =
 *     diag H of the group's columns (the undamped H given; dead columns weigh 0), else
 *     the RTN rule. Codes by mp_w4_code, decoded values by mp_w4_decode: the pack's
 *     decoder reproduces `dequant` bit for bit.
 *     Without act_order a group's grid is computed when its first column is reached,
 *     from the error-updated weights of the group (gptq.py's find_params at i % g == 0).
 *     The block is rounded up to a multiple of the group so that all of a group's
 *     columns are up to date then (gptq.py with blocksize < groupsize reads columns
 *     past the block that have not received the block's updates yet).
 *     With act_order the grids are static (gptq.py's static_groups): all computed up
 *     front from the original W, group j = columns j g .. j g + g - 1 in natural order;
 *     columns are then visited in the order of decreasing diag H (ties: lower index
 *     first), so the stored layout is the ordinary one and the pack format is unchanged.
 *   - Cholesky failure (H' not positive definite in floating point, e.g. an indefinite
 *     H from a bad accumulation): the relative damping is doubled and the factorization
 *     retried, up to 10 times (0.01 -> 10.24 x mean diag H; a large damping makes GPTQ
 *     tend to plain rounding, a graceful degradation; GPTQModel steps by +0.0015, which
 *     only helps with rounding-level failures, and a double-precision factorization
 *     with 1 % damping has none). When every attempt fails, or H holds a NaN or inf,
 *     the tensor falls back to plain rounding on the same grids (mp_w4_quantize_rows,
 *     RTN or MSE as opt->mse_grid, importance diag H): *fell_back is set and the return
 *     is still MP_OK (GPTQModel also falls back to RTN for such modules).
 *   - Non-finite weights get the codes w4 gives them, and their error is not propagated
 *     (it would turn the rest of the row into NaN).
 *   - Parallelism: rows in fixed blocks of 64, one OpenMP task each (after the single
 *     shared U); the blocks never depend on the thread count, so the bytes are identical
 *     at any OMP thread count. cblas_sgemm / dtrmm are called inside the OpenMP region:
 *     OpenBLAS should be single-threaded (mp_linalg_init), as everywhere in moepack.
 *   - Memory: a permuted f32 copy of W, one cols x cols double matrix (H', then U, then
 *     converted in place to f32 and shrunk), and per-thread buffers of 64 rows (for
 *     `loss`: 2 x 64 x cols doubles per thread, after the others are freed).
 *
 * Cost: 2/3 cols^3 flops for U (one LAPACK call sequence, as parallel as OpenBLAS is:
 * single-threaded in moepack), then rows cols^2 / 2 multiply-adds for the updates (f32,
 * mostly sgemm) and as many again (f64, dtrmm) for `loss`, both parallel over rows.
 * Measured on one core (Xeon, AVX-512) for 4096 x 4096: U 1.0 s, updates 1.7 s, loss
 * 1.3 s. Pass loss = NULL when it is not needed. */
#ifndef MP_QUANT_GPTQ_H
#define MP_QUANT_GPTQ_H

#include <stdbool.h>
#include <stdint.h>

#include "../core/error.h"
#include "../formats/encoding.h"

typedef struct {
    double damp;    /* dampening added to diag H, relative to mean(diag H); 0 -> 0.01 */
    int block;      /* columns per lazy-batch block; 0 -> 128; rounded up to a multiple of the group */
    bool act_order; /* columns in order of decreasing diag H; group grids then static */
    bool mse_grid;  /* group grids by the MSE search of w4 (importance = diag H of the group's columns), else the RTN rule */
} mp_gptq_options;

/* Grids (q8_0 ... iq4_xs): a "group" is the grid's block (32 or 256 columns). When a
 * block's first column is reached, the whole block's grid is fitted (mp_grid_fit, with
 * the MSE search when opt->mse_grid, importance diag H) from the error-updated weights:
 * for the k-quants that chooses the super-block scales and every sub-block's integer
 * scale and min at once; then each column is coded on it with error compensation. The
 * lazy-batch block is rounded up to a multiple of 256 for the super-block grids. `data`
 * then receives the blocks' bytes (rows x cols / block blocks), scales and zeros are
 * unused (NULL).
 *
 * Quantizes W [rows, cols] (row-major f32) to the w4 encoding e (e->kind == MP_ENC_W4, group e->group, e->sym)
 * minimising tr(dW H dW^T), H [cols, cols] = sum over calibration rows of x x^T (double, symmetric, unscaled; not modified).
 * Writes the same arrays as mp_w4_quantize_rows for all rows: data (rows*cols/2 bytes, FORMAT nibble order:
 * element 2k low nibble, 2k+1 high), scales[rows * G] f16 bits, zeros[rows * G] one zero point per byte (asym only; NULL when sym),
 * G = cols / e->group. dequant (optional, [rows, cols]) receives the decoded weights.
 * *loss (optional) receives tr(dW H dW^T) of the result (dW = decoded - W), in double.
 * *fell_back (optional) is set to true when H could not be factorized even with the largest damping and the
 * tensor was quantized by plain rounding on the same grids instead (see above), else false.
 * opt NULL means all defaults.
 * Returns MP_OK; MP_EXIT_INPUT with err set when e is not w4 or a grid, or cols is not a multiple of the group;
 * MP_EXIT_IO with err set when out of memory. */
int mp_gptq_quantize(const mp_encoding *e, int64_t rows, int64_t cols, const float *W, const double *H,
                     const mp_gptq_options *opt, uint8_t *data, uint16_t *scales, uint8_t *zeros, float *dequant,
                     double *loss, bool *fell_back, mp_error *err);

/* For SparseGPT (quant/nm_sparse.c), which shares the factorization: U, the upper
 * Cholesky factor of (H + damp)^-1 in natural column order, as f32 [cols, cols] (malloc'd,
 * the caller frees), with the same damping, dead-column handling and retries as
 * mp_gptq_quantize (rel_damp <= 0 -> 0.01). NULL with *failed false when out of memory,
 * NULL with *failed true when H could not be factorized. */
float *mp_gptq_inverse_factor(const double *H, int64_t cols, double rel_damp, bool *failed);

#endif
