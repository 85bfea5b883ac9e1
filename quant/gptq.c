/* GPTQ onto the w4 encoding and llama.cpp's grids; the algorithm and the choices are in gptq.h. */
#include "gptq.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "../formats/ggml_blocks.h"
#include "grid.h"
#include "w4.h"

/* LAPACK (OpenBLAS exports it), column-major. */
extern void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info);
extern void dtrtri_(const char *uplo, const char *diag, const int *n, double *a, const int *lda, int *info);

/* ROW_BLOCK: rows handled by one OpenMP task; fixed, so the output never depends on the
 * thread count, and large enough that the lazy update is an efficient sgemm.
 * MAX_RETRIES: factorization attempts after the first, each doubling the damping. */
enum { ROW_BLOCK = 64, MAX_RETRIES = 10, DEFAULT_BLOCK = 128 };
static const double default_damp = 0.01;

/* ---- column order and the inverse factor ---- */

typedef struct {
    double d;
    int64_t i;
} diag_entry;

/* Decreasing diagonal, ties by increasing index: a total order, so the permutation is
 * the same on every platform and in the NumPy oracle (a stable descending argsort). */
static int by_decreasing_diag(const void *a, const void *b)
{
    const diag_entry *x = a, *y = b;
    if (x->d != y->d)
        return x->d > y->d ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* diag H as the algorithm uses it: dead entries (0, negative or NaN) become 1. */
static double fixed_diag(const double *H, int64_t n, int64_t c)
{
    double d = H[c * n + c];
    return d > 0.0 ? d : 1.0;
}

/* perm[i] = the natural column visited i-th: the identity, or by decreasing diag H. */
static int column_order(const double *H, int64_t n, bool act_order, int64_t *perm)
{
    for (int64_t c = 0; c < n; c++)
        perm[c] = c;
    if (!act_order)
        return 0;
    diag_entry *d = malloc((size_t)n * sizeof *d);
    if (!d)
        return -1;
    for (int64_t c = 0; c < n; c++)
        d[c] = (diag_entry){fixed_diag(H, n, c), c};
    qsort(d, (size_t)n, sizeof *d, by_decreasing_diag);
    for (int64_t c = 0; c < n; c++)
        perm[c] = d[c].i;
    free(d);
    return 0;
}

/* A = the damped H in reversed visiting order: A[i][j] = H'[p(n-1-i)][p(n-1-j)] with
 * H' = H, dead diagonals set to 1, + damp I (see inverse_upper_factor for why reversed).
 * A dead column's off-diagonal entries are 0 for a genuine x x^T sum; they are zeroed
 * anyway, so that the column stays isolated (receives and passes on no error) whatever H
 * holds. */
static void damped_hessian_reversed(const double *H, int64_t n, const int64_t *perm, double damp, double *A)
{
    for (int64_t i = 0; i < n; i++) {
        int64_t pi = perm[n - 1 - i];
        bool dead_i = !(H[pi * n + pi] > 0.0);
        for (int64_t j = 0; j < n; j++) {
            int64_t pj = perm[n - 1 - j];
            bool dead = dead_i || !(H[pj * n + pj] > 0.0);
            A[i * n + j] = i == j ? fixed_diag(H, n, pi) + damp : dead ? 0.0 : H[pi * n + pj];
        }
    }
}

static double mean_fixed_diag(const double *H, int64_t n)
{
    double s = 0.0;
    for (int64_t c = 0; c < n; c++)
        s += fixed_diag(H, n, c);
    return s / (double)n;
}

/* U, the upper Cholesky factor of H'^-1 (H'^-1 = U^T U, U upper with a positive
 * diagonal: unique), from A = J H' J (J the reversal permutation), without forming H'^-1:
 *   A = L L^T (Cholesky)  =>  H' = (J L J)(J L J)^T  =>  H'^-1 = (J L^-1 J)^T (J L^-1 J),
 * and J L^-1 J is upper triangular: U = J L^-1 J. That is 2/3 n^3 flops where Cholesky,
 * inverse, Cholesky (gptq.py's route) takes 4/3 n^3, and avoids the explicit inverse.
 * Layout: LAPACK is column-major, and a row-major lower L is a column-major upper
 * factor: dpotrf "U" gives A = L_c^T L_c with L_c^T = L, dtrtri "U" inverts it in place,
 * leaving L^-1 row-major in the lower triangle. U[i][j] = L^-1[n-1-i][n-1-j] sits at
 * (n-1-i) n + (n-1-j) = n^2-1 - (i n + j): U is the buffer read backwards. What is left
 * of A in the other triangle is zeroed.
 * Returns false when H' is not positive definite in floating point or U is not finite. */
static bool inverse_upper_factor(double *A, int64_t n64)
{
    int n = (int)n64, info = 0;
    dpotrf_("U", &n, A, &n, &info);
    if (info == 0)
        dtrtri_("U", "N", &n, A, &n, &info);
    if (info != 0)
        return false;
    for (int64_t k = 0, m = n64 * n64; k < m / 2; k++) {
        double t = A[k];
        A[k] = A[m - 1 - k];
        A[m - 1 - k] = t;
    }
    for (int64_t i = 0; i < n64; i++)
        for (int64_t j = 0; j < n64; j++) {
            if (j < i)
                A[i * n64 + j] = 0.0;
            else if (!isfinite(A[i * n64 + j]))
                return false;
        }
    return true;
}

static bool all_finite(const double *H, int64_t n)
{
    for (int64_t k = 0; k < n * n; k++)
        if (!isfinite(H[k]))
            return false;
    return true;
}

/* U for H in visiting order, the damping doubled after each failed attempt (a non-finite
 * H fails at once: no damping mends it). A [n, n] is
 * scratch and receives U. Returns false when every attempt failed. */
static bool factor_with_retries(const double *H, int64_t n, const int64_t *perm, double rel_damp, double *A)
{
    if (!all_finite(H, n))
        return false;
    double mean = mean_fixed_diag(H, n);
    for (int attempt = 0; attempt <= MAX_RETRIES; attempt++, rel_damp *= 2.0) {
        damped_hessian_reversed(H, n, perm, rel_damp * mean, A);
        if (inverse_upper_factor(A, n))
            return true;
    }
    return false;
}

/* ---- the column loop ---- */

typedef struct {
    int64_t rows, cols, G;
    int g, block;
    bool sym, static_grids;
    mp_enc_kind kind;        /* MP_ENC_W4, or a llama.cpp grid (then g is its block) */
    uint64_t row_bytes;      /* grid: bytes of one row's blocks */
    mp_w4_options grid_opt;  /* RTN or MSE; importance set per group */
    float *importance;       /* diag H per natural column, f32 */
    const float *W;          /* original, natural order (static grids) */
    int64_t *perm;           /* visiting order */
    float *U;                /* [cols, cols] upper factor in visiting order */
    float *Wp;               /* [rows, cols] working weights in visiting order */
    uint8_t *data;
    uint16_t *scales;
    uint8_t *zeros; /* NULL when sym */
    float *dequant; /* optional */
} gptq_job;

/* A task's per-row grids: w4 zero points (8 when sym), or a grid's blocks and codes. */
typedef struct {
    uint8_t *zeros;          /* [ROW_BLOCK, G] */
    mp_grid_block *blocks;   /* [ROW_BLOCK, G] */
    uint8_t *codes;          /* [ROW_BLOCK, cols] */
} row_grids;

static bool is_grid(const gptq_job *job)
{
    return job->kind != MP_ENC_W4;
}

/* The grid of group j of a row from its g values x (natural group order). */
static void group_grid(const gptq_job *job, const float *x, int64_t j, uint16_t *bits, uint8_t *zero)
{
    mp_w4_options o = job->grid_opt;
    o.importance = job->importance + j * job->g;
    mp_w4_group_grid(x, job->g, job->sym, &o, bits, zero);
}

static void set_code(uint8_t *row_data, int64_t c, uint8_t q)
{
    int shift = (c & 1) ? 4 : 0;
    uint8_t *b = row_data + c / 2;
    *b = (uint8_t)((*b & ~(15 << shift)) | q << shift);
}

/* Column c of row r (local row lr of the task): its code on its group's grid, computed
 * first when c starts a group and the grids follow the updated weights. w + i is the
 * group then (perm is the identity). Returns the decoded value. */
static float code_column(const gptq_job *job, int64_t r, int64_t lr, int64_t c, const float *w, int64_t i,
                         row_grids *rg)
{
    int64_t j = c / job->g;
    bool fit = !job->static_grids && c % job->g == 0;
    if (is_grid(job)) {
        mp_grid_block *b = &rg->blocks[lr * job->G + j];
        if (fit)
            mp_grid_fit(job->kind, w + i, job->importance + j * job->g, job->grid_opt.method, b);
        uint8_t q = mp_grid_code(b, (int)(c % job->g), w[i]);
        rg->codes[lr * job->cols + c] = q;
        return mp_grid_value(b, (int)(c % job->g), q);
    }
    uint16_t *srow = job->scales + r * job->G;
    uint8_t *zrow = rg->zeros + lr * job->G;
    if (fit)
        group_grid(job, w + i, j, &srow[j], &zrow[j]);
    uint8_t q = mp_w4_code(w[i], srow[j], zrow[j]);
    set_code(job->data + r * (job->cols / 2), c, q);
    return mp_w4_decode(q, srow[j], zrow[j]);
}

/* Columns [i1, i2) of row r: code each column on its group's grid, push its error onto
 * the rest of the block at once and record it in err_row for the lazy update. */
static void quantize_row_span(const gptq_job *job, int64_t r, int64_t lr, int64_t i1, int64_t i2, float *err_row,
                              row_grids *rg)
{
    int64_t cols = job->cols;
    float *w = job->Wp + r * cols;
    for (int64_t i = i1; i < i2; i++) {
        int64_t c = job->perm[i];
        float dq = code_column(job, r, lr, c, w, i, rg);
        if (job->dequant)
            job->dequant[r * cols + c] = dq;
        const float *u = job->U + i * cols;
        float e = (w[i] - dq) / u[i];
        if (!isfinite(e)) /* a NaN or inf weight: do not spread it over the row */
            e = 0.0f;
        err_row[i - i1] = e;
        for (int64_t k = i + 1; k < i2; k++)
            w[k] -= e * u[k];
    }
}

/* Static grids (act_order): every group's grid from the original weights, up front. */
static void static_grids(const gptq_job *job, int64_t r0, int64_t r1, row_grids *rg)
{
    int64_t cols = job->cols, G = job->G;
    for (int64_t r = r0; r < r1; r++)
        for (int64_t j = 0; j < G; j++) {
            const float *x = job->W + r * cols + j * job->g;
            if (is_grid(job))
                mp_grid_fit(job->kind, x, job->importance + j * job->g, job->grid_opt.method,
                            &rg->blocks[(r - r0) * G + j]);
            else
                group_grid(job, x, j, &job->scales[r * G + j], &rg->zeros[(r - r0) * G + j]);
        }
}

/* The task's finished rows into the outputs: w4 zero points, or the grid blocks' bytes. */
static void store_rows(const gptq_job *job, int64_t r0, int64_t r1, const row_grids *rg)
{
    int64_t G = job->G;
    if (!is_grid(job)) {
        if (job->zeros)
            memcpy(job->zeros + r0 * G, rg->zeros, (size_t)((r1 - r0) * G));
        return;
    }
    int bytes = mp_ggml_block_bytes(job->kind);
    for (int64_t r = r0; r < r1; r++)
        for (int64_t j = 0; j < G; j++)
            mp_grid_pack(&rg->blocks[(r - r0) * G + j], rg->codes + (r - r0) * job->cols + j * job->g,
                         job->data + r * job->row_bytes + j * bytes);
}

/* Rows [r0, r1): all columns, block by block. err [ROW_BLOCK, block] and rg are this
 * task's scratch. */
static void quantize_row_block(const gptq_job *job, int64_t r0, int64_t r1, float *err, row_grids *rg)
{
    int64_t cols = job->cols, B = job->block;
    if (job->static_grids)
        static_grids(job, r0, r1, rg);
    for (int64_t i1 = 0; i1 < cols; i1 += B) {
        int64_t i2 = i1 + B < cols ? i1 + B : cols;
        for (int64_t r = r0; r < r1; r++)
            quantize_row_span(job, r, r - r0, i1, i2, err + (r - r0) * B, rg);
        if (i2 < cols) /* W[:, i2:] -= E U[i1:i2, i2:] */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(r1 - r0), (int)(cols - i2),
                        (int)(i2 - i1), -1.0f, err, (int)B, job->U + i1 * cols + i2, (int)cols, 1.0f,
                        job->Wp + r0 * cols + i2, (int)cols);
    }
    store_rows(job, r0, r1, rg);
}

