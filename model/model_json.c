#include "model_json.h"

static const char *group_rule_name(mp_group_rule r)
{
    return r == MP_GROUPS_MAX ? "max" : r == MP_GROUPS_TOP2_SUM ? "top2_sum" : "none";
}

static json_t *routing_json(const mp_routing *r)
{
    return json_pack("{s:i, s:i, s:s, s:s, s:b, s:f, s:i, s:i, s:s, s:b}", "experts", r->n_experts, "top_k",
                     r->top_k, "scoring", r->score == MP_SCORE_SIGMOID ? "sigmoid" : "softmax", "order",
                     r->order == MP_ROUTE_TOPK_THEN_SOFTMAX ? "topk_then_softmax" : "score_then_topk", "norm_topk",
                     r->norm_topk, "scaling", r->scaling, "n_group", r->n_group, "topk_group", r->topk_group,
                     "group_rule", group_rule_name(r->group_rule), "correction_bias", r->correction_bias);
}

static json_t *layer_flags(const mp_model *m, bool sliding)
{
    json_t *a = json_array();
    for (int i = 0; i < m->cfg.n_layers; i++)
        json_array_append_new(a, json_boolean(sliding ? m->layers[i].sliding : m->layers[i].is_moe));
    return a;
}

static json_t *rope_json(const mp_config *c)
{
    if (c->rope_type[0] == '\0')
        return json_null();
    return json_pack("{s:s, s:f, s:f, s:f, s:f, s:f, s:i}", "type", c->rope_type, "factor", c->rope_factor,
                     "mscale", c->rope_mscale, "mscale_all_dim", c->rope_mscale_all_dim, "beta_fast",
                     c->rope_beta_fast, "beta_slow", c->rope_beta_slow, "original_max_position_embeddings",
                     c->rope_original_max_pos);
}

json_t *mp_model_config_json(const mp_model *m)
{
    const mp_config *c = &m->cfg;
    json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i}", "family",
                          mp_family_name(c->family), "architecture", c->architecture, "model_type", c->model_type,
                          "layers", c->n_layers, "hidden", c->hidden, "vocab", c->vocab, "heads", c->n_heads,
                          "kv_heads", c->n_kv_heads, "head_dim", c->head_dim, "intermediate", c->intermediate,
                          "moe_intermediate", c->moe_intermediate, "shared_intermediate", c->shared_intermediate,
                          "shared_experts", c->n_shared_experts);
    json_object_update_new(o, json_pack("{s:f, s:f, s:b, s:b, s:b, s:f}", "rms_eps", c->rms_eps, "rope_theta",
                                        c->rope_theta, "tie_embeddings", c->tie_embeddings, "attention_bias",
                                        c->attention_bias, "qk_norm", c->qk_norm, "partial_rotary",
                                        c->partial_rotary));
    json_object_update_new(o, json_pack("{s:i, s:i, s:i, s:i, s:i, s:b, s:o}", "q_lora_rank", c->q_lora_rank,
                                        "kv_lora_rank", c->kv_lora_rank, "qk_nope_head_dim", c->qk_nope_dim,
                                        "qk_rope_head_dim", c->qk_rope_dim, "v_head_dim", c->v_head_dim,
                                        "rope_interleave", c->rope_interleave, "rope_scaling", rope_json(c)));
    json_object_update_new(o, json_pack("{s:o, s:o, s:o, s:i, s:f, s:i}", "routing", routing_json(&c->routing),
                                        "moe_layers", layer_flags(m, false), "sliding", layer_flags(m, true),
                                        "sliding_window", c->sliding_window, "swiglu_limit", c->swiglu_limit,
                                        "mtp_layers", c->n_mtp));
    return o;
}
