#include "tiers.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../formats/pack.h"

/* A routed expert of the pack: its place, routing count and record size. */
typedef struct {
    int layer, expert;
    uint64_t count, bytes;
} ranked_expert;

/* Layers then MTP layers, as plan.h numbers them. */
static const mp_layer *layer_at(const mp_model *m, int i)
{
    return i < m->cfg.n_layers ? &m->layers[i] : &m->mtp[i - m->cfg.n_layers].layer;
}

static int all_layers(const mp_model *m)
{
    return m->cfg.n_layers + m->cfg.n_mtp;
}

int mp_tiers_check_model(const mp_stats *s, const mp_model *m, const mp_plan *plan, const char *ckpt, mp_error *err)
{
    const mp_config *cfg = &m->cfg;
    bool *moe = calloc((size_t)cfg->n_layers + 1, sizeof *moe);
    const char **names = calloc((size_t)plan->n_parts + 1, sizeof *names);
    int64_t *cols = calloc((size_t)plan->n_parts + 1, sizeof *cols);
    int n = 0, rc = MP_OK;
    if (!moe || !names || !cols)
        rc = mp_fail(err, MP_EXIT_IO, "out of memory");
    for (int li = 0; !rc && li < cfg->n_layers; li++)
        moe[li] = m->layers[li].is_moe;
    for (int p = 0; !rc && p < plan->n_parts; p++) {
        const mp_plan_part *part = &plan->parts[p];
        if (part->ndim == 2 && !part->is_bias) {
            names[n] = part->name;
            cols[n++] = part->cols;
        }
    }
    mp_stats_model want = {ckpt, cfg->architecture, cfg->vocab, cfg->hidden, cfg->n_layers, cfg->routing.n_experts,
                           cfg->routing.top_k, moe, n, names, cols};
    if (!rc)
        rc = mp_stats_check_model(s, &want, err);
    free(moe);
    free(names);
    free(cols);
    return rc;
}

/* A record's raw length: its parts in order, each starting at a multiple of 64. */
static int record_bytes(const mp_policy *policy, const mp_model *m, const mp_plan *plan, const mp_plan_record *rec,
                        uint64_t *out, mp_error *err)
{
    uint64_t end = 0;
    for (int k = 0; k < rec->n_parts; k++) {
        const mp_plan_part *part = &plan->parts[rec->first_part + k];
        mp_encoding enc;
        bool fell_back;
        int rc = mp_policy_choose(policy, part->name, part->source, part->cls, mp_plan_source_dtype(m, part),
                                  part->rows, part->cols, &enc, &fell_back, err);
        if (rc)
            return rc;
        mp_enc_layout L;
        mp_encoding_layout(&enc, part->rows, part->cols, &L);
        end = (end + MP_PACK_PART_ALIGN - 1) / MP_PACK_PART_ALIGN * MP_PACK_PART_ALIGN + L.total;
    }
    *out = end;
    return MP_OK;
}

int mp_tiers_expert_bytes(const mp_policy *policy, const mp_model *m, const mp_plan *plan, uint64_t *bytes,
                          mp_error *err)
{
    int n = m->cfg.routing.n_experts;
    for (int r = 0; r < plan->n_records; r++) {
        const mp_plan_record *rec = &plan->records[r];
        if (rec->expert < 0)
            continue;
        int rc = record_bytes(policy, m, plan, rec, &bytes[(size_t)rec->layer * n + rec->expert], err);
        if (rc)
            return rc;
    }
    return MP_OK;
}

/* Hottest first; ties in (layer, expert) order, so the ranking is a total order. */
static int hotter_first(const void *a, const void *b)
{
    const ranked_expert *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    if (x->layer != y->layer)
        return x->layer < y->layer ? -1 : 1;
    return (x->expert > y->expert) - (x->expert < y->expert);
}

/* Every routed expert with its count; MTP layers (not profiled) count 0, so they
 * rank last. */
static int rank_experts(const mp_stats *s, const mp_model *m, const uint64_t *bytes, ranked_expert *out)
{
    int n_experts = m->cfg.routing.n_experts, n = 0;
    for (int li = 0; li < all_layers(m); li++) {
        if (!layer_at(m, li)->experts)
            continue;
        int row = li < m->cfg.n_layers ? mp_stats_layer_row(s, li) : -1;
        for (int x = 0; x < n_experts; x++) {
            uint64_t count = row < 0 ? 0 : s->counts[(size_t)row * s->n_experts + x];
            out[n++] = (ranked_expert){li, x, count, bytes[(size_t)li * n_experts + x]};
        }
    }
    qsort(out, (size_t)n, sizeof *out, hotter_first);
    return n;
}

