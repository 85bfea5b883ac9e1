/* The MLP block of one layer: routed experts (each from the tokens routed to it,
 * in parallel), the shared expert and dense MLPs (from every token). Per MLP, gate
 * and up are quantized from their input rows, then down from the activations the
 * quantized gate and up produce. AWQ first moves one scale for the whole block into
 * post_attn_norm (searched over every expert, as AutoAWQ does for Mixtral), and per
 * MLP a scale from up into down. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calib_internal.h"

/* The rows of h each expert receives: rows[start[x] .. start[x + 1]) of token[]. */
typedef struct {
    int64_t *start, *token;
    float *weight; /* the token's gate weight for the expert */
} routed_rows;

static int group_rows(const mp_config *cfg, const int *chosen, const float *weights, int64_t n, routed_rows *g)
{
    int E = cfg->routing.n_experts, k = cfg->routing.top_k;
    g->start = calloc((size_t)E + 1, sizeof *g->start);
    g->token = malloc((size_t)(n * k + 1) * sizeof *g->token);
    g->weight = malloc((size_t)(n * k + 1) * sizeof *g->weight);
    int64_t *fill = calloc((size_t)E, sizeof *fill);
    if (!g->start || !g->token || !g->weight || !fill) {
        free(fill);
        return MP_EXIT_IO;
    }
    for (int64_t i = 0; i < n * k; i++)
        g->start[chosen[i] + 1]++;
    for (int x = 0; x < E; x++)
        g->start[x + 1] += g->start[x];
    for (int64_t i = 0; i < n * k; i++) {
        int64_t at = g->start[chosen[i]] + fill[chosen[i]]++;
        g->token[at] = i / k;
        g->weight[at] = weights[i];
    }
    free(fill);
    return MP_OK;
}

void calib_mlp_name(char *buf, size_t cap, int li, int which, const char *part)
{
    if (which >= 0)
        snprintf(buf, cap, "layers.%d.experts.%d.%s", li, which, part);
    else
        snprintf(buf, cap, "layers.%d.%s.%s", li, which == MP_ENGINE_SHARED ? "shared" : "mlp", part);
}

/* One MLP's statistics source (calib_mlp_rows): n rows of x, and the Hessian of x when
 * already known. weight (routed experts): each row's gate weight, which scales its
 * error at the block's output, so the Hessians weight the row by it. */
typedef calib_mlp_rows mlp_input;

static int add_rows(mp_hessian *H, const mlp_input *in, const float *x, mp_error *err)
{
    return in->weight ? mp_hessian_add_weighted(H, x, in->weight, in->n, err) : mp_hessian_add(H, x, in->n, err);
}

/* AWQ: the scale from up's output into down's input, searched on the activations of
 * the unquantized gate and up. GPT-OSS's clamped SwiGLU is not linear in up: no fold. */
static int awq_up_down(calib_run *c, int li, const mlp_input *in, mp_error *err)
{
    char up[96], down[96];
    calib_mlp_name(up, sizeof up, li, in->which, "up");
    calib_mlp_name(down, sizeof down, li, in->which, "down");
    int64_t rows, width, dr, dc;
    float *U = mp_engine_weight(c->engine, up, &rows, &width), *D = mp_engine_weight(c->engine, down, &dr, &dc);
    char up_bias[104];
    snprintf(up_bias, sizeof up_bias, "%s.bias", up);
    if (!U || !D || c->cfg->family == MP_FAMILY_GPT_OSS || mp_engine_weight(c->engine, up_bias, &dr, &dc))
        return MP_OK;
    float *act = malloc((size_t)(in->n * rows) * sizeof *act), *mean_abs = malloc((size_t)rows * sizeof *mean_abs);
    float *s = malloc((size_t)rows * sizeof *s), *w_mean = malloc((size_t)rows * sizeof *w_mean);
    mp_hessian H = {0};
    double losses[CALIB_AWQ_GRID] = {0};
    const char *names[1] = {down};
    int rc = act && mean_abs && s && w_mean ? mp_hessian_init(&H, rows, err) : mp_fail(err, MP_EXIT_IO, "out of memory");
    if (rc == MP_OK)
        rc = mp_engine_mlp_act(c->engine, li, in->which, in->x, in->n, act, err);
    if (rc == MP_OK)
        rc = add_rows(&H, in, act, err);
    if (rc == MP_OK) {
        mp_hessian_mean_abs(&H, mean_abs);
        rc = calib_awq_weight_mean(c, names, 1, rows, w_mean, err);
    }
    if (rc == MP_OK)
        rc = calib_awq_losses(c, names, 1, &H, mean_abs, w_mean, losses, err);
    if (rc == MP_OK) {
        calib_awq_pick(losses, mean_abs, w_mean, rows, s);
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = 0; j < width; j++)
                U[r * width + j] /= s[r];
        for (int64_t r = 0; r < dr; r++)
            for (int64_t j = 0; j < rows; j++)
                D[r * rows + j] *= s[j];
    }
    mp_hessian_free(&H);
    free(act);
    free(mean_abs);
    free(s);
    free(w_mean);
    return rc;
}

