/* Expert merging (HC-SMoE / M-SMoE): a kept expert that dropped experts fold into
 * becomes the frequency-weighted average of their decoded f32 weights (every tensor
 * of its record: gate, up, down and their biases), w_e = selections_e / sum of the
 * group's selections, each dropped expert's neurons first permuted to match the kept
 * expert's (align.h: averaging unaligned neurons measurably hurt), re-encoded in the kept tensor's own encoding (w4 and llama.cpp
 * grids by the MSE grid search, which is calibration-free and never worse than RTN
 * per group, so the result stays on the same grids). The encoded tensors are staged
 * under the kept expert's input name for prune_write.c. A kept expert that receives
 * nothing, or only experts never selected (weight 0), is not staged: it is copied
 * byte for byte. */
#ifndef MP_PRUNE_MERGE_H
#define MP_PRUNE_MERGE_H

#include "../formats/pack.h"
#include "../quant/stage.h"
#include "prune_plan.h"
#include "saliency.h"

typedef struct {
    int experts_merged;  /* dropped experts folded in with a nonzero weight */
    int experts_changed; /* kept experts rewritten */
    int tensors;         /* tensors re-encoded */
    int experts_aligned; /* members whose neurons were permuted to the kept expert's (align.h) */
} mp_merge_stats;

int mp_merge_experts(const mp_pack *in, const mp_prune_plan *plan, const mp_saliency *s, mp_stage *stage,
                     mp_merge_stats *st, mp_error *err);

#endif
