/* GPT-OSS: GQA attention with biases and sinks, a router with a bias, stacked
 * experts whose gate and up projections are interleaved rows of one tensor,
 * stored either as MXFP4 blocks or dequantized and transposed ([E, in, out]). */
#include <stdio.h>
#include <stdlib.h>

#include "model_build.h"

typedef struct {
    int weight, scale, bias; /* stacked tensors, -1 when missing */
    bool transposed;
} stacked;

/* "<p>.mlp.experts.<name>_blocks/_scales" (MXFP4) or "<p>.mlp.experts.<name>" (bf16). */
static stacked find_stacked(mp_model *m, const char *p, const char *name, int64_t out, int64_t in)
{
    const mp_config *c = &m->cfg;
    int64_t E = c->routing.n_experts;
    stacked s = {-1, -1, -1, false};
    int64_t bias_shape[2] = {E, out};
    s.bias = model_tensor(m, true, 2, bias_shape, "%s.mlp.experts.%s_bias", p, name);
    if (c->weights == MP_WEIGHTS_MXFP4) {
        int64_t blocks[4] = {E, out, in / 32, 16}, scales[3] = {E, out, in / 32};
        if (in % 32 != 0)
            model_problem(m, "%s.mlp.experts.%s_blocks: input width %lld is not a multiple of 32", p, name,
                          (long long)in);
        s.weight = model_tensor(m, true, 4, blocks, "%s.mlp.experts.%s_blocks", p, name);
        s.scale = model_tensor(m, true, 3, scales, "%s.mlp.experts.%s_scales", p, name);
        return s;
    }
    int64_t shape[3] = {E, in, out};
    s.weight = model_tensor(m, true, 3, shape, "%s.mlp.experts.%s", p, name);
    s.transposed = true;
    return s;
}

static mp_linear expert_slice(stacked s, int e, int row_offset, int row_stride, int64_t rows, int64_t cols)
{
    mp_linear lin = model_no_linear();
    lin.weight = s.weight;
    lin.scale = s.scale;
    lin.bias = s.bias;
    lin.expert = e;
    lin.transposed = s.transposed;
    lin.row_offset = row_offset;
    lin.row_stride = row_stride;
    lin.rows = rows;
    lin.cols = cols;
    return lin;
}

static void build_experts(mp_model *m, mp_layer *L, const char *p)
{
    const mp_config *c = &m->cfg;
    int64_t H = c->hidden, I = c->moe_intermediate;
    stacked gate_up = find_stacked(m, p, "gate_up_proj", 2 * I, H);
    stacked down = find_stacked(m, p, "down_proj", H, I);
    L->experts = calloc((size_t)c->routing.n_experts, sizeof *L->experts);
    if (!L->experts) {
        model_problem(m, "%s.mlp.experts: out of memory", p);
        return;
    }
    for (int e = 0; e < c->routing.n_experts; e++) {
        L->experts[e].gate = expert_slice(gate_up, e, 0, 2, I, H); /* even rows */
        L->experts[e].up = expert_slice(gate_up, e, 1, 2, I, H);   /* odd rows */
        L->experts[e].down = expert_slice(down, e, 0, 1, H, I);
    }
}

void build_gpt_oss_layer(mp_model *m, int i)
{
    const mp_config *c = &m->cfg;
    mp_layer *L = &m->layers[i];
    char p[64];
    snprintf(p, sizeof p, "model.layers.%d", i);
    model_layer_norms(m, L, p);
    model_gqa(m, &L->attn, p, c->attention_bias);
    L->attn.sinks = model_vector(m, c->n_heads, "%s.self_attn.sinks", p);
    L->sliding = c->sliding[i];
    L->is_moe = true;
    model_linear(m, &L->router, c->routing.n_experts, c->hidden, LIN_BIAS, "%s.mlp.router", p);
    build_experts(m, L, p);
}
