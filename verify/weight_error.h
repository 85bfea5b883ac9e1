/* Relative error of every tensor of a tested model against the reference
 * checkpoint: ||W_test - W_ref|| / ||W_ref|| (Frobenius), and per routed expert
 * over its gate, up and down together. */
#ifndef MP_WEIGHT_ERROR_H
#define MP_WEIGHT_ERROR_H

#include "../model/weight_source.h"

typedef struct {
    char name[96];
    char encoding[32];
    double rel;
} mp_tensor_error;

typedef struct {
    int n;
    mp_tensor_error *tensors;
    int n_layers, n_experts;
    double *expert_rel; /* [layer * n_experts + e]; NAN when the expert is absent */
} mp_weight_errors;

int mp_weight_errors_compute(mp_weight_errors *w, mp_weight_source *ref, mp_weight_source *test, bool quiet,
                             mp_error *err);
void mp_weight_errors_free(mp_weight_errors *w);

#endif