/* Every row block, in parallel. Returns -1 when the scratch cannot be allocated. */
static int run_rows(const gptq_job *job)
{
    int threads = omp_get_max_threads();
    size_t err_n = (size_t)ROW_BLOCK * (size_t)job->block, g_n = (size_t)ROW_BLOCK * (size_t)job->G;
    size_t codes_n = is_grid(job) ? (size_t)ROW_BLOCK * (size_t)job->cols : 0;
    float *err = malloc((size_t)threads * err_n * sizeof *err);
    uint8_t *zbuf = malloc((size_t)threads * g_n);
    mp_grid_block *blocks = is_grid(job) ? malloc((size_t)threads * g_n * sizeof *blocks) : NULL;
    uint8_t *codes = is_grid(job) ? malloc((size_t)threads * codes_n) : NULL;
    int rc = err && zbuf && (!is_grid(job) || (blocks && codes)) ? 0 : -1;
    int64_t n_blocks = (job->rows + ROW_BLOCK - 1) / ROW_BLOCK;
    if (rc == 0)
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
        for (int64_t b = 0; b < n_blocks; b++) {
            int t = omp_get_thread_num();
            int64_t r0 = b * ROW_BLOCK, r1 = r0 + ROW_BLOCK < job->rows ? r0 + ROW_BLOCK : job->rows;
            row_grids rg = {.zeros = zbuf + (size_t)t * g_n, .blocks = blocks ? blocks + (size_t)t * g_n : NULL,
                            .codes = codes ? codes + (size_t)t * codes_n : NULL};
            quantize_row_block(job, r0, r1, err + (size_t)t * err_n, &rg);
        }
    free(err);
    free(zbuf);
    free(blocks);
    free(codes);
    return rc;
}

