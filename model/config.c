/* config.json -> mp_config: family recognition and the keys each family uses. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/json.h"
#include "model.h"

typedef struct {
    const char *model_type, *architecture;
    mp_family family;
} family_alias;

static const family_alias aliases[] = {
    {"mixtral", "MixtralForCausalLM", MP_FAMILY_MIXTRAL},
    {"qwen2_moe", "Qwen2MoeForCausalLM", MP_FAMILY_QWEN2_MOE},
    {"qwen3_moe", "Qwen3MoeForCausalLM", MP_FAMILY_QWEN3_MOE},
    {"olmoe", "OlmoeForCausalLM", MP_FAMILY_OLMOE},
    {"deepseek_v2", "DeepseekV2ForCausalLM", MP_FAMILY_DEEPSEEK_V2},
    {"deepseek_v3", "DeepseekV3ForCausalLM", MP_FAMILY_DEEPSEEK_V3},
    {"kimi_k2", "DeepseekV3ForCausalLM", MP_FAMILY_DEEPSEEK_V3},
    {"glm4_moe", "Glm4MoeForCausalLM", MP_FAMILY_GLM4_MOE},
    {"gpt_oss", "GptOssForCausalLM", MP_FAMILY_GPT_OSS},
};

static const char *const family_names[MP_FAMILY_COUNT] = {
    "mixtral", "qwen2_moe", "qwen3_moe", "olmoe", "deepseek_v2", "deepseek_v3", "glm4_moe", "gpt_oss",
};

const char *mp_family_name(mp_family f)
{
    return (unsigned)f < MP_FAMILY_COUNT ? family_names[f] : "?";
}

const char *mp_supported_families(void)
{
    return "Mixtral (MixtralForCausalLM), Qwen2-MoE (Qwen2MoeForCausalLM), Qwen3-MoE "
           "(Qwen3MoeForCausalLM), OLMoE (OlmoeForCausalLM), DeepSeek-V2 (DeepseekV2ForCausalLM), "
           "DeepSeek-V3/R1/Kimi-K2 (DeepseekV3ForCausalLM), GLM-4.5 (Glm4MoeForCausalLM), "
           "GPT-OSS (GptOssForCausalLM)";
}

/* ---- typed field access: every failure names the file and the key ---- */

#define REQUIRED (-2147483647 - 1) /* get_int fallback meaning: the key must be present */

/* Absolute bounds on the counts and widths, a few times the largest published MoE
 * (DeepSeek-V3/Kimi-K2: 61 layers, 384 experts, hidden 7168, vocab 163840): they keep
 * a forged config from sizing allocations and loops before the checkpoint is seen. */
enum {
    MAX_LAYERS = 1024,
    MAX_EXPERTS = 4096,
    MAX_SHARED_EXPERTS = 64,
    MAX_MTP = 16,
    MAX_HEADS = 1024,
    MAX_HEAD_DIM = 1024,
    MAX_WIDTH = 65536,        /* hidden, lora ranks */
    MAX_FFN = 1 << 20,        /* intermediate widths */
    MAX_VOCAB = 1 << 22,
    MAX_POSITIONS = 1 << 24,  /* sliding window, YaRN original context */
    MAX_FP8_BLOCK = 65536
};

typedef struct {
    const char *path;
    json_t *root;
    mp_error *err;
} config_reader;

static json_t *field(config_reader *r, const char *key)
{
    json_t *v = json_object_get(r->root, key);
    return json_is_null(v) ? NULL : v;
}

static int get_int(config_reader *r, const char *key, int fallback, int min, int max, int *out)
{
    json_t *v = field(r, key);
    if (!v) {
        if (fallback == REQUIRED)
            return mp_fail(r->err, MP_EXIT_INPUT, "%s: missing field \"%s\"", r->path, key);
        *out = fallback;
        return MP_OK;
    }
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return mp_fail(r->err, MP_EXIT_INPUT, "%s: field \"%s\": expected an integer in [%d, %d]", r->path, key,
                       min, max);
    *out = (int)json_integer_value(v);
    return MP_OK;
}

