/* Routed experts into tiers by routing frequency (convert --stats --tiers N or
 * --hot-budget SIZE): tier 0 keeps the dense part, tiers 1.. hold the routed
 * experts, hottest first, ranked over all layers by routing count. */
#ifndef MP_TIERS_H
#define MP_TIERS_H

#include <jansson.h>

#include "../formats/stats.h"
#include "../model/plan.h"
#include "../quant/policy.h"

#define MP_TIERS_MAX 16

typedef struct {
    int n_tiers;         /* 2..MP_TIERS_MAX, tier 0 included */
    uint64_t hot_budget; /* > 0: tier 1 = the hottest experts within this many bytes, tier 2 the rest */
} mp_tier_rule;

/* What each expert tier ended up with, for the summary. */
typedef struct {
    int experts;
    uint64_t bytes;       /* raw bytes of their records */
    double routing_share; /* of all routing assignments */
} mp_tier_summary;

/* Checks that the statistics come from the same model as m (architecture, vocab,
 * hidden, layers, experts, top_k), cover its MoE layers and give the plan's linears
 * their widths (mp_stats_check_model; exit 2 otherwise). */
int mp_tiers_check_model(const mp_stats *s, const mp_model *m, const mp_plan *plan, const char *ckpt,
                         mp_error *err);

/* Raw bytes of each routed expert's record under policy, [layer * n_experts + expert]
 * over layers and then MTP layers, from a plan built without tiers. */
int mp_tiers_expert_bytes(const mp_policy *policy, const mp_model *m, const mp_plan *plan, uint64_t *bytes,
                          mp_error *err);

/* Fills expert_tier (as mp_plan_build takes it) and summary[n_tiers]; returns the
 * manifest's routing_stats (docs/FORMAT.md), or NULL when out of memory. */
json_t *mp_tiers_assign(const mp_stats *s, const char *stats_path, const mp_model *m, const mp_tier_rule *rule,
                        const uint64_t *expert_bytes, int *expert_tier, mp_tier_summary *summary);


#endif