/* ---- decoding the result, the loss ---- */

/* Row r of the written arrays, decoded as the pack's decoder does. */
static void decode_row(const mp_encoding *e, int64_t cols, int64_t r, const uint8_t *data, const uint16_t *scales,
                       const uint8_t *zeros, float *out)
{
    if (e->kind != MP_ENC_W4) {
        int64_t blocks = cols / mp_ggml_block_values(e->kind);
        mp_ggml_decode_blocks(e->kind, data + r * blocks * mp_ggml_block_bytes(e->kind), blocks, out);
        return;
    }
    int64_t G = cols / e->group;
    const uint8_t *d = data + r * (cols / 2);
    for (int64_t c = 0; c < cols; c++) {
        int64_t k = r * G + c / e->group;
        uint8_t q = (c & 1) ? d[c / 2] >> 4 : d[c / 2] & 15;
        out[c] = mp_w4_decode(q, scales[k], e->sym ? 8 : zeros[k]);
    }
}

/* *loss = tr(dW H dW^T) = sum over rows of dw H dw^T, by row blocks. H is symmetric, so
 * dw H dw^T = 2 dw triu(H) dw^T - sum_c H_cc dw_c^2, and T = D triu(H) (dtrmm) costs half
 * of D H. Block sums are added in block order: the same at any thread count. Returns -1
 * when the scratch cannot be allocated. */