/* A number in [min, max]; the fallback is taken as is. */
static int get_double(config_reader *r, const char *key, double fallback, double min, double max, double *out)
{
    json_t *v = field(r, key);
    if (!v) {
        *out = fallback;
        return MP_OK;
    }
    if (!json_is_number(v) || !(json_number_value(v) >= min && json_number_value(v) <= max))
        return mp_fail(r->err, MP_EXIT_INPUT, "%s: field \"%s\": expected a number in [%g, %g]", r->path, key,
                       min, max);
    *out = json_number_value(v);
    return MP_OK;
}

static int get_bool(config_reader *r, const char *key, bool fallback, bool *out)
{
    json_t *v = field(r, key);
    if (!v) {
        *out = fallback;
        return MP_OK;
    }
    if (!json_is_boolean(v))
        return mp_fail(r->err, MP_EXIT_INPUT, "%s: field \"%s\": expected true or false", r->path, key);
    *out = json_is_true(v);
    return MP_OK;
}

static int get_string(config_reader *r, json_t *obj, const char *key, char *out, size_t cap)
{
    json_t *v = json_object_get(obj, key);
    out[0] = '\0';
    if (!v || json_is_null(v))
        return MP_OK;
    if (!json_is_string(v) || json_string_length(v) >= cap)
        return mp_fail(r->err, MP_EXIT_INPUT, "%s: field \"%s\": expected a string", r->path, key);
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return MP_OK;
}

/* ---- family ---- */

static void read_architecture(config_reader *r, mp_config *cfg)
{
    json_t *archs = field(r, "architectures");
    json_t *first = json_is_array(archs) ? json_array_get(archs, 0) : NULL;
    snprintf(cfg->architecture, sizeof cfg->architecture, "%s",
             json_is_string(first) ? json_string_value(first) : "");
}

/* model_type decides; architectures[0] is the fallback for configs without it. */
static int detect_family(config_reader *r, mp_config *cfg)
{
    int rc = get_string(r, r->root, "model_type", cfg->model_type, sizeof cfg->model_type);
    if (rc != MP_OK)
        return rc;
    read_architecture(r, cfg);
    for (size_t i = 0; i < sizeof aliases / sizeof *aliases; i++)
        if (strcmp(cfg->model_type, aliases[i].model_type) == 0 ||
            (cfg->model_type[0] == '\0' && strcmp(cfg->architecture, aliases[i].architecture) == 0)) {
            cfg->family = aliases[i].family;
            return MP_OK;
        }
    return mp_fail(r->err, MP_EXIT_INPUT,
                   "%s: architecture \"%s\" (model_type \"%s\") is not supported; supported families: %s",
                   r->path, cfg->architecture, cfg->model_type, mp_supported_families());
}

/* rope_scaling of any family (null or absent: plain RoPE); the engine refuses the
 * types it does not run rather than ignoring them. */
static int read_rope_scaling(config_reader *r, mp_config *c)
{
    json_t *rs = field(r, "rope_scaling");
    if (!rs)
        return MP_OK;
    if (!json_is_object(rs))
        return mp_fail(r->err, MP_EXIT_INPUT, "%s: field \"rope_scaling\": expected an object", r->path);
    int rc = get_string(r, rs, "rope_type", c->rope_type, sizeof c->rope_type);
    if (!rc && c->rope_type[0] == '\0')
        rc = get_string(r, rs, "type", c->rope_type, sizeof c->rope_type);
    config_reader sub = {r->path, rs, r->err};
    if (!rc) rc = get_double(&sub, "factor", 1.0, 1.0, 1e4, &c->rope_factor);
    if (!rc) rc = get_double(&sub, "mscale", 1.0, 0.0, 1e3, &c->rope_mscale);
    if (!rc) rc = get_double(&sub, "mscale_all_dim", 0.0, 0.0, 1e3, &c->rope_mscale_all_dim);
    if (!rc) rc = get_double(&sub, "beta_fast", 32.0, 1e-3, 1e4, &c->rope_beta_fast);
    if (!rc) rc = get_double(&sub, "beta_slow", 1.0, 1e-3, 1e4, &c->rope_beta_slow);
    if (!rc) rc = get_int(&sub, "original_max_position_embeddings", 4096, 1, MAX_POSITIONS, &c->rope_original_max_pos);
    if (!rc) rc = get_bool(&sub, "truncate", true, &c->rope_truncate);
    return rc;
}

