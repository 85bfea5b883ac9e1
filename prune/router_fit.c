/* The refit pass: the original and the pruned pack run side by side, layer by layer,
 * each on its own residual stream. At a MoE layer the pruned stream's router inputs
 * and the original's kept logits are summed into X^T X and X^T L over all batches,
 * the rows are solved for and stored, and only then does the pruned stream take its
 * MLP step, so that the layers above see the refit router. */
#include "router_fit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/progress.h"
#include "../engine/chunks.h"
#include "../engine/linalg.h"
#include "../engine/model_run.h"
#include "../quant/encoder.h"
#include "../quant/ridge.h"

typedef struct {
    mp_model_run orig, pruned;
    const mp_config *cfg; /* the pruned model's */
    float *xo, *xp;       /* the two residual streams [n, hidden] */
    int n_seq, ctx, batch_seqs, keep;
    int64_t n, d;
    float *ho, *hp, *lo, *wk; /* a batch's router inputs and kept logits; the original's kept rows */
    mp_ridge fit;             /* the pruned router inputs against the kept logits */
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
    double trace = mp_ridge_trace(&r->fit);
    out->layer = li;
    out->lambda = 1e-3 * trace / (double)d;
    out->before = out->after = r->fit.c > 0 ? mp_ridge_residual(&r->fit, w) / r->fit.c : 0;
    /* Nothing to fit, or inputs the pruning has not changed (the first MoE layer, or
     * nothing pruned): the rows stay as cut, byte for byte. 1e-10 is far above the
     * cancellation error of the residual formula (~1e-14 measured) and far below any
     * residual pruning leaves. */
    if (!(trace > 0) || !(r->fit.c > 0) || out->before <= 1e-10)
        return MP_OK;
    float *W = malloc((size_t)(r->keep * d) * sizeof *W);
    int rc = W ? mp_ridge_solve(&r->fit, w, out->lambda, W) : MP_EXIT_IO;
    if (rc != MP_OK) {
        free(W);
        return mp_fail(err, rc, "refit of %s: %s", name, rc == MP_EXIT_IO ? "out of memory" : "the system is not positive definite");
    }
    rc = store_router(pruned, li, W, w, stage, err);
    out->after = mp_ridge_residual(&r->fit, w) / r->fit.c;
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
        mp_ridge_reset(&r->fit);
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
            mp_ridge_add(&r->fit, r->hp, r->lo, rows);
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
    int fit = mp_ridge_init(&r->fit, d, r->keep, per);
    return r->xo && r->xp && r->ho && r->hp && r->lo && r->wk && fit == MP_OK ? MP_OK : MP_EXIT_IO;
}

static void free_run(refit_run *r)
{
    free(r->xo);
    free(r->xp);
    free(r->ho);
    free(r->hp);
    free(r->lo);
    free(r->wk);
    mp_ridge_free(&r->fit);
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
    rc = mp_model_run_open(&r.orig, o->original, MP_ACT_F32, false, err);
    if (rc == MP_OK && (rc = mp_model_run_open(&r.pruned, o->pruned, MP_ACT_F32, false, err)) != MP_OK)
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