static int loss_of(const mp_encoding *e, int64_t rows, int64_t cols, const float *W, const double *H,
                   const uint8_t *data, const uint16_t *scales, const uint8_t *zeros, double *loss)
{
    int64_t n_blocks = (rows + ROW_BLOCK - 1) / ROW_BLOCK;
    int threads = omp_get_max_threads();
    size_t per = (size_t)ROW_BLOCK * (size_t)cols;
    double *D = malloc((size_t)threads * per * sizeof *D), *T = malloc((size_t)threads * per * sizeof *T);
    float *dec = malloc((size_t)threads * (size_t)cols * sizeof *dec);
    double *sums = calloc((size_t)n_blocks, sizeof *sums), *diag = malloc((size_t)cols * sizeof *diag);
    int rc = -1;
    if (D && T && dec && sums && diag) {
        for (int64_t c = 0; c < cols; c++)
            diag[c] = H[c * cols + c];
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
        for (int64_t b = 0; b < n_blocks; b++) {
            int t = omp_get_thread_num();
            int64_t r0 = b * ROW_BLOCK, r1 = r0 + ROW_BLOCK < rows ? r0 + ROW_BLOCK : rows;
            double *d = D + (size_t)t * per, *h = T + (size_t)t * per;
            float *x = dec + (size_t)t * (size_t)cols;
            for (int64_t r = r0; r < r1; r++) {
                decode_row(e, cols, r, data, scales, zeros, x);
                for (int64_t c = 0; c < cols; c++)
                    d[(r - r0) * cols + c] = (double)x[c] - (double)W[r * cols + c];
            }
            memcpy(h, d, (size_t)((r1 - r0) * cols) * sizeof *h);
            cblas_dtrmm(CblasRowMajor, CblasRight, CblasUpper, CblasNoTrans, CblasNonUnit, (int)(r1 - r0), (int)cols,
                        1.0, H, (int)cols, h, (int)cols);
            double s = 0.0;
            for (int64_t r = 0; r < r1 - r0; r++)
                for (int64_t c = 0; c < cols; c++) {
                    double dc = d[r * cols + c];
                    s += dc * (2.0 * h[r * cols + c] - diag[c] * dc);
                }
            sums[b] = s;
        }
        *loss = 0.0;
        for (int64_t b = 0; b < n_blocks; b++)
            *loss += sums[b];
        rc = 0;
    }
    free(D);
    free(T);
    free(dec);
    free(sums);
    free(diag);
    return rc;
}