static int read_common(config_reader *r, mp_config *c)
{
    int rc = MP_OK;
    if (!rc) rc = get_int(r, "num_hidden_layers", REQUIRED, 1, MAX_LAYERS, &c->n_layers);
    if (!rc) rc = get_int(r, "hidden_size", REQUIRED, 1, MAX_WIDTH, &c->hidden);
    if (!rc) rc = get_int(r, "vocab_size", REQUIRED, 1, MAX_VOCAB, &c->vocab);
    if (!rc) rc = get_int(r, "num_attention_heads", REQUIRED, 1, MAX_HEADS, &c->n_heads);
    if (!rc) rc = get_int(r, "num_key_value_heads", c->n_heads, 1, MAX_HEADS, &c->n_kv_heads);
    if (!rc) rc = get_int(r, "head_dim", c->hidden / c->n_heads, 1, MAX_HEAD_DIM, &c->head_dim);
    if (!rc) rc = get_int(r, "intermediate_size", 0, 0, MAX_FFN, &c->intermediate);
    if (!rc) rc = get_double(r, "rms_norm_eps", 1e-6, 1e-12, 1e-2, &c->rms_eps);
    if (!rc) rc = get_double(r, "rope_theta", 10000.0, 1.0, 1e12, &c->rope_theta);
    if (!rc) rc = get_bool(r, "tie_word_embeddings", false, &c->tie_embeddings);
    if (!rc) rc = get_double(r, "partial_rotary_factor", 1.0, 1e-3, 1.0, &c->partial_rotary);
    if (!rc) rc = read_rope_scaling(r, c);
    c->first_k_dense = 0;
    c->moe_layer_freq = 1;
    c->decoder_sparse_step = 1;
    c->routing.scaling = 1.0;
    return rc;
}

static int read_experts(config_reader *r, mp_config *c, const char *count_key)
{
    mp_routing *ro = &c->routing;
    int rc = get_int(r, count_key, REQUIRED, 1, MAX_EXPERTS, &ro->n_experts);
    if (!rc) rc = get_int(r, "num_experts_per_tok", REQUIRED, 1, MAX_EXPERTS, &ro->top_k);
    if (!rc && ro->top_k > ro->n_experts)
        rc = mp_fail(r->err, MP_EXIT_INPUT, "%s: num_experts_per_tok %d exceeds the %d experts", r->path,
                     ro->top_k, ro->n_experts);
    return rc;
}

/* Qwen2-MoE: a layer is MoE unless listed in mlp_only_layers or off the sparse step. */
static int read_mlp_only_layers(config_reader *r, mp_config *c)
{
    json_t *list = field(r, "mlp_only_layers");
    c->mlp_only = calloc((size_t)c->n_layers, sizeof *c->mlp_only);
    if (!c->mlp_only)
        return mp_fail(r->err, MP_EXIT_IO, "%s: out of memory", r->path);
    if (!list)
        return MP_OK;
    if (!json_is_array(list))
        return mp_fail(r->err, MP_EXIT_INPUT, "%s: field \"mlp_only_layers\": expected a list of layer indices", r->path);
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= c->n_layers)
            return mp_fail(r->err, MP_EXIT_INPUT, "%s: field \"mlp_only_layers\"[%zu]: expected a layer index below %d",
                           r->path, i, c->n_layers);
        c->mlp_only[json_integer_value(v)] = true;
    }
    return MP_OK;
}

static int read_qwen_moe(config_reader *r, mp_config *c)
{
    int rc = read_experts(r, c, "num_experts");
    if (!rc) rc = get_int(r, "moe_intermediate_size", c->intermediate, 1, MAX_FFN, &c->moe_intermediate);
    if (!rc) rc = get_bool(r, "norm_topk_prob", false, &c->routing.norm_topk);
    if (!rc) rc = get_int(r, "decoder_sparse_step", 1, 1, MAX_LAYERS, &c->decoder_sparse_step);
    if (!rc) rc = read_mlp_only_layers(r, c);
    if (!rc && c->family == MP_FAMILY_QWEN2_MOE) {
        rc = get_int(r, "shared_expert_intermediate_size", 0, 0, MAX_FFN, &c->shared_intermediate);
        c->n_shared_experts = c->shared_intermediate > 0;
        c->attention_bias = true; /* Qwen2 attention always has q/k/v biases */
    }
    if (!rc && c->family == MP_FAMILY_QWEN3_MOE) {
        rc = get_bool(r, "attention_bias", false, &c->attention_bias);
        c->qk_norm = true;
    }
    return rc;
}

