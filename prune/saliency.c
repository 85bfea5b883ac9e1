/* The saliency pass: the calibration chunks are embedded once, then every layer
 * is loaded, run over them a batch of chunks at a time (attention, the routed
 * experts observed one by one, then the MLP step that moves the stream on) and
 * released, so one layer's f32 weights and the stream are all that is held. */
#include "saliency.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/progress.h"
#include "../engine/chunks.h"
#include "../engine/linalg.h"
#include "../engine/model_run.h"

static const char *const method_names[] = {"freq", "reap", "ean"};

const char *mp_saliency_method_name(mp_saliency_method m)
{
    return method_names[m];
}

int mp_saliency_method_parse(const char *text, mp_saliency_method *m)
{
    for (int i = 0; i < (int)(sizeof method_names / sizeof method_names[0]); i++)
        if (strcmp(text, method_names[i]) == 0) {
            *m = (mp_saliency_method)i;
            return 0;
        }
    return -1;
}

double mp_saliency_value(const mp_saliency *s, mp_saliency_method m, int layer, int expert)
{
    int64_t i = (int64_t)layer * s->n_experts + expert;
    if (m == MP_SALIENCY_FREQ)
        return (double)s->count[i];
    if (m == MP_SALIENCY_EAN)
        return s->norm[i];
    return s->count[i] > 0 ? s->gate_norm[i] / (double)s->count[i] : 0.0;
}

const double *mp_saliency_similarity(const mp_saliency *s, int layer)
{
    return s->similarity ? s->similarity + (int64_t)layer * s->n_experts * s->n_experts : NULL;
}

void mp_saliency_free(mp_saliency *s)
{
    free(s->similarity);
    free(s->moe);
    free(s->count);
    free(s->gate_norm);
    free(s->norm);
    memset(s, 0, sizeof *s);
}

typedef struct {
    mp_engine *engine;
    const mp_config *cfg;
    mp_saliency *s;
    float *x; /* the residual stream of every calibration token [n, hidden] */
    int n_seq, ctx, batch_seqs;
    int64_t n;
    double *out_sum; /* similarity: one layer's sums of f_e(x) over the sampled tokens [E, hidden] */
    int64_t stride;
    mp_progress progress;
} sal_run;

/* Buffers of one batch: n rows of MLP input, the routing, and one expert's rows. */
typedef struct {
    float *h, *weights, *rows_in, *act, *out;
    int *chosen;
    int64_t *start, *slot; /* slots grouped by expert: slot[start[x] .. start[x + 1]) */
} batch_bufs;

static void free_bufs(batch_bufs *b)
{
    free(b->h);
    free(b->weights);
    free(b->rows_in);
    free(b->act);
    free(b->out);
    free(b->chosen);
    free(b->start);
    free(b->slot);
}

static int alloc_bufs(const mp_config *c, int64_t n, batch_bufs *b)
{
    int64_t d = c->hidden, k = c->routing.top_k, width = c->moe_intermediate > 0 ? c->moe_intermediate : 1;
    memset(b, 0, sizeof *b);
    b->h = malloc((size_t)(n * d) * sizeof *b->h);
    b->weights = malloc((size_t)(n * k) * sizeof *b->weights);
    b->rows_in = malloc((size_t)(n * d) * sizeof *b->rows_in);
    b->act = malloc((size_t)(n * width) * sizeof *b->act);
    b->out = malloc((size_t)(n * d) * sizeof *b->out);
    b->chosen = malloc((size_t)(n * k) * sizeof *b->chosen);
    b->start = calloc((size_t)c->routing.n_experts + 1, sizeof *b->start);
    b->slot = malloc((size_t)(n * k) * sizeof *b->slot);
    return b->h && b->weights && b->rows_in && b->act && b->out && b->chosen && b->start && b->slot ? MP_OK
                                                                                                   : MP_EXIT_IO;
}

