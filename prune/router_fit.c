/* The refit pass: the original and the pruned pack run side by side, layer by layer,
 * each on its own residual stream. At a MoE layer the pruned stream's router inputs
 * and the original's kept logits are summed into X^T X and X^T L over all batches,
 * the rows are solved for and stored, and only then does the pruned stream take its
 * MLP step, so that the layers above see the refit router. */
#include "router_fit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/progress.h"
#include "../engine/chunks.h"
#include "../engine/linalg.h"
#include "../engine/model_run.h"
#include "../quant/encoder.h"

typedef struct {
    mp_model_run orig, pruned;
    const mp_config *cfg; /* the pruned model's */
    float *xo, *xp;       /* the two residual streams [n, hidden] */
    int n_seq, ctx, batch_seqs, keep;
    int64_t n, d;
    float *ho, *hp, *lo, *wk; /* a batch's router inputs and kept logits; the original's kept rows */
    double *A, *B, *xt, c;    /* X^T X [d, d] (upper triangle), X^T L [d, keep], a batch transposed, ||L||^2 */
    mp_progress progress;
} refit_run;

static int embed_stream(mp_engine *e, const mp_chunks *chunks, int n_seq, int ctx, int64_t d, float *x, mp_error *err)
{
    int32_t *tokens = malloc((size_t)ctx * sizeof *tokens);
    int rc = tokens ? MP_OK : mp_fail(err, MP_EXIT_IO, "out of memory");
    for (int q = 0; q < n_seq && rc == MP_OK; q++) {
        mp_chunks_get(chunks, q, tokens);
        rc = mp_engine_embed(e, tokens, ctx, x + (int64_t)q * ctx * d, err);
    }
    free(tokens);
    return rc;
}

/* A += X^T X, B += X^T L, c += ||L||^2 for the batch's rows (X = hp, L = lo). Every
 * entry is one thread's sum over the rows in order: deterministic at any thread count. */
static void accumulate(refit_run *r, int64_t rows)
{
    int64_t d = r->d, keep = r->keep;
    for (int64_t t = 0; t < rows; t++)
        for (int64_t i = 0; i < d; i++)
            r->xt[i * rows + t] = r->hp[t * d + i];
#pragma omp parallel for schedule(dynamic, 4)
    for (int64_t i = 0; i < d; i++) {
        const double *u = r->xt + i * rows;
        for (int64_t j = i; j < d; j++) {
            const double *v = r->xt + j * rows;
            double s = 0;
            for (int64_t t = 0; t < rows; t++)
                s += u[t] * v[t];
            r->A[i * d + j] += s;
        }
        for (int64_t k = 0; k < keep; k++) {
            double s = 0;
            for (int64_t t = 0; t < rows; t++)
                s += u[t] * (double)r->lo[t * keep + k];
            r->B[i * keep + k] += s;
        }
    }
    for (int64_t t = 0; t < rows * keep; t++)
        r->c += (double)r->lo[t] * (double)r->lo[t];
}

/* ||X W^T - L||^2 from the sums: sum_k w_k^T A w_k - 2 w_k^T B_k, plus ||L||^2. */
static double residual(const refit_run *r, const float *W)
{
    int64_t d = r->d, keep = r->keep;
    double res = r->c;
    for (int64_t k = 0; k < keep; k++) {
        const float *w = W + k * d;
        for (int64_t i = 0; i < d; i++) {
            double row = 0;
            for (int64_t j = i + 1; j < d; j++)
                row += r->A[i * d + j] * (double)w[j];
            res += (double)w[i] * ((double)w[i] * r->A[i * d + i] + 2 * row) - 2 * (double)w[i] * r->B[i * keep + k];
        }
    }
    return res;
}

