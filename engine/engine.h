/* The CPU forward engine: the canonical model in f32 arithmetic, reading every
 * weight through mp_weight_source (checkpoint or pack, any encoding). It runs a
 * batch of equal-length sequences layer by layer, each from position 0 under a
 * causal mask, and reports what verify and profile need through hooks. */
#ifndef MP_ENGINE_H
#define MP_ENGINE_H

#include <stdint.h>

#include "../model/weight_source.h"

/* Deployment numerics of the activations entering each linear layer. */
typedef enum {
    MP_ACT_F32,  /* exact */
    MP_ACT_BF16, /* rounded to bf16 (w4a16 deployments) */
    MP_ACT_FP8   /* e4m3 with a dynamic scale per token and 128 channels (FP8 deployments) */
} mp_act_mode;

/* Optional observers, called from one thread in a fixed order. */
typedef struct {
    void *user;
    /* The n rows entering linear `name` (canonical name); for a routed expert the
     * rows routed to it, in token order. */
    void (*linear_input)(void *user, const char *name, const float *x, int64_t n, int64_t cols);
    /* Per token the top_k experts chosen (in order of weight) and their weights. */
    void (*routing)(void *user, int layer, const int *experts, const float *weights, int64_t n, int top_k);
    /* The residual stream after a layer: n rows of d values. */
    void (*layer_output)(void *user, int layer, const float *hidden, int64_t n, int64_t d);
} mp_engine_hooks;

typedef struct mp_engine mp_engine;

/* Fails clearly for families and options the engine does not run yet. */
int mp_engine_new(mp_engine **out, mp_weight_source *src, mp_act_mode act, mp_error *err);
void mp_engine_free(mp_engine *e);
int mp_engine_vocab(const mp_engine *e);

/* Runs n_seq sequences of n_ctx tokens (tokens[n_seq * n_ctx]) and writes the
 * logits at positions [first, last) of each sequence to
 * logits[(s * (last - first) + p - first) * vocab]. hooks may be NULL. */
int mp_engine_forward(mp_engine *e, const int32_t *tokens, int n_seq, int n_ctx, int first, int last,
                      float *logits, const mp_engine_hooks *hooks, mp_error *err);

/* ---- Layer by layer, for calibration (quant/calib*.c): the caller holds the
 * residual stream x[n, hidden] of its tokens and may change a loaded layer's
 * weights between steps (mp_engine_weight), so that later steps and layers see
 * the quantized model. ---- */

/* x[i] = the embedding of tokens[i]. */
int mp_engine_embed(const mp_engine *e, const int32_t *tokens, int64_t n, float *x, mp_error *err);
/* Loads a layer (no-op when loaded); release frees it unless the model is resident. */
int mp_engine_layer_load(mp_engine *e, int li, mp_error *err);
void mp_engine_layer_release(mp_engine *e, int li);
/* x += attention(input_norm(x)) over n_seq sequences of n_ctx tokens. */
int mp_engine_attention_step(mp_engine *e, int li, float *x, int n_seq, int n_ctx, const mp_engine_hooks *hooks,
                             mp_error *err);
/* h = post_attn_norm(x): what the MLP block (router, experts, shared, dense) reads. */
int mp_engine_mlp_input(mp_engine *e, int li, const float *x, int64_t n, float *h, mp_error *err);
/* x += MLP(post_attn_norm(x)). */
int mp_engine_mlp_step(mp_engine *e, int li, float *x, int64_t n, const mp_engine_hooks *hooks, mp_error *err);
/* Per row of h (MLP input) the top_k experts and their weights, as the MoE block routes. */
int mp_engine_route(mp_engine *e, int li, const float *h, int64_t n, int *chosen, float *weights, mp_error *err);
/* act[n, width] entering the down projection of an MLP of layer li: routed expert
 * `expert` (>= 0), the shared expert (MP_ENGINE_SHARED) or the dense MLP (MP_ENGINE_DENSE). */
enum { MP_ENGINE_SHARED = -1, MP_ENGINE_DENSE = -2 };
int mp_engine_mlp_act(mp_engine *e, int li, int expert, const float *h, int64_t n, float *act, mp_error *err);
/* The f32 values of a tensor of a loaded layer or of the globals, by canonical name
 * (a vector: rows 1), writable in place; NULL when not loaded or unknown. */
float *mp_engine_weight(mp_engine *e, const char *name, int64_t *rows, int64_t *cols);

/* Parses "f32", "bf16" or "fp8"; -1 when unknown. */
int mp_act_parse(const char *text, mp_act_mode *out);

#endif