/* Counting sort of the n * k selections by expert, token order kept within one. */
static void group_slots(batch_bufs *b, int64_t n, int k, int n_experts)
{
    memset(b->start, 0, ((size_t)n_experts + 1) * sizeof *b->start);
    for (int64_t i = 0; i < n * k; i++)
        b->start[b->chosen[i] + 1]++;
    for (int x = 0; x < n_experts; x++)
        b->start[x + 1] += b->start[x];
    for (int64_t i = 0; i < n * k; i++) /* start[x] walks forward; restored below */
        b->slot[b->start[b->chosen[i]]++] = i;
    for (int x = n_experts; x > 0; x--)
        b->start[x] = b->start[x - 1];
    b->start[0] = 0;
}

/* out = f_e(x) for cnt rows in b->rows_in: expert xi's activations through its
 * down projection, plus its bias. */
static int expert_outputs(sal_run *r, int li, int xi, int64_t cnt, batch_bufs *b, mp_error *err)
{
    int64_t d = r->cfg->hidden;
    int rc = mp_engine_mlp_act(r->engine, li, xi, b->rows_in, cnt, b->act, err);
    if (rc != MP_OK)
        return rc;
    char name[96], bias_name[112];
    snprintf(name, sizeof name, "layers.%d.experts.%d.down", li, xi);
    snprintf(bias_name, sizeof bias_name, "%s.bias", name);
    int64_t rows, cols, br, bc;
    const float *down = mp_engine_weight(r->engine, name, &rows, &cols);
    const float *bias = mp_engine_weight(r->engine, bias_name, &br, &bc);
    if (!down || rows != d)
        return mp_fail(err, MP_EXIT_INPUT, "saliency: %s is not loaded as a [%lld, *] matrix", name, (long long)d);
    mp_matmul_nt(b->act, cnt, cols, down, rows, b->out);
    for (int64_t j = 0; bias && j < cnt; j++)
        for (int64_t i = 0; i < d; i++)
            b->out[j * d + i] += bias[i];
    return MP_OK;
}

/* f_e(x) for the rows routed to expert xi, each row's norm added to its sums. */
static int score_expert(sal_run *r, int li, int xi, batch_bufs *b, mp_error *err)
{
    int64_t d = r->cfg->hidden, k = r->cfg->routing.top_k, r0 = b->start[xi], cnt = b->start[xi + 1] - r0;
    for (int64_t j = 0; j < cnt; j++)
        memcpy(b->rows_in + j * d, b->h + (b->slot[r0 + j] / k) * d, (size_t)d * sizeof *b->h);
    int rc = expert_outputs(r, li, xi, cnt, b, err);
    if (rc != MP_OK)
        return rc;
    int64_t at = (int64_t)li * r->s->n_experts + xi;
    for (int64_t j = 0; j < cnt; j++) {
        double sq = 0;
        for (int64_t i = 0; i < d; i++)
            sq += (double)b->out[j * d + i] * (double)b->out[j * d + i];
        double norm = sqrt(sq);
        r->s->count[at]++;
        r->s->norm[at] += norm;
        r->s->gate_norm[at] += (double)b->weights[b->slot[r0 + j]] * norm;
    }
    return MP_OK;
}

/* Every expert on the sampled rows of the batch (global index first + j), their
 * outputs added to out_sum: HC-SMoE's output feature, whatever the routing chose. */
static int observe_all_experts(sal_run *r, int li, int64_t first, int64_t n, batch_bufs *b, mp_error *err)
{
    int64_t d = r->cfg->hidden, cnt = 0;
    for (int64_t j = 0; j < n; j++)
        if ((first + j) % r->stride == 0)
            memcpy(b->rows_in + cnt++ * d, b->h + j * d, (size_t)d * sizeof *b->h);
    for (int xi = 0; cnt > 0 && xi < r->cfg->routing.n_experts; xi++) {
        int rc = expert_outputs(r, li, xi, cnt, b, err);
        if (rc != MP_OK)
            return rc;
        double *sum = r->out_sum + (int64_t)xi * d;
        for (int64_t j = 0; j < cnt; j++)
            for (int64_t i = 0; i < d; i++)
                sum[i] += (double)b->out[j * d + i];
    }
    return MP_OK;
}