/* gate and up from the input rows, then down from the quantized activations. */
static int quantize_calibrated(calib_run *c, int li, const mlp_input *in, mp_error *err)
{
    if (c->teacher)
        return calib_distill_mlp(c, li, in, err);
    char gate[96], up[96], down[96];
    calib_mlp_name(gate, sizeof gate, li, in->which, "gate");
    calib_mlp_name(up, sizeof up, li, in->which, "up");
    calib_mlp_name(down, sizeof down, li, in->which, "down");
    int64_t width, cols;
    if (!mp_engine_weight(c->engine, up, &width, &cols))
        return mp_fail(err, MP_EXIT_INPUT, "calibration: %s is not loaded", up);
    mp_hessian own = {0}, act_h = {0};
    const mp_hessian *Hin = in->shared_h;
    float *act = malloc((size_t)(in->n * width + 1) * sizeof *act);
    bool awq = c->o->method == MP_METHOD_AWQ;
    int rc = act ? MP_OK : mp_fail(err, MP_EXIT_IO, "out of memory for %s's activations", up);
    if (rc == MP_OK && !Hin && (rc = mp_hessian_init(&own, cols, err)) == MP_OK) {
        rc = add_rows(&own, in, in->x, err);
        Hin = &own;
    }
    if (rc == MP_OK && awq)
        rc = awq_up_down(c, li, in, err);
    if (rc == MP_OK)
        rc = calib_commit(c, gate, Hin, awq, err);
    if (rc == MP_OK)
        rc = calib_commit(c, up, Hin, awq, err);
    if (rc == MP_OK)
        rc = mp_engine_mlp_act(c->engine, li, in->which, in->x, in->n, act, err);
    if (rc == MP_OK && (rc = mp_hessian_init(&act_h, width, err)) == MP_OK)
        rc = add_rows(&act_h, in, act, err);
    if (rc == MP_OK)
        rc = calib_commit(c, down, &act_h, awq, err);
    mp_hessian_free(&own);
    mp_hessian_free(&act_h);
    free(act);
    return rc;
}

static int quantize_fallback(calib_run *c, int li, int which, mp_error *err)
{
    const char *parts[] = {"gate", "up", "down"};
    int rc = MP_OK;
    for (int i = 0; i < 3 && rc == MP_OK; i++) {
        char name[96];
        calib_mlp_name(name, sizeof name, li, which, parts[i]);
        rc = calib_commit(c, name, NULL, true, err);
    }
    return rc;
}

/* The rows of expert xi gathered from h (or all of h), and its quantization. */
static int quantize_expert(calib_run *c, int li, int xi, const float *h, const float *ht, const routed_rows *g,
                           const mp_hessian *all_h, mp_error *err)
{
    int64_t d = c->cfg->hidden, routed = g->start[xi + 1] - g->start[xi];
    int64_t seen = c->o->all_experts ? c->n : routed;
    if (seen < c->min_tokens) {
        #pragma omp critical(calib_report)
        {
            mp_calib_report *r = c->report;
            mp_calib_fallback *grown = realloc(r->fallbacks, (size_t)(r->n_fallbacks + 1) * sizeof *grown);
            if (grown) {
                r->fallbacks = grown;
                r->fallbacks[r->n_fallbacks++] = (mp_calib_fallback){li, xi, (int)routed};
            }
        }
        /* distilling: too few rows to fit on, the student's tensors stay as they are */
        return c->teacher ? MP_OK : quantize_fallback(c, li, xi, err);
    }
    int tx = c->teacher ? calib_teacher_expert(c, li, xi) : xi;
    if (c->o->all_experts)
        return quantize_calibrated(c, li, &(mlp_input){.which = xi, .teacher_which = tx, .x = h, .xt = ht, .n = c->n,
                                                       .shared_h = all_h}, err);
    float *x = malloc((size_t)(routed * d + 1) * sizeof *x);
    float *xt = ht ? malloc((size_t)(routed * d + 1) * sizeof *xt) : NULL;
    if (!x || (ht && !xt)) {
        free(x);
        free(xt);
        return mp_fail(err, MP_EXIT_IO, "out of memory gathering expert %d's rows", xi);
    }
    for (int64_t r = 0; r < routed; r++) {
        int64_t token = g->token[g->start[xi] + r];
        memcpy(x + r * d, h + token * d, (size_t)d * sizeof *x);
        if (xt)
            memcpy(xt + r * d, ht + token * d, (size_t)d * sizeof *xt);
    }
    int rc = quantize_calibrated(c, li, &(mlp_input){.which = xi, .teacher_which = tx, .x = x, .xt = xt, .n = routed,
                                                     .weight = g->weight + g->start[xi]}, err);
    free(x);
    free(xt);
    return rc;
}

