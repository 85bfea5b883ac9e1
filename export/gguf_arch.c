/* The general.* and ARCH.* metadata of a GGUF: what convert_hf_to_gguf.py writes for
 * the family (conversion/{llama,qwen,olmo,deepseek,glm,gpt_oss}.py and TextModel's
 * set_gguf_parameters) and what llama.cpp's load_hparams reads (src/models/ARCH.cpp). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../formats/ggml_blocks.h"
#include "gguf_export.h"

typedef struct {
    mp_gguf *g;
    const char *arch;
    int rc;
} keys;

static void key_name(const keys *k, const char *suffix, char *out, size_t cap)
{
    snprintf(out, cap, "%s.%s", k->arch, suffix);
}

static void put_u32(keys *k, const char *suffix, uint32_t v)
{
    char name[128];
    key_name(k, suffix, name, sizeof name);
    if (mp_gguf_set_u32(k->g, name, v) != 0)
        k->rc = -1;
}

static void put_f32(keys *k, const char *suffix, double v)
{
    char name[128];
    key_name(k, suffix, name, sizeof name);
    if (mp_gguf_set_f32(k->g, name, (float)v) != 0)
        k->rc = -1;
}

static void put_bool(keys *k, const char *suffix, bool v)
{
    char name[128];
    key_name(k, suffix, name, sizeof name);
    if (mp_gguf_set_bool(k->g, name, v) != 0)
        k->rc = -1;
}

static void put_str(keys *k, const char *suffix, const char *v)
{
    char name[128];
    key_name(k, suffix, name, sizeof name);
    if (mp_gguf_set_str(k->g, name, v) != 0)
        k->rc = -1;
}

/* The converter's find_hparam list for the context length. */
static int context_length(json_t *config)
{
    static const char *const names[] = {"max_position_embeddings", "n_ctx", "n_positions", "max_length",
                                        "max_sequence_length", "model_max_length"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        double v = json_number_value(json_object_get(config, names[i])); /* read tolerantly: reals */
        if (v >= 1 && v <= INT32_MAX && v == (int)v)
            return (int)v;
    }
    return -1;
}

/* rope_scaling (or transformers 5's rope_parameters), as TextModel writes it. */
static void rope_scaling(keys *k, const gg_plan *p, json_t *config)
{
    json_t *rs = json_object_get(config, "rope_scaling");
    if (!json_is_object(rs))
        rs = json_object_get(config, "rope_parameters");
    const char *type = json_string_value(json_object_get(rs, "rope_type"));
    if (!type)
        type = json_string_value(json_object_get(rs, "type"));
    json_t *factor = json_object_get(rs, "factor");
    if (!type || !json_is_number(factor))
        return;
    if (strcmp(type, "linear") == 0) {
        put_str(k, "rope.scaling.type", "linear");
        put_f32(k, "rope.scaling.factor", json_number_value(factor));
    } else if (strcmp(type, "yarn") == 0) {
        put_str(k, "rope.scaling.type", "yarn");
        put_f32(k, "rope.scaling.factor", json_number_value(factor));
        put_u32(k, "rope.scaling.original_context_length", (uint32_t)p->cfg->rope_original_max_pos);
        json_t *v;
        if (json_is_number(v = json_object_get(rs, "beta_fast")))
            put_f32(k, "rope.scaling.yarn_beta_fast", json_number_value(v));
        if (json_is_number(v = json_object_get(rs, "beta_slow")))
            put_f32(k, "rope.scaling.yarn_beta_slow", json_number_value(v));
        /* DeepSeek: the converter stores 0.1 x mscale_all_dim, and llama.cpp divides by 0.1 */
        if (p->family == MP_FAMILY_DEEPSEEK_V2 || p->family == MP_FAMILY_DEEPSEEK_V3)
            if (json_is_number(v = json_object_get(rs, "mscale_all_dim")))
                put_f32(k, "rope.scaling.yarn_log_multiplier", 0.1 * json_number_value(v));
    }
}

static void common_keys(keys *k, const gg_plan *p, int ctx)
{
    const mp_config *c = p->cfg;
    put_u32(k, "block_count", (uint32_t)p->n_blocks);
    put_u32(k, "context_length", (uint32_t)ctx);
    put_u32(k, "embedding_length", (uint32_t)c->hidden);
    put_u32(k, "attention.head_count", (uint32_t)c->n_heads);
    put_f32(k, "attention.layer_norm_rms_epsilon", c->rms_eps);
    put_f32(k, "rope.freq_base", c->rope_theta);
    put_u32(k, "expert_count", (uint32_t)c->routing.n_experts);
    put_u32(k, "expert_used_count", (uint32_t)c->routing.top_k);
}

