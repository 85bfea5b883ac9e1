/* The w4 quantizers: choose the 4-bit codes, f16 scales and zero points of the pack's
 * w4 encoding (docs/FORMAT.md, "w4"; decoding is formats/encoding.c).
 *
 * Every scale is chosen in f32, rounded to f16, and the codes are then computed from the
 * scale as stored (converted back to f32), so decoding reproduces the intended grid:
 *   symmetric   w = (q - 8) * s       asymmetric   w = (q - z) * s,  q, z in 0..15.
 * A code is q = clamp(rint(x / s) + z, 0, 15) (z = 8 when symmetric), rint under the
 * default round-to-nearest-even mode. x / s is a true division (the correctly rounded
 * quotient), not x * (1 / s); the two differ near ties. s == 0 gives q = z.
 *
 * MP_W4_RTN, asymmetric, per group:
 *   lo = min(0, min x), hi = max(0, max x). The range includes 0 because z is an integer
 *   in 0..15: for a group that does not straddle 0 (say all of it in [10, 11]) the true
 *   min/max would need z < 0 and clip the whole group; when min <= 0 <= max (almost every
 *   weight group) this is the plain min/max.
 *   s = f16((hi - lo) / 15), z = clamp(rint(-lo / s), 0, 15).
 *   Because s is rounded to nearest, 15 * s may fall short of hi - lo by 15 * |s - s_f32|
 *   (relative 2^-11 for normal f16 scales): the decode error of a value inside [lo, hi]
 *   is at most s / 2 + 15 * |s - s_f32|.
 * MP_W4_RTN, symmetric (llama.cpp Q4_0): m = the element of largest |x|, with its sign
 *   (max x when max x >= -min x, else min x: on a tie the positive one, where Q4_0 takes
 *   the first); s = f16(m / -8), so m decodes to -8 * s. Values with x / s in [-8, 7]
 *   decode within |s| / 2; the other sign clips at 7 s (up to |s| off, as in Q4_0).
 *
 * Scale limits: a scale above the f16 maximum is clamped to +-65504 (values beyond the
 * span saturate to codes 0 / 15; asymmetric then centres the window: z = clamp(rint(7.5 -
 * (lo + hi) / (2 s)), 0, 15)). A nonzero scale that rounds to f16 zero becomes the
 * smallest f16 subnormal 2^-24 with its sign: its grid still holds 0 and no element
 * decodes worse than 0 would. An all-zero group stores s = 0, z = 0 and codes z (8 sym).
 * A constant nonzero asymmetric group v also tries s = f16(|v|) with q - z = +-1 (exact
 * for every f16-representable v, e.g. every bf16 weight in f16 range) and keeps whichever
 * of that and the rule above decodes closer to v (the s = |v| variant on ties).
 *
 * MP_W4_MSE: per group, a search over candidate (s, z) that minimises
 *   E = sum_c importance[c] * (decode(q_c) - x_c)^2
 * (importance = 1 when NULL). The RTN grid is the first candidate and a candidate
 * replaces the best only when its E, summed in f32, is smaller by more than a relative
 * 1e-4 (far above the f32 summation error, < 2e-6 for g <= 128 positive terms), so
 * E(MSE) <= E(RTN) exactly for every group. Candidates (see w4.c), with the scale factors
 * p = 1.24, 1.22, ... 0.72, 0.70 (28 values, p = 1 included):
 *   asym: the RTN rule applied to [p lo, p hi] (s and z re-derived); then the best of
 *         these with z - 1 and z + 1;
 *   sym:  s = f16(p m / -8);
 *   then up to 4 weighted least-squares refits of s for the best codes (z fixed),
 *   s = sum w (q - z) x / sum w (q - z)^2, each kept only if it lowers E.
 * Measured (tests/unit/test_quant.c): E drops by 9-13 % against RTN on Gaussian groups
 * and 5-11 % on groups with two 6-10 sigma outliers, and lands within 0.15 % of an
 * exhaustive search over every f16 scale in [0.3, 1.5] x RTN and every zero point.
 * A group whose E is not finite (a NaN or inf inside) keeps its RTN grid.
 *
 * Non-finite inputs (callers should reject them upstream): NaN elements are ignored by
 * the min/max and get the code that decodes to 0; +-inf saturate to code 15 / 0 and
 * clamp the scale to 65504. The quantizer never traps and always writes codes 0..15.
 *
 * Rows are processed in parallel with OpenMP; every row is independent, so the output is
 * byte-identical at any thread count. */
#ifndef MP_QUANT_W4_H
#define MP_QUANT_W4_H

#include <stdbool.h>
#include <stdint.h>

#include "../formats/encoding.h"

/* MP_W4_HQQ is carried out by quant/hqq.c (the encoder dispatches it); here it means RTN. */
typedef enum { MP_W4_RTN, MP_W4_MSE, MP_W4_HQQ } mp_w4_method;

typedef struct {
    mp_w4_method method;
    const float *importance; /* per input column (cols values, >= 0), weights the squared error in MSE search; NULL = uniform */
} mp_w4_options;

/* Quantizes rows [r0, r1) of a [rows, cols] matrix. band holds those rows (band[(r - r0) * cols + c]).
 * Writes: data + r0 * cols / 2 .. (the packed nibbles of those rows, FORMAT.md order: element 2k low nibble, 2k+1 high),
 * scales[r * G + j] (f16 bits) and, when !e->sym, zeros[r * G + j] (one zero point 0..15 per byte; the caller packs nibbles)
 * for r in [r0, r1), G = cols / e->group. cols must be a multiple of e->group (mp_encoding_unfit).
 * opt NULL means RTN. */
void mp_w4_quantize_rows(const mp_encoding *e, int64_t rows, int64_t cols, const float *band, int64_t r0, int64_t r1,
                         const mp_w4_options *opt, uint8_t *data, uint16_t *scales, uint8_t *zeros);

/* One group of g values (g a multiple of 16, <= 128), as mp_w4_quantize_rows would do
 * it: its f16 scale bits and zero point (8 when sym). opt->importance, if any, holds the
 * group's own g weights. For quantizers that choose the codes themselves (GPTQ, AWQ). */
void mp_w4_group_grid(const float *x, int g, bool sym, const mp_w4_options *opt, uint16_t *scale_bits, uint8_t *zero);
/* The code 0..15 of x on a grid, by the same expression as every path above. */
uint8_t mp_w4_code(float x, uint16_t scale_bits, int zero);
/* The value code decodes to: (code - zero) * f16(scale_bits), as formats/encoding.c. */
float mp_w4_decode(uint8_t code, uint16_t scale_bits, int zero);

#endif
