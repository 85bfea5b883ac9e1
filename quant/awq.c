/* AWQ on w4 grids; the math and the conventions are in awq.h. */
#include "awq.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "w4.h"

/* ROW_BLOCK: rows per OpenMP task. The quadratic forms of a block are one dgemm
 * (E H, E the block's error rows), so H is streamed once per block, not once per row;
 * blocks are fixed, so every result is the same at any thread count.
 * LANES: partial sums of a dot product; the compiler does not reassociate a double sum
 * by itself, and with them it vectorizes. Groups are multiples of it.
 * CLIP_STEPS: the clip factors p = 1 - i / (2 CLIP_STEPS), i = 0..CLIP_STEPS (1 .. 0.5),
 * CLIP_CANDIDATES of them. */
enum { ROW_BLOCK = 32, LANES = 8, CLIP_STEPS = 20, SIDE_STEPS = 7, MAX_GROUP = 128,
       CLIP_CANDIDATES = CLIP_STEPS + 1 + SIDE_STEPS * SIDE_STEPS };

/* Asymmetric grids also try the two ends shrunk independently (a skewed group often
 * wants one tail clipped and the other kept): these factors for each end. */
static const float side_factors[SIDE_STEPS] = {1.0f, 0.95f, 0.9f, 0.85f, 0.8f, 0.7f, 0.6f};

/* AutoAWQ clamps mean|x|^r from below at 1e-4 so that one near-dead channel cannot
 * blow up the normalisation sqrt(max * min). */
static const double scale_floor = 1e-4;

/* ---- scale candidates ---- */

static double raw_scale(float mean_abs, double r)
{
    if (!(mean_abs > 0.0f) || !isfinite(mean_abs)) /* dead or broken channel: neutral */
        return 1.0;
    double v = pow((double)mean_abs, r);
    return v > scale_floor ? v : scale_floor;
}

void mp_awq_candidate(const float *mean_abs, int64_t cols, int k, int n, float *s)
{
    if (k <= 0 || n <= 0) {
        for (int64_t c = 0; c < cols; c++)
            s[c] = 1.0f;
        return;
    }
    double r = (double)k / n, mx = 0.0, mn = INFINITY;
    for (int64_t c = 0; c < cols; c++) {
        double v = raw_scale(mean_abs[c], r);
        mx = v > mx ? v : mx;
        mn = v < mn ? v : mn;
    }
    double norm = sqrt(mx * mn);
    for (int64_t c = 0; c < cols; c++) /* recomputed rather than stored: no scratch */
        s[c] = (float)(raw_scale(mean_abs[c], r) / norm);
}

void mp_awq_candidate_duo(const float *mean_abs, const float *w_mean, int64_t cols, int k, int n, float *s)
{
    double r = n > 0 ? (double)k / n : 0.0, mx = 0.0, mn = INFINITY;
    for (int64_t c = 0; c < cols; c++) {
        double v = raw_scale(mean_abs[c], r) / (pow(w_mean[c] > 0.0f ? w_mean[c] : 1.0, 1.0 - r) + 1e-4);
        s[c] = (float)(v > 1e-4 ? v : 1e-4);
        mx = s[c] > mx ? s[c] : mx;
        mn = s[c] < mn ? s[c] : mn;
    }
    double norm = sqrt(mx * mn);
    for (int64_t c = 0; c < cols; c++)
        s[c] = (float)(s[c] / norm);
}

void mp_awq_weight_mean(const float *W, int64_t rows, int64_t cols, int group, double *sum)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t g0 = 0; g0 < cols; g0 += group) {
            const float *x = W + r * cols + g0;
            float mx = 0.0f;
            for (int i = 0; i < group; i++)
                mx = fmaxf(mx, fabsf(x[i]));
            for (int i = 0; i < group; i++)
                sum[g0 + i] += fabsf(x[i]) / (mx + 1e-6f);
        }
}

/* ---- grids and errors ---- */

typedef struct {
    uint16_t bits;
    uint8_t zero;
} awq_grid;

static awq_grid rtn_grid(const float *x, int g, bool sym)
{
    awq_grid grid;
    mp_w4_group_grid(x, g, sym, NULL, &grid.bits, &grid.zero);
    return grid;
}

static float decoded(float x, awq_grid grid)
{
    return mp_w4_decode(mp_w4_code(x, grid.bits, grid.zero), grid.bits, grid.zero);
}

/* err = (decoded - x) / s over one group (s NULL: 1), in double: the error in the
 * original, unscaled domain, where H applies. */
static void group_error(const float *x, int g, awq_grid grid, const float *s, double *err)
{
    for (int i = 0; i < g; i++) {
        double d = (double)decoded(x[i], grid) - (double)x[i];
        err[i] = s ? d / (double)s[i] : d;
    }
}