/* Every expert in parallel; the first failure in expert order is reported. */
static int quantize_experts(calib_run *c, int li, const float *h, const float *ht, const routed_rows *g,
                            const mp_hessian *all_h, mp_error *err)
{
    int E = c->cfg->routing.n_experts;
    mp_error *errs = calloc((size_t)E, sizeof *errs);
    if (!errs)
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    #pragma omp parallel for schedule(dynamic)
    for (int xi = 0; xi < E; xi++)
        quantize_expert(c, li, xi, h, ht, g, all_h, &errs[xi]);
    int rc = MP_OK;
    for (int xi = 0; xi < E && rc == MP_OK; xi++)
        if (errs[xi].code != MP_OK)
            rc = mp_fail(err, errs[xi].code, "%s", errs[xi].msg);
    free(errs);
    c->report->tensors += 3 * E;
    return rc;
}

/* ---- AWQ: one scale for everything that reads post_attn_norm ---- */

typedef struct {
    float *h;          /* [n, hidden]: post_attn_norm of the stream */
    float *ht;         /* distilling: the same of the teacher's stream */
    mp_hessian all_h;  /* of every row of h */
    int *chosen;       /* [n, top_k] */
    float *weights;
    routed_rows g;
    bool is_moe, has_shared;
} mlp_block;

static int expert_block_losses(calib_run *c, int li, int xi, const mlp_block *b, const float *mean_abs,
                               const float *w_mean, double *losses, mp_error *err)
{
    char gate[96], up[96];
    calib_mlp_name(gate, sizeof gate, li, xi, "gate");
    calib_mlp_name(up, sizeof up, li, xi, "up");
    const char *names[2] = {gate, up};
    if (c->o->all_experts || xi < 0)
        return calib_awq_losses(c, names, 2, &b->all_h, mean_abs, w_mean, losses, err);
    int64_t d = c->cfg->hidden, routed = b->g.start[xi + 1] - b->g.start[xi];
    mp_hessian H;
    float *x = malloc((size_t)(routed * d + 1) * sizeof *x);
    int rc = x ? mp_hessian_init(&H, d, err) : mp_fail(err, MP_EXIT_IO, "out of memory");
    if (rc != MP_OK) {
        free(x);
        return rc;
    }
    for (int64_t r = 0; r < routed; r++)
        memcpy(x + r * d, b->h + b->g.token[b->g.start[xi] + r] * d, (size_t)d * sizeof *x);
    rc = mp_hessian_add_weighted(&H, x, b->g.weight + b->g.start[xi], routed, err);
    if (rc == MP_OK)
        rc = calib_awq_losses(c, names, 2, &H, mean_abs, w_mean, losses, err);
    mp_hessian_free(&H);
    free(x);
    return rc;
}

/* Losses of every candidate, summed over the experts (in expert order, so the sum
 * does not depend on the thread count) and the shared or dense MLP. */
