/* fp8 e4m3fn quantizer; the rules and their reasons are in fp8.h. */
#include "fp8.h"

#include <float.h>
#include <math.h>
#include <string.h>

static const float fp8_max = 448.0f;

/* Bands smaller than this many elements are done on one thread. */
static const int64_t parallel_min_elements = 1 << 15;

/* Loops run over fixed CHUNKs (a constant trip count is what the -O2 vectorizer needs),
 * then the remainder; LANES partial maxima make the amax reduction vectorizable. */
enum { CHUNK = 64, LANES = 16 };

static float scale_for_amax(float amax)
{
    if (!(amax > 0.0f))
        return 1.0f;
    if (isinf(amax))
        return FLT_MAX / fp8_max;
    float s = amax / fp8_max;
    return s > 0.0f ? s : FLT_TRUE_MIN;
}

/* Max |x| of n values, NaN ignored (a comparison with NaN is false). */
static float amax_of(const float *x, int64_t n)
{
    float lanes[LANES] = {0};
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int k = 0; k < LANES; k++) {
            float a = fabsf(x[i + k]);
            lanes[k] = a > lanes[k] ? a : lanes[k];
        }
    float m = 0.0f;
    for (int k = 0; k < LANES; k++)
        m = lanes[k] > m ? lanes[k] : m;
    for (; i < n; i++) {
        float a = fabsf(x[i]);
        m = a > m ? a : m;
    }
    return m;
}

/* e4m3fn code of y, bit-identical to mp_f32_to_fp8_e4m3 for every non-NaN y (the tests
 * compare them on 8 million values from 0 to +-inf and on every tie), written without
 * branches so that the loop below vectorizes (calling the scalar encoder made fp8
 * quantization 10x slower). NaN gives 0x00.
 *   |y| >= 2^-6 (normal): the f32 exponent and top 3 mantissa bits, rounded to nearest
 *     even by integer addition (a carry moves to the next exponent, as it should), then
 *     rebiased from 127 to 7; 0x7f and above (>= 464, inf) saturate to 0x7e = 448.
 *   |y| < 2^-6 (subnormal, step 2^-9): rint(|y| * 2^9), exact scaling by a power of
 *     two; 8 is the first normal, which is also its code. */
static inline uint8_t e4m3_code(float y)
{
    uint32_t bits;
    memcpy(&bits, &y, sizeof bits);
    uint32_t sign = (bits >> 24) & 0x80u, abs_bits = bits & 0x7fffffffu;
    float a = fabsf(y);
    bool is_subnormal = a < 0x1p-6f;
    uint32_t normal = ((abs_bits + 0x7ffffu + ((abs_bits >> 20) & 1u)) >> 20) - (120u << 3);
    uint32_t subnormal = (uint32_t)rintf((is_subnormal ? a : 0.0f) * 512.0f); /* 0..8, never out of range */
    uint32_t code = is_subnormal ? subnormal : normal;
    code = code < 0x7eu ? code : 0x7eu;
    return y != y ? 0x00 : (uint8_t)(sign | code);
}

static void encode_span(const float *restrict x, int64_t n, float scale, uint8_t *restrict out)
{
    int64_t i = 0;
    for (; i + CHUNK <= n; i += CHUNK)
        for (int k = 0; k < CHUNK; k++)
            out[i + k] = e4m3_code(x[i + k] / scale);
    for (; i < n; i++)
        out[i] = e4m3_code(x[i] / scale);
}

/* One scale for every row of the band (tensor) or one per row (channel). */
static void quantize_by_rows(bool per_row, int64_t cols, const float *band, int64_t r0, int64_t r1,
                             float tensor_amax, uint8_t *data, float *scales)
{
    float tensor_scale = scale_for_amax(tensor_amax);
    if (!per_row)
        scales[0] = tensor_scale;
#pragma omp parallel for schedule(static) if ((r1 - r0) * cols >= parallel_min_elements)
    for (int64_t r = r0; r < r1; r++) {
        const float *x = band + (r - r0) * cols;
        float s = tensor_scale;
        if (per_row) {
            s = scale_for_amax(amax_of(x, cols));
            scales[r] = s;
        }
        encode_span(x, cols, s, data + r * cols);
    }
}

/* Max |x| of the block of rows [0, nr) x columns [c0, c0 + nc) of a band. */
static float block_amax(const float *band, int64_t cols, int64_t nr, int64_t c0, int64_t nc)
{
    float m = 0.0f;
    for (int64_t r = 0; r < nr; r++) {
        float a = amax_of(band + r * cols + c0, nc);
        m = a > m ? a : m;
    }
    return m;
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* 128x128 blocks: each block's scale needs all of its rows, so the band is cut into
 * whole block rows (r0 is a multiple of 128) and the blocks are the parallel unit. */
static void quantize_by_blocks(int64_t cols, const float *band, int64_t r0, int64_t r1, uint8_t *data,
                               float *scales)
{
    const int64_t B = MP_FP8_BLOCK_SIZE;
    int64_t col_blocks = (cols + B - 1) / B;
    int64_t row_blocks = (r1 - r0 + B - 1) / B;
    int64_t first_block_row = r0 / B;
#pragma omp parallel for schedule(static) if ((r1 - r0) * cols >= parallel_min_elements)
    for (int64_t b = 0; b < row_blocks * col_blocks; b++) {
        int64_t br = b / col_blocks, bc = b % col_blocks;
        int64_t row0 = br * B, nr = min64(B, (r1 - r0) - row0);
        int64_t c0 = bc * B, nc = min64(B, cols - c0);
        const float *blk = band + row0 * cols;
        float s = scale_for_amax(block_amax(blk, cols, nr, c0, nc));
        scales[(first_block_row + br) * col_blocks + bc] = s;
        for (int64_t r = 0; r < nr; r++)
            encode_span(blk + r * cols + c0, nc, s, data + (r0 + row0 + r) * cols + c0);
    }
}

void mp_fp8_quantize_rows(const mp_encoding *e, int64_t rows, int64_t cols, const float *band, int64_t r0, int64_t r1,
                          float tensor_amax, uint8_t *data, float *scales)
{
    (void)rows; /* the band and the output offsets are all that is needed */
    if (e->fp8_scale == MP_FP8_BLOCK)
        quantize_by_blocks(cols, band, r0, r1, data, scales);
    else
        quantize_by_rows(e->fp8_scale == MP_FP8_CHANNEL, cols, band, r0, r1, tensor_amax, data, scales);
}
