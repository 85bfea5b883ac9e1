/* The fp8 quantizer: e4m3fn codes and f32 scales of the pack's fp8_e4m3 encoding
 * (docs/FORMAT.md, "fp8_e4m3"; decoding is formats/encoding.c: w = fp8(code) * scale).
 *
 * scale = amax / 448 over the tensor, the row or the 128x128 block, so the largest
 * magnitude lands on the largest finite e4m3 value. The code of x is
 * mp_f32_to_fp8_e4m3(x / scale) (computed by a vectorizable copy of that encoder in
 * fp8.c, tested bit-identical): a true division, one correctly rounded quotient as in
 * PyTorch's (w / scale).to(torch.float8_e4m3fn), not x * (1 / scale), which rounds twice
 * and gives other codes near ties. The quotient of amax may come out a hair above 448;
 * the encoder saturates it to 448.
 *
 * Special cases:
 *   amax == 0 (or NaN, or negative): scale = 1.0, every code 0.
 *   amax == inf: scale = FLT_MAX / 448 (finite); +-inf elements decode to +-FLT_MAX,
 *     the rest to about 0.
 *   amax / 448 underflowing to 0: scale = the smallest positive float.
 *   NaN elements: code 0x00 (decodes to 0) rather than the e4m3 NaN 0x7f: a NaN weight
 *     must not poison every product it meets; callers should reject non-finite weights
 *     upstream. NaN is ignored by amax. +-inf elements saturate to +-448.
 *
 * Rows (tensor, channel) or blocks (block) are processed in parallel with OpenMP; each
 * output byte and scale depends only on its own row or block, so the result is
 * byte-identical at any thread count. */
#ifndef MP_QUANT_FP8_H
#define MP_QUANT_FP8_H

#include <stdint.h>

#include "../formats/encoding.h"

/* Quantizes rows [r0, r1) of a [rows, cols] matrix to e4m3fn (e->kind == MP_ENC_FP8).
 * data + r0 * cols receives the codes; scales receives this band's f32 scales at their FORMAT.md index
 * (tensor: scales[0]; channel: scales[r]; block: scales[(r/128) * ceil(cols/128) + c/128]).
 * For MP_FP8_BLOCK, r0 must be a multiple of 128 and r1 a multiple of 128 or == rows.
 * tensor_amax is the max |w| over the WHOLE tensor, used only for MP_FP8_TENSOR (the caller computes it first). */
void mp_fp8_quantize_rows(const mp_encoding *e, int64_t rows, int64_t cols, const float *band, int64_t r0, int64_t r1,
                          float tensor_amax, uint8_t *data, float *scales);

#endif
