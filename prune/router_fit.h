/* Router refit after pruning or merging: per MoE layer, the rows of the kept experts
 * are refit so that the pruned model reproduces the original model's router logits:
 *   W = argmin ||X W^T - L||^2 + lambda ||W - W0||^2
 * X the pruned model's own router inputs on the calibration tokens (the pruned pack
 * run layer by layer, earlier layers already refit), L the original pack's router
 * logits of the kept experts at the same tokens (the original run layer by layer, its
 * own inputs), without the router bias (kept exact, as the correction bias is: for
 * sigmoid routers the fit is on the logits before the sigmoid), W0 the rows as cut.
 * lambda = 1e-3 * trace(X^T X) / hidden: ridge pulls directions the calibration
 * inputs barely span back to W0 instead of to whatever fits noise, and leaves the
 * well-spanned ones to the data. Solved in double by Cholesky of X^T X + lambda I
 * (X^T X summed per entry in a fixed order: the same bytes at any thread count), then
 * encoded in the router's own encoding (bf16: rounded to bf16) and staged as
 * "layers.N.router"; the engine then uses the stored values for the layers above. A
 * layer whose inputs the pruning has not changed (relative residual of W0 <= 1e-10:
 * the first MoE layer, or nothing pruned) keeps its rows byte for byte. MTP layers are
 * not run by the engine: their routers stay as cut.
 * Memory: the two residual streams and a hidden x hidden matrix. */
#ifndef MP_PRUNE_ROUTER_FIT_H
#define MP_PRUNE_ROUTER_FIT_H

#include <stdbool.h>
#include <stdint.h>

#include "../formats/pack.h"
#include "../quant/stage.h"
#include "prune_plan.h"

typedef struct {
    const char *original, *pruned; /* pack directories */
    const char *text_path, *tokens_path;
    int ctx;
    int64_t max_tokens;
    bool quiet;
} mp_refit_options;

typedef struct {
    int layer;
    double lambda;
    double before, after; /* ||X W^T - L||^2 / ||L||^2 with W0 and with the stored refit rows */
} mp_refit_layer;

typedef struct {
    int n_layers;
    mp_refit_layer *layers;
    int64_t tokens;
    double seconds;
} mp_refit_result;

/* plan: which original expert each pruned expert is (new_id), per decoder layer. */
int mp_refit_routers(const mp_refit_options *o, const mp_prune_plan *plan, const mp_pack *pruned, mp_stage *stage,
                     mp_refit_result *res, mp_error *err);
void mp_refit_result_free(mp_refit_result *r);

#endif
