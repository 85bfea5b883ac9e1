/* The records a pack of a model will hold, in writing order: every tensor of the
 * canonical model under its canonical name (docs/FORMAT.md "Tensor names"), one
 * record per tier-0 tensor, one record per routed expert. */
#ifndef MP_PLAN_H
#define MP_PLAN_H

#include "model.h"
#include "tensor_class.h"

typedef struct {
    char name[96];
    char source[192];
    mp_tensor_class cls;
    mp_linear lin;  /* the weight; for a bias part, the linear whose bias it is */
    bool is_bias;
    int ndim;       /* 1 for vectors (biases, norms), 2 for matrices */
    int64_t rows, cols;
} mp_plan_part;

typedef struct {
    int tier, layer, expert;
    int first_part, n_parts;
} mp_plan_record;

typedef struct {
    mp_plan_part *parts;
    int n_parts, cap_parts;
    mp_plan_record *records;
    int n_records, cap_records;
} mp_plan;

/* expert_tier: the tier of each routed expert, [layer][expert] flattened as
 * layer * n_experts + expert over layers and then MTP layers; NULL puts them all in tier 1. */
int mp_plan_build(mp_plan *plan, const mp_model *m, const int *expert_tier, mp_error *err);
void mp_plan_free(mp_plan *plan);
/* The checkpoint dtype behind a part (MXFP4 and FP8 report their storage dtype). */
mp_dtype mp_plan_source_dtype(const mp_model *m, const mp_plan_part *part);

#endif