static double dot(const double *a, const double *b, int64_t n)
{
    double acc[LANES] = {0};
    for (int64_t i = 0; i < n; i += LANES)
        for (int k = 0; k < LANES; k++)
            acc[k] += a[i + k] * b[i + k];
    double t = 0.0;
    for (int k = 0; k < LANES; k++)
        t += acc[k];
    return t;
}

/* The quadratic forms out[i] = E_i^T B E_i of the nr rows E_i (length n, stride lde)
 * with the n x n matrix B (row stride ldb): one dgemm Y = E B, then row dots. y holds
 * nr * n doubles. Results depend on the shapes and the data only. */
static void quadratic_forms(const double *E, int64_t nr, int64_t n, int64_t lde, const double *B, int64_t ldb,
                            double *y, double *out)
{
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nr, (int)n, (int)n, 1.0, E, (int)lde, B, (int)ldb,
                0.0, y, (int)n);
    for (int64_t i = 0; i < nr; i++)
        out[i] = dot(E + i * lde, y + i * n, n);
}

/* ---- blocks of rows ---- */

typedef struct {
    int g;
    bool sym;
    int64_t cols, G;
    const double *H;
} awq_shape;

/* Per-thread scratch for a block of ROW_BLOCK rows. */
typedef struct {
    float *x;                     /* one scaled row */
    double *E, *E_clip;           /* error rows of the RTN and of the clipped grids */
    double *Y;                    /* E H */
    awq_grid *grids, *grids_clip; /* ROW_BLOCK * G */
    double *Ec, *Yc;              /* clip candidates of one group: ROW_BLOCK * CLIP_CANDIDATES errors, and Ec Hgg */
    awq_grid *cand;               /* their grids */
    double loss[ROW_BLOCK], loss_clip[ROW_BLOCK], loss_cand[ROW_BLOCK * CLIP_CANDIDATES];
} awq_scratch;

static void scratch_free(awq_scratch *sc)
{
    free(sc->x);
    free(sc->E);
    free(sc->E_clip);
    free(sc->Y);
    free(sc->grids);
    free(sc->grids_clip);
    free(sc->Ec);
    free(sc->Yc);
    free(sc->cand);
}

static bool scratch_alloc(awq_scratch *sc, const awq_shape *sh)
{
    size_t n = (size_t)(ROW_BLOCK * sh->cols), ng = (size_t)(ROW_BLOCK * sh->G);
    size_t nc = (size_t)ROW_BLOCK * CLIP_CANDIDATES;
    *sc = (awq_scratch){
        .x = malloc((size_t)sh->cols * sizeof(float)),
        .E = malloc(n * sizeof(double)),
        .E_clip = malloc(n * sizeof(double)),
        .Y = malloc(n * sizeof(double)),
        .grids = malloc(ng * sizeof(awq_grid)),
        .grids_clip = malloc(ng * sizeof(awq_grid)),
        .Ec = malloc(nc * (size_t)sh->g * sizeof(double)),
        .Yc = malloc(nc * (size_t)sh->g * sizeof(double)),
        .cand = malloc(nc * sizeof(awq_grid)),
    };
    if (sc->x && sc->E && sc->E_clip && sc->Y && sc->grids && sc->grids_clip && sc->Ec && sc->Yc && sc->cand)
        return true;
    scratch_free(sc);
    return false;
}

/* RTN grids of row x (already scaled) into grids[G] and its error (decoded - x) / s
 * into err[cols]. */
static void rtn_row(const awq_shape *sh, const float *x, const float *s, awq_grid *grids, double *err)
{
    for (int64_t j = 0; j < sh->G; j++) {
        int64_t c0 = j * sh->g;
        grids[j] = rtn_grid(x + c0, sh->g, sh->sym);
        group_error(x + c0, sh->g, grids[j], s ? s + c0 : NULL, err + c0);
    }
}

/* ---- clip search ---- */

/* The least min and greatest max of a group, NaN ignored. */
static void min_max(const float *x, int g, float *mn, float *mx)
{
    float lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < g; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
    }
    *mn = lo;
    *mx = hi;
}

/* The RTN grid of the group clamped to [p min, p max]. Clamping to p [min, max] rather
 * than to +-p max|x| keeps the sign of the symmetric extreme m, so the symmetric grid
 * is exactly s = f16(p m / -8); the asymmetric one covers [min(0, p min), max(0, p max)]. */
static awq_grid clipped_grid(const float *x, int g, bool sym, float p_lo, float p_hi, float mn, float mx)
{
    float lo = p_lo * mn, hi = p_hi * mx, xc[MAX_GROUP];
    for (int k = 0; k < g; k++)
        xc[k] = x[k] < lo ? lo : x[k] > hi ? hi : x[k];
    return rtn_grid(xc, g, sym);
}

