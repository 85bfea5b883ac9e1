/* Routing locality: the trace, the next-layer prediction, the reuse figures and
 * the cache simulations of routing_locality.h. */
#include "routing_locality.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/fileio.h"
#include "../engine/linalg.h"

const int mp_reuse_windows[MP_REUSE_WINDOWS] = {1, 4, 16};
const int mp_cache_size_pct[MP_CACHE_SIZES] = {25, 50, 75, 100};

int mp_locality_init(mp_locality *l, mp_engine *engine, const mp_weight_source *src, int ctx, int64_t n_tokens,
                     mp_error *err)
{
    const mp_config *cfg = mp_wsrc_config(src);
    memset(l, 0, sizeof *l);
    l->engine = engine;
    l->cfg = cfg;
    l->ctx = ctx;
    l->n_layers = cfg->n_layers;
    l->n_experts = cfg->routing.n_experts;
    l->top_k = cfg->routing.top_k;
    l->wide = 2 * l->top_k < l->n_experts ? 2 * l->top_k : l->n_experts;
    l->n_tokens = n_tokens;
    l->pending = -1;
    for (int p = 0; p < MP_CACHE_POLICIES; p++)
        for (int c = 0; c < MP_CACHE_SIZES; c++)
            l->hit_rate[p][c] = NAN; /* no MoE layer: no figures */
    l->moe_index = malloc(((size_t)l->n_layers + 1) * sizeof *l->moe_index);
    l->moe_layer = malloc(((size_t)l->n_layers + 1) * sizeof *l->moe_layer);
    if (!l->moe_index || !l->moe_layer)
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    /* The engine runs a layer as MoE exactly when it has a router. */
    for (int li = 0; li < l->n_layers; li++) {
        char name[48];
        snprintf(name, sizeof name, "layers.%d.router", li);
        l->moe_index[li] = l->n_experts > 0 && mp_wsrc_has(src, name) ? l->n_moe : -1;
        if (l->moe_index[li] >= 0)
            l->moe_layer[l->n_moe++] = li;
    }
    size_t per_layer = (size_t)l->n_moe + 1;
    l->trace = malloc(((size_t)n_tokens * (size_t)l->n_moe * (size_t)l->top_k + 1) * sizeof *l->trace);
    l->pred_hits = calloc(per_layer, sizeof *l->pred_hits);
    l->pred_hits_wide = calloc(per_layer, sizeof *l->pred_hits_wide);
    l->pred_total = calloc(per_layer, sizeof *l->pred_total);
    l->reuse = calloc(per_layer * MP_REUSE_WINDOWS, sizeof *l->reuse);
    l->independent = calloc(per_layer * MP_REUSE_WINDOWS, sizeof *l->independent);
    if (!l->trace || !l->pred_hits || !l->pred_hits_wide || !l->pred_total || !l->reuse || !l->independent)
        return mp_fail(err, MP_EXIT_IO, "out of memory for the routing trace (%lld tokens)", (long long)n_tokens);
    return MP_OK;
}

void mp_locality_free(mp_locality *l)
{
    free(l->moe_index);
    free(l->moe_layer);
    free(l->trace);
    free(l->pred);
    free(l->pred_hits);
    free(l->pred_hits_wide);
    free(l->pred_total);
    free(l->reuse);
    free(l->independent);
    memset(l, 0, sizeof *l);
}

void mp_locality_begin_batch(mp_locality *l, int64_t first_token)
{
    l->batch_first = first_token;
}

/* ---- next-layer prediction ---- */

/* What the router ranks experts by: the selection score the model compares
 * (monotone in the logit, plus the correction bias when the model has one). */
static void selection_scores(const mp_config *cfg, const float *bias, float *v, int n)
{
    for (int x = 0; x < n; x++) {
        if (cfg->routing.score == MP_SCORE_SIGMOID)
            v[x] = 1.0f / (1.0f + expf(-v[x]));
        if (bias)
            v[x] += bias[x];
    }
}

