/* The engine's own structures, shared by its files (engine*.c) only. */
#ifndef MP_ENGINE_INTERNAL_H
#define MP_ENGINE_INTERNAL_H

#include <stdbool.h>

#include "engine.h"

/* A linear layer in f32: w[rows, cols], optional bias[rows]. */
typedef struct {
    char name[96];
    float *w, *bias;
    int64_t rows, cols;
} eng_linear;

typedef struct {
    eng_linear gate, up, down;
} eng_mlp;

typedef struct {
    bool loaded;
    float *input_norm, *post_attn_norm;
    eng_linear q, k, v, o;
    float *q_norm, *k_norm;
    int64_t q_norm_len, k_norm_len; /* head_dim (per head) or the full width */
    bool is_moe;
    eng_mlp dense;
    eng_linear router;
    eng_mlp *experts;
    bool has_shared;
    eng_mlp shared;
    eng_linear shared_gate;
} eng_layer;

struct mp_engine {
    mp_weight_source *src;
    const mp_config *cfg;
    mp_act_mode act;
    float *embed, *final_norm;
    eng_linear lm_head;
    eng_layer *layers;
    bool resident;        /* keep every layer loaded (the whole model fits the budget) */
    float *rope_cos, *rope_sin; /* [rope_positions, head_dim / 2] */
    int rope_positions;
};

/* engine_load.c */
int eng_load_globals(mp_engine *e, mp_error *err);
int eng_load_layer(mp_engine *e, int layer, mp_error *err);
void eng_free_layer(mp_engine *e, int layer);
void eng_free_linear(eng_linear *l);
uint64_t eng_model_bytes(const mp_config *cfg);

/* engine.c: y[n, l->rows] = act(x)[n, l->cols] * W^T + bias, reporting x to hooks. */
void eng_linear_apply(const mp_engine *e, const eng_linear *l, const float *x, int64_t n, float *y,
                      const mp_engine_hooks *hooks);

/* engine_attn.c: out[n_seq * n_ctx, hidden] = attention over h (the normed input). */
int eng_attention(mp_engine *e, const eng_layer *L, const float *h, int n_seq, int n_ctx, float *out,
                  const mp_engine_hooks *hooks, mp_error *err);
int eng_rope_init(mp_engine *e, int positions, mp_error *err);

/* engine_moe.c: out[n, hidden] = MoE(h) of layer index li, or the dense MLP. */
int eng_moe(mp_engine *e, int li, const float *h, int64_t n, float *out, const mp_engine_hooks *hooks,
            mp_error *err);
/* keep_act (optional, n x width) receives the activations entering down. */
int eng_mlp_apply(const mp_engine *e, const eng_mlp *m, const float *x, int64_t n, float *out, float *keep_act,
                  const mp_engine_hooks *hooks);

#endif
