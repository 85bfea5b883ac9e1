/* Llama-style decoder layers with an MoE MLP: Mixtral, Qwen2-MoE, Qwen3-MoE, OLMoE.
 * GQA attention (q/k/v/o), RMSNorms before attention and MLP. */
#include <stdio.h>
#include <stdlib.h>

#include "model_build.h"

void model_gqa(mp_model *m, mp_attention *a, const char *p, bool o_bias)
{
    const mp_config *c = &m->cfg;
    int64_t q_dim = (int64_t)c->n_heads * c->head_dim, kv_dim = (int64_t)c->n_kv_heads * c->head_dim;
    int bias = c->attention_bias ? LIN_BIAS : LIN_NO_BIAS;
    a->kind = MP_ATTN_GQA;
    model_linear(m, &a->q, q_dim, c->hidden, bias, "%s.self_attn.q_proj", p);
    model_linear(m, &a->k, kv_dim, c->hidden, bias, "%s.self_attn.k_proj", p);
    model_linear(m, &a->v, kv_dim, c->hidden, bias, "%s.self_attn.v_proj", p);
    model_linear(m, &a->o, c->hidden, q_dim, o_bias ? LIN_BIAS : LIN_NO_BIAS, "%s.self_attn.o_proj", p);
    if (!c->qk_norm)
        return;
    bool full_width = c->family == MP_FAMILY_OLMOE; /* OLMoE normalises the whole projection */
    a->q_norm = model_vector(m, full_width ? q_dim : c->head_dim, "%s.self_attn.q_norm.weight", p);
    a->k_norm = model_vector(m, full_width ? kv_dim : c->head_dim, "%s.self_attn.k_norm.weight", p);
}

void model_experts(mp_model *m, mp_layer *L, const char *moe, bool mixtral_names)
{
    const mp_config *c = &m->cfg;
    int n = c->routing.n_experts;
    char prefix[256];
    L->experts = calloc((size_t)n, sizeof *L->experts);
    if (!L->experts) {
        model_problem(m, "%s: out of memory for %d experts", moe, n);
        return;
    }
    for (int e = 0; e < n; e++) {
        snprintf(prefix, sizeof prefix, "%s.experts.%d", moe, e);
        if (mixtral_names)
            model_mlp(m, &L->experts[e], c->moe_intermediate, "w1", "w3", "w2", prefix);
        else
            model_mlp(m, &L->experts[e], c->moe_intermediate, "gate_proj", "up_proj", "down_proj", prefix);
    }
}

static void build_moe(mp_model *m, mp_layer *L, const char *p)
{
    const mp_config *c = &m->cfg;
    bool mixtral = c->family == MP_FAMILY_MIXTRAL;
    char moe[200];
    snprintf(moe, sizeof moe, "%s.%s", p, mixtral ? "block_sparse_moe" : "mlp");
    L->is_moe = true;
    model_linear(m, &L->router, c->routing.n_experts, c->hidden, LIN_NO_BIAS, "%s.gate", moe);
    model_experts(m, L, moe, mixtral);
    if (c->family == MP_FAMILY_QWEN2_MOE && c->shared_intermediate > 0) {
        char shared[256];
        int64_t gate_shape[2] = {1, c->hidden};
        snprintf(shared, sizeof shared, "%s.shared_expert", moe);
        L->has_shared = true;
        model_mlp(m, &L->shared, c->shared_intermediate, "gate_proj", "up_proj", "down_proj", shared);
        L->shared_gate = model_tensor(m, true, 2, gate_shape, "%s.shared_expert_gate.weight", moe);
    }
}

void build_llama_moe_layer(mp_model *m, int i)
{
    const mp_config *c = &m->cfg;
    mp_layer *L = &m->layers[i];
    char p[64];
    snprintf(p, sizeof p, "model.layers.%d", i);
    model_layer_norms(m, L, p);
    model_gqa(m, &L->attn, p, false);
    if (mp_config_is_moe_layer(c, i)) {
        build_moe(m, L, p);
        return;
    }
    char mlp[80];
    snprintf(mlp, sizeof mlp, "%s.mlp", p);
    model_mlp(m, &L->dense, c->intermediate, "gate_proj", "up_proj", "down_proj", mlp);
}