/* The layer's cosines of the experts' output sums (the means' cosines); 0 with a zero sum. */
static void finish_similarity(sal_run *r, int li)
{
    int E = r->cfg->routing.n_experts;
    int64_t d = r->cfg->hidden;
    double *sim = r->s->similarity + (int64_t)li * E * E;
    for (int a = 0; a < E; a++)
        for (int c = 0; c < E; c++) {
            const double *u = r->out_sum + (int64_t)a * d, *v = r->out_sum + (int64_t)c * d;
            double uv = 0, uu = 0, vv = 0;
            for (int64_t i = 0; i < d; i++) {
                uv += u[i] * v[i];
                uu += u[i] * u[i];
                vv += v[i] * v[i];
            }
            sim[a * E + c] = uu > 0 && vv > 0 ? uv / sqrt(uu * vv) : 0.0;
        }
    memset(r->out_sum, 0, (size_t)(E * d) * sizeof *r->out_sum);
}

static int score_batch(sal_run *r, int li, const float *x, int64_t first, int64_t n, batch_bufs *b, mp_error *err)
{
    const mp_routing *ro = &r->cfg->routing;
    int rc = mp_engine_mlp_input(r->engine, li, x, n, b->h, err);
    if (rc == MP_OK)
        rc = mp_engine_route(r->engine, li, b->h, n, b->chosen, b->weights, err);
    if (rc != MP_OK)
        return rc;
    group_slots(b, n, ro->top_k, ro->n_experts);
    for (int xi = 0; xi < ro->n_experts && rc == MP_OK; xi++)
        if (b->start[xi + 1] > b->start[xi])
            rc = score_expert(r, li, xi, b, err);
    if (rc == MP_OK && r->out_sum)
        rc = observe_all_experts(r, li, first, n, b, err);
    return rc;
}

static int layer_pass(sal_run *r, int li, batch_bufs *b, mp_error *err)
{
    int64_t d = r->cfg->hidden;
    int rc = mp_engine_layer_load(r->engine, li, err);
    for (int s0 = 0; s0 < r->n_seq && rc == MP_OK; s0 += r->batch_seqs) {
        int n_seq = r->n_seq - s0 < r->batch_seqs ? r->n_seq - s0 : r->batch_seqs;
        int64_t rows = (int64_t)n_seq * r->ctx;
        float *x = r->x + (int64_t)s0 * r->ctx * d;
        rc = mp_engine_attention_step(r->engine, li, x, n_seq, r->ctx, NULL, err);
        if (rc == MP_OK && r->s->moe[li])
            rc = score_batch(r, li, x, (int64_t)s0 * r->ctx, rows, b, err);
        if (rc == MP_OK)
            rc = mp_engine_mlp_step(r->engine, li, x, rows, NULL, err);
        mp_progress_add(&r->progress, (uint64_t)n_seq);
    }
    if (rc == MP_OK && r->out_sum && r->s->moe[li])
        finish_similarity(r, li);
    mp_engine_layer_release(r->engine, li);
    return rc;
}

static int alloc_result(mp_saliency *s, const mp_config *c)
{
    size_t cells = (size_t)c->n_layers * (size_t)c->routing.n_experts;
    s->n_layers = c->n_layers;
    s->n_experts = c->routing.n_experts;
    s->moe = calloc((size_t)c->n_layers, sizeof *s->moe);
    s->count = calloc(cells + 1, sizeof *s->count);
    s->gate_norm = calloc(cells + 1, sizeof *s->gate_norm);
    s->norm = calloc(cells + 1, sizeof *s->norm);
    return s->moe && s->count && s->gate_norm && s->norm ? MP_OK : MP_EXIT_IO;
}

