/* Distillation onto the student's grids (moepack distill): the teacher runs beside
 * the student, layer by layer, on its own residual stream. For a student linear
 * y = W x reading rows x_s, whose teacher counterpart W_t reads x_t at the same
 * tokens, the stored tensor Q should minimise
 *
 *   sum ||W_t x_t - Q x_s||^2 = ||(W* - Q) x_s||^2 + const,   W* = W_t C H^-1,
 *
 * H = sum x_s x_s^T, C = sum x_t x_s^T (routed experts: both weighted by the gate
 * weight, as calibration weighs its Hessians). So W* is formed (ridge-damped towards
 * W_t: W* = (W_t C + l W_t)(H + l I)^-1, l = 1 % of mean diag H, which pulls the
 * directions the calibration rows barely span back to the teacher instead of to
 * zero) and handed to GPTQ with H on the student's own encoding. The teacher's Gram
 * G = sum x_t x_t^T only serves the report: the objective before (the student's
 * tensor as it was) and after (as stored), relative to sum ||W_t x_t||^2. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/linalg.h"
#include "calib_internal.h"
#include "ridge.h"

/* LAPACK (OpenBLAS exports it), column-major. */
extern void dposv_(const char *uplo, const int *n, const int *nrhs, double *a, const int *lda, double *b,
                   const int *ldb, int *info);

enum { TILE_ROWS = 256 };

int calib_teacher_sums_init(calib_teacher_sums *t, int64_t cols, mp_error *err)
{
    t->cols = cols;
    t->cross = calloc((size_t)(cols * cols), sizeof *t->cross);
    t->gram = calloc((size_t)(cols * cols), sizeof *t->gram);
    if (t->cross && t->gram)
        return MP_OK;
    calib_teacher_sums_free(t);
    return mp_fail(err, MP_EXIT_IO, "out of memory for %lld x %lld teacher statistics", (long long)cols,
                   (long long)cols);
}

void calib_teacher_sums_free(calib_teacher_sums *t)
{
    free(t->cross);
    free(t->gram);
    t->cross = t->gram = NULL;
}

/* f32 products per tile of rows, summed into double in tile order: the same bits at
 * any thread count (as mp_hessian_add). */
int calib_teacher_sums_add(calib_teacher_sums *t, const float *xt, const float *xs, const float *weight, int64_t n,
                           mp_error *err)
{
    int64_t d = t->cols;
    float *tile = malloc((size_t)(d * d) * sizeof *tile), *wt = malloc((size_t)(TILE_ROWS * d) * sizeof *wt);
    if (!tile || !wt) {
        free(tile);
        free(wt);
        return mp_fail(err, MP_EXIT_IO, "out of memory for teacher statistics");
    }
    for (int64_t r0 = 0; r0 < n; r0 += TILE_ROWS) {
        int64_t rows = n - r0 < TILE_ROWS ? n - r0 : TILE_ROWS;
        /* both sides of every product carry the row's weight, as in mp_hessian_add_weighted */
        for (int64_t r = 0; r < rows; r++) {
            float w = weight ? weight[r0 + r] * weight[r0 + r] : 1.0f;
            for (int64_t i = 0; i < d; i++)
                wt[r * d + i] = xt[(r0 + r) * d + i] * w;
        }
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)d, (int)d, (int)rows, 1.0f, wt, (int)d,
                    xs + r0 * d, (int)d, 0.0f, tile, (int)d);
        for (int64_t i = 0; i < d * d; i++)
            t->cross[i] += tile[i];
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)d, (int)d, (int)rows, 1.0f, wt, (int)d,
                    xt + r0 * d, (int)d, 0.0f, tile, (int)d);
        for (int64_t i = 0; i < d * d; i++)
            t->gram[i] += tile[i];
    }
    free(tile);
    free(wt);
    return MP_OK;
}

/* ---- the teacher's attention inputs, captured batch by batch ---- */

void calib_teacher_capture_reset(calib_teacher_capture *cap)
{
    cap->n_names = 0;
    cap->last_x = NULL;
}

void calib_teacher_capture_free(calib_teacher_capture *cap)
{
    for (int i = 0; i < CALIB_MAX_CAPTURE; i++)
        free(cap->rows[i]);
    memset(cap, 0, sizeof *cap);
}