/* ---- entry point ---- */

/* The fallback: plain rounding on the grids GPTQ would have used first. */
static void plain_rounding(const mp_encoding *e, const gptq_job *job)
{
    mp_w4_options o = job->grid_opt;
    o.importance = job->grid_opt.method == MP_W4_MSE ? job->importance : NULL;
    if (is_grid(job))
        mp_grid_quantize_rows(job->kind, job->rows, job->cols, job->W, o.importance, o.method,
                              job->data);
    else
        mp_w4_quantize_rows(e, job->rows, job->cols, job->W, 0, job->rows, &o, job->data, job->scales, job->zeros);
    if (job->dequant)
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < job->rows; r++)
            decode_row(e, job->cols, r, job->data, job->scales, job->zeros, job->dequant + r * job->cols);
}

/* U from double to f32 inside its own buffer (float k overwrites bytes 4k..4k+3, which
 * belong to doubles already read), then the buffer shrunk: the f32 copy costs no memory
 * beyond the double matrix. */
static float *shrink_to_f32(double *A, int64_t n)
{
    char *bytes = (char *)A;
    for (int64_t k = 0; k < n * n; k++) {
        double d;
        memcpy(&d, bytes + 8 * k, sizeof d);
        float f = (float)d;
        memcpy(bytes + 4 * k, &f, sizeof f);
    }
    void *smaller = realloc(A, (size_t)(n * n) * sizeof(float));
    return smaller ? smaller : (void *)A;
}

float *mp_gptq_inverse_factor(const double *H, int64_t cols, double rel_damp, bool *failed)
{
    *failed = false;
    int64_t *perm = malloc((size_t)cols * sizeof *perm);
    double *A = malloc((size_t)(cols * cols) * sizeof *A);
    if (!perm || !A || column_order(H, cols, false, perm) != 0) {
        free(perm);
        free(A);
        return NULL;
    }
    bool ok = factor_with_retries(H, cols, perm, rel_damp > 0.0 ? rel_damp : default_damp, A);
    free(perm);
    if (!ok) {
        free(A);
        *failed = true;
        return NULL;
    }
    return shrink_to_f32(A, cols);
}

/* diag H per column as the MSE grids' importance (dead columns 0), and W in visiting
 * order. Returns -1 when out of memory. */