/* GQA families: heads of head_dim, RoPE over rope.dimension_count of them. */
static void gqa_keys(keys *k, const gg_plan *p)
{
    const mp_config *c = p->cfg;
    put_u32(k, "attention.head_count_kv", (uint32_t)c->n_kv_heads);
    put_u32(k, "attention.key_length", (uint32_t)c->head_dim);
    put_u32(k, "attention.value_length", (uint32_t)c->head_dim);
    int rot = c->head_dim;
    if (p->family == MP_FAMILY_GLM4_MOE) /* the converter's int(head_dim * partial_rotary_factor) */
        rot = (int)(c->head_dim * (c->partial_rotary > 0 ? c->partial_rotary : 0.5));
    put_u32(k, "rope.dimension_count", (uint32_t)rot);
}

/* llama.cpp's llama and olmoe take the experts' width from feed_forward_length. */
static uint32_t ffn_length(const gg_plan *p)
{
    bool experts_width = p->family == MP_FAMILY_MIXTRAL || p->family == MP_FAMILY_OLMOE;
    if ((experts_width || p->cfg->intermediate <= 0) && p->expert_width > 0)
        return (uint32_t)p->expert_width;
    return (uint32_t)p->cfg->intermediate;
}

static void routing_keys(keys *k, const gg_plan *p)
{
    const mp_routing *r = &p->cfg->routing;
    put_u32(k, "expert_gating_func", r->score == MP_SCORE_SIGMOID ? 2 : 1);
    put_f32(k, "expert_weights_scale", r->scaling);
    put_bool(k, "expert_weights_norm", r->norm_topk);
    if (r->n_group > 0) {
        put_u32(k, "expert_group_count", (uint32_t)r->n_group);
        put_u32(k, "expert_group_used_count", (uint32_t)r->topk_group);
    }
}

static void mla_keys(keys *k, const gg_plan *p)
{
    const mp_config *c = p->cfg;
    put_u32(k, "attention.head_count_kv", 1); /* MLA runs as MQA over the latent */
    if (c->q_lora_rank > 0)
        put_u32(k, "attention.q_lora_rank", (uint32_t)c->q_lora_rank);
    put_u32(k, "attention.kv_lora_rank", (uint32_t)c->kv_lora_rank);
    put_u32(k, "attention.key_length", (uint32_t)(c->kv_lora_rank + c->qk_rope_dim));
    put_u32(k, "attention.value_length", (uint32_t)c->kv_lora_rank);
    put_u32(k, "attention.key_length_mla", (uint32_t)(c->qk_nope_dim + c->qk_rope_dim));
    put_u32(k, "attention.value_length_mla", (uint32_t)c->v_head_dim);
    put_u32(k, "rope.dimension_count", (uint32_t)c->qk_rope_dim);
    put_u32(k, "vocab_size", (uint32_t)c->vocab);
    put_u32(k, "leading_dense_block_count", (uint32_t)p->leading_dense);
    put_u32(k, "expert_feed_forward_length", (uint32_t)p->expert_width);
    put_u32(k, "expert_shared_count", (uint32_t)c->n_shared_experts);
    routing_keys(k, p);
}

/* The smallest period n with layer l sliding iff l % n < n - 1 (llama.cpp's
 * set_swa_pattern), or -1 when the config's layer_types follow none. */
static int swa_period(const gg_plan *p)
{
    int n_layers = p->cfg->n_layers;
    for (int n = 1; n <= n_layers + 1; n++) {
        bool ok = true;
        for (int l = 0; l < n_layers && ok; l++)
            ok = (p->cfg->sliding && p->cfg->sliding[l]) == (l % n < n - 1);
        if (ok)
            return n;
    }
    return -1;
}

static int family_keys(keys *k, gg_plan *p, mp_error *err)
{
    const mp_config *c = p->cfg;
    switch (p->family) {
    case MP_FAMILY_MIXTRAL:
        put_u32(k, "vocab_size", (uint32_t)c->vocab);
        break;
    case MP_FAMILY_QWEN2_MOE:
        put_u32(k, "expert_feed_forward_length", (uint32_t)p->expert_width);
        if (c->shared_intermediate > 0)
            put_u32(k, "expert_shared_feed_forward_length", (uint32_t)c->shared_intermediate);
        break;
    case MP_FAMILY_QWEN3_MOE:
        put_u32(k, "expert_feed_forward_length", (uint32_t)p->expert_width);
        break;
    case MP_FAMILY_GLM4_MOE:
        put_u32(k, "expert_feed_forward_length", (uint32_t)p->expert_width);
        put_u32(k, "expert_shared_count", (uint32_t)c->n_shared_experts);
        put_u32(k, "leading_dense_block_count", (uint32_t)p->leading_dense);
        routing_keys(k, p);
        if (p->n_blocks > c->n_layers)
            put_u32(k, "nextn_predict_layers", (uint32_t)(p->n_blocks - c->n_layers));
        break;
    case MP_FAMILY_GPT_OSS: {
        put_u32(k, "expert_feed_forward_length", (uint32_t)p->expert_width);
        put_u32(k, "attention.sliding_window", (uint32_t)c->sliding_window);
        int period = swa_period(p);
        if (period < 0)
            return mp_fail(err, MP_EXIT_INPUT, "%s: the sliding-window layers follow no period llama.cpp's gpt-oss "
                           "can express (layer l slides iff l %% n < n - 1)", p->pack->dir);
        if (period != 2)
            put_u32(k, "attention.sliding_window_pattern", (uint32_t)period);
        break;
    }
    default:
        break;
    }
    return MP_OK;
}