static int read_olmoe(config_reader *r, mp_config *c)
{
    c->moe_intermediate = c->intermediate;
    c->qk_norm = true;
    int rc = read_experts(r, c, "num_experts");
    return rc ? rc : get_bool(r, "norm_topk_prob", false, &c->routing.norm_topk);
}

/* Group-limited routing picks topk_group of n_group equal groups, then top_k experts
 * among them: the groups must split the experts evenly and hold top_k candidates, and
 * noaux_tc scores a group by its best two. */
static int check_groups(config_reader *r, mp_routing *ro)
{
    if (ro->n_experts % ro->n_group != 0 || ro->topk_group > ro->n_group)
        return mp_fail(r->err, MP_EXIT_INPUT,
                       "%s: fields \"n_group\" %d and \"topk_group\" %d: expected n_group dividing the %d experts and topk_group <= n_group",
                       r->path, ro->n_group, ro->topk_group, ro->n_experts);
    if (ro->n_group == 1) {
        ro->group_rule = MP_GROUPS_NONE;
        return MP_OK;
    }
    int per_group = ro->n_experts / ro->n_group;
    if (ro->group_rule != MP_GROUPS_NONE && (int64_t)ro->topk_group * per_group < ro->top_k)
        return mp_fail(r->err, MP_EXIT_INPUT,
                       "%s: field \"topk_group\" %d: %d groups of %d experts cannot hold num_experts_per_tok %d",
                       r->path, ro->topk_group, ro->topk_group, per_group, ro->top_k);
    if (ro->group_rule == MP_GROUPS_TOP2_SUM && per_group < 2)
        return mp_fail(r->err, MP_EXIT_INPUT,
                       "%s: field \"n_group\" %d: noaux_tc scores groups by their top 2, expected at least 2 experts per group",
                       r->path, ro->n_group);
    return MP_OK;
}

/* DeepSeek-V2/V3 and descendants: routing keys shared with GLM-4.5. */
static int read_deepseek_routing(config_reader *r, mp_config *c)
{
    mp_routing *ro = &c->routing;
    char scoring[32], method[32];
    int rc = read_experts(r, c, "n_routed_experts");
    if (!rc) rc = get_int(r, "n_shared_experts", 0, 0, MAX_SHARED_EXPERTS, &c->n_shared_experts);
    if (!rc) rc = get_int(r, "moe_intermediate_size", REQUIRED, 1, MAX_FFN, &c->moe_intermediate);
    if (!rc) rc = get_int(r, "first_k_dense_replace", 0, 0, MAX_LAYERS, &c->first_k_dense);
    if (!rc) rc = get_int(r, "moe_layer_freq", 1, 1, MAX_LAYERS, &c->moe_layer_freq);
    if (!rc) rc = get_int(r, "n_group", 1, 1, MAX_EXPERTS, &ro->n_group);
    if (!rc) rc = get_int(r, "topk_group", ro->n_group, 1, MAX_EXPERTS, &ro->topk_group);
    if (!rc) rc = get_double(r, "routed_scaling_factor", 1.0, 1e-3, 1e3, &ro->scaling);
    if (!rc) rc = get_int(r, "num_nextn_predict_layers", 0, 0, MAX_MTP, &c->n_mtp);
    if (!rc) rc = get_string(r, r->root, "scoring_func", scoring, sizeof scoring);
    if (!rc) rc = get_string(r, r->root, "topk_method", method, sizeof method);
    if (rc)
        return rc;
    bool v2 = c->family == MP_FAMILY_DEEPSEEK_V2;
    if (scoring[0] == '\0')
        strcpy(scoring, v2 ? "softmax" : "sigmoid");
    if (method[0] == '\0')
        strcpy(method, v2 ? "greedy" : "noaux_tc");
    if (strcmp(scoring, "softmax") != 0 && strcmp(scoring, "sigmoid") != 0)
        return mp_fail(r->err, MP_EXIT_INPUT, "%s: field \"scoring_func\": \"%s\", expected softmax or sigmoid", r->path, scoring);
    ro->score = strcmp(scoring, "sigmoid") == 0 ? MP_SCORE_SIGMOID : MP_SCORE_SOFTMAX;
    if (strcmp(method, "greedy") == 0)
        ro->group_rule = MP_GROUPS_NONE;
    else if (strcmp(method, "group_limited_greedy") == 0)
        ro->group_rule = MP_GROUPS_MAX;
    else if (strcmp(method, "noaux_tc") == 0)
        ro->group_rule = MP_GROUPS_TOP2_SUM;
    else
        return mp_fail(r->err, MP_EXIT_INPUT, "%s: field \"topk_method\": \"%s\", expected greedy, group_limited_greedy or noaux_tc", r->path, method);
    ro->correction_bias = strcmp(method, "noaux_tc") == 0;
    rc = check_groups(r, ro);
    if (rc)
        return rc;
    c->shared_intermediate = c->moe_intermediate * c->n_shared_experts;
    return get_bool(r, "norm_topk_prob", !v2, &ro->norm_topk);
}

