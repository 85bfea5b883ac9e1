/* Wanda and SparseGPT 2:4 pruning; the methods and choices are in nm_sparse.h. */
#include "nm_sparse.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "gptq.h"
#include "w4.h"

enum { ROW_BLOCK = 64, DEFAULT_BLOCK = 128 };

int mp_nm_method_parse(const char *text, mp_nm_method *m)
{
    if (strcmp(text, "wanda") == 0)
        *m = MP_NM_WANDA;
    else if (strcmp(text, "sparsegpt") == 0)
        *m = MP_NM_SPARSEGPT;
    else
        return -1;
    return 0;
}

const char *mp_nm_method_name(mp_nm_method m)
{
    return m == MP_NM_WANDA ? "wanda" : "sparsegpt";
}

/* The 2 positions of 4 scores to prune: the smallest two, where of equal scores the
 * higher position goes first (so the lower one is kept). NaN scores count as smallest. */
static void prune_two(const double score[4], bool pruned[4])
{
    int order[4] = {0, 1, 2, 3};
    for (int i = 1; i < 4; i++) /* insertion sort: decreasing score, then increasing position */
        for (int j = i; j > 0; j--) {
            double a = score[order[j - 1]], b = score[order[j]];
            bool before = (b > a) || (isnan(a) && !isnan(b));
            if (!before)
                break;
            int t = order[j - 1];
            order[j - 1] = order[j];
            order[j] = t;
        }
    for (int i = 0; i < 4; i++)
        pruned[order[i]] = i >= 2;
}

void mp_nm_wanda(int64_t rows, int64_t cols, float *W, const double *H)
{
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c += 4) {
            float *w = W + r * cols + c;
            double score[4];
            bool pruned[4];
            for (int i = 0; i < 4; i++) {
                double h = H ? H[(c + i) * cols + c + i] : 1.0;
                score[i] = fabs((double)w[i]) * sqrt(h > 0.0 ? h : 0.0);
            }
            prune_two(score, pruned);
            for (int i = 0; i < 4; i++)
                if (pruned[i])
                    w[i] = 0.0f;
        }
}

/* ---- SparseGPT ---- */

typedef struct {
    int64_t rows, cols, G;
    int block;
    const mp_encoding *w4; /* joint quantization, or NULL */
    const float *U;        /* [cols, cols] upper factor of (H + damp)^-1 */
    float *W;              /* [rows, cols] working weights, receives the result */
    uint8_t *data;
    uint16_t *scales;
    uint8_t *zeros; /* NULL when sym */
} sgpt_job;

static void set_code(uint8_t *row_data, int64_t c, uint8_t q)
{
    int shift = (c & 1) ? 4 : 0;
    uint8_t *b = row_data + c / 2;
    *b = (uint8_t)((*b & ~(15 << shift)) | q << shift);
}

/* The value column c of row r keeps: 0 when pruned, else w, or its w4 code's value. */
static float keep_value(const sgpt_job *job, int64_t r, int64_t c, const float *w, bool pruned, uint8_t *zrow)
{
    if (!job->w4)
        return pruned ? 0.0f : w[c];
    int g = job->w4->group;
    int64_t j = c / g;
    uint16_t *srow = job->scales + r * job->G;
    if (c % g == 0)
        mp_w4_group_grid(w + c, g, job->w4->sym, NULL, &srow[j], &zrow[j]);
    uint8_t q = mp_w4_code(pruned ? 0.0f : w[c], srow[j], zrow[j]);
    set_code(job->data + r * (job->cols / 2), c, q);
    return mp_w4_decode(q, srow[j], zrow[j]);
}

/* Columns [i1, i2) of row r (a multiple of 4 each): masks as each group of 4 is
 * reached, values, and their errors pushed through the rest of the block. */
static void sweep_row_span(const sgpt_job *job, int64_t r, int64_t i1, int64_t i2, float *err_row, uint8_t *zrow)
{
    int64_t cols = job->cols;
    float *w = job->W + r * cols;
    bool pruned[4] = {false};
    for (int64_t i = i1; i < i2; i++) {
        const float *u = job->U + i * cols;
        if (i % 4 == 0) {
            double score[4];
            for (int k = 0; k < 4; k++) {
                double d = job->U[(i + k) * cols + i + k];
                score[k] = (double)w[i + k] * w[i + k] / (d * d);
            }
            prune_two(score, pruned);
        }
        float q = keep_value(job, r, i, w, pruned[i % 4], zrow);
        float e = (w[i] - q) / u[i];
        if (!isfinite(e))
            e = 0.0f;
        err_row[i - i1] = e;
        w[i] = q;
        for (int64_t k = i + 1; k < i2; k++)
            w[k] -= e * u[k];
    }
}

