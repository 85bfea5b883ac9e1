/* llama.cpp's names for the canonical pack tensors (src/llama-arch.cpp LLM_TENSOR_NAMES,
 * gguf-py tensor_mapping.py), per family. Routed experts are stacked by gguf_plan.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf_export.h"

const char *gg_arch_name(mp_family f)
{
    switch (f) {
    case MP_FAMILY_MIXTRAL:
        return "llama";
    case MP_FAMILY_QWEN2_MOE:
        return "qwen2moe";
    case MP_FAMILY_QWEN3_MOE:
        return "qwen3moe";
    case MP_FAMILY_OLMOE:
        return "olmoe";
    case MP_FAMILY_DEEPSEEK_V2:
    case MP_FAMILY_DEEPSEEK_V3:
        return "deepseek2";
    case MP_FAMILY_GLM4_MOE:
        return "glm4moe";
    case MP_FAMILY_GPT_OSS:
        return "gpt-oss";
    default:
        return NULL;
    }
}

/* Names inside a block, the same for every family; "post_attn_norm" is the FFN's input
 * norm: ffn_norm, except where llama.cpp calls it post_attention_norm. */
static const struct {
    const char *canon, *gguf;
} block_names[] = {
    {"input_norm", "attn_norm.weight"},
    {"attn.q", "attn_q.weight"},
    {"attn.k", "attn_k.weight"},
    {"attn.v", "attn_v.weight"},
    {"attn.o", "attn_output.weight"},
    {"attn.q.bias", "attn_q.bias"},
    {"attn.k.bias", "attn_k.bias"},
    {"attn.v.bias", "attn_v.bias"},
    {"attn.o.bias", "attn_output.bias"},
    {"attn.q_norm", "attn_q_norm.weight"},
    {"attn.k_norm", "attn_k_norm.weight"},
    {"attn.sinks", "attn_sinks.weight"},
    {"attn.q_a", "attn_q_a.weight"},
    {"attn.q_a_norm", "attn_q_a_norm.weight"},
    {"attn.q_b", "attn_q_b.weight"},
    {"attn.kv_a", "attn_kv_a_mqa.weight"},
    {"attn.kv_a_norm", "attn_kv_a_norm.weight"},
    {"mlp.gate", "ffn_gate.weight"},
    {"mlp.up", "ffn_up.weight"},
    {"mlp.down", "ffn_down.weight"},
    {"router", "ffn_gate_inp.weight"},
    {"router.bias", "ffn_gate_inp.bias"},
    {"correction_bias", "exp_probs_b.bias"},
    {"shared.gate", "ffn_gate_shexp.weight"},
    {"shared.up", "ffn_up_shexp.weight"},
    {"shared.down", "ffn_down_shexp.weight"},
    {"shared_gate", "ffn_gate_inp_shexp.weight"},
    /* NextN layers (GLM-4.5) */
    {"enorm", "nextn.enorm.weight"},
    {"hnorm", "nextn.hnorm.weight"},
    {"eh_proj", "nextn.eh_proj.weight"},
    {"head_norm", "nextn.shared_head_norm.weight"},
    {"head", "nextn.shared_head_head.weight"},
    {"embed", "nextn.embed_tokens.weight"},
};

static const char *post_attn_norm_name(mp_family f)
{
    return f == MP_FAMILY_GLM4_MOE || f == MP_FAMILY_GPT_OSS ? "post_attention_norm.weight" : "ffn_norm.weight";
}

static const char *block_name(const gg_plan *p, const char *local, gg_transform *transform)
{
    *transform = GG_ROWS;
    if (strcmp(local, "post_attn_norm") == 0)
        return post_attn_norm_name(p->family);
    /* llama.cpp's llama runs RoPE on interleaved pairs; HF Mixtral rotates halves: the
     * converter permutes the rows of q and k (and their biases) per head. */
    if (p->family == MP_FAMILY_MIXTRAL &&
        (strcmp(local, "attn.q") == 0 || strcmp(local, "attn.k") == 0 || strcmp(local, "attn.q.bias") == 0 ||
         strcmp(local, "attn.k.bias") == 0))
        *transform = GG_ROPE;
    for (size_t i = 0; i < sizeof block_names / sizeof block_names[0]; i++)
        if (strcmp(local, block_names[i].canon) == 0)
            return block_names[i].gguf;
    return NULL;
}

/* "layers.L.rest" or "mtp.J.rest": the block (J counts after the layers) and rest. */
static bool split_block(const gg_plan *p, const char *canon, int *block, const char **rest, bool *mtp)
{
    const char *prefix = strncmp(canon, "layers.", 7) == 0 ? "layers." : strncmp(canon, "mtp.", 4) == 0 ? "mtp." : NULL;
    if (!prefix)
        return false;
    char *end;
    long n = strtol(canon + strlen(prefix), &end, 10);
    if (*end != '.' || n < 0)
        return false;
    *mtp = prefix[0] == 'm';
    *block = (int)n + (*mtp ? p->cfg->n_layers : 0);
    *rest = end + 1;
    return true;
}

bool gg_name_of(const gg_plan *p, const char *canon, char *out, size_t cap, gg_transform *transform)
{
    *transform = GG_ROWS;
    const char *global = strcmp(canon, "embed") == 0        ? "token_embd.weight"
                         : strcmp(canon, "final_norm") == 0 ? "output_norm.weight"
                         : strcmp(canon, "lm_head") == 0    ? "output.weight"
                                                            : NULL;
    if (global) {
        snprintf(out, cap, "%s", global);
        return true;
    }
    int block;
    const char *rest;
    bool mtp;
    if (!split_block(p, canon, &block, &rest, &mtp) || block >= p->n_blocks)
        return false;
    const char *local = block_name(p, rest, transform);
    if (!local || (!mtp && strncmp(local, "nextn.", 6) == 0))
        return false;
    snprintf(out, cap, "blk.%d.%s", block, local);
    return true;
}
