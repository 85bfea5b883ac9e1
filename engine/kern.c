/* Kernel dispatch: picks the instruction set, quantizes FAST-mode activations once per
 * call, and cuts the output into (row range × token range) tiles for OpenMP. Every
 * output is computed inside one tile by one thread, in an order fixed by the tile
 * grid alone (never by the thread count), so results are the same bits on any number
 * of threads. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kern_internal.h"

/* Rows per tile: a multiple of MP_KERN_RT; small enough that 2 threads balance on
 * 32-row matrices' bigger siblings, big enough to amortize scheduling. */
#define ROWS_PER_TILE 32
/* Multiply-adds below which a call runs on the calling thread alone. */
#define SERIAL_WORK (1 << 16)
/* Activations quantized on the stack up to this many values, else on the heap. */
#define XQ_STACK_VALUES 8192

/* The test hook's choice; NULL = by the CPU. Only mp_kern_force_isa writes it. */
static const mp_kern_ops *forced_ops;

static const mp_kern_ops *by_cpu(void)
{
    const mp_kern_ops *o = mp_kern_avx512();
    if (!o)
        o = mp_kern_avx2();
    if (!o)
        o = mp_kern_neon();
    return o ? o : mp_kern_portable();
}

static const mp_kern_ops *current_ops(void)
{
    return forced_ops ? forced_ops : by_cpu();
}

const char *mp_kern_isa(void)
{
    return current_ops()->name;
}

int mp_kern_force_isa(const char *name)
{
    if (!name) {
        forced_ops = NULL;
        return 0;
    }
    const mp_kern_ops *all[] = {mp_kern_portable(), mp_kern_avx2(), mp_kern_avx512(), mp_kern_neon()};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i] && strcmp(all[i]->name, name) == 0) {
            forced_ops = all[i];
            return 0;
        }
    return -1;
}

/* llama.cpp's quantize_row_q8_1: d = max|x| / 127, q = round(x / d), s = d·Σq.
 * Rounding is to nearest even by the 1.5·2^23 trick (|x / d| <= 127), written so the
 * compiler vectorizes it: a libm call per value would cost more than a small matmul. */
static void quantize_row_q8(const float *x, int64_t cols, int8_t *q, float *d, float *s)
{
    const float magic = 12582912.0f;
    for (int64_t j = 0; j < cols / 32; j++) {
        const float *xb = x + 32 * j;
        float amax = 0;
        for (int i = 0; i < 32; i++) {
            float a = fabsf(xb[i]);
            amax = a > amax ? a : amax;
        }
        float dj = amax / 127.0f, id = dj != 0.0f ? 1.0f / dj : 0.0f;
        int32_t v[32];
        int sum = 0;
        for (int i = 0; i < 32; i++)
            v[i] = (int32_t)((xb[i] * id + magic) - magic);
        for (int i = 0; i < 32; i++) {
            q[32 * j + i] = (int8_t)v[i];
            sum += v[i];
        }
        d[j] = dj;
        s[j] = dj * (float)sum;
    }
}

typedef struct {
    const mp_kern_ops *ops;
    const mp_packed *w;
    const float *x;
    const mp_kern_xq *xq; /* NULL: exact kernels */
    int64_t n;
    float *y;
} matmul_job;

static void run_tile(const matmul_job *job, int64_t tile, int64_t token_tiles)
{
    int64_t r0 = tile / token_tiles * ROWS_PER_TILE, t0 = tile % token_tiles * MP_KERN_TCH;
    int64_t r1 = r0 + ROWS_PER_TILE < job->w->rows ? r0 + ROWS_PER_TILE : job->w->rows;
    int64_t t1 = t0 + MP_KERN_TCH < job->n ? t0 + MP_KERN_TCH : job->n;
    if (job->xq)
        job->ops->fast(job->w, job->xq, r0, r1, t0, t1, job->y);
    else
        job->ops->exact(job->w, job->x, r0, r1, t0, t1, job->y);
}

static void run_tiles(const matmul_job *job)
{
    int64_t row_tiles = (job->w->rows + ROWS_PER_TILE - 1) / ROWS_PER_TILE;
    int64_t token_tiles = (job->n + MP_KERN_TCH - 1) / MP_KERN_TCH;
    int64_t tiles = row_tiles * token_tiles;
    bool serial = job->w->rows * job->w->cols * job->n < SERIAL_WORK;
#pragma omp parallel for schedule(dynamic, 1) if (!serial)
    for (int64_t i = 0; i < tiles; i++)
        run_tile(job, i, token_tiles);
}

void mp_kern_matmul(const mp_packed *w, const float *x, int64_t n, float *y, mp_kern_mode mode)
{
    matmul_job job = {current_ops(), w, x, NULL, n, y};
    if (w->rows == 0 || n == 0)
        return;
    /* 2:4 fp8, as dense fp8, takes the exact kernels in either mode */
    if (mode == MP_KERN_EXACT || !mp_kern_fast_kind(w->enc.kind)) {
        run_tiles(&job);
        return;
    }
    int64_t values = n * w->cols, blocks = values / 32;
    int8_t q_stack[XQ_STACK_VALUES];
    float d_stack[XQ_STACK_VALUES / 32], s_stack[XQ_STACK_VALUES / 32];
    int8_t *q = q_stack;
    float *d = d_stack, *s = s_stack;
    if (values > XQ_STACK_VALUES) {
        q = malloc((size_t)values);
        d = malloc(sizeof(float) * (size_t)blocks);
        s = malloc(sizeof(float) * (size_t)blocks);
        if (!q || !d || !s) { /* the API cannot fail: fall back to the exact kernels */
            free(q);
            free(d);
            free(s);
            run_tiles(&job);
            return;
        }
    }
#pragma omp parallel for schedule(static) if (n > 1 && values >= SERIAL_WORK)
    for (int64_t t = 0; t < n; t++)
        quantize_row_q8(x + t * w->cols, w->cols, q + t * w->cols, d + t * (w->cols / 32), s + t * (w->cols / 32));
    mp_kern_xq xq = {q, d, s, w->cols};
    job.xq = &xq;
    run_tiles(&job);
    if (q != q_stack) {
        free(q);
        free(d);
        free(s);
    }
}

/* Each thread owns a column range and walks every row in order: the sum for one output
 * column is always in row order. */
void mp_kern_matvec_t(const mp_packed *w, const float *x, float *y)
{
    mp_enc_layout L;
    mp_encoding_layout(&w->enc, w->rows, w->cols, &L);
    int64_t spans = (w->cols + MP_KERN_KC - 1) / MP_KERN_KC;
    bool serial = w->rows * w->cols < SERIAL_WORK;
#pragma omp parallel for schedule(dynamic, 1) if (!serial)
    for (int64_t j = 0; j < spans; j++) {
        int64_t c0 = j * MP_KERN_KC, c1 = c0 + MP_KERN_KC < w->cols ? c0 + MP_KERN_KC : w->cols;
        float buf[MP_KERN_KC], acc[MP_KERN_KC] = {0};
        for (int64_t r = 0; r < w->rows; r++) {
            mp_kern_decode_span(w, &L, r, c0, c1, buf);
            for (int64_t c = 0; c < c1 - c0; c++)
                acc[c] += x[r] * buf[c];
        }
        memcpy(y + c0, acc, sizeof(float) * (size_t)(c1 - c0));
    }
}