static int prepare_rows(gptq_job *job, const double *H, bool with_copy)
{
    int64_t rows = job->rows, cols = job->cols;
    job->importance = malloc((size_t)cols * sizeof *job->importance);
    job->Wp = with_copy ? malloc((size_t)(rows * cols) * sizeof *job->Wp) : NULL;
    if (!job->importance || (with_copy && !job->Wp))
        return -1;
    for (int64_t c = 0; c < cols; c++)
        job->importance[c] = H[c * cols + c] > 0.0 ? (float)H[c * cols + c] : 0.0f;
    if (with_copy)
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < rows; r++)
            for (int64_t i = 0; i < cols; i++)
                job->Wp[r * cols + i] = job->W[r * cols + job->perm[i]];
    return 0;
}

static int effective_block(const mp_gptq_options *opt, int g, int64_t cols)
{
    int64_t b = opt->block > 0 ? opt->block : DEFAULT_BLOCK;
    b = (b + g - 1) / g * g;
    return (int)(b < cols ? b : cols);
}

static int out_of_memory(mp_error *err, const gptq_job *job)
{
    return mp_fail(err, MP_EXIT_IO, "gptq: out of memory for a %lld x %lld tensor", (long long)job->rows,
                   (long long)job->cols);
}

/* Everything after the argument checks; job's buffers are the caller's to free. */
static int quantize(gptq_job *job, const mp_encoding *e, const double *H, const mp_gptq_options *opt,
                    bool *fell_back, mp_error *err)
{
    int64_t cols = job->cols;
    int64_t *perm = malloc((size_t)cols * sizeof *perm);
    double *A = malloc((size_t)(cols * cols) * sizeof *A);
    job->perm = perm;
    if (!perm || !A || column_order(H, cols, opt->act_order, perm) != 0) {
        free(A);
        return out_of_memory(err, job);
    }
    if (!factor_with_retries(H, cols, perm, opt->damp > 0.0 ? opt->damp : default_damp, A)) {
        free(A);
        if (prepare_rows(job, H, false) != 0)
            return out_of_memory(err, job);
        plain_rounding(e, job);
        if (fell_back)
            *fell_back = true;
        return MP_OK;
    }
    job->U = shrink_to_f32(A, cols);
    if (prepare_rows(job, H, true) != 0 || run_rows(job) != 0)
        return out_of_memory(err, job);
    return MP_OK;
}

int mp_gptq_quantize(const mp_encoding *e, int64_t rows, int64_t cols, const float *W, const double *H,
                     const mp_gptq_options *opt, uint8_t *data, uint16_t *scales, uint8_t *zeros, float *dequant,
                     double *loss, bool *fell_back, mp_error *err)
{
    static const mp_gptq_options defaults = {0};
    char why[128];
    if (!opt)
        opt = &defaults;
    if (fell_back)
        *fell_back = false;
    if (loss)
        *loss = 0.0;
    bool grid = mp_ggml_is_grid(e->kind);
    if (e->kind != MP_ENC_W4 && !grid)
        return mp_fail(err, MP_EXIT_INPUT, "gptq: the encoding is neither w4 nor a llama.cpp grid");
    if (mp_encoding_unfit(e, rows, cols, why, sizeof why))
        return mp_fail(err, MP_EXIT_INPUT, "gptq: %s", why);
    if (rows <= 0 || cols <= 0)
        return MP_OK;

    int g = grid ? mp_ggml_block_values(e->kind) : e->group;
    gptq_job job = {
        .rows = rows, .cols = cols, .G = cols / g, .g = g, .kind = e->kind,
        .row_bytes = grid ? (uint64_t)(cols / g) * (uint64_t)mp_ggml_block_bytes(e->kind) : 0,
        .block = effective_block(opt, g, cols), .sym = e->sym, .static_grids = opt->act_order,
        .grid_opt = {.method = opt->mse_grid ? MP_W4_MSE : MP_W4_RTN},
        .W = W, .data = data, .scales = scales, .zeros = e->sym || grid ? NULL : zeros, .dequant = dequant,
    };
    int rc = quantize(&job, e, H, opt, fell_back, err);
    free(job.perm);
    free(job.importance);
    free(job.Wp);
    free(job.U);
    if (rc == MP_OK && loss && loss_of(e, rows, cols, W, H, data, scales, job.zeros, loss) != 0)
        rc = mp_fail(err, MP_EXIT_IO, "gptq: out of memory computing the loss of a %lld x %lld tensor",
                     (long long)rows, (long long)cols);
    return rc;
}