static int read_deepseek(config_reader *r, mp_config *c)
{
    int rc = read_deepseek_routing(r, c);
    if (!rc) rc = get_int(r, "q_lora_rank", 0, 0, MAX_WIDTH, &c->q_lora_rank);
    if (!rc) rc = get_int(r, "kv_lora_rank", REQUIRED, 1, MAX_WIDTH, &c->kv_lora_rank);
    if (!rc) rc = get_int(r, "qk_nope_head_dim", REQUIRED, 1, MAX_HEAD_DIM, &c->qk_nope_dim);
    if (!rc) rc = get_int(r, "qk_rope_head_dim", REQUIRED, 1, MAX_HEAD_DIM, &c->qk_rope_dim);
    if (!rc) rc = get_int(r, "v_head_dim", REQUIRED, 1, MAX_HEAD_DIM, &c->v_head_dim);
    if (!rc) rc = get_bool(r, "rope_interleave", true, &c->rope_interleave);
    if (!rc) rc = get_bool(r, "attention_bias", false, &c->attention_bias);
    return rc;
}

static int read_glm4_moe(config_reader *r, mp_config *c)
{
    int rc = read_deepseek_routing(r, c);
    if (!rc) rc = get_bool(r, "attention_bias", false, &c->attention_bias);
    if (!rc) rc = get_bool(r, "use_qk_norm", false, &c->qk_norm);
    return rc;
}

/* GPT-OSS: layer_types alternates sliding and full attention. */
static int read_gpt_oss(config_reader *r, mp_config *c)
{
    int rc = read_experts(r, c, "num_local_experts");
    if (!rc) rc = get_int(r, "sliding_window", 0, 0, MAX_POSITIONS, &c->sliding_window);
    if (!rc) rc = get_double(r, "swiglu_limit", 7.0, 1e-3, 1e6, &c->swiglu_limit);
    if (!rc) rc = get_bool(r, "attention_bias", true, &c->attention_bias);
    if (rc)
        return rc;
    c->moe_intermediate = c->intermediate;
    c->routing.order = MP_ROUTE_TOPK_THEN_SOFTMAX;
    c->sliding = calloc((size_t)c->n_layers, sizeof *c->sliding);
    if (!c->sliding)
        return mp_fail(r->err, MP_EXIT_IO, "%s: out of memory", r->path);
    json_t *types = field(r, "layer_types");
    for (int i = 0; i < c->n_layers; i++) {
        json_t *t = types ? json_array_get(types, (size_t)i) : NULL;
        if (types && (!json_is_string(t) || (strcmp(json_string_value(t), "sliding_attention") != 0 &&
                                            strcmp(json_string_value(t), "full_attention") != 0)))
            return mp_fail(r->err, MP_EXIT_INPUT,
                           "%s: field \"layer_types\"[%d]: expected \"sliding_attention\" or \"full_attention\"",
                           r->path, i);
        c->sliding[i] = t ? strcmp(json_string_value(t), "sliding_attention") == 0 : i % 2 == 0;
    }
    return MP_OK;
}

