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
    float *sinks;                   /* GPT-OSS: one learned logit per head */
    /* MLA (DeepSeek-V2/V3): q (no q_lora_rank) or q_a + q_a_norm + q_b; kv_a, kv_b */
    eng_linear q_a, q_b, kv_a, kv_b;
    float *q_a_norm, *kv_a_norm;
    bool is_moe;
    eng_mlp dense;
    eng_linear router;
    float *correction_bias; /* DeepSeek-V3 e_score_correction_bias: selection only */
    eng_mlp *experts;
    bool has_shared;
    eng_mlp shared;
    eng_linear shared_gate;
} eng_layer;

/* RoPE's cos/sin tables for positions [0, positions): [positions, eng_rope_dim / 2]. */
typedef struct {
    float *cos, *sin;
    int positions;
} eng_rope;

struct mp_engine {
    mp_weight_source *src;
    const mp_config *cfg;
    mp_act_mode act;
    float *embed, *final_norm;
    eng_linear lm_head;
    eng_layer *layers;
    bool resident;        /* keep every layer loaded (the whole model fits the budget) */
    eng_rope rope;
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

/* engine_rope.c */
int eng_rope_dim(const mp_config *c);
bool eng_rope_is_yarn(const mp_config *c);
double eng_yarn_mscale(double factor, double mscale);
/* Grows the tables to cover positions (a no-op when they do). */
int eng_rope_init(eng_rope *r, const mp_config *c, int positions, mp_error *err);
void eng_rope_free(eng_rope *r);
/* Rotates the rope slice of every head of n rows, row t at position pos0 + t. */
void eng_rope_rotate(const eng_rope *r, const mp_config *c, float *x, int64_t n, int pos0, int heads, int stride,
                     int offset, bool interleaved);
/* The same over a batch: row t sits at position t % n_ctx. */
void eng_rope_apply(const mp_engine *e, float *x, int64_t n, int n_ctx, int heads, int stride, int offset,
                    bool interleaved);

/* The shape of one attention: q rows [heads * qk_dim], k rows [kv_heads * qk_dim],
 * v rows [kv_heads * v_dim], output rows [heads * v_dim]. */
typedef struct {
    int heads, kv_heads, qk_dim, v_dim;
    float scale;
    int window;         /* > 0: a query at i sees keys j with i - j < window */
    const float *sinks; /* per head, or NULL */
} eng_attn_shape;

/* engine_attn.c: softmax(q k^T * scale) v per sequence and head, causal. */
int eng_attend(const eng_attn_shape *a, const float *q, const float *k, const float *v, int n_seq, int n_ctx,
               float *out);
/* out[n_seq * n_ctx, hidden] = attention over h (the normed input). */
int eng_attention(mp_engine *e, int li, const float *h, int n_seq, int n_ctx, float *out,
                  const mp_engine_hooks *hooks, mp_error *err);
/* engine_mla.c: the same for DeepSeek's multi-head latent attention, and its softmax
 * scale (1/sqrt(qk_head_dim), times YaRN's mscale^2). */
float eng_mla_scale(const mp_config *c);
int eng_mla_attention(mp_engine *e, const eng_layer *L, const float *h, int n_seq, int n_ctx, float *out,
                      const mp_engine_hooks *hooks, mp_error *err);

/* engine_route.c: per token the top_k experts and their weights from the router
 * logits (overwritten); bias is the correction bias or NULL; scratch holds
 * 2 * n_experts floats and flags 2 * n_experts flags. */
void eng_route_token(const mp_config *c, const float *bias, float *logits, float *scratch, bool *flags,
                     int *chosen, float *weights);

/* engine_moe.c: out[n, hidden] = MoE(h) of layer index li, or the dense MLP. */
int eng_moe(mp_engine *e, int li, const float *h, int64_t n, float *out, const mp_engine_hooks *hooks,
            mp_error *err);
/* act[n, width] = the activations entering down (SwiGLU of gate and up). */
int eng_mlp_act(const mp_engine *e, const eng_mlp *m, const float *x, int64_t n, float *act,
                const mp_engine_hooks *hooks);
/* keep_act (optional, n x width) receives the activations entering down. */
int eng_mlp_apply(const mp_engine *e, const eng_mlp *m, const float *x, int64_t n, float *out, float *keep_act,
                  const mp_engine_hooks *hooks);

#endif