/* W = (A + lambda I)^-1 (B + lambda W0^T), row by row of W, by Cholesky in double. */
static int solve(const refit_run *r, const float *w0, double lambda, float *W)
{
    int64_t d = r->d, keep = r->keep;
    double *M = malloc((size_t)(d * d) * sizeof *M), *y = malloc((size_t)d * sizeof *y);
    int rc = M && y ? MP_OK : MP_EXIT_IO;
    for (int64_t i = 0; rc == MP_OK && i < d; i++) /* lower triangle of A + lambda I */
        for (int64_t j = 0; j <= i; j++)
            M[i * d + j] = r->A[j * d + i] + (i == j ? lambda : 0.0);
    for (int64_t j = 0; rc == MP_OK && j < d; j++) {
        double s = M[j * d + j];
        for (int64_t k = 0; k < j; k++)
            s -= M[j * d + k] * M[j * d + k];
        if (!(s > 0)) {
            rc = MP_EXIT_INPUT;
            break;
        }
        M[j * d + j] = sqrt(s);
        for (int64_t i = j + 1; i < d; i++) {
            double t = M[i * d + j];
            for (int64_t k = 0; k < j; k++)
                t -= M[i * d + k] * M[j * d + k];
            M[i * d + j] = t / M[j * d + j];
        }
    }
    for (int64_t k = 0; rc == MP_OK && k < keep; k++) {
        for (int64_t i = 0; i < d; i++) { /* L y = b */
            double s = r->B[i * keep + k] + lambda * (double)w0[k * d + i];
            for (int64_t j = 0; j < i; j++)
                s -= M[i * d + j] * y[j];
            y[i] = s / M[i * d + i];
        }
        for (int64_t i = d - 1; i >= 0; i--) { /* L^T w = y */
            double s = y[i];
            for (int64_t j = i + 1; j < d; j++)
                s -= M[j * d + i] * y[j];
            y[i] = s / M[i * d + i];
        }
        for (int64_t i = 0; i < d; i++)
            W[k * d + i] = (float)y[i];
    }
    free(M);
    free(y);
    return rc;
}

/* Encodes the fitted rows as the pruned pack stores its router, stages them, and puts
 * the values they decode to into the pruned engine (what the layers above will see). */
static int store_router(const mp_pack *pruned, int li, const float *W, float *w_engine, mp_stage *stage,
                        mp_error *err)
{
    char name[48];
    snprintf(name, sizeof name, "layers.%d.router", li);
    int ti = mp_pack_find(pruned, name);
    if (ti < 0)
        return mp_fail(err, MP_EXIT_INPUT, "%s: no tensor %s", pruned->dir, name);
    const mp_pack_tensor *t = &pruned->tensors[ti];
    mp_w4_options w4 = {.method = MP_W4_MSE};
    mp_encoder x;
    int rc = mp_encoder_init(&x, &t->enc, t->rows, t->cols, &w4, err);
    if (rc != MP_OK)
        return rc;
    uint8_t *bytes = malloc(x.layout.total + 1);
    if (!bytes)
        rc = mp_fail(err, MP_EXIT_IO, "out of memory encoding %s", name);
    if (rc == MP_OK) {
        mp_encoder_whole(&x, W, bytes);
        rc = mp_stage_put(stage, name, &t->enc, bytes, x.layout.total, NULL, 0, err);
        mp_encoding_decode_rows(&t->enc, t->rows, t->cols, bytes, 0, t->rows, w_engine);
    }
    free(bytes);
    mp_encoder_free(&x);
    return rc;
}

/* The original's router rows of the kept experts, in their new order. */
static int kept_rows(refit_run *r, const mp_prune_layer *L, int li, int n_orig, mp_error *err)
{
    char name[48];
    int64_t rows, cols;
    snprintf(name, sizeof name, "layers.%d.router", li);
    const float *w = mp_engine_weight(r->orig.engine, name, &rows, &cols);
    if (!w || rows != n_orig || cols != r->d)
        return mp_fail(err, MP_EXIT_INPUT, "refit: the original %s is not a [%d, %lld] matrix", name, n_orig,
                       (long long)r->d);
    for (int e = 0; e < n_orig; e++)
        if (L->new_id[e] >= 0)
            memcpy(r->wk + (int64_t)L->new_id[e] * r->d, w + (int64_t)e * r->d, (size_t)r->d * sizeof *w);
    return MP_OK;
}

