/* Which experts each MoE layer keeps: the same count in every layer (GGUF and most
 * runtimes need one expert count), the most salient kept, and for grouped routers
 * (DeepSeek-V3, Kimi-K2, GLM-4.5) the same count in every group so the groups stay
 * whole. Kept experts are renumbered 0..keep-1 in their original order, which keeps
 * group g's experts contiguous in group g. A dropped expert's `into` is where a merge
 * would fold it (-1: dropped outright), so merging can reuse the plan. */
#ifndef MP_PRUNE_PLAN_H
#define MP_PRUNE_PLAN_H

#include <stdbool.h>

#include "../model/model.h"

typedef struct {
    int layer;        /* decoder layer, or layers + j for MTP layer j */
    bool scored;      /* false: not run on the calibration text (MTP layers) */
    double *saliency; /* [n_experts]; zeros when not scored */
    int *new_id;      /* [n_experts]: the expert's id in the output, -1 when dropped */
    int *into;        /* [n_experts]: for a dropped expert, the kept original id it merges into, or -1 */
    double *into_similarity; /* [n_experts]: the similarity of a merged expert to its target */
} mp_prune_layer;

typedef struct {
    int n_experts, keep, n_group;
    int n_layers;           /* MoE layers planned */
    mp_prune_layer *layers;
    int *order;             /* scratch: one group's ranking */
    bool *kept;             /* scratch: [n_experts] */
} mp_prune_plan;

/* The count to keep per layer: round(fraction * n_experts) when per_layer is 0,
 * else per_layer. Exit 2 naming the numbers when it is outside [top_k, n_experts]
 * or does not split evenly into groups that still route top_k experts. */
int mp_prune_keep_count(const mp_routing *r, double fraction, int per_layer, int *keep, mp_error *err);

/* An empty plan for n_layers MoE layers of n_experts each. */
int mp_prune_plan_init(mp_prune_plan *p, const mp_routing *r, int keep, int n_layers, mp_error *err);
void mp_prune_plan_free(mp_prune_plan *p);
/* Fills plan layer i for model layer `layer`: per group, the keep / n_group experts
 * of highest saliency (ties to the lower id); saliency NULL keeps the lowest ids. */
void mp_prune_plan_layer(mp_prune_plan *p, int i, int layer, const double *saliency);
/* Merging (HC-SMoE / M-SMoE): every dropped expert of plan layer i folds into the
 * kept expert of its own group whose output is most similar (sim[e * n_experts + k],
 * ties to the lower id). Layers not scored keep into = -1 (dropped outright). */
void mp_prune_plan_merge(mp_prune_plan *p, int i, const double *sim);
/* The plan layer of model layer `layer`, or NULL when it has no routed experts. */
const mp_prune_layer *mp_prune_plan_find(const mp_prune_plan *p, int layer);

#endif
