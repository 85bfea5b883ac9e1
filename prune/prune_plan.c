#include "prune_plan.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Experts per group a grouped router needs: noaux_tc ranks a group by the sum of its
 * two best scores (HF takes topk(2) of each group). */
static int min_per_group(const mp_routing *r)
{
    return r->group_rule == MP_GROUPS_TOP2_SUM ? 2 : 1;
}

static bool grouped(const mp_routing *r)
{
    return r->group_rule != MP_GROUPS_NONE && r->n_group > 1;
}

/* The counts a grouped router accepts, for the error message. */
static void valid_counts(const mp_routing *r, char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int per = min_per_group(r); per * r->n_group <= r->n_experts && used + 16 < cap; per++) {
        if (per * r->topk_group < r->top_k)
            continue;
        used += (size_t)snprintf(buf + used, cap - used, "%s%d", used ? ", " : "", per * r->n_group);
    }
    if (!buf[0])
        snprintf(buf, cap, "none");
}

int mp_prune_keep_count(const mp_routing *r, double fraction, int per_layer, int *keep, mp_error *err)
{
    int E = r->n_experts;
    if (per_layer == 0 && !(fraction > 0 && fraction <= 1))
        return mp_fail(err, MP_EXIT_INPUT, "--keep %g: expected a fraction in (0, 1]", fraction);
    *keep = per_layer > 0 ? per_layer : (int)lround(fraction * E);
    if (*keep > E)
        return mp_fail(err, MP_EXIT_INPUT, "--keep-per-layer %d: the model has only %d experts per layer", *keep, E);
    if (*keep < r->top_k)
        return mp_fail(err, MP_EXIT_INPUT, "keeping %d of %d experts per layer is fewer than the %d experts each token "
                       "is routed to (top_k); keep at least %d", *keep, E, r->top_k, r->top_k);
    if (!grouped(r))
        return MP_OK;
    int per = *keep / r->n_group;
    char valid[512];
    valid_counts(r, valid, sizeof valid);
    if (*keep % r->n_group != 0 || per < min_per_group(r) || per * r->topk_group < r->top_k)
        return mp_fail(err, MP_EXIT_INPUT, "keeping %d of %d experts does not leave %d whole groups (n_group %d, "
                       "topk_group %d, top_k %d); valid counts: %s", *keep, E, r->n_group, r->n_group, r->topk_group,
                       r->top_k, valid);
    return MP_OK;
}

int mp_prune_plan_init(mp_prune_plan *p, const mp_routing *r, int keep, int n_layers, mp_error *err)
{
    memset(p, 0, sizeof *p);
    p->n_experts = r->n_experts;
    p->keep = keep;
    p->n_group = grouped(r) ? r->n_group : 1;
    p->n_layers = n_layers;
    p->layers = calloc((size_t)n_layers + 1, sizeof *p->layers);
    p->order = malloc((size_t)r->n_experts * sizeof *p->order);
    p->kept = malloc((size_t)r->n_experts * sizeof *p->kept);
    bool ok = p->layers && p->order && p->kept;
    for (int i = 0; ok && i < n_layers; i++) {
        mp_prune_layer *L = &p->layers[i];
        L->saliency = calloc((size_t)r->n_experts, sizeof *L->saliency);
        L->new_id = malloc((size_t)r->n_experts * sizeof *L->new_id);
        L->into = malloc((size_t)r->n_experts * sizeof *L->into);
        L->into_similarity = calloc((size_t)r->n_experts, sizeof *L->into_similarity);
        ok = L->saliency && L->new_id && L->into && L->into_similarity;
    }
    if (!ok) {
        mp_prune_plan_free(p);
        return mp_fail(err, MP_EXIT_IO, "out of memory for the pruning plan");
    }
    return MP_OK;
}

void mp_prune_plan_free(mp_prune_plan *p)
{
    for (int i = 0; p->layers && i < p->n_layers; i++) {
        free(p->layers[i].saliency);
        free(p->layers[i].new_id);
        free(p->layers[i].into);
        free(p->layers[i].into_similarity);
    }
    free(p->layers);
    free(p->order);
    free(p->kept);
    memset(p, 0, sizeof *p);
}

/* order[0..n) = first + 0..n-1 by decreasing saliency, ties to the lower id
 * (insertion sort: a group holds at most a few hundred experts). */
static void rank_group(const double *saliency, int first, int n, int *order)
{
    for (int i = 0; i < n; i++) {
        int e = first + i, j = i;
        while (j > 0 && saliency[order[j - 1]] < saliency[e]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = e;
    }
}

void mp_prune_plan_layer(mp_prune_plan *p, int i, int layer, const double *saliency)
{
    mp_prune_layer *L = &p->layers[i];
    int E = p->n_experts, size = E / p->n_group, per = p->keep / p->n_group;
    int *order = p->order;
    bool *kept = p->kept;
    L->layer = layer;
    L->scored = saliency != NULL;
    if (saliency)
        memcpy(L->saliency, saliency, (size_t)E * sizeof *saliency);
    for (int g = 0; g < p->n_group; g++) {
        rank_group(L->saliency, g * size, size, order); /* unscored: all 0, so the lowest ids lead */
        for (int j = 0; j < size; j++)
            kept[order[j]] = j < per;
    }
    for (int e = 0, next = 0; e < E; e++) {
        L->new_id[e] = kept[e] ? next++ : -1;
        L->into[e] = -1;
    }
}

void mp_prune_plan_merge(mp_prune_plan *p, int i, const double *sim)
{
    mp_prune_layer *L = &p->layers[i];
    int E = p->n_experts, size = E / p->n_group;
    for (int e = 0; L->scored && sim && e < E; e++) {
        if (L->new_id[e] >= 0)
            continue;
        int first = e / size * size, best = -1;
        for (int k = first; k < first + size; k++)
            if (L->new_id[k] >= 0 && (best < 0 || sim[(int64_t)e * E + k] > sim[(int64_t)e * E + best]))
                best = k;
        L->into[e] = best;
        L->into_similarity[e] = best >= 0 ? sim[(int64_t)e * E + best] : 0.0;
    }
}

const mp_prune_layer *mp_prune_plan_find(const mp_prune_plan *p, int layer)
{
    for (int i = 0; i < p->n_layers; i++)
        if (p->layers[i].layer == layer)
            return &p->layers[i];
    return NULL;
}