static int block_losses(calib_run *c, int li, const mlp_block *b, const float *mean_abs, const float *w_mean,
                        double *total, mp_error *err)
{
    int E = b->is_moe ? c->cfg->routing.n_experts : 0;
    double *losses = calloc((size_t)(E + 1) * CALIB_AWQ_GRID, sizeof *losses);
    mp_error *errs = calloc((size_t)E + 1, sizeof *errs);
    int rc = losses && errs ? MP_OK : mp_fail(err, MP_EXIT_IO, "out of memory");
    if (rc == MP_OK) {
        #pragma omp parallel for schedule(dynamic)
        for (int xi = 0; xi < E; xi++)
            expert_block_losses(c, li, xi, b, mean_abs, w_mean, losses + xi * CALIB_AWQ_GRID, &errs[xi]);
        if (!b->is_moe || b->has_shared)
            expert_block_losses(c, li, b->is_moe ? MP_ENGINE_SHARED : MP_ENGINE_DENSE, b, mean_abs, w_mean,
                                losses + E * CALIB_AWQ_GRID, &errs[E]);
    }
    for (int i = 0; rc == MP_OK && i <= E; i++)
        if (errs[i].code != MP_OK)
            rc = mp_fail(err, errs[i].code, "%s", errs[i].msg);
    for (int i = 0; rc == MP_OK && i <= E; i++)
        for (int k = 0; k < CALIB_AWQ_GRID; k++)
            total[k] += losses[i * CALIB_AWQ_GRID + k];
    free(losses);
    free(errs);
    return rc;
}

/* The names of everything reading post_attn_norm's output. */
static int block_readers(calib_run *c, int li, const mlp_block *b, char (*names)[96])
{
    int n = 0;
    if (b->is_moe) {
        snprintf(names[n++], 96, "layers.%d.router", li);
        snprintf(names[n++], 96, "layers.%d.shared_gate", li);
        for (int xi = 0; xi < c->cfg->routing.n_experts; xi++) {
            calib_mlp_name(names[n++], 96, li, xi, "gate");
            calib_mlp_name(names[n++], 96, li, xi, "up");
        }
    }
    int which = b->is_moe ? MP_ENGINE_SHARED : MP_ENGINE_DENSE;
    if (!b->is_moe || b->has_shared) {
        calib_mlp_name(names[n++], 96, li, which, "gate");
        calib_mlp_name(names[n++], 96, li, which, "up");
    }
    return n;
}

static int awq_block(calib_run *c, int li, const mlp_block *b, mp_error *err)
{
    int64_t d = c->cfg->hidden;
    int max_names = 4 + 2 * c->cfg->routing.n_experts, n = 0;
    float *mean_abs = malloc((size_t)d * sizeof *mean_abs), *s = malloc((size_t)d * sizeof *s);
    float *w_mean = malloc((size_t)d * sizeof *w_mean);
    char(*names)[96] = malloc((size_t)max_names * sizeof *names);
    const char **readers = malloc((size_t)max_names * sizeof *readers);
    double total[CALIB_AWQ_GRID] = {0};
    int rc = mean_abs && s && w_mean && names && readers ? MP_OK : mp_fail(err, MP_EXIT_IO, "out of memory");
    if (rc == MP_OK) {
        n = block_readers(c, li, b, names);
        for (int i = 0; i < n; i++)
            readers[i] = names[i];
        mp_hessian_mean_abs(&b->all_h, mean_abs);
        rc = calib_awq_weight_mean(c, readers, n, d, w_mean, err);
    }
    if (rc == MP_OK)
        rc = block_losses(c, li, b, mean_abs, w_mean, total, err);
    if (rc == MP_OK) {
        calib_awq_pick(total, mean_abs, w_mean, d, s);
        char norm[64];
        snprintf(norm, sizeof norm, "layers.%d.post_attn_norm", li);
        rc = calib_fold_norm(c, norm, readers, n, s, err);
        int64_t rows, cols;
        for (int i = 0; i < 2 && b->is_moe && rc == MP_OK; i++) /* router and shared_gate: rescaled, not quantized */
            if (mp_engine_weight(c->engine, names[i], &rows, &cols))
                rc = calib_commit(c, names[i], NULL, true, err);
    }
    free(mean_abs);
    free(s);
    free(w_mean);
    free(names);
    free(readers);
    return rc;
}

/* ---- the stage ---- */

static void block_free(mlp_block *b)
{
    free(b->h);
    free(b->ht);
    mp_hessian_free(&b->all_h);
    free(b->chosen);
    free(b->weights);
    free(b->g.start);
    free(b->g.token);
    free(b->g.weight);
    memset(b, 0, sizeof *b);
}