static bool is_block_size(json_t *v)
{
    return json_is_integer(v) && json_integer_value(v) >= 1 && json_integer_value(v) <= MAX_FP8_BLOCK;
}

/* quantization_config: FP8 block scales (DeepSeek) or MXFP4 (GPT-OSS); other
 * pre-quantized checkpoints are not inputs we can read. */
static int read_quantization(config_reader *r, mp_config *c)
{
    json_t *q = field(r, "quantization_config");
    c->weights = MP_WEIGHTS_PLAIN;
    if (!q)
        return MP_OK;
    char method[32];
    int rc = json_is_object(q) ? get_string(r, q, "quant_method", method, sizeof method)
                               : mp_fail(r->err, MP_EXIT_INPUT, "%s: field \"quantization_config\": expected an object", r->path);
    if (rc)
        return rc;
    if (strcmp(method, "mxfp4") == 0) {
        c->weights = MP_WEIGHTS_MXFP4;
        return MP_OK;
    }
    if (strcmp(method, "fp8") != 0)
        return mp_fail(r->err, MP_EXIT_INPUT,
                       "%s: quantization_config.quant_method \"%s\" is not readable; expected an unquantized, fp8 (block-scaled) or mxfp4 checkpoint",
                       r->path, method);
    json_t *block = json_object_get(q, "weight_block_size");
    if (!json_is_array(block) || json_array_size(block) != 2 || !is_block_size(json_array_get(block, 0)) ||
        !is_block_size(json_array_get(block, 1)))
        return mp_fail(r->err, MP_EXIT_INPUT,
                       "%s: quantization_config.weight_block_size: expected [rows, cols], each in [1, %d] (per-tensor FP8 is not supported)",
                       r->path, MAX_FP8_BLOCK);
    c->weights = MP_WEIGHTS_FP8_BLOCK;
    c->fp8_block_rows = (int)json_integer_value(json_array_get(block, 0));
    c->fp8_block_cols = (int)json_integer_value(json_array_get(block, 1));
    return MP_OK;
}

bool mp_config_is_moe_layer(const mp_config *c, int i)
{
    switch (c->family) {
    case MP_FAMILY_QWEN2_MOE:
    case MP_FAMILY_QWEN3_MOE:
        return !c->mlp_only[i] && (i + 1) % c->decoder_sparse_step == 0;
    case MP_FAMILY_DEEPSEEK_V2:
    case MP_FAMILY_DEEPSEEK_V3:
    case MP_FAMILY_GLM4_MOE:
        return i >= c->first_k_dense && i % c->moe_layer_freq == 0;
    default:
        return true;
    }
}

static bool has_dense_layer(const mp_config *c)
{
    for (int i = 0; i < c->n_layers; i++)
        if (!mp_config_is_moe_layer(c, i))
            return true;
    return false;
}

static bool is_mla(const mp_config *c)
{
    return c->family == MP_FAMILY_DEEPSEEK_V2 || c->family == MP_FAMILY_DEEPSEEK_V3;
}

/* Attention: GQA shares each kv head among whole groups of q heads, and RoPE
 * rotates pairs, so the rotated width is even. */
static int check_attention(config_reader *r, const mp_config *c)
{
    if (c->n_heads % c->n_kv_heads != 0)
        return mp_fail(r->err, MP_EXIT_INPUT,
                       "%s: field \"num_key_value_heads\" %d: expected a divisor of num_attention_heads %d", r->path,
                       c->n_kv_heads, c->n_heads);
    if (c->head_dim < 1)
        return mp_fail(r->err, MP_EXIT_INPUT,
                       "%s: field \"head_dim\": absent, and hidden_size %d / num_attention_heads %d is 0", r->path,
                       c->hidden, c->n_heads);
    if ((int64_t)c->n_heads * c->head_dim > MAX_FFN)
        return mp_fail(r->err, MP_EXIT_INPUT, "%s: num_attention_heads %d x head_dim %d: expected at most %d", r->path,
                       c->n_heads, c->head_dim, MAX_FFN);
    if (is_mla(c)) {
        if (c->qk_rope_dim % 2 != 0)
            return mp_fail(r->err, MP_EXIT_INPUT, "%s: field \"qk_rope_head_dim\" %d: expected an even number", r->path,
                           c->qk_rope_dim);
        return MP_OK;
    }
    int rotary = (int)(c->head_dim * c->partial_rotary);
    if (rotary < 2 || rotary % 2 != 0)
        return mp_fail(r->err, MP_EXIT_INPUT,
                       "%s: head_dim %d x partial_rotary_factor %g = %d rotated dimensions: expected an even number >= 2",
                       r->path, c->head_dim, c->partial_rotary, rotary);
    return MP_OK;
}