/* pred[j] for j in [top_k, wide): the best-scored experts not yet in pred. */
static void widen(const mp_locality *l, float *score, int32_t *pred)
{
    for (int j = 0; j < l->top_k; j++)
        score[pred[j]] = -INFINITY;
    for (int j = l->top_k; j < l->wide; j++) {
        int best = -1;
        for (int x = 0; x < l->n_experts; x++)
            if (score[x] != -INFINITY && (best < 0 || score[x] > score[best]))
                best = x;
        if (best < 0) /* NaN scores: any expert not yet listed */
            for (int x = 0; best < 0 && x < l->n_experts; x++)
                if (score[x] != -INFINITY)
                    best = x;
        pred[j] = best;
        score[best] = -INFINITY;
    }
}

/* The engine's own route (its post-attention norm, router and top-k) gives the
 * top_k prediction; the router's scores rank the next ones for the wider one. */
static int predict(mp_locality *l, int target, const float *hidden, int64_t n, int64_t d, mp_error *err)
{
    int k = l->top_k, E = l->n_experts;
    float *h = malloc((size_t)(n * d) * sizeof *h), *weights = malloc((size_t)(n * k) * sizeof *weights);
    float *scores = malloc((size_t)(n * E) * sizeof *scores);
    int *chosen = malloc((size_t)(n * k) * sizeof *chosen);
    int rc = h && weights && scores && chosen ? MP_OK : mp_fail(err, MP_EXIT_IO, "out of memory predicting routing");
    if (!rc && n > l->pred_rows) {
        free(l->pred);
        l->pred = malloc((size_t)(n * l->wide) * sizeof *l->pred);
        l->pred_rows = l->pred ? n : 0;
        if (!l->pred)
            rc = mp_fail(err, MP_EXIT_IO, "out of memory predicting routing");
    }
    if (!rc) rc = mp_engine_mlp_input(l->engine, target, hidden, n, h, err);
    if (!rc) rc = mp_engine_route(l->engine, target, h, n, chosen, weights, err);
    char name[64];
    int64_t rows, cols, brows, bcols;
    snprintf(name, sizeof name, "layers.%d.router", target);
    const float *router = rc ? NULL : mp_engine_weight(l->engine, name, &rows, &cols);
    if (!rc && (!router || rows != E || cols != d))
        rc = mp_fail(err, MP_EXIT_INPUT, "%s: expected a loaded [%d, %lld] router", name, E, (long long)d);
    if (!rc) {
        mp_matmul_nt(h, n, d, router, E, scores);
        strcat(name, ".bias");
        const float *rbias = mp_engine_weight(l->engine, name, &brows, &bcols);
        snprintf(name, sizeof name, "layers.%d.correction_bias", target);
        const float *cbias = mp_engine_weight(l->engine, name, &brows, &bcols);
        for (int64_t t = 0; t < n; t++) {
            float *s = scores + t * E;
            for (int x = 0; rbias && x < E; x++)
                s[x] += rbias[x];
            selection_scores(l->cfg, cbias, s, E);
            int32_t *p = l->pred + t * l->wide;
            for (int j = 0; j < k; j++)
                p[j] = chosen[t * k + j];
            widen(l, s, p);
        }
        l->pending = target;
    }
    free(h);
    free(weights);
    free(scores);
    free(chosen);
    return rc;
}

void mp_locality_layer_output(mp_locality *l, int layer, const float *hidden, int64_t n, int64_t d)
{
    int target = layer + 1;
    if (l->problem[0] || target >= l->n_layers || l->moe_index[target] < 0)
        return;
    mp_error err = {0};
    if (predict(l, target, hidden, n, d, &err) != MP_OK)
        snprintf(l->problem, sizeof l->problem, "predicting layer %d's routing: %.200s", target, err.msg);
}

static bool listed(const int32_t *v, int n, int x)
{
    for (int j = 0; j < n; j++)
        if (v[j] == x)
            return true;
    return false;
}

static void score_prediction(mp_locality *l, int m, const int *experts, int64_t n)
{
    int k = l->top_k;
    for (int64_t t = 0; t < n; t++) {
        const int32_t *p = l->pred + t * l->wide;
        for (int j = 0; j < k; j++) {
            l->pred_hits[m] += listed(p, k, experts[t * k + j]);
            l->pred_hits_wide[m] += listed(p, l->wide, experts[t * k + j]);
        }
    }
    l->pred_total[m] += (uint64_t)(n * k);
    l->pending = -1;
}

