/* DeepSeek-V2/V3 and descendants (Kimi-K2), and GLM-4.5: MLA attention (GQA for
 * GLM), dense first layers, routed + shared experts, sigmoid routing with a
 * correction bias, multi-token-prediction layers after the last layer. */
#include <stdio.h>

#include "model_build.h"

static void build_mla(mp_model *m, mp_attention *a, const char *p)
{
    const mp_config *c = &m->cfg;
    int64_t qk_head = c->qk_nope_dim + c->qk_rope_dim;
    int64_t q_out = c->n_heads * qk_head;
    int bias = c->attention_bias ? LIN_BIAS : LIN_NO_BIAS;
    a->kind = MP_ATTN_MLA;
    if (c->q_lora_rank > 0) {
        model_linear(m, &a->q_a, c->q_lora_rank, c->hidden, bias, "%s.self_attn.q_a_proj", p);
        a->q_a_norm = model_vector(m, c->q_lora_rank, "%s.self_attn.q_a_layernorm.weight", p);
        model_linear(m, &a->q_b, q_out, c->q_lora_rank, LIN_NO_BIAS, "%s.self_attn.q_b_proj", p);
    } else {
        model_linear(m, &a->q, q_out, c->hidden, LIN_NO_BIAS, "%s.self_attn.q_proj", p);
    }
    model_linear(m, &a->kv_a, c->kv_lora_rank + c->qk_rope_dim, c->hidden, bias,
                 "%s.self_attn.kv_a_proj_with_mqa", p);
    a->kv_a_norm = model_vector(m, c->kv_lora_rank, "%s.self_attn.kv_a_layernorm.weight", p);
    model_linear(m, &a->kv_b, (int64_t)c->n_heads * (c->qk_nope_dim + c->v_head_dim), c->kv_lora_rank,
                 LIN_NO_BIAS, "%s.self_attn.kv_b_proj", p);
    model_linear(m, &a->o, c->hidden, (int64_t)c->n_heads * c->v_head_dim, LIN_NO_BIAS,
                 "%s.self_attn.o_proj", p);
}

static void build_moe(mp_model *m, mp_layer *L, const char *p)
{
    const mp_config *c = &m->cfg;
    char moe[200], shared[240];
    snprintf(moe, sizeof moe, "%s.mlp", p);
    L->is_moe = true;
    model_linear(m, &L->router, c->routing.n_experts, c->hidden, LIN_NO_BIAS, "%s.gate", moe);
    if (c->routing.correction_bias)
        L->correction_bias = model_vector(m, c->routing.n_experts, "%s.gate.e_score_correction_bias", moe);
    model_experts(m, L, moe, false);
    if (c->n_shared_experts > 0) {
        snprintf(shared, sizeof shared, "%s.shared_experts", moe);
        L->has_shared = true;
        model_mlp(m, &L->shared, c->shared_intermediate, "gate_proj", "up_proj", "down_proj", shared);
    }
}

void build_deepseek_layer(mp_model *m, mp_layer *L, int i)
{
    const mp_config *c = &m->cfg;
    char p[64], mlp[80];
    snprintf(p, sizeof p, "model.layers.%d", i);
    model_layer_norms(m, L, p);
    if (c->family == MP_FAMILY_GLM4_MOE)
        model_gqa(m, &L->attn, p, false);
    else
        build_mla(m, &L->attn, p);
    if (mp_config_is_moe_layer(c, i)) {
        build_moe(m, L, p);
        return;
    }
    snprintf(mlp, sizeof mlp, "%s.mlp", p);
    model_mlp(m, &L->dense, c->intermediate, "gate_proj", "up_proj", "down_proj", mlp);
}

/* MTP layer j is stored as model.layers.{n_layers + j}: a full decoder layer plus
 * the norms and projection that feed it; its embedding and head may be shared
 * with the main model and so are optional. */
void build_deepseek_mtp(mp_model *m, int j)
{
    const mp_config *c = &m->cfg;
    mp_mtp *t = &m->mtp[j];
    int i = c->n_layers + j;
    int64_t eh_shape[2] = {c->hidden, 2 * (int64_t)c->hidden};
    int64_t vocab_shape[2] = {c->vocab, c->hidden};
    build_deepseek_layer(m, &t->layer, i);
    t->enorm = model_vector(m, c->hidden, "model.layers.%d.enorm.weight", i);
    t->hnorm = model_vector(m, c->hidden, "model.layers.%d.hnorm.weight", i);
    model_linear(m, &t->eh_proj, eh_shape[0], eh_shape[1], LIN_NO_BIAS, "model.layers.%d.eh_proj", i);
    t->head_norm = model_vector(m, c->hidden, "model.layers.%d.shared_head.norm.weight", i);
    t->head = model_tensor(m, false, 2, vocab_shape, "model.layers.%d.shared_head.head.weight", i);
    t->embed = model_tensor(m, false, 2, vocab_shape, "model.layers.%d.embed_tokens.weight", i);
}