void calib_teacher_capture_hook(void *user, const char *name, const float *x, int64_t n, int64_t cols)
{
    calib_teacher_capture *cap = user;
    if (cap->err.code != MP_OK)
        return;
    if (cap->n_names == CALIB_MAX_CAPTURE) {
        mp_fail(&cap->err, MP_EXIT_INPUT, "distill: more than %d attention linears", CALIB_MAX_CAPTURE);
        return;
    }
    int i = cap->n_names++;
    snprintf(cap->names[i], sizeof cap->names[i], "%s", name);
    /* q, k and v read one buffer: one copy serves them all */
    if (x == cap->last_x && i > 0 && cap->n[i - 1] == n && cap->cols[i - 1] == cols) {
        cap->same_as[i] = cap->same_as[i - 1];
    } else {
        size_t bytes = (size_t)(n * cols) * sizeof(float);
        if (cap->cap[i] < bytes) {
            free(cap->rows[i]);
            cap->rows[i] = malloc(bytes);
            cap->cap[i] = cap->rows[i] ? bytes : 0;
        }
        if (!cap->rows[i]) {
            mp_fail(&cap->err, MP_EXIT_IO, "out of memory for the teacher's %s rows", name);
            return;
        }
        memcpy(cap->rows[i], x, bytes);
        cap->same_as[i] = i;
    }
    cap->n[i] = n;
    cap->cols[i] = cols;
    cap->last_x = x;
}

const float *calib_teacher_rows(const calib_teacher_capture *cap, const char *name, int64_t n, int64_t cols)
{
    for (int i = 0; i < cap->n_names; i++)
        if (strcmp(cap->names[i], name) == 0)
            return cap->n[i] == n && cap->cols[i] == cols ? cap->rows[cap->same_as[i]] : NULL;
    return NULL;
}

/* ---- the fit of one linear ---- */

/* P = W_t C [rows, cols] in double, and sum ||W_t x_t||^2 = tr(W_t G W_t^T). */
static double teacher_products(const float *Wt, int64_t rows, int64_t cols, const calib_teacher_sums *t,
                               double *wt, double *P, double *scratch)
{
    for (int64_t i = 0; i < rows * cols; i++)
        wt[i] = Wt[i];
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)cols, (int)cols, 1.0, wt, (int)cols,
                t->cross, (int)cols, 0.0, P, (int)cols);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)cols, (int)cols, 1.0, wt, (int)cols,
                t->gram, (int)cols, 0.0, scratch, (int)cols);
    double norm = 0;
    for (int64_t i = 0; i < rows * cols; i++)
        norm += scratch[i] * wt[i];
    return norm;
}

/* sum ||W_t x_t - Q x_s||^2 = norm - 2 tr(P Q^T) + tr(Q H Q^T). */
static double objective(const float *Q, int64_t rows, int64_t cols, const double *H, const double *P, double norm,
                        double *q, double *scratch)
{
    for (int64_t i = 0; i < rows * cols; i++)
        q[i] = Q[i];
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)cols, (int)cols, 1.0, q, (int)cols, H,
                (int)cols, 0.0, scratch, (int)cols);
    double e = norm;
    for (int64_t i = 0; i < rows * cols; i++)
        e += q[i] * (scratch[i] - 2 * P[i]);
    return e;
}

/* W* = (P + l W_t)(H + l I)^-1 into W; l grows tenfold while H + l I is not positive
 * definite in floating point. false when no l worked (W untouched). */
static bool target_weights(const double *H, const double *P, const double *wt, int64_t rows, int64_t cols, float *W,
                           double *M, double *B)
{
    double mean = 0;
    for (int64_t i = 0; i < cols; i++)
        mean += H[i * cols + i];
    mean /= (double)cols;
    if (!(mean > 0))
        return false;
    int n = (int)cols, nrhs = (int)rows, info = 1;
    for (double l = 0.01 * mean; info != 0 && l <= 1e3 * mean; l *= 10) {
        memcpy(M, H, (size_t)(cols * cols) * sizeof *M);
        for (int64_t i = 0; i < cols; i++)
            M[i * cols + i] += l;
        /* B's columns (column-major [cols, rows]) are the rows of W*: row-major [rows, cols] */
        for (int64_t i = 0; i < rows * cols; i++)
            B[i] = P[i] + l * wt[i];
        dposv_("U", &n, &nrhs, M, &n, B, &n, &info);
    }
    if (info != 0)
        return false;
    for (int64_t i = 0; i < rows * cols; i++)
        W[i] = (float)B[i];
    return true;
}

/* A tensor the pack keeps in 16 or 32 bits: nothing to fit when the teacher is the
 * model itself (--keep means the checkpoint's values). */