void mp_locality_routing(mp_locality *l, int layer, const int *experts, int64_t n, int top_k)
{
    if (l->problem[0])
        return;
    int m = layer >= 0 && layer < l->n_layers ? l->moe_index[layer] : -1;
    if (m < 0 || top_k != l->top_k || l->batch_first + n > l->n_tokens) {
        snprintf(l->problem, sizeof l->problem, "routing of layer %d (%lld tokens, top %d) outside the run's %lld",
                 layer, (long long)n, top_k, (long long)l->n_tokens);
        return;
    }
    for (int64_t t = 0; t < n; t++)
        for (int j = 0; j < top_k; j++) {
            int x = experts[t * top_k + j];
            if (x < 0 || x >= l->n_experts) {
                snprintf(l->problem, sizeof l->problem, "layer %d: expert %d routed, the model has %d", layer, x,
                         l->n_experts);
                return;
            }
            l->trace[((l->batch_first + t) * l->n_moe + m) * top_k + j] = x;
        }
    if (l->pending == layer)
        score_prediction(l, m, experts, n);
}

/* ---- reuse ---- */

/* The expert chosen at trace position (t, m, j). */
static int32_t chosen_at(const mp_locality *l, int64_t t, int m, int j)
{
    return l->trace[(t * l->n_moe + m) * l->top_k + j];
}

/* Over the pairs (token, chosen expert) with at least N later tokens in their
 * sequence: the share whose expert one of the next N chooses again, and the mean
 * of 1 - (1 - f_x)^N (f_x: the share of the layer's tokens that chose x). */
static void reuse_of_layer(mp_locality *l, int m, int64_t *next, double *freq)
{
    int E = l->n_experts, k = l->top_k;
    for (int x = 0; x < E; x++)
        freq[x] = 0;
    for (int64_t t = 0; t < l->n_tokens; t++)
        for (int j = 0; j < k; j++)
            freq[chosen_at(l, t, m, j)] += 1.0 / (double)l->n_tokens;
    int64_t pairs[MP_REUSE_WINDOWS] = {0}, reused[MP_REUSE_WINDOWS] = {0};
    double independent[MP_REUSE_WINDOWS] = {0};
    for (int64_t s0 = 0; s0 + l->ctx <= l->n_tokens; s0 += l->ctx) {
        for (int x = 0; x < E; x++)
            next[x] = INT64_MAX;
        for (int64_t p = l->ctx - 1; p >= 0; p--) {
            for (int j = 0; j < k; j++) {
                int x = chosen_at(l, s0 + p, m, j);
                for (int w = 0; w < MP_REUSE_WINDOWS; w++) {
                    int N = mp_reuse_windows[w];
                    if (l->ctx - 1 - p < N)
                        continue;
                    pairs[w]++;
                    reused[w] += next[x] - p <= N;
                    independent[w] += 1.0 - pow(1.0 - freq[x], N);
                }
            }
            for (int j = 0; j < k; j++)
                next[chosen_at(l, s0 + p, m, j)] = p;
        }
    }
    for (int w = 0; w < MP_REUSE_WINDOWS; w++) {
        l->reuse[m * MP_REUSE_WINDOWS + w] = pairs[w] ? (double)reused[w] / (double)pairs[w] : NAN;
        l->independent[m * MP_REUSE_WINDOWS + w] = pairs[w] ? independent[w] / (double)pairs[w] : NAN;
    }
}

/* ---- cache ---- */

typedef struct {
    int64_t count;
    int32_t item;
} ranked_item;

/* More accesses first; ties: the lower item (layer, then expert). */
static int by_count(const void *a, const void *b)
{
    const ranked_item *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return (x->item > y->item) - (x->item < y->item);
}

/* access[i] = the item (MoE layer index * experts + expert) of trace entry i: the
 * trace is already in runtime order. hot = the items by decreasing count. */