/* The sample of tokens the similarity is measured on: every stride-th. */
static int alloc_similarity(sal_run *r, int64_t max_tokens)
{
    int64_t E = r->cfg->routing.n_experts;
    r->stride = max_tokens > 0 && r->n > max_tokens ? (r->n + max_tokens - 1) / max_tokens : 1;
    r->s->similarity_stride = r->stride;
    r->s->similarity_tokens = (r->n + r->stride - 1) / r->stride;
    r->out_sum = calloc((size_t)(E * r->cfg->hidden), sizeof *r->out_sum);
    r->s->similarity = calloc((size_t)(r->cfg->n_layers * E * E) + 1, sizeof *r->s->similarity);
    return r->out_sum && r->s->similarity ? MP_OK : MP_EXIT_IO;
}

static int run_layers(sal_run *r, mp_error *err)
{
    batch_bufs b;
    int64_t per = (int64_t)r->batch_seqs * r->ctx;
    if (alloc_bufs(r->cfg, per, &b) != MP_OK) {
        free_bufs(&b);
        return mp_fail(err, MP_EXIT_IO, "out of memory for a saliency batch of %lld tokens", (long long)per);
    }
    int rc = MP_OK;
    for (int li = 0; li < r->cfg->n_layers && rc == MP_OK; li++)
        rc = layer_pass(r, li, &b, err);
    free_bufs(&b);
    return rc;
}

int mp_saliency_compute(const char *pack_dir, const mp_saliency_options *o, mp_saliency *s, mp_error *err)
{
    memset(s, 0, sizeof *s);
    double start = mp_now();
    mp_chunks chunks;
    int64_t max_chunks = o->max_tokens / o->ctx;
    if (max_chunks < 1)
        return mp_fail(err, MP_EXIT_INPUT, "--calib-tokens %lld is less than one chunk of --ctx %d",
                       (long long)o->max_tokens, o->ctx);
    int rc = mp_chunks_load(&chunks, pack_dir, o->text_path, o->tokens_path, o->ctx, max_chunks, err);
    if (rc != MP_OK)
        return rc;
    mp_model_run run;
    rc = mp_model_run_open(&run, pack_dir, MP_ACT_F32, false, err);
    if (rc != MP_OK) {
        mp_chunks_free(&chunks);
        return rc;
    }
    sal_run r = {.engine = run.engine, .cfg = mp_wsrc_config(&run.src), .s = s};
    r.n_seq = (int)chunks.n_chunks;
    r.ctx = o->ctx;
    r.n = (int64_t)r.n_seq * r.ctx;
    r.batch_seqs = mp_batch_chunks(r.ctx);
    rc = alloc_result(s, r.cfg) == MP_OK ? MP_OK : mp_fail(err, MP_EXIT_IO, "out of memory");
    for (int li = 0; rc == MP_OK && li < r.cfg->n_layers; li++) { /* as the engine decides: a router */
        char router[48];
        snprintf(router, sizeof router, "layers.%d.router", li);
        s->moe[li] = mp_wsrc_has(&run.src, router);
    }
    s->tokens = r.n;
    s->chunks = r.n_seq;
    s->text_bytes = chunks.text_bytes;
    s->text_xxh3 = chunks.text_xxh3;
    if (rc == MP_OK && o->similarity)
        rc = alloc_similarity(&r, o->similarity_tokens) == MP_OK ? MP_OK : mp_fail(err, MP_EXIT_IO, "out of memory");
    if (rc == MP_OK)
        rc = mp_embed_chunks(r.engine, &chunks, r.n_seq, r.ctx, r.cfg->hidden, &r.x, err);
    if (rc == MP_OK) {
        mp_progress_start(&r.progress, "saliency", (uint64_t)r.cfg->n_layers * (uint64_t)r.n_seq, false, o->quiet);
        rc = run_layers(&r, err);
        mp_progress_finish(&r.progress);
    }
    free(r.x);
    free(r.out_sum);
    mp_model_run_close(&run);
    mp_chunks_free(&chunks);
    s->seconds = mp_now() - start;
    if (rc != MP_OK)
        mp_saliency_free(s);
    return rc;
}
