/* fp8 e4m3fn quantizer; the rules and their reasons are in fp8.h. */
#include "fp8.h"

#include <float.h>
#include <math.h>

#include "../core/dtype.h"

static const float fp8_max = 448.0f;

/* Bands smaller than this many elements are done on one thread. */
static const int64_t parallel_min_elements = 1 << 15;

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
    float m = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        m = a > m ? a : m;
    }
    return m;
}

static void encode_span(const float *x, int64_t n, float scale, uint8_t *out)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = isnan(x[i]) ? 0x00 : mp_f32_to_fp8_e4m3(x[i] / scale);
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