static int fit_layer(refit_run *r, const mp_pack *pruned, int li, mp_stage *stage, mp_refit_layer *out, mp_error *err)
{
    char name[48];
    int64_t rows, cols, d = r->d;
    snprintf(name, sizeof name, "layers.%d.router", li);
    float *w = mp_engine_weight(r->pruned.engine, name, &rows, &cols);
    if (!w || rows != r->keep || cols != d)
        return mp_fail(err, MP_EXIT_INPUT, "refit: the pruned %s is not a [%d, %lld] matrix", name, r->keep,
                       (long long)d);
    double trace = 0;
    for (int64_t i = 0; i < d; i++)
        trace += r->A[i * d + i];
    out->layer = li;
    out->lambda = 1e-3 * trace / (double)d;
    out->before = out->after = r->c > 0 ? residual(r, w) / r->c : 0;
    /* Nothing to fit, or inputs the pruning has not changed (the first MoE layer, or
     * nothing pruned): the rows stay as cut, byte for byte. 1e-10 is far above the
     * cancellation error of the residual formula (~1e-14 measured) and far below any
     * residual pruning leaves. */
    if (!(trace > 0) || !(r->c > 0) || out->before <= 1e-10)
        return MP_OK;
    float *W = malloc((size_t)(r->keep * d) * sizeof *W);
    int rc = W ? solve(r, w, out->lambda, W) : MP_EXIT_IO;
    if (rc != MP_OK) {
        free(W);
        return mp_fail(err, rc, "refit of %s: %s", name, rc == MP_EXIT_IO ? "out of memory" : "the system is not positive definite");
    }
    rc = store_router(pruned, li, W, w, stage, err);
    out->after = residual(r, w) / r->c;
    free(W);
    return rc;
}

static int layer_pass(refit_run *r, const mp_prune_plan *plan, const mp_pack *pruned, int li, int n_orig,
                      mp_stage *stage, mp_refit_result *res, mp_error *err)
{
    char router[48];
    snprintf(router, sizeof router, "layers.%d.router", li);
    bool moe = mp_wsrc_has(&r->pruned.src, router);
    const mp_prune_layer *L = moe ? mp_prune_plan_find(plan, li) : NULL;
    int64_t d = r->d;
    int rc = mp_engine_layer_load(r->orig.engine, li, err);
    if (rc == MP_OK)
        rc = mp_engine_layer_load(r->pruned.engine, li, err);
    if (rc == MP_OK && moe && !L)
        rc = mp_fail(err, MP_EXIT_INPUT, "refit: layer %d has a router but no plan", li);
    if (rc == MP_OK && L) {
        rc = kept_rows(r, L, li, n_orig, err);
        memset(r->A, 0, (size_t)(d * d) * sizeof *r->A);
        memset(r->B, 0, (size_t)(d * r->keep) * sizeof *r->B);
        r->c = 0;
    }
    for (int s0 = 0; s0 < r->n_seq && rc == MP_OK; s0 += r->batch_seqs) {
        int n_seq = r->n_seq - s0 < r->batch_seqs ? r->n_seq - s0 : r->batch_seqs;
        int64_t rows = (int64_t)n_seq * r->ctx, at = (int64_t)s0 * r->ctx * d;
        rc = mp_engine_attention_step(r->orig.engine, li, r->xo + at, n_seq, r->ctx, NULL, err);
        if (rc == MP_OK)
            rc = mp_engine_attention_step(r->pruned.engine, li, r->xp + at, n_seq, r->ctx, NULL, err);
        if (rc == MP_OK && L)
            rc = mp_engine_mlp_input(r->orig.engine, li, r->xo + at, rows, r->ho, err);
        if (rc == MP_OK && L)
            rc = mp_engine_mlp_input(r->pruned.engine, li, r->xp + at, rows, r->hp, err);
        if (rc == MP_OK && L) {
            mp_matmul_nt(r->ho, rows, d, r->wk, r->keep, r->lo);
            accumulate(r, rows);
        }
        if (rc == MP_OK)
            rc = mp_engine_mlp_step(r->orig.engine, li, r->xo + at, rows, NULL, err);
        mp_progress_add(&r->progress, (uint64_t)n_seq);
    }
    if (rc == MP_OK && L) {
        rc = fit_layer(r, pruned, li, stage, &res->layers[res->n_layers], err);
        res->n_layers += rc == MP_OK;
    }
    for (int s0 = 0; s0 < r->n_seq && rc == MP_OK; s0 += r->batch_seqs) {
        int n_seq = r->n_seq - s0 < r->batch_seqs ? r->n_seq - s0 : r->batch_seqs;
        rc = mp_engine_mlp_step(r->pruned.engine, li, r->xp + (int64_t)s0 * r->ctx * d, (int64_t)n_seq * r->ctx, NULL,
                                err);
    }
    mp_engine_layer_release(r->orig.engine, li);
    mp_engine_layer_release(r->pruned.engine, li);
    return rc;
}

