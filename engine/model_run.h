/* What reference, verify and profile share: a model (checkpoint or pack) opened
 * with its engine, run over the chunks of a text a batch at a time. */
#ifndef MP_MODEL_RUN_H
#define MP_MODEL_RUN_H

#include <jansson.h>

#include "chunks.h"
#include "engine.h"

typedef struct {
    mp_weight_source src;
    mp_engine *engine;
    int vocab;
} mp_model_run;

/* allow_nonfinite: a checkpoint's NaN or infinite weights are read as they are
 * (--allow-nonfinite) rather than refused. */
int mp_model_run_open(mp_model_run *r, const char *path, mp_act_mode act, bool allow_nonfinite, mp_error *err);
void mp_model_run_close(mp_model_run *r);

/* Chunks per forward pass: about 2048 tokens at a time. */
int mp_batch_chunks(int ctx);

/* Runs chunks [c0, c0 + n) and writes the scored logits to
 * logits[(chunk - c0) * scored + j][vocab]; tokens receives the chunks' tokens. */
int mp_model_run_batch(mp_model_run *r, const mp_chunks *c, int64_t c0, int n, int32_t *tokens, float *logits,
                       const mp_engine_hooks *hooks, mp_error *err);

/* Every chunk of c (ctx tokens each) embedded, as the residual stream that
 * layer-by-layer passes (calibration, saliency) transform in turn: a new buffer of
 * [n_chunks * ctx, hidden] floats in *out (the caller frees it). */
int mp_embed_chunks(mp_engine *e, const mp_chunks *c, int n_chunks, int ctx, int64_t hidden, float **out,
                    mp_error *err);

/* The model's identity as written into reference files and checked against them. */
json_t *mp_model_identity(const mp_config *cfg);
/* NULL when the identities agree, else which field differs (into why). b may have
 * fewer experts than a only when b_pruned: a pack that moepack prune made from a's
 * model says so in its manifest (provenance.prune). */
const char *mp_model_identity_differs(json_t *a, json_t *b, bool b_pruned, char *why, size_t cap);

#endif
