/* AWQ, activation-aware weight quantization (Lin et al. 2023; AutoAWQ quantizer.py),
 * on the pack's w4 grids (quant/w4.h).
 *
 * The math. A linear y = W x (W [rows, cols]) is quantized to Q(W). Over the calibration
 * inputs x_t its output error is
 *     sum_t |(Q(W) - W) x_t|^2 = tr(dW H dW^T),   H = sum_t x_t x_t^T  ([cols, cols]).
 * AWQ scales input channel c by s_c > 0: y = (W diag(s)) (diag(1/s) x), and the
 * 1 / s is folded into whatever produces x (the norm weight before q/k/v, the previous
 * linear before down_proj), so the float model is unchanged. Only W diag(s) is
 * quantized, and the error on the original outputs becomes
 *     tr(dW' H' dW'^T),  dW' = Q(W diag(s)) - W diag(s),  H' = diag(1/s) H diag(1/s),
 * which is what mp_awq_loss measures. Scaling a salient channel (large |x_c|) up gives
 * its weights a finer share of the group's grid, at the cost of the others' resolution.
 * AutoAWQ searches s_c = mean|x_c|^r over r = k / n (k = 0 .. n-1, n = 20) and keeps the
 * r with the least output error; r = 0 is plain RTN. The caller loops over the
 * candidates, sums mp_awq_loss over every linear that reads the same x (q, k and v; or
 * gate and up of all experts, each with its own routed-token H when they differ), takes
 * the least, folds 1 / s, and quantizes W diag(s) against H' with mp_awq_quantize.
 *
 * Conventions shared by the functions below:
 *   - W diag(s) is formed as the f32 product W[r][c] * s[c]; the caller should form it
 *     the same way so that mp_awq_loss measures the grids mp_awq_quantize then builds.
 *   - H is row-major double [cols, cols], symmetric (only used as given, not symmetrised).
 *   - Grids are the pack's w4 RTN grids (mp_w4_group_grid, MP_W4_RTN), codes mp_w4_code,
 *     decoded values mp_w4_decode: exactly what formats/encoding.c decodes.
 *   - Losses are accumulated in double. Rows run in fixed blocks of 32, one OpenMP task
 *     each; a block's quadratic forms are one cblas_dgemm (E H, E its error rows), and
 *     the rows' losses are summed in row order, so every result is byte-identical at any
 *     OpenMP thread count. OpenBLAS should be single-threaded (mp_linalg_init), as
 *     everywhere in moepack, since it is called inside the OpenMP tasks.
 *   - Cost: mp_awq_loss ~ rows cols^2 multiply-adds (one dgemm), plus the RTN grids;
 *     mp_awq_quantize as much again with clip (two full forms) plus 21 grids and
 *     21 g-long forms per group. Measured single-threaded, 768 x 2048, g128: loss 0.21 s,
 *     quantize 0.22 s without clip, 1.2 s with clip. Scratch: ~3 x 32 x cols doubles
 *     per thread.
 *   - cols must be a multiple of e->group (mp_encoding_unfit); e->kind is MP_ENC_W4.
 *   - Out of memory: the loss functions return NaN (outputs then unspecified). */
#ifndef MP_QUANT_AWQ_H
#define MP_QUANT_AWQ_H

#include <stdbool.h>
#include <stdint.h>

#include "../formats/encoding.h"

/* AutoAWQ's grid size: ratios 0, 0.05, ... 0.95. */
#define MP_AWQ_CANDIDATES 20

/* Candidate k of n (ratio r = k / n): s_c = max(mean_abs_c^r, 1e-4) (AutoAWQ's floor),
 * then every s_c divided by sqrt(max s * min s) (AutoAWQ), computed in double and stored
 * as float. A zero, negative or non-finite mean_abs_c (a channel never seen active, or
 * broken statistics) gets the raw value 1 instead, and that 1 takes part in the max / min
 * like any other channel: its weights are then neither favoured nor starved, and its
 * H' row is zero (dead channel) or meaningless anyway. k <= 0 (or n <= 0) gives s = 1
 * exactly, the RTN baseline. */
void mp_awq_candidate(const float *mean_abs, int64_t cols, int k, int n, float *s);