static int alloc_run(refit_run *r)
{
    int64_t per = (int64_t)r->batch_seqs * r->ctx, d = r->d;
    r->xo = malloc((size_t)(r->n * d) * sizeof *r->xo);
    r->xp = malloc((size_t)(r->n * d) * sizeof *r->xp);
    r->ho = malloc((size_t)(per * d) * sizeof *r->ho);
    r->hp = malloc((size_t)(per * d) * sizeof *r->hp);
    r->lo = malloc((size_t)(per * r->keep) * sizeof *r->lo);
    r->wk = malloc((size_t)(r->keep * d) * sizeof *r->wk);
    r->A = malloc((size_t)(d * d) * sizeof *r->A);
    r->B = malloc((size_t)(d * r->keep) * sizeof *r->B);
    r->xt = malloc((size_t)(per * d) * sizeof *r->xt);
    return r->xo && r->xp && r->ho && r->hp && r->lo && r->wk && r->A && r->B && r->xt ? MP_OK : MP_EXIT_IO;
}

static void free_run(refit_run *r)
{
    free(r->xo);
    free(r->xp);
    free(r->ho);
    free(r->hp);
    free(r->lo);
    free(r->wk);
    free(r->A);
    free(r->B);
    free(r->xt);
}

static int run_refit(refit_run *r, const mp_refit_options *o, const mp_prune_plan *plan, const mp_pack *pruned,
                     mp_stage *stage, mp_refit_result *res, mp_error *err)
{
    int n_orig = mp_wsrc_config(&r->orig.src)->routing.n_experts;
    res->layers = calloc((size_t)r->cfg->n_layers + 1, sizeof *res->layers);
    if (!res->layers)
        return mp_fail(err, MP_EXIT_IO, "out of memory for the router refit of %lld tokens", (long long)r->n);
    mp_progress_start(&r->progress, "refit", (uint64_t)r->cfg->n_layers * (uint64_t)r->n_seq, false, o->quiet);
    int rc = MP_OK;
    for (int li = 0; li < r->cfg->n_layers && rc == MP_OK; li++)
        rc = layer_pass(r, plan, pruned, li, n_orig, stage, res, err);
    mp_progress_finish(&r->progress);
    return rc;
}

int mp_refit_routers(const mp_refit_options *o, const mp_prune_plan *plan, const mp_pack *pruned, mp_stage *stage,
                     mp_refit_result *res, mp_error *err)
{
    memset(res, 0, sizeof *res);
    double start = mp_now();
    mp_chunks chunks;
    int rc = mp_chunks_load(&chunks, o->original, o->text_path, o->tokens_path, o->ctx, o->max_tokens / o->ctx, err);
    if (rc != MP_OK)
        return rc;
    refit_run r = {0};
    rc = mp_model_run_open(&r.orig, o->original, MP_ACT_F32, err);
    if (rc == MP_OK && (rc = mp_model_run_open(&r.pruned, o->pruned, MP_ACT_F32, err)) != MP_OK)
        mp_model_run_close(&r.orig);
    if (rc != MP_OK) {
        mp_chunks_free(&chunks);
        return rc;
    }
    r.cfg = mp_wsrc_config(&r.pruned.src);
    r.d = r.cfg->hidden;
    r.keep = r.cfg->routing.n_experts;
    r.n_seq = (int)chunks.n_chunks;
    r.ctx = o->ctx;
    r.n = (int64_t)r.n_seq * r.ctx;
    r.batch_seqs = mp_batch_chunks(r.ctx);
    res->tokens = r.n;
    rc = alloc_run(&r) == MP_OK ? MP_OK : mp_fail(err, MP_EXIT_IO, "out of memory for the router refit");
    if (rc == MP_OK)
        rc = embed_stream(r.orig.engine, &chunks, r.n_seq, r.ctx, r.d, r.xo, err);
    if (rc == MP_OK)
        rc = embed_stream(r.pruned.engine, &chunks, r.n_seq, r.ctx, r.d, r.xp, err);
    if (rc == MP_OK)
        rc = run_refit(&r, o, plan, pruned, stage, res, err);
    free_run(&r);
    mp_model_run_close(&r.pruned);
    mp_model_run_close(&r.orig);
    mp_chunks_free(&chunks);
    res->seconds = mp_now() - start;
    return rc;
}

void mp_refit_result_free(mp_refit_result *r)
{
    free(r->layers);
    memset(r, 0, sizeof *r);
}
