/* synth: writes deterministic HF-style MoE checkpoints for tests and benchmarks.
 *
 * The checkpoint is described first as a flat list of tensors (families.c), each
 * with the recipe of its values (values.c); output.c then writes the shards one
 * tensor at a time, plus config.json and the other JSON files. Values are a pure
 * function of (--seed, tensor name, element index), so any tensor can be
 * regenerated in any order and the output is byte-identical for the same options. */
#ifndef SYNTH_H
#define SYNTH_H

#include <stdbool.h>
#include <stdint.h>

#include "../../core/dtype.h"
#include "../../core/error.h"

typedef enum {
    FAM_MIXTRAL,
    FAM_QWEN2_MOE,
    FAM_QWEN3_MOE,
    FAM_OLMOE,
    FAM_DEEPSEEK_V2,
    FAM_DEEPSEEK_V3,
    FAM_KIMI_K2,
    FAM_GLM4_MOE,
    FAM_GPT_OSS,
    FAM_COUNT
} synth_family;

/* Every option; ints are -1 (doubles < 0) until set by the command line or defaults. */
typedef struct {
    synth_family family;
    const char *out_dir;
    int layers, hidden, heads, kv_heads, head_dim, vocab;
    int experts, top_k, moe_inter, inter, shared, dense_layers, mtp;
    int q_lora_rank; /* 0: null (a single q_proj, as DeepSeek-V2-Lite) */
    int kv_lora_rank, qk_nope_dim, qk_rope_dim, v_head_dim;
    int n_group, topk_group;
    int sliding_window;
    double routed_scale;
    double yarn_factor; /* 0: rope_scaling null */
    int tie;            /* tie_word_embeddings: no lm_head.weight */
    long long seed;
    mp_dtype dtype;
    bool fp8, mxfp4;
    bool outliers; /* a few embedding channels 20x larger: hot residual channels */
    int shards;
    bool v3_full;
} synth_options;

const char *synth_family_name(synth_family f);
/* The families that use MLA and DeepSeek-style routing config keys. */
bool synth_is_deepseek(synth_family f);
/* Families with a sigmoid router and e_score_correction_bias. */
bool synth_has_score_bias(synth_family f);

/* How a tensor's logical values are drawn. */
typedef enum {
    VAL_LINEAR, /* ~N(0, gain/sqrt(fan_in)), a few input channels 10-30x larger */
    VAL_EMBED,  /* ~N(0, 0.5/sqrt(hidden)) */
    VAL_NORM,   /* 1 + N(0, 0.1) */
    VAL_BIAS,   /* N(0, 0.05) */
    VAL_SINK    /* N(0, 0.5): attention sink logits */
} synth_values;

/* How the logical values are stored. */
typedef enum {
    ENC_PLAIN,          /* dtype, same layout as the logical tensor */
    ENC_TRANSPOSED,     /* logical [E][rows][cols] stored [E][cols][rows] (GPT-OSS bf16 experts) */
    ENC_FP8,            /* F8_E4M3, value / scale of its 128x128 block */
    ENC_FP8_SCALE,      /* F32 [ceil(rows/128), ceil(cols/128)]: amax/448 per block */
    ENC_MXFP4_BLOCKS,   /* U8 [E, rows, cols/32, 16]: two e2m1 nibbles a byte */
    ENC_MXFP4_SCALES    /* U8 [E, rows, cols/32]: e8m0 exponent per 32 values */
} synth_encoding;

#define SYNTH_MAX_DIMS 4

typedef struct {
    char *name;
    synth_values values;
    synth_encoding enc;
    mp_dtype dtype;
    int ndim;
    int64_t shape[SYNTH_MAX_DIMS];     /* as stored */
    int64_t experts, rows, cols;       /* logical shape [experts][rows][cols] */
    uint64_t seed;                     /* of the logical tensor: a weight and its scales agree */
    uint64_t channel_seed;             /* picks outlier input channels; shared by all tensors */
    bool hot_channels;                 /* VAL_EMBED with --outliers: 1 in 64 columns x20 */
    uint64_t nbytes;
    int shard;
} synth_tensor;

typedef struct {
    synth_tensor *items;
    int n, cap;
    bool out_of_memory; /* sticky: set by a failed push, checked once at the end */
} synth_list;

void synth_list_free(synth_list *l);

/* families.c: the tensors of the checkpoint, in model (state-dict) order. */
int synth_build_tensors(const synth_options *o, synth_list *l, mp_error *err);
/* Whether the MLP of this layer index (MTP layers included) is a mixture of experts. */
bool synth_layer_is_moe(const synth_options *o, int layer);

/* values.c */
uint64_t synth_hash_name(uint64_t seed, const char *name);
/* Writes the stored bytes of t through the callback, in chunks. */
typedef int (*synth_sink)(void *ctx, const void *bytes, uint64_t len, mp_error *err);
int synth_emit_tensor(const synth_tensor *t, synth_sink sink, void *ctx, mp_error *err);

/* output.c */
/* Assigns shards (o->shards <= l->n, at least one tensor each) and writes them. */
int synth_write_checkpoint(const synth_options *o, synth_list *l, mp_error *err);
int synth_write_configs(const synth_options *o, mp_error *err);

#endif