/* What llama.cpp hard-codes for the architecture and the pack's model does otherwise. */
static void warn_divergences(gg_plan *p)
{
    const mp_config *c = p->cfg;
    const mp_routing *r = &c->routing;
    bool norm_fixed = p->family == MP_FAMILY_MIXTRAL || p->family == MP_FAMILY_QWEN3_MOE;
    bool no_norm_fixed = p->family == MP_FAMILY_QWEN2_MOE || p->family == MP_FAMILY_OLMOE;
    if ((norm_fixed && !r->norm_topk) || (no_norm_fixed && r->norm_topk))
        gg_plan_warn(p, "llama.cpp's %s %s the top-k weights, the model does not", p->arch,
                     norm_fixed ? "renormalises" : "does not renormalise");
    if (p->family == MP_FAMILY_DEEPSEEK_V2 && r->n_group > 1)
        gg_plan_warn(p, "llama.cpp scores expert groups by their top-2 sum (DeepSeek-V3's rule); DeepSeek-V2's "
                        "group_limited_greedy uses the group maximum");
    if (p->family == MP_FAMILY_GPT_OSS && c->swiglu_limit != 7.0)
        gg_plan_warn(p, "llama.cpp's gpt-oss clamps SwiGLU at 7.0, the model at %g", c->swiglu_limit);
    if (p->family == MP_FAMILY_OLMOE && c->n_kv_heads != c->n_heads)
        gg_plan_warn(p, "llama.cpp's olmoe expects attn_k_norm over all %d heads (num_key_value_heads = "
                        "num_attention_heads); this model has %d KV heads", c->n_heads, c->n_kv_heads);
}

/* general.file_type: llama_ftype of the type holding the most weights. */
static uint32_t file_type(const gg_plan *p)
{
    static const struct {
        mp_enc_kind kind;
        uint32_t ftype;
    } ftypes[] = {{MP_ENC_F32, 0},     {MP_ENC_F16, 1},     {MP_ENC_Q4_0, 2},    {MP_ENC_Q4_1, 3},
                  {MP_ENC_Q8_0, 7},    {MP_ENC_Q4_K, 15},   {MP_ENC_Q5_K, 17},   {MP_ENC_Q6_K, 18},
                  {MP_ENC_IQ4_NL, 25}, {MP_ENC_IQ4_XS, 30}, {MP_ENC_BF16, 32}};
    uint64_t weights[sizeof ftypes / sizeof ftypes[0]] = {0};
    size_t best = 0;
    for (int i = 0; i < p->n; i++) {
        uint64_t n = 1;
        for (int d = 0; d < p->t[i].n_dims; d++)
            n *= (uint64_t)p->t[i].ne[d];
        for (size_t f = 0; f < sizeof ftypes / sizeof ftypes[0]; f++)
            if (ftypes[f].kind == p->t[i].target.kind && p->t[i].n_dims > 1)
                weights[f] += n;
    }
    for (size_t f = 1; f < sizeof ftypes / sizeof ftypes[0]; f++)
        if (weights[f] > weights[best])
            best = f;
    return ftypes[best].ftype;
}

int gg_arch_metadata(mp_gguf *g, gg_plan *p, json_t *config, const char *name, mp_error *err)
{
    keys k = {.g = g, .arch = p->arch};
    int ctx = context_length(config);
    if (ctx < 0)
        return mp_fail(err, MP_EXIT_INPUT, "%s/config.json: no max_position_embeddings (llama.cpp needs %s.context_length)",
                       p->pack->dir, p->arch);
    if (mp_gguf_set_str(g, "general.architecture", p->arch) || mp_gguf_set_str(g, "general.type", "model") ||
        mp_gguf_set_str(g, "general.name", name) || mp_gguf_set_u32(g, "general.quantization_version", 2) ||
        mp_gguf_set_u32(g, "general.alignment", MP_GGUF_ALIGNMENT) ||
        mp_gguf_set_u32(g, "general.file_type", file_type(p)))
        k.rc = -1;
    common_keys(&k, p, ctx);
    put_u32(&k, "feed_forward_length", ffn_length(p));
    if (p->cfg->kv_lora_rank > 0)
        mla_keys(&k, p);
    else
        gqa_keys(&k, p);
    rope_scaling(&k, p, config);
    int rc = family_keys(&k, p, err);
    if (rc)
        return rc;
    warn_divergences(p);
    return k.rc ? mp_fail(err, MP_EXIT_IO, "out of memory") : MP_OK;
}