static bool stored_exactly(calib_run *c, const char *name, int64_t rows, int64_t cols)
{
    mp_encoding enc;
    mp_error ignored = {0};
    return c->o->encoding(c->o->encoding_user, name, rows, cols, &enc, &ignored) == MP_OK &&
           (enc.kind == MP_ENC_F32 || enc.kind == MP_ENC_BF16 || enc.kind == MP_ENC_F16);
}

int calib_distill_commit(calib_run *c, const char *name, const char *teacher_name, const mp_hessian *H,
                         const calib_teacher_sums *t, int slot, mp_error *err)
{
    int64_t rows, cols, tr, tc;
    float *W = mp_engine_weight(c->engine, name, &rows, &cols);
    bool same_model = c->o->teacher->same_model;
    if (W && same_model && stored_exactly(c, name, rows, cols))
        return calib_commit(c, name, H, false, err);
    const float *Wt = mp_engine_weight(c->teacher, teacher_name, &tr, &tc);
    if (!W || !Wt || tr != rows || tc != cols || H->cols != cols || t->cols != cols)
        return mp_fail(err, MP_EXIT_INPUT, "distill: student %s [%lld, %lld] has no teacher %s of that shape", name,
                       (long long)rows, (long long)cols, teacher_name);
    size_t n = (size_t)(rows * cols), m = (size_t)(cols * cols);
    double *wt = malloc(n * sizeof *wt), *P = malloc(n * sizeof *P), *scratch = malloc(n * sizeof *scratch);
    double *q = malloc(n * sizeof *q), *M = malloc(m * sizeof *M);
    int rc = wt && P && scratch && q && M ? MP_OK : mp_fail(err, MP_EXIT_IO, "out of memory fitting %s", name);
    if (rc == MP_OK) {
        double norm = teacher_products(Wt, rows, cols, t, wt, P, scratch);
        double before = objective(W, rows, cols, H->h, P, norm, q, scratch);
        /* no usable rows (H zero or not finite): distill leaves the tensor as the student
         * stores it; gptq's original target quantizes it unfitted */
        bool fitted = target_weights(H->h, P, wt, rows, cols, W, M, scratch);
        if (fitted || same_model)
            rc = calib_commit(c, name, H, true, err);
        double after = fitted && rc == MP_OK ? objective(W, rows, cols, H->h, P, norm, q, scratch) : before;
        c->fit_slots[slot].before += before;
        c->fit_slots[slot].after += after;
        c->fit_slots[slot].norm += norm;
        c->fit_slots[slot].tensors++;
    }
    free(wt);
    free(P);
    free(scratch);
    free(q);
    free(M);
    return rc;
}

/* ---- an MLP: gate and up from the input rows, down from the fitted activations ---- */

int calib_distill_mlp(calib_run *c, int li, const calib_mlp_rows *in, mp_error *err)
{
    char s_name[3][96], t_name[3][96];
    const char *parts[3] = {"gate", "up", "down"};
    for (int i = 0; i < 3; i++) {
        calib_mlp_name(s_name[i], sizeof s_name[i], li, in->which, parts[i]);
        calib_mlp_name(t_name[i], sizeof t_name[i], li, in->teacher_which, parts[i]);
    }
    int64_t width, cols, d = c->cfg->hidden;
    if (!mp_engine_weight(c->engine, s_name[1], &width, &cols))
        return mp_fail(err, MP_EXIT_INPUT, "distill: %s is not loaded", s_name[1]);
    int slot = in->which >= 0 ? in->which + 1 : 0;
    mp_hessian H = {0}, Ha = {0};
    calib_teacher_sums T = {0}, Ta = {0};
    float *act = malloc((size_t)(in->n * width + 1) * sizeof *act), *act_t = malloc((size_t)(in->n * width + 1) * sizeof *act_t);
    int rc = act && act_t ? mp_hessian_init(&H, d, err) : mp_fail(err, MP_EXIT_IO, "out of memory for %s", s_name[1]);
    if (rc == MP_OK)
        rc = in->weight ? mp_hessian_add_weighted(&H, in->x, in->weight, in->n, err) : mp_hessian_add(&H, in->x, in->n, err);
    if (rc == MP_OK && (rc = calib_teacher_sums_init(&T, d, err)) == MP_OK)
        rc = calib_teacher_sums_add(&T, in->xt, in->x, in->weight, in->n, err);
    for (int i = 0; i < 2 && rc == MP_OK; i++)
        rc = calib_distill_commit(c, s_name[i], t_name[i], &H, &T, slot, err);
    if (rc == MP_OK)
        rc = mp_engine_mlp_act(c->engine, li, in->which, in->x, in->n, act, err);
    if (rc == MP_OK)
        rc = mp_engine_mlp_act(c->teacher, li, in->teacher_which, in->xt, in->n, act_t, err);
    if (rc == MP_OK && (rc = mp_hessian_init(&Ha, width, err)) == MP_OK)
        rc = in->weight ? mp_hessian_add_weighted(&Ha, act, in->weight, in->n, err) : mp_hessian_add(&Ha, act, in->n, err);
    if (rc == MP_OK && (rc = calib_teacher_sums_init(&Ta, width, err)) == MP_OK)
        rc = calib_teacher_sums_add(&Ta, act_t, act, in->weight, in->n, err);
    if (rc == MP_OK)
        rc = calib_distill_commit(c, s_name[2], t_name[2], &Ha, &Ta, slot, err);
    mp_hessian_free(&H);
    mp_hessian_free(&Ha);
    calib_teacher_sums_free(&T);
    calib_teacher_sums_free(&Ta);
    free(act);
    free(act_t);
    return rc;
}

