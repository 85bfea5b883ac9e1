/* Routing locality for `moepack profile` (docs/profile.md "Routing locality"):
 * what an expert-caching runtime can expect from the model's real routing.
 *   - reuse: per MoE layer, the share of (token, chosen expert) pairs whose expert
 *     one of the next N tokens of the same sequence chooses again, next to what
 *     independent choices with the layer's routing frequencies would give;
 *   - next-layer prediction: layer l+1's router applied to the residual stream after
 *     layer l, and the share of l+1's actual choices its top_k (and 2·top_k) holds;
 *   - expert-cache hit rates of the policies of cache_sim.h over the routing trace
 *     in runtime order (token by token, layer by layer), for caches of 25 / 50 / 75 /
 *     100 % of the routed experts.
 * The profiler forwards its engine hooks here; everything runs on the hooks' thread. */
#ifndef MP_ROUTING_LOCALITY_H
#define MP_ROUTING_LOCALITY_H

#include <jansson.h>
#include <stdint.h>

#include "../engine/engine.h"
#include "cache_sim.h"

enum { MP_REUSE_WINDOWS = 3, MP_CACHE_SIZES = 4 };
extern const int mp_reuse_windows[MP_REUSE_WINDOWS];     /* 1, 4, 16 */
extern const int mp_cache_size_pct[MP_CACHE_SIZES];      /* 25, 50, 75, 100 */

typedef struct {
    mp_engine *engine;
    const mp_config *cfg;
    int ctx, n_layers, n_moe, n_experts, top_k, wide; /* wide: the larger prediction, min(2 top_k, experts) */
    int *moe_index;       /* [n_layers]: index among the MoE layers, -1 for a dense layer */
    int *moe_layer;       /* [n_moe]: the model layer */
    int64_t n_tokens;     /* positions the run covers */
    int64_t batch_first;  /* global position of the current batch's first token */
    int32_t *trace;       /* [n_tokens][n_moe][top_k]: the experts chosen, in weight order */
    int pending;          /* the layer whose prediction pred holds, -1 none */
    int32_t *pred;        /* [batch tokens][wide] */
    int64_t pred_rows;
    uint64_t *pred_hits, *pred_hits_wide, *pred_total; /* [n_moe] */
    char problem[256];    /* the first failure inside a hook */
    /* Results of mp_locality_finish. */
    double *reuse, *independent; /* [n_moe][MP_REUSE_WINDOWS] */
    int32_t capacity[MP_CACHE_SIZES];
    int64_t accesses, distinct;
    double hit_rate[MP_CACHE_POLICIES][MP_CACHE_SIZES];
} mp_locality;

/* For n_tokens positions run in sequences of ctx, with the engine that runs them
 * (the prediction calls its router between layers). */
int mp_locality_init(mp_locality *l, mp_engine *engine, const mp_weight_source *src, int ctx, int64_t n_tokens,
                     mp_error *err);
void mp_locality_free(mp_locality *l);

/* Before each forward pass: the global position of its first token. */
void mp_locality_begin_batch(mp_locality *l, int64_t first_token);
/* The engine's routing and layer_output hooks. */
void mp_locality_routing(mp_locality *l, int layer, const int *experts, int64_t n, int top_k);
void mp_locality_layer_output(mp_locality *l, int layer, const float *hidden, int64_t n, int64_t d);

/* After the run: reuse figures and cache simulations. */
int mp_locality_finish(mp_locality *l, mp_error *err);

json_t *mp_locality_json(const mp_locality *l);
void mp_locality_print(const mp_locality *l);
/* "token layer expert..." lines in runtime order (docs/profile.md). */
int mp_locality_write_trace(const mp_locality *l, const char *path, mp_error *err);

#endif