static int cache_inputs(mp_locality *l, int32_t *access, int32_t *hot, int32_t n_items)
{
    ranked_item *rank = calloc((size_t)n_items + 1, sizeof *rank);
    if (!rank)
        return MP_EXIT_IO;
    for (int32_t i = 0; i < n_items; i++)
        rank[i].item = i;
    int per_token = l->n_moe * l->top_k;
    for (int64_t i = 0; i < l->accesses; i++) {
        access[i] = (int32_t)((i % per_token) / l->top_k) * l->n_experts + l->trace[i];
        rank[access[i]].count++;
    }
    qsort(rank, (size_t)n_items, sizeof *rank, by_count);
    l->distinct = 0;
    for (int32_t i = 0; i < n_items; i++) {
        hot[i] = rank[i].item;
        l->distinct += rank[i].count > 0;
    }
    free(rank);
    return MP_OK;
}

static int simulate_caches(mp_locality *l, mp_error *err)
{
    int32_t n_items = l->n_moe * l->n_experts;
    l->accesses = l->n_tokens * l->n_moe * l->top_k;
    int32_t *access = malloc(((size_t)l->accesses + 1) * sizeof *access);
    int32_t *hot = malloc(((size_t)n_items + 1) * sizeof *hot);
    int rc = access && hot ? cache_inputs(l, access, hot, n_items) : MP_EXIT_IO;
    for (int c = 0; !rc && c < MP_CACHE_SIZES; c++) {
        int32_t cap = (int32_t)((int64_t)n_items * mp_cache_size_pct[c] / 100);
        l->capacity[c] = cap > 0 ? cap : 1;
        for (int p = 0; !rc && p < MP_CACHE_POLICIES; p++) {
            int64_t hits = mp_cache_simulate((mp_cache_policy)p, access, l->accesses, n_items, l->capacity[c], hot);
            rc = hits < 0 ? MP_EXIT_IO : MP_OK;
            l->hit_rate[p][c] = l->accesses ? (double)hits / (double)l->accesses : NAN;
        }
    }
    free(access);
    free(hot);
    return rc ? mp_fail(err, MP_EXIT_IO, "out of memory simulating the expert cache (%lld accesses)",
                        (long long)l->accesses)
              : MP_OK;
}

int mp_locality_finish(mp_locality *l, mp_error *err)
{
    if (l->n_moe == 0)
        return MP_OK;
    int64_t *next = malloc((size_t)l->n_experts * sizeof *next);
    double *freq = malloc((size_t)l->n_experts * sizeof *freq);
    int rc = next && freq ? MP_OK : mp_fail(err, MP_EXIT_IO, "out of memory");
    for (int m = 0; !rc && m < l->n_moe; m++)
        reuse_of_layer(l, m, next, freq);
    free(next);
    free(freq);
    return rc ? rc : simulate_caches(l, err);
}

/* ---- output ---- */

static double recall(uint64_t hits, uint64_t total)
{
    return total ? (double)hits / (double)total : NAN;
}

/* A JSON number, or null for a figure that does not exist (NaN). */
static json_t *number(double v)
{
    return isnan(v) ? json_null() : json_real(v);
}

static json_t *window_array(const double *v)
{
    json_t *a = json_array();
    for (int w = 0; w < MP_REUSE_WINDOWS; w++)
        json_array_append_new(a, number(v[w]));
    return a;
}