/* AutoAWQ's duo scaling (its default): s_c = max(mean_abs_c^r / (w_mean_c^(1-r) + 1e-4), 1e-4),
 * normalised like mp_awq_candidate; w_mean_c is the mean over rows of |w_rc| / max |w| of
 * its group (mp_awq_weight_mean summed over the linears, divided by their rows). */
void mp_awq_candidate_duo(const float *mean_abs, const float *w_mean, int64_t cols, int k, int n, float *s);
/* Adds over rows the |w| / group max per column into sum[cols]. */
void mp_awq_weight_mean(const float *W, int64_t rows, int64_t cols, int group, double *sum);

/* tr(dW H' dW^T) of quantizing W diag(s) on the RTN w4 grid of e, where W is the
 * original (unscaled) weight, dW = decoded - W diag(s) and H' = diag(1/s) H diag(1/s):
 * the output error on the calibration rows. Computed as sum_r d_r^T H d_r with
 * d_r = dW_r / s in double (no H' is formed). s NULL means s = 1. */
double mp_awq_loss(const mp_encoding *e, int64_t rows, int64_t cols, const float *W, const float *s, const double *H);

/* Quantizes W (already multiplied by s, i.e. W diag(s)) with H (already the scaled H')
 * into data (rows * cols / 2 bytes: element 2k low nibble, 2k + 1 high), scales[rows * G]
 * (f16 bits) and zeros[rows * G] (one zero point 0..15 per byte; not written, may be NULL,
 * when e->sym), G = cols / e->group: the arrays of mp_w4_quantize_rows.
 *
 * clip false: every group gets its RTN grid (codes identical to mp_w4_quantize_rows RTN).
 * clip true, AutoAWQ's clip search: per row and group, the range is shrunk by the
 * factors p = 1, 0.975, ... 0.5 (p = 1 - i / 40, i = 0..20: 20 steps, 21 candidates).
 * The grid of factor p is the RTN grid (mp_w4_group_grid) of the group clamped to
 * [p min, p max]: asymmetric, min and max shrink together (the grid covers
 * [min(0, p min), max(0, p max)]); symmetric, the signed extreme m (the element of largest
 * |x|) becomes p m, i.e. max |x| shrinks. The codes are then those of the unclamped
 * values (mp_w4_code clamps them to 0..15). The candidate with the least
 * dW_g^T H_gg dW_g (H_gg the group's diagonal block of H) wins; ties keep the larger p,
 * so p = 1 (plain RTN) wins unless beaten.
 * That block criterion ignores the cross-group terms of H, so on correlated inputs a row
 * can come out worse in the full tr(dW_r H dW_r^T) than RTN; a row therefore keeps its
 * clipped grids only when its full loss is <= its RTN loss, else its RTN grids. The
 * returned loss is thus never above the clip-false loss, row by row.
 *
 * dequant, if not NULL, receives the decoded [rows, cols] (approximating W diag(s)), bit
 * for bit what formats/encoding.c decodes from the outputs. Returns tr(dW H dW^T) with
 * dW = decoded - W (both in the scaled domain); with clip false and unscaled inputs it
 * equals mp_awq_loss(e, rows, cols, W, NULL, H) exactly. */
double mp_awq_quantize(const mp_encoding *e, int64_t rows, int64_t cols, const float *W, const double *H, bool clip,
                       uint8_t *data, uint16_t *scales, uint8_t *zeros, float *dequant);

/* The scale search for one set of linears that share one input and one H: stack their
 * rows into W ([rows, cols], unscaled). Tries candidates k = 0 .. n-1 (n <= 0 means
 * MP_AWQ_CANDIDATES), keeps the least mp_awq_loss (the smallest k on ties, so s = 1 wins
 * unless beaten; a NaN loss never wins), writes its s (cols floats) and, if loss is not
 * NULL, its loss. Returns the winning k, or -1 when its scratch cannot be allocated.
 * Sets whose linears have different H (experts with their routed tokens) sum
 * mp_awq_loss over the linears themselves. */
int mp_awq_best_scale(const mp_encoding *e, int64_t rows, int64_t cols, const float *W, const float *mean_abs,
                      const double *H, int n, float *s, double *loss);

#endif
