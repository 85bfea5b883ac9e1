/* Counts over a canonical model: parameters (total, multi-token-prediction, active
 * per token), bytes and dtypes, and expert tensors found per layer. */
#ifndef MP_MODEL_STATS_H
#define MP_MODEL_STATS_H

#include "model.h"

typedef struct {
    int expert_linears_expected, expert_linears_found;
    uint64_t expert_params; /* one routed expert, averaged over the layer's experts */
} mp_layer_stats;

typedef struct {
    uint64_t total_params; /* every weight of the checkpoint, MTP layers included */
    uint64_t mtp_params;   /* of which in multi-token-prediction layers */
    uint64_t active_params; /* per token in the main model: top-k routed experts only */
    uint64_t total_bytes;
    uint64_t dtype_tensors[MP_DT_COUNT], dtype_bytes[MP_DT_COUNT];
    int moe_layers, dense_layers;
    int unused_tensors;    /* in the checkpoint but not part of the model */
    mp_layer_stats *layers; /* n_layers */
} mp_model_stats;

int mp_model_stats_compute(mp_model_stats *s, const mp_model *m, mp_error *err);
void mp_model_stats_free(mp_model_stats *s);

#endif