/* AutoAWQ's clip search on group j of the nr rows of a block (awq.h): every candidate's
 * error on the unclamped values, their dW_g^T Hgg dW_g in one dgemm, and per row the
 * least (ties keep the larger p; candidate 0, p = 1, is the RTN grid). The winners go to
 * grids_clip and E_clip. */
static void clip_group(const awq_shape *sh, const float *W, int64_t r0, int nr, int64_t j, awq_scratch *sc)
{
    int g = sh->g;
    int64_t c0 = j * g;
    for (int i = 0; i < nr; i++) {
        const float *x = W + (r0 + i) * sh->cols + c0;
        float mn, mx;
        min_max(x, g, &mn, &mx);
        for (int k = 0; k < CLIP_CANDIDATES; k++) {
            float p = 1.0f - (float)k / (float)(2 * CLIP_STEPS), p_lo = p, p_hi = p;
            if (k > CLIP_STEPS) { /* the independent pairs; symmetric grids repeat the RTN one */
                p_lo = sh->sym ? 1.0f : side_factors[(k - CLIP_STEPS - 1) / SIDE_STEPS];
                p_hi = sh->sym ? 1.0f : side_factors[(k - CLIP_STEPS - 1) % SIDE_STEPS];
            }
            awq_grid *cand = &sc->cand[i * CLIP_CANDIDATES + k];
            *cand = k == 0 ? rtn_grid(x, g, sh->sym) : clipped_grid(x, g, sh->sym, p_lo, p_hi, mn, mx);
            group_error(x, g, *cand, NULL, sc->Ec + (int64_t)(i * CLIP_CANDIDATES + k) * g);
        }
    }
    quadratic_forms(sc->Ec, (int64_t)nr * CLIP_CANDIDATES, g, g, sh->H + c0 * sh->cols + c0, sh->cols, sc->Yc,
                    sc->loss_cand);
    for (int i = 0; i < nr; i++) {
        int best = i * CLIP_CANDIDATES;
        for (int k = best + 1; k < (i + 1) * CLIP_CANDIDATES; k++)
            best = sc->loss_cand[k] < sc->loss_cand[best] ? k : best;
        sc->grids_clip[i * sh->G + j] = sc->cand[best];
        memcpy(sc->E_clip + i * sh->cols + c0, sc->Ec + (int64_t)best * g, (size_t)g * sizeof(double));
    }
}

/* ---- the two jobs on a block ---- */

/* Losses of rows [r0, r0 + nr) of W diag(s) on their RTN grids. */
static void loss_block(const awq_shape *sh, const float *W, const float *s, int64_t r0, int nr, awq_scratch *sc,
                       double *row_loss)
{
    for (int i = 0; i < nr; i++) {
        const float *w = W + (r0 + i) * sh->cols;
        for (int64_t c = 0; c < sh->cols; c++)
            sc->x[c] = s ? w[c] * s[c] : w[c];
        rtn_row(sh, sc->x, s, sc->grids, sc->E + i * sh->cols);
    }
    quadratic_forms(sc->E, nr, sh->cols, sh->cols, sh->H, sh->cols, sc->Y, row_loss + r0);
}

typedef struct {
    uint8_t *data;
    uint16_t *scales;
    uint8_t *zeros;
    float *dequant;
} awq_out;

/* Codes, scales, zero points and decoded values of row r (values x) on grids[G]. */
static void write_row(const awq_shape *sh, const float *x, const awq_grid *grids, int64_t r, const awq_out *out)
{
    uint8_t *data = out->data + r * (sh->cols / 2);
    float *deq = out->dequant ? out->dequant + r * sh->cols : NULL;
    for (int64_t j = 0; j < sh->G; j++) {
        awq_grid grid = grids[j];
        out->scales[r * sh->G + j] = grid.bits;
        if (!sh->sym)
            out->zeros[r * sh->G + j] = grid.zero;
        for (int64_t c = j * sh->g; c < (j + 1) * sh->g; c += 2) {
            uint8_t q0 = mp_w4_code(x[c], grid.bits, grid.zero), q1 = mp_w4_code(x[c + 1], grid.bits, grid.zero);
            data[c / 2] = (uint8_t)(q0 | q1 << 4);
            if (deq) {
                deq[c] = mp_w4_decode(q0, grid.bits, grid.zero);
                deq[c + 1] = mp_w4_decode(q1, grid.bits, grid.zero);
            }
        }
    }
}

/* Rows [r0, r0 + nr): RTN grids, clipped grids when asked, the full loss of both, and
 * per row the clipped grids only when they do not lose in the full loss (awq.h). */