static void sweep_row_block(const sgpt_job *job, int64_t r0, int64_t r1, float *err, uint8_t *zbuf)
{
    int64_t cols = job->cols, B = job->block;
    for (int64_t i1 = 0; i1 < cols; i1 += B) {
        int64_t i2 = i1 + B < cols ? i1 + B : cols;
        for (int64_t r = r0; r < r1; r++)
            sweep_row_span(job, r, i1, i2, err + (r - r0) * B, zbuf + (r - r0) * job->G);
        if (i2 < cols) /* W[:, i2:] -= E U[i1:i2, i2:] */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(r1 - r0), (int)(cols - i2), (int)(i2 - i1),
                        -1.0f, err, (int)B, job->U + i1 * cols + i2, (int)cols, 1.0f, job->W + r0 * cols + i2,
                        (int)cols);
    }
    if (job->zeros)
        memcpy(job->zeros + r0 * job->G, zbuf, (size_t)((r1 - r0) * job->G));
}

static int run_rows(const sgpt_job *job)
{
    int threads = omp_get_max_threads();
    size_t err_n = (size_t)ROW_BLOCK * (size_t)job->block, g_n = (size_t)ROW_BLOCK * (size_t)(job->G ? job->G : 1);
    float *err = malloc((size_t)threads * err_n * sizeof *err);
    uint8_t *zbuf = malloc((size_t)threads * g_n);
    int rc = err && zbuf ? 0 : -1;
    int64_t n_blocks = (job->rows + ROW_BLOCK - 1) / ROW_BLOCK;
    if (rc == 0)
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
        for (int64_t b = 0; b < n_blocks; b++) {
            int t = omp_get_thread_num();
            int64_t r0 = b * ROW_BLOCK, r1 = r0 + ROW_BLOCK < job->rows ? r0 + ROW_BLOCK : job->rows;
            sweep_row_block(job, r0, r1, err + (size_t)t * err_n, zbuf + (size_t)t * g_n);
        }
    free(err);
    free(zbuf);
    return rc;
}

/* No factor: Wanda's mask, then (joint) rounding to nearest on the pruned rows' groups. */
static void fall_back(const sgpt_job *job, const double *H)
{
    mp_nm_wanda(job->rows, job->cols, job->W, H);
    if (!job->w4)
        return;
    mp_w4_quantize_rows(job->w4, job->rows, job->cols, job->W, 0, job->rows, NULL, job->data, job->scales, job->zeros);
    for (int64_t r = 0; r < job->rows; r++)
        for (int64_t c = 0; c < job->cols; c++) {
            int64_t k = r * job->G + c / job->w4->group;
            uint8_t b = job->data[(r * job->cols + c) / 2];
            uint8_t q = (c & 1) ? b >> 4 : b & 15;
            job->W[r * job->cols + c] = mp_w4_decode(q, job->scales[k], job->w4->sym ? 8 : job->zeros[k]);
        }
}

static int block_of(const mp_sparsegpt_options *opt, int g, int64_t cols)
{
    int64_t b = opt->block > 0 ? opt->block : DEFAULT_BLOCK;
    b = (b + g - 1) / g * g;
    return (int)(b < cols ? b : cols);
}

int mp_nm_sparsegpt(int64_t rows, int64_t cols, float *W, const double *H, const mp_sparsegpt_options *opt,
                    uint8_t *data, uint16_t *scales, uint8_t *zeros, bool *fell_back, mp_error *err)
{
    static const mp_sparsegpt_options defaults = {0};
    if (!opt)
        opt = &defaults;
    if (fell_back)
        *fell_back = false;
    const mp_encoding *w4 = opt->w4;
    if (cols % 4 != 0 || (w4 && (w4->kind != MP_ENC_W4 || cols % w4->group != 0)))
        return mp_fail(err, MP_EXIT_INPUT, "sparsegpt: %lld input columns do not fit %s", (long long)cols,
                       w4 ? "the w4 group" : "groups of 4");
    if (rows <= 0 || cols <= 0)
        return MP_OK;
    int g = w4 ? (w4->group > 4 ? w4->group : 4) : 4;
    sgpt_job job = {.rows = rows, .cols = cols, .G = w4 ? cols / w4->group : 0, .block = block_of(opt, g, cols),
                    .w4 = w4, .W = W, .data = data, .scales = scales, .zeros = w4 && !w4->sym ? zeros : NULL};
    bool failed;
    float *U = mp_gptq_inverse_factor(H, cols, opt->damp, &failed);
    if (!U && !failed)
        return mp_fail(err, MP_EXIT_IO, "sparsegpt: out of memory for a %lld x %lld tensor", (long long)rows,
                       (long long)cols);
    if (!U) {
        fall_back(&job, H);
        if (fell_back)
            *fell_back = true;
        return MP_OK;
    }
    job.U = U;
    int rc = run_rows(&job);
    free(U);
    if (rc != 0)
        return mp_fail(err, MP_EXIT_IO, "sparsegpt: out of memory for a %lld x %lld tensor", (long long)rows,
                       (long long)cols);
    return MP_OK;
}
