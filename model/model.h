/* The canonical model: what every family adapter produces and every later stage
 * (convert, engine, profile, verify) consumes. Tensors are referred to by their
 * index in the checkpoint's mp_st_set; -1 means absent. */
#ifndef MP_MODEL_H
#define MP_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "../core/error.h"
#include "../formats/safetensors.h"

typedef enum {
    MP_FAMILY_MIXTRAL,
    MP_FAMILY_QWEN2_MOE,
    MP_FAMILY_QWEN3_MOE,
    MP_FAMILY_OLMOE,
    MP_FAMILY_DEEPSEEK_V2,
    MP_FAMILY_DEEPSEEK_V3, /* also Kimi-K2 and other DeepseekV3ForCausalLM descendants */
    MP_FAMILY_GLM4_MOE,    /* GLM-4.5: GQA attention with DeepSeek-V3 routing */
    MP_FAMILY_GPT_OSS,
    MP_FAMILY_COUNT
} mp_family;

/* How a checkpoint stores its linear weights. */
typedef enum {
    MP_WEIGHTS_PLAIN,     /* f32 / bf16 / f16 */
    MP_WEIGHTS_FP8_BLOCK, /* F8_E4M3 + <name>_scale_inv per block (DeepSeek-V3) */
    MP_WEIGHTS_MXFP4      /* GPT-OSS experts: _blocks U8 + _scales E8M0 */
} mp_weight_format;

typedef enum { MP_ATTN_GQA, MP_ATTN_MLA } mp_attn_kind;
typedef enum { MP_SCORE_SOFTMAX, MP_SCORE_SIGMOID } mp_score_func;
typedef enum {
    MP_ROUTE_SCORE_THEN_TOPK, /* score all experts, pick top-k (Mixtral, Qwen, DeepSeek) */
    MP_ROUTE_TOPK_THEN_SOFTMAX /* top-k on logits, softmax over the k (GPT-OSS) */
} mp_route_order;
typedef enum {
    MP_GROUPS_NONE,
    MP_GROUPS_MAX,      /* group score = max expert score (DeepSeek-V2 group_limited_greedy) */
    MP_GROUPS_TOP2_SUM  /* group score = sum of the top-2 biased scores (DeepSeek-V3 noaux_tc) */
} mp_group_rule;

typedef struct {
    int n_experts, top_k;
    mp_score_func score;
    mp_route_order order;
    bool norm_topk;        /* renormalise the selected weights to sum 1 */
    double scaling;        /* routed_scaling_factor */
    int n_group, topk_group;
    mp_group_rule group_rule;
    bool correction_bias;  /* e_score_correction_bias, used for selection only */
} mp_routing;

typedef struct {
    char architecture[64], model_type[64];
    mp_family family;
    mp_weight_format weights;
    int fp8_block_rows, fp8_block_cols; /* weight_block_size, when FP8 block-scaled */
    int n_layers, hidden, vocab;
    int n_heads, n_kv_heads, head_dim;
    int intermediate;        /* dense MLP width */
    int moe_intermediate;    /* one routed expert's width */
    int shared_intermediate; /* all shared experts together (0 = none) */
    int n_shared_experts;
    double rms_eps, rope_theta;
    bool tie_embeddings;
    bool attention_bias, qk_norm;
    double partial_rotary;   /* fraction of head_dim rotated (GLM-4.5: 0.5) */
    /* MLA (DeepSeek-V2/V3) */
    int q_lora_rank, kv_lora_rank, qk_nope_dim, qk_rope_dim, v_head_dim;
    bool rope_interleave;
    /* rope_scaling (YaRN) */
    char rope_type[16];
    double rope_factor, rope_mscale, rope_mscale_all_dim, rope_beta_fast, rope_beta_slow;
    int rope_original_max_pos;
    bool rope_truncate;      /* YaRN: round the correction range to whole dimensions */
    /* which layers are MoE */
    int first_k_dense, moe_layer_freq, decoder_sparse_step;
    bool *mlp_only; /* n_layers flags (Qwen2-MoE mlp_only_layers) */
    mp_routing routing;
    /* GPT-OSS */
    int sliding_window;
    bool *sliding;   /* n_layers flags: sliding-window attention layers */
    double swiglu_limit;
    int n_mtp;       /* DeepSeek-V3 num_nextn_predict_layers */
} mp_config;