static void quantize_block(const awq_shape *sh, const float *W, bool clip, int64_t r0, int nr, awq_scratch *sc,
                           const awq_out *out, double *row_loss)
{
    for (int i = 0; i < nr; i++)
        rtn_row(sh, W + (r0 + i) * sh->cols, NULL, sc->grids + i * sh->G, sc->E + i * sh->cols);
    quadratic_forms(sc->E, nr, sh->cols, sh->cols, sh->H, sh->cols, sc->Y, sc->loss);
    if (clip) {
        for (int64_t j = 0; j < sh->G; j++)
            clip_group(sh, W, r0, nr, j, sc);
        quadratic_forms(sc->E_clip, nr, sh->cols, sh->cols, sh->H, sh->cols, sc->Y, sc->loss_clip);
    }
    for (int i = 0; i < nr; i++) {
        bool use_clip = clip && sc->loss_clip[i] <= sc->loss[i];
        row_loss[r0 + i] = use_clip ? sc->loss_clip[i] : sc->loss[i];
        const awq_grid *grids = (use_clip ? sc->grids_clip : sc->grids) + i * sh->G;
        write_row(sh, W + (r0 + i) * sh->cols, grids, r0 + i, out);
    }
}

/* ---- entry points ---- */

typedef enum { JOB_LOSS, JOB_QUANTIZE } awq_job_kind;

typedef struct {
    awq_job_kind kind;
    const float *W, *s; /* s: JOB_LOSS only */
    bool clip;
    awq_out out;
} awq_job;

/* Runs a job over every row in parallel blocks of ROW_BLOCK rows; returns the sum of the
 * per-row losses in row order, or NaN when scratch could not be allocated. */
static double run_rows(const awq_shape *sh, int64_t rows, const awq_job *job)
{
    double *row_loss = malloc((size_t)(rows > 0 ? rows : 1) * sizeof(double));
    if (!row_loss)
        return NAN;
    int64_t blocks = (rows + ROW_BLOCK - 1) / ROW_BLOCK;
    int failed = 0;
#pragma omp parallel if (blocks > 1)
    {
        awq_scratch sc;
        bool ok = scratch_alloc(&sc, sh);
        if (!ok) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t b = 0; b < blocks; b++) {
            int64_t r0 = b * ROW_BLOCK;
            int nr = rows - r0 < ROW_BLOCK ? (int)(rows - r0) : ROW_BLOCK;
            if (!ok)
                continue;
            if (job->kind == JOB_LOSS)
                loss_block(sh, job->W, job->s, r0, nr, &sc, row_loss);
            else
                quantize_block(sh, job->W, job->clip, r0, nr, &sc, &job->out, row_loss);
        }
        if (ok)
            scratch_free(&sc);
    }
    double total = failed ? NAN : 0.0;
    for (int64_t r = 0; r < rows && !failed; r++)
        total += row_loss[r];
    free(row_loss);
    return total;
}

static awq_shape shape_of(const mp_encoding *e, int64_t cols, const double *H)
{
    return (awq_shape){.g = e->group, .sym = e->sym, .cols = cols, .G = cols / e->group, .H = H};
}

double mp_awq_loss(const mp_encoding *e, int64_t rows, int64_t cols, const float *W, const float *s, const double *H)
{
    awq_shape sh = shape_of(e, cols, H);
    awq_job job = {.kind = JOB_LOSS, .W = W, .s = s};
    return run_rows(&sh, rows, &job);
}

double mp_awq_quantize(const mp_encoding *e, int64_t rows, int64_t cols, const float *W, const double *H, bool clip,
                       uint8_t *data, uint16_t *scales, uint8_t *zeros, float *dequant)
{
    awq_shape sh = shape_of(e, cols, H);
    awq_job job = {.kind = JOB_QUANTIZE,
                   .W = W,
                   .clip = clip,
                   .out = {.data = data, .scales = scales, .zeros = zeros, .dequant = dequant}};
    return run_rows(&sh, rows, &job);
}

int mp_awq_best_scale(const mp_encoding *e, int64_t rows, int64_t cols, const float *W, const float *mean_abs,
                      const double *H, int n, float *s, double *loss)
{
    n = n > 0 ? n : MP_AWQ_CANDIDATES;
    float *cand = malloc((size_t)(cols > 0 ? cols : 1) * sizeof(float));
    if (!cand)
        return -1;
    int best = 0;
    double best_loss = NAN;
    mp_awq_candidate(mean_abs, cols, 0, n, s); /* the fallback when every loss is NaN */
    for (int k = 0; k < n; k++) {
        mp_awq_candidate(mean_abs, cols, k, n, cand);
        double l = mp_awq_loss(e, rows, cols, W, cand, H);
        /* strict: ties keep the smaller k; a NaN never wins */
        if (isnan(best_loss) ? !isnan(l) : l < best_loss) {
            best = k;
            best_loss = l;
            memcpy(s, cand, (size_t)cols * sizeof(float));
        }
    }
    free(cand);
    if (loss)
        *loss = best_loss;
    return best;
}
