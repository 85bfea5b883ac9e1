/* HQQ, half-quadratic quantization (Badri & Shaji 2023; mobiusml/hqq optimize.py),
 * calibration-free, adapted to the pack's w4 grids (quant/w4.h).
 *
 * HQQ minimises the lp norm (p < 1) of the weight error, sum |x - Q(x)|^p, which cares
 * less about a few large errors (outliers it cannot reach anyway) than about the bulk.
 * It splits the problem with an auxiliary error W_e ~ x - Q(x) and alternates:
 *   W_e  = shrink_lp(x - decoded, beta)     the generalised soft threshold:
 *          sign(r) max(0, |r| - |r|^(p-1) / beta)   (HQQ adds 1e-8 to |r| in the power)
 *   grid = the grid that best fits the target x - W_e in least squares, codes fixed
 *   beta *= kappa
 * for iters steps from beta0, stopping early when the error rises. HQQ fits a float zero
 * point with the scale fixed; the pack needs an integer zero point 0..15 and an f16
 * scale, so per group here:
 *   - start from the RTN grid (mp_w4_group_grid);
 *   - each step takes the codes of the current grid, and refits to the target t:
 *       asym: regression t ~ s q + b (scale and offset), z = clamp(rint(-b / s), 0, 15);
 *             then s refitted for that integer z: s = sum (q - z) t / sum (q - z)^2;
 *       sym:  z = 8, s = sum (q - 8) t / sum (q - 8)^2;
 *     s rounded to f16 under w4.h's scale rules (clamped to +-65504, never 0);
 *   - the new grid's codes are recomputed (mp_w4_code) and its lp error measured; the
 *     run stops when that error exceeds the previous step's;
 *   - the best grid by the lp error is kept, and it replaces RTN only when it is lower by
 *     a relative 1e-9 (summation noise of a double sum of <= 128 terms is far below), so
 *     no group ends worse than RTN in the lp objective.
 * Scale of the split: HQQ applies beta to the raw weights, so what the shrink keeps
 * depends on the weights' magnitude (for |w| ~ 1e-2 it keeps nothing and HQQ reduces to
 * least-squares zero refits). Here the residual is measured in steps of the RTN scale
 * before the shrink (W_e = u shrink(r / u, beta), u = |RTN scale|), so beta0 = 10 means
 * the same for every tensor: residuals above ~0.17 steps start to be left out of the fit.
 *
 * Groups whose RTN error is 0, or not finite (NaN/inf inside), or whose RTN scale is 0,
 * keep their RTN grid. Rows run in parallel with OpenMP; each row is independent, so the
 * output is byte-identical at any thread count. */
#ifndef MP_QUANT_HQQ_H
#define MP_QUANT_HQQ_H

#include <stdint.h>

#include "../formats/encoding.h"

/* Fields <= 0 take the defaults p = 0.7, beta = 10, kappa = 1.01, iters = 20 (HQQ's);
 * opt NULL means all defaults. p must be in (0, 2) to be meaningful. */
typedef struct {
    float p, beta, kappa;
    int iters;
} mp_hqq_options;

/* Quantizes a [rows, cols] matrix W (cols a multiple of e->group) into the arrays of
 * mp_w4_quantize_rows: data (rows * cols / 2 bytes: element 2k low nibble, 2k + 1 high),
 * scales[rows * G] (f16 bits), zeros[rows * G] (one zero point 0..15 per byte; not
 * written, may be NULL, when e->sym), G = cols / e->group. */
void mp_hqq_quantize_rows(const mp_encoding *e, int64_t rows, int64_t cols, const float *W, const mp_hqq_options *opt,
                          uint8_t *data, uint16_t *scales, uint8_t *zeros);

#endif
