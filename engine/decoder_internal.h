/* The decoder's own structures, shared by its files (decoder*.c) only. */
#ifndef MP_DECODER_INTERNAL_H
#define MP_DECODER_INTERNAL_H

#include "decoder.h"
#include "engine_internal.h"

/* A linear layer straight from the pack: w.raw NULL when the model has none. */
typedef struct {
    mp_packed w;
    float *bias;
} dec_linear;

typedef struct {
    dec_linear gate, up, down;
} dec_mlp;

/* Where a routed expert's tensors lie in its record: the pack tensor index of gate,
 * up, down and their biases (-1 when absent). */
typedef struct {
    int tensor[6];
} dec_expert;

typedef struct {
    float *input_norm, *post_attn_norm, *q_norm, *k_norm, *sinks, *q_a_norm, *kv_a_norm, *correction_bias;
    int64_t q_norm_len, k_norm_len;
    dec_linear q, k, v, o, q_a, q_b, kv_a;
    float *kv_b; /* MLA: kv_b in f32 [heads * (nope + v), rank], for the absorbed attention */
    bool is_moe, has_shared;
    dec_mlp dense, shared;
    dec_linear router, shared_gate;
    dec_expert *experts;
    /* KV cache: GQA k and v [max_ctx, kv_heads * head_dim]; MLA k = the normed latent
     * [max_ctx, kv_lora_rank], v = the rotated rope key [max_ctx, qk_rope_dim] */
    float *k_cache, *v_cache;
} dec_layer;

struct mp_decoder {
    const mp_pack *pack;
    const mp_config *cfg;
    mp_expert_source experts;
    mp_decoder_opts opts;
    uint8_t **tier0;     /* [n_records]: the bytes of tier-0 records, NULL for experts */
    uint64_t tier0_bytes, kv_bytes;
    mp_packed embed;
    float *final_norm;
    dec_linear lm_head;
    dec_layer *layers;
    eng_rope rope;
    int pos;
    uint64_t weight_bytes; /* packed weight bytes the kernels have read, for statistics */
};

/* decoder.c */
/* y[n, rows] = x[n, cols] W^T + bias, by the decoder's kernels or in the given mode. */
void dec_linear_apply(mp_decoder *d, const dec_linear *l, const float *x, int64_t n, float *y);
void dec_linear_apply_in(mp_decoder *d, const dec_linear *l, const float *x, int64_t n, float *y, mp_kern_mode mode);
/* decoder_attn.c: out[n, hidden] = attention of layer li over h (normed), for the
 * tokens at positions d->pos .. d->pos + n, which it adds to the cache. */
int dec_attention(mp_decoder *d, int li, const float *h, int n, float *out, mp_error *err);
/* decoder_mlp.c: out[n, hidden] = the MLP block of layer li over h (normed input). */
int dec_mlp_block(mp_decoder *d, int li, const float *h, int n, float *out, mp_error *err);
/* Hints the experts layer li is likely to choose for the residual stream x [n = 1]. */
void dec_prefetch_next(mp_decoder *d, int li, const float *x);

#endif