/* ---- the router: ridge least squares to the teacher's logits ---- */

/* The teacher's router rows in the student's expert order. */
static int mapped_router(calib_run *c, int li, float *wk, int n_student, mp_error *err)
{
    char name[48];
    int64_t rows, cols, d = c->cfg->hidden;
    snprintf(name, sizeof name, "layers.%d.router", li);
    const float *w = mp_engine_weight(c->teacher, name, &rows, &cols);
    if (!w || cols != d)
        return mp_fail(err, MP_EXIT_INPUT, "distill: the teacher's %s is not a [*, %lld] matrix", name, (long long)d);
    for (int x = 0; x < n_student; x++) {
        int tx = calib_teacher_expert(c, li, x);
        if (tx < 0 || tx >= rows)
            return mp_fail(err, MP_EXIT_INPUT, "distill: layer %d expert %d maps to teacher expert %d of %lld", li, x,
                           tx, (long long)rows);
        memcpy(wk + (int64_t)x * d, w + (int64_t)tx * d, (size_t)d * sizeof *w);
    }
    return MP_OK;
}

int calib_distill_router(calib_run *c, int li, const float *hs, const float *ht, mp_error *err)
{
    char name[48];
    int64_t rows, cols, d = c->cfg->hidden, per = (int64_t)c->batch_seqs * c->ctx;
    snprintf(name, sizeof name, "layers.%d.router", li);
    float *W = mp_engine_weight(c->engine, name, &rows, &cols);
    if (!W || cols != d)
        return mp_fail(err, MP_EXIT_INPUT, "distill: the student's %s is not a [*, %lld] matrix", name, (long long)d);
    int k = (int)rows;
    mp_ridge fit = {0};
    float *wk = malloc((size_t)(k * d) * sizeof *wk), *L = malloc((size_t)(per * k) * sizeof *L);
    float *solved = malloc((size_t)(k * d) * sizeof *solved);
    int rc = wk && L && solved && mp_ridge_init(&fit, d, k, per) == MP_OK
                 ? mapped_router(c, li, wk, k, err)
                 : mp_fail(err, MP_EXIT_IO, "out of memory fitting %s", name);
    for (int64_t r0 = 0; r0 < c->n && rc == MP_OK; r0 += per) {
        int64_t n = c->n - r0 < per ? c->n - r0 : per;
        mp_matmul_nt(ht + r0 * d, n, d, wk, k, L);
        mp_ridge_add(&fit, hs + r0 * d, L, n);
    }
    mp_calib_fit *out = &c->report->fits[li];
    if (rc == MP_OK && fit.c > 0 && mp_ridge_trace(&fit) > 0) {
        /* the router refit's regularisation (prune/router_fit.h) */
        double lambda = 1e-3 * mp_ridge_trace(&fit) / (double)d;
        out->router_before = mp_ridge_residual(&fit, W) / fit.c;
        if (mp_ridge_solve(&fit, W, lambda, solved) != MP_OK)
            rc = mp_fail(err, MP_EXIT_INPUT, "distill: the router inputs of layer %d are not positive definite", li);
        if (rc == MP_OK) {
            memcpy(W, solved, (size_t)(k * d) * sizeof *W);
            rc = calib_commit(c, name, NULL, true, err);
        }
        out->router_after = mp_ridge_residual(&fit, W) / fit.c;
    }
    mp_ridge_free(&fit);
    free(wk);
    free(L);
    free(solved);
    return rc;
}

int calib_teacher_expert(const calib_run *c, int li, int expert)
{
    const mp_calib_teacher *t = c->o->teacher;
    return t->expert_of ? t->expert_of[(int64_t)li * c->cfg->routing.n_experts + expert] : expert;
}