/* h, its Hessian and the routing, from the stream as the layer now stands. */
static int block_inputs(calib_run *c, int li, mlp_block *b, mp_error *err)
{
    int64_t d = c->cfg->hidden, k = c->cfg->routing.top_k;
    mp_hessian_free(&b->all_h);
    free(b->g.start);
    free(b->g.token);
    free(b->g.weight);
    b->g = (routed_rows){0};
    if (!b->h)
        b->h = malloc((size_t)(c->n * d) * sizeof *b->h);
    if (b->is_moe && !b->chosen) {
        b->chosen = malloc((size_t)(c->n * k) * sizeof *b->chosen);
        b->weights = malloc((size_t)(c->n * k) * sizeof *b->weights);
    }
    if (!b->h || (b->is_moe && (!b->chosen || !b->weights)))
        return mp_fail(err, MP_EXIT_IO, "out of memory for layer %d's MLP inputs", li);
    int rc = mp_engine_mlp_input(c->engine, li, c->x, c->n, b->h, err);
    if (rc == MP_OK && (rc = mp_hessian_init(&b->all_h, d, err)) == MP_OK)
        rc = mp_hessian_add(&b->all_h, b->h, c->n, err);
    if (rc == MP_OK && b->is_moe)
        rc = mp_engine_route(c->engine, li, b->h, c->n, b->chosen, b->weights, err);
    if (rc == MP_OK && b->is_moe && group_rows(c->cfg, b->chosen, b->weights, c->n, &b->g) != MP_OK)
        rc = mp_fail(err, MP_EXIT_IO, "out of memory grouping layer %d's tokens", li);
    return rc;
}

static int run_mlp(calib_run *c, int li, mp_error *err)
{
    int64_t d = c->cfg->hidden, per = (int64_t)c->batch_seqs * c->ctx;
    int rc = MP_OK;
    for (int64_t r0 = 0; r0 < c->n && rc == MP_OK; r0 += per) {
        int64_t n = c->n - r0 < per ? c->n - r0 : per;
        rc = mp_engine_mlp_step(c->engine, li, c->x + r0 * d, n, NULL, err);
        if (rc == MP_OK && c->teacher)
            rc = mp_engine_mlp_step(c->teacher, li, c->xt + r0 * d, n, NULL, err);
    }
    return rc;
}

/* Distilling: the teacher's MLP inputs, and the router refit to its logits before
 * the student routes the tokens to the experts being fitted. */
static int teacher_inputs(calib_run *c, int li, mlp_block *b, mp_error *err)
{
    b->ht = malloc((size_t)(c->n * c->cfg->hidden) * sizeof *b->ht);
    if (!b->ht)
        return mp_fail(err, MP_EXIT_IO, "out of memory for layer %d's teacher MLP inputs", li);
    int rc = mp_engine_mlp_input(c->teacher, li, c->xt, c->n, b->ht, err);
    if (rc != MP_OK || !b->is_moe || c->o->teacher->keep_router)
        return rc;
    rc = calib_distill_router(c, li, b->h, b->ht, err);
    return rc == MP_OK ? block_inputs(c, li, b, err) : rc; /* routed again by the refit router */
}

int calib_mlp_stage(calib_run *c, int li, mp_error *err)
{
    char name[64];
    int64_t rows, cols;
    mlp_block b = {0};
    snprintf(name, sizeof name, "layers.%d.router", li);
    b.is_moe = mp_engine_weight(c->engine, name, &rows, &cols) != NULL;
    snprintf(name, sizeof name, "layers.%d.shared.up", li);
    b.has_shared = mp_engine_weight(c->engine, name, &rows, &cols) != NULL;
    int rc = block_inputs(c, li, &b, err);
    if (rc == MP_OK && c->o->method == MP_METHOD_AWQ) {
        rc = awq_block(c, li, &b, err);
        if (rc == MP_OK)
            rc = block_inputs(c, li, &b, err); /* the inputs AWQ rescaled, routed again */
    }
    if (rc == MP_OK && c->teacher)
        rc = teacher_inputs(c, li, &b, err);
    if (rc == MP_OK && b.is_moe)
        rc = quantize_experts(c, li, b.h, b.ht, &b.g, &b.all_h, err);
    if (rc == MP_OK && (!b.is_moe || b.has_shared)) {
        int which = b.is_moe ? MP_ENGINE_SHARED : MP_ENGINE_DENSE;
        rc = quantize_calibrated(c, li, &(mlp_input){.which = which, .teacher_which = which, .x = b.h, .xt = b.ht,
                                                     .n = c->n, .shared_h = &b.all_h}, err);
        c->report->tensors += 3;
    }
    block_free(&b);
    return rc == MP_OK ? run_mlp(c, li, err) : rc;
}
