/* The incremental forward pass of a pack, for generation: tokens are fed in order
 * (a prompt at once, then one at a time), keys and values stay in a KV cache (for
 * MLA the normed latent and the rotated rope key, attention absorbed through kv_b),
 * and every linear layer is computed by the kernels straight from its packed
 * encoding (engine/kernels.h). Tier-0 tensors are read into memory at open; routed
 * experts come from an expert source (the runtime's cache under a memory budget). */
#ifndef MP_DECODER_H
#define MP_DECODER_H

#include <stdbool.h>
#include <stdint.h>

#include "../formats/pack.h"
#include "../model/model.h"
#include "kernels.h"

/* Where routed experts' record bytes come from. acquire gives the raw bytes of the
 * record of (layer, expert) (as mp_pack_read_record decodes them), valid until the
 * matching release; prefetch (optional) hints that experts will be needed soon. */
typedef struct {
    void *user;
    int (*acquire)(void *user, int layer, int expert, const uint8_t **raw, mp_error *err);
    void (*release)(void *user, int layer, int expert);
    void (*prefetch)(void *user, int layer, const int *experts, int n);
} mp_expert_source;

/* Per token and MoE layer, the experts chosen (for the runtime's statistics). */
typedef void (*mp_decoder_routing_fn)(void *user, int layer, const int *experts, int top_k);

typedef struct {
    mp_kern_mode mode;   /* MP_KERN_EXACT: f32 activations; MP_KERN_FAST: the fastest kernels */
    int max_ctx;         /* positions the KV cache holds */
    int prefetch_extra;  /* next-layer prediction: top_k + this many experts are hinted */
    mp_decoder_routing_fn on_routing;
    void *user;
} mp_decoder_opts;

typedef struct mp_decoder mp_decoder;

/* pack and cfg must outlive the decoder. */
int mp_decoder_new(mp_decoder **out, const mp_pack *pack, const mp_config *cfg, const mp_expert_source *experts,
                   const mp_decoder_opts *o, mp_error *err);
void mp_decoder_free(mp_decoder *d);
/* Replaces the expert source (the runtime sizes its cache after tier 0 is read). */
void mp_decoder_set_experts(mp_decoder *d, const mp_expert_source *experts);
/* Runs tokens[0..n) at the positions after those already cached. logits receives
 * the last token's logits [vocab], or every token's [n, vocab] when all_logits. */
int mp_decoder_step(mp_decoder *d, const int32_t *tokens, int n, bool all_logits, float *logits, mp_error *err);
/* Keeps the first n cached positions and forgets the rest (0: a new conversation). */
void mp_decoder_truncate(mp_decoder *d, int n);
int mp_decoder_position(const mp_decoder *d);
/* Bytes of weights held by the decoder itself (tier 0, and MLA's f32 kv_b), and of
 * its KV cache. */
uint64_t mp_decoder_resident_bytes(const mp_decoder *d);
uint64_t mp_decoder_kv_bytes(const mp_decoder *d);
/* Packed weight bytes read by the kernels so far (each product's matrix counted once
 * per step: the memory traffic that bounds decoding speed). */
uint64_t mp_decoder_weight_bytes(const mp_decoder *d);

#endif