/* One linear map y = W x (+ b), W logically [rows = out, cols = in]. */
typedef struct {
    int weight;          /* tensor: 2-D [out,in], or stacked [E,...]; MXFP4 _blocks */
    int scale;           /* FP8 _scale_inv or MXFP4 _scales; -1 when none */
    int bias;            /* -1 when none */
    int expert;          /* slice of a stacked tensor, -1 for a 2-D tensor */
    bool transposed;     /* stored [in, out] (GPT-OSS bf16 stacked experts) */
    int row_offset, row_stride; /* output rows taken from the stored tensor (GPT-OSS gate = even) */
    int64_t rows, cols;
} mp_linear;

typedef struct {
    mp_linear gate, up, down;
} mp_mlp;

typedef struct {
    mp_attn_kind kind;
    mp_linear q, k, v, o;          /* GQA; MLA uses q (when q_lora_rank = 0) and o */
    mp_linear q_a, q_b, kv_a, kv_b; /* MLA */
    int q_a_norm, kv_a_norm;
    int q_norm, k_norm;            /* Qwen3 per head, OLMoE full width, GLM-4.5 per head */
    int sinks;                     /* GPT-OSS */
} mp_attention;

typedef struct {
    int input_norm, post_attn_norm;
    mp_attention attn;
    bool is_moe;
    mp_mlp dense;        /* when !is_moe */
    mp_linear router;    /* [n_experts, hidden], with a bias on GPT-OSS */
    int correction_bias; /* DeepSeek-V3 e_score_correction_bias */
    mp_mlp *experts;     /* routing.n_experts */
    bool has_shared;
    mp_mlp shared;
    int shared_gate;     /* Qwen2-MoE shared_expert_gate [1, hidden] */
    bool sliding;        /* GPT-OSS sliding-window attention */
} mp_layer;

/* A DeepSeek-V3 multi-token-prediction layer: carried through, not run. */
typedef struct {
    mp_layer layer;
    int enorm, hnorm, head_norm, head, embed;
    mp_linear eh_proj; /* [hidden, 2 hidden] */
} mp_mtp;

typedef struct {
    mp_config cfg;
    const mp_st_set *st;
    int embed, final_norm, lm_head;
    mp_layer *layers;
    mp_mtp *mtp;
    /* Tensors the model expected but did not find, or found with the wrong shape:
     * one line each, naming the tensor. */
    int n_problems;
    char **problems;
    bool *claimed; /* per checkpoint tensor: part of the model */
    /* Reads of NaN or infinite weights are errors unless this is set
     * (--allow-nonfinite): such a checkpoint is broken, not a model to quantize. */
    bool allow_nonfinite;
} mp_model;

const char *mp_family_name(mp_family f);
/* Comma-separated list of the supported families, for error messages. */
const char *mp_supported_families(void);

/* Reads config.json (path to the file) into cfg. */
int mp_config_read(mp_config *cfg, const char *path, mp_error *err);
void mp_config_free(mp_config *cfg);
/* Whether decoder layer i (MTP layers: n_layers + j) has routed experts. */
bool mp_config_is_moe_layer(const mp_config *c, int i);

/* Builds the canonical model over an opened checkpoint; the model takes over the
 * config (mp_model_free frees it). Missing and mis-shaped tensors are collected in
 * m->problems, one line each naming the tensor (not an error by themselves). */
int mp_model_build(mp_model *m, const mp_config *cfg, const mp_st_set *st, mp_error *err);
void mp_model_free(mp_model *m);

/* Logical number of weights behind a tensor (MXFP4 blocks hold 2 per byte;
 * scale tensors hold none). */
uint64_t mp_model_tensor_params(const mp_model *m, int tensor);

#endif