typedef struct {
    uint64_t used;
    bool closed;
} budget_fill;

/* Equal numbers of experts per tier (earlier tiers take the remainder), or, with a
 * budget, tier 1 = the hottest experts up to the first one that does not fit in
 * it (a prefix of the ranking) and tier 2 = the rest. */
static int tier_of_rank(const mp_tier_rule *rule, int rank, int n, budget_fill *fill, uint64_t bytes)
{
    if (rule->hot_budget == 0)
        return 1 + (int)((int64_t)rank * (rule->n_tiers - 1) / n);
    if (!fill->closed && bytes <= rule->hot_budget - fill->used) {
        fill->used += bytes;
        return 1;
    }
    fill->closed = true;
    return 2;
}

static json_t *layer_json(const mp_stats *s, int layer, int row, const int *tiers)
{
    json_t *counts = json_array(), *freq = json_array(), *tier = json_array();
    for (int x = 0; x < s->n_experts; x++) {
        uint64_t c = s->counts[(size_t)row * s->n_experts + x];
        json_array_append_new(counts, json_integer((json_int_t)c));
        json_array_append_new(freq, json_real(s->tokens ? (double)c / (double)s->tokens : 0.0));
        json_array_append_new(tier, json_integer(tiers[x]));
    }
    return json_pack("{s:i, s:o, s:o, s:o}", "layer", layer, "counts", counts, "frequency", freq, "tier", tier);
}

static json_t *routing_stats_json(const mp_stats *s, const char *stats_path, const mp_model *m,
                                  const mp_tier_rule *rule, const int *expert_tier)
{
    char hash[17];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)s->data_xxh3);
    json_t *tiering = json_pack("{s:s, s:i}", "rule", rule->hot_budget ? "hot-budget" : "equal", "tiers", rule->n_tiers);
    if (rule->hot_budget)
        json_object_set_new(tiering, "hot_budget", json_integer((json_int_t)rule->hot_budget));
    json_t *layers = json_array();
    for (int li = 0; li < m->cfg.n_layers; li++) {
        int row = mp_stats_layer_row(s, li);
        if (row >= 0 && m->layers[li].experts)
            json_array_append_new(layers, layer_json(s, li, row, expert_tier + (size_t)li * m->cfg.routing.n_experts));
    }
    json_t *text = json_object_get(s->header, "text");
    return json_pack("{s:s, s:s, s:O, s:I, s:i, s:o, s:o}", "stats", stats_path, "stats_xxh3", hash, "text",
                     text ? text : json_null(), "tokens", (json_int_t)s->tokens, "top_k", m->cfg.routing.top_k,
                     "tiering", tiering, "layers", layers);
}

json_t *mp_tiers_assign(const mp_stats *s, const char *stats_path, const mp_model *m, const mp_tier_rule *rule,
                        const uint64_t *expert_bytes, int *expert_tier, mp_tier_summary *summary)
{
    int n_experts = m->cfg.routing.n_experts;
    ranked_expert *ranked = malloc(((size_t)all_layers(m) * n_experts + 1) * sizeof *ranked);
    if (!ranked)
        return NULL;
    int n = rank_experts(s, m, expert_bytes, ranked);
    budget_fill fill = {0, false};
    uint64_t assignments = 0;
    memset(summary, 0, (size_t)rule->n_tiers * sizeof *summary);
    for (int r = 0; r < n; r++)
        assignments += ranked[r].count;
    for (int r = 0; r < n; r++) {
        int t = tier_of_rank(rule, r, n, &fill, ranked[r].bytes);
        expert_tier[(size_t)ranked[r].layer * n_experts + ranked[r].expert] = t;
        summary[t].experts++;
        summary[t].bytes += ranked[r].bytes;
        summary[t].routing_share += assignments ? (double)ranked[r].count / (double)assignments : 0;
    }
    free(ranked);
    return routing_stats_json(s, stats_path, m, rule, expert_tier);
}