json_t *mp_locality_json(const mp_locality *l)
{
    json_t *windows = json_array(), *layers = json_array(), *pct = json_array(), *cap = json_array();
    json_t *rates = json_object();
    for (int w = 0; w < MP_REUSE_WINDOWS; w++)
        json_array_append_new(windows, json_integer(mp_reuse_windows[w]));
    for (int m = 0; m < l->n_moe; m++)
        json_array_append_new(
            layers, json_pack("{s:i, s:o, s:o, s:o, s:o}", "layer", l->moe_layer[m], "reuse",
                              window_array(l->reuse + m * MP_REUSE_WINDOWS), "independent",
                              window_array(l->independent + m * MP_REUSE_WINDOWS), "next_layer_recall",
                              number(recall(l->pred_hits[m], l->pred_total[m])), "next_layer_recall_wide",
                              number(recall(l->pred_hits_wide[m], l->pred_total[m]))));
    for (int c = 0; c < MP_CACHE_SIZES; c++) {
        json_array_append_new(pct, json_integer(mp_cache_size_pct[c]));
        json_array_append_new(cap, json_integer(l->capacity[c]));
    }
    for (int p = 0; p < MP_CACHE_POLICIES; p++) {
        json_t *a = json_array();
        for (int c = 0; c < MP_CACHE_SIZES; c++)
            json_array_append_new(a, number(l->hit_rate[p][c]));
        json_object_set_new(rates, mp_cache_policy_name((mp_cache_policy)p), a);
    }
    return json_pack("{s:o, s:i, s:i, s:o, s:{s:i, s:I, s:I, s:o, s:o, s:o}}", "windows", windows, "prediction_k",
                     l->top_k, "prediction_wide", l->wide, "layers", layers, "cache", "experts",
                     l->n_moe * l->n_experts, "accesses", (json_int_t)l->accesses, "distinct",
                     (json_int_t)l->distinct, "capacity_pct", pct, "capacity", cap, "hit_rate", rates);
}

static void print_figure(double v, int width)
{
    if (isnan(v))
        printf("  %*s", width, "-");
    else
        printf("  %*.3f", width, v);
}

void mp_locality_print(const mp_locality *l)
{
    if (l->n_moe == 0)
        return;
    printf("\nrouting locality  reuse@N: share of (token, expert) choices repeated by one of the next N\n"
           "tokens (indep: the same if choices were independent); next@K: share of the layer's choices\n"
           "in the top K its router gives on the previous layer's output\n");
    printf("layer  reuse@1  indep  reuse@4  indep  reuse@16  indep  next@%d  next@%d\n", l->top_k, l->wide);
    for (int m = 0; m < l->n_moe; m++) {
        const double *r = l->reuse + m * MP_REUSE_WINDOWS, *q = l->independent + m * MP_REUSE_WINDOWS;
        printf("%5d", l->moe_layer[m]);
        print_figure(r[0], 7);
        print_figure(q[0], 5);
        print_figure(r[1], 7);
        print_figure(q[1], 5);
        print_figure(r[2], 8);
        print_figure(q[2], 5);
        print_figure(recall(l->pred_hits[m], l->pred_total[m]), 6);
        print_figure(recall(l->pred_hits_wide[m], l->pred_total[m]), 6);
        printf("\n");
    }
    printf("\nexpert cache hit rate (%d experts, %lld accesses in runtime order, %lld distinct; cold start)\n",
           l->n_moe * l->n_experts, (long long)l->accesses, (long long)l->distinct);
    printf("policy    ");
    for (int c = 0; c < MP_CACHE_SIZES; c++) {
        char head[32];
        snprintf(head, sizeof head, "%d%% (%d)", mp_cache_size_pct[c], l->capacity[c]);
        printf("  %12s", head);
    }
    printf("\n");
    for (int p = 0; p < MP_CACHE_POLICIES; p++) {
        printf("%-10s", mp_cache_policy_name((mp_cache_policy)p));
        for (int c = 0; c < MP_CACHE_SIZES; c++)
            print_figure(l->hit_rate[p][c], 12);
        printf("\n");
    }
}

int mp_locality_write_trace(const mp_locality *l, const char *path, mp_error *err)
{
    mp_outfile f;
    int rc = mp_outfile_open(&f, path, err);
    if (!rc)
        rc = mp_outfile_printf(&f, err, "# moepack routing trace: ctx %d, experts %d, top_k %d; token layer experts\n",
                               l->ctx, l->n_experts, l->top_k);
    for (int64_t t = 0; !rc && t < l->n_tokens; t++)
        for (int m = 0; !rc && m < l->n_moe; m++) {
            rc = mp_outfile_printf(&f, err, "%lld %d", (long long)t, l->moe_layer[m]);
            for (int j = 0; !rc && j < l->top_k; j++)
                rc = mp_outfile_printf(&f, err, " %d", chosen_at(l, t, m, j));
            if (!rc)
                rc = mp_outfile_write(&f, "\n", 1, err);
        }
    if (!rc)
        rc = mp_outfile_commit(&f, err);
    mp_outfile_abort(&f);
    return rc;
}