/* Relations between fields that every published config of the families keeps. */
static int check_consistency(config_reader *r, const mp_config *c)
{
    int rc = check_attention(r, c);
    if (rc)
        return rc;
    if (c->moe_intermediate < 1)
        return mp_fail(r->err, MP_EXIT_INPUT, "%s: field \"%s\": expected the experts' width, an integer >= 1",
                       r->path, c->family == MP_FAMILY_MIXTRAL || c->family == MP_FAMILY_OLMOE || c->family == MP_FAMILY_GPT_OSS
                                    ? "intermediate_size" : "moe_intermediate_size");
    if (c->first_k_dense > c->n_layers)
        return mp_fail(r->err, MP_EXIT_INPUT, "%s: field \"first_k_dense_replace\" %d: expected at most num_hidden_layers %d",
                       r->path, c->first_k_dense, c->n_layers);
    if (c->intermediate < 1 && has_dense_layer(c))
        return mp_fail(r->err, MP_EXIT_INPUT, "%s: field \"intermediate_size\": expected an integer >= 1 (the model has dense layers)",
                       r->path);
    if (c->family == MP_FAMILY_GPT_OSS && c->sliding_window < 1)
        for (int i = 0; i < c->n_layers; i++)
            if (c->sliding[i])
                return mp_fail(r->err, MP_EXIT_INPUT,
                               "%s: field \"sliding_window\": expected an integer >= 1 (layer %d is sliding_attention)",
                               r->path, i);
    return MP_OK;
}

static int read_family(config_reader *r, mp_config *c)
{
    switch (c->family) {
    case MP_FAMILY_MIXTRAL:
        c->moe_intermediate = c->intermediate;
        c->routing.norm_topk = true;
        return read_experts(r, c, "num_local_experts");
    case MP_FAMILY_QWEN2_MOE:
    case MP_FAMILY_QWEN3_MOE:
        return read_qwen_moe(r, c);
    case MP_FAMILY_OLMOE:
        return read_olmoe(r, c);
    case MP_FAMILY_DEEPSEEK_V2:
    case MP_FAMILY_DEEPSEEK_V3:
        return read_deepseek(r, c);
    case MP_FAMILY_GLM4_MOE:
        return read_glm4_moe(r, c);
    case MP_FAMILY_GPT_OSS:
        return read_gpt_oss(r, c);
    default:
        return mp_fail(r->err, MP_EXIT_INPUT, "%s: unknown family", r->path);
    }
}

int mp_config_read(mp_config *cfg, const char *path, mp_error *err)
{
    memset(cfg, 0, sizeof *cfg);
    json_t *root;
    int rc = mp_json_load_file(path, 16u << 20, &root, err);
    if (rc != MP_OK)
        return rc;
    config_reader r = {path, root, err};
    if (!json_is_object(root))
        rc = mp_fail(err, MP_EXIT_INPUT, "%s: expected a JSON object", path);
    if (!rc) rc = detect_family(&r, cfg);
    if (!rc) rc = read_common(&r, cfg);
    if (!rc) rc = read_family(&r, cfg);
    if (!rc) rc = read_quantization(&r, cfg);
    if (!rc) rc = check_consistency(&r, cfg);
    json_decref(root);
    if (rc)
        mp_config_free(cfg);
    return rc;
}

void mp_config_free(mp_config *cfg)
{
    free(cfg->mlp_only);
    free(cfg->sliding);
    cfg->mlp_only = NULL;
    cfg->sliding = NULL;
}
