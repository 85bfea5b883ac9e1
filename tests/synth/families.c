/* The tensor list of each family, with the names, shapes and dtypes of the real
 * HuggingFace checkpoints (REFERENCE.md section 2), in state-dict order: embeddings,
 * then each layer (attention, MLP, norms), MTP layers, final norm, lm_head. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synth.h"

/* Tensor names are short (the longest is about 70 bytes: every count is at most
 * 10^6), so a fixed buffer always holds them. */
enum { NAME_SIZE = 256 };

static void name_of(char dst[NAME_SIZE], const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void name_of(char dst[NAME_SIZE], const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, NAME_SIZE, fmt, ap);
    va_end(ap);
}

static const char *const family_names[FAM_COUNT] = {
    "mixtral", "qwen2_moe", "qwen3_moe", "olmoe", "deepseek_v2",
    "deepseek_v3", "kimi_k2", "glm4_moe", "gpt_oss",
};

const char *synth_family_name(synth_family f)
{
    return family_names[f];
}

bool synth_is_deepseek(synth_family f)
{
    return f == FAM_DEEPSEEK_V2 || f == FAM_DEEPSEEK_V3 || f == FAM_KIMI_K2;
}

bool synth_has_score_bias(synth_family f)
{
    return f == FAM_DEEPSEEK_V3 || f == FAM_KIMI_K2 || f == FAM_GLM4_MOE;
}

bool synth_layer_is_moe(const synth_options *o, int layer)
{
    switch (o->family) {
    case FAM_QWEN2_MOE: /* mlp_only_layers = [0, dense_layers), decoder_sparse_step 1 */
    case FAM_QWEN3_MOE:
    case FAM_DEEPSEEK_V2: /* first_k_dense_replace, moe_layer_freq 1 */
    case FAM_DEEPSEEK_V3:
    case FAM_KIMI_K2:
    case FAM_GLM4_MOE:
        return layer >= o->dense_layers;
    default:
        return true;
    }
}

void synth_list_free(synth_list *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->items[i].name);
    free(l->items);
    memset(l, 0, sizeof *l);
}

typedef struct {
    const synth_options *o;
    synth_list *l;
    uint64_t channel_seed;
} builder;

static uint64_t stored_bytes(const synth_tensor *t)
{
    uint64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= (uint64_t)t->shape[i];
    return n * (uint64_t)mp_dtype_bits(t->dtype) / 8;
}

static void push(builder *b, synth_tensor t, const char *name)
{
    synth_list *l = b->l;
    if (l->out_of_memory)
        return;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 256;
        synth_tensor *items = realloc(l->items, (size_t)cap * sizeof *items);
        if (!items) {
            l->out_of_memory = true;
            return;
        }
        l->items = items;
        l->cap = cap;
    }
    t.name = strdup(name);
    if (!t.name) {
        l->out_of_memory = true;
        return;
    }
    t.channel_seed = b->channel_seed;
    t.nbytes = stored_bytes(&t);
    l->items[l->n++] = t;
}

static uint64_t seed_of(const builder *b, const char *logical_name)
{
    return synth_hash_name((uint64_t)b->o->seed, logical_name);
}

/* A 2-D linear weight [rows=out, cols=in]. With --fp8 and quantizable, stored as
 * DeepSeek block FP8 with its "<name>_scale_inv" sibling. */
static void add_matrix(builder *b, const char *name, int64_t rows, int64_t cols, bool quantizable)
{
    synth_tensor t = {.values = VAL_LINEAR, .enc = ENC_PLAIN, .dtype = b->o->dtype, .ndim = 2,
                      .shape = {rows, cols}, .experts = 1, .rows = rows, .cols = cols,
                      .seed = seed_of(b, name)};
    if (!(b->o->fp8 && quantizable)) {
        push(b, t, name);
        return;
    }
    t.enc = ENC_FP8;
    t.dtype = MP_DT_F8_E4M3;
    push(b, t, name);
    char scale_name[NAME_SIZE];
    name_of(scale_name, "%s_scale_inv", name);
    t.enc = ENC_FP8_SCALE;
    t.dtype = MP_DT_F32;
    t.shape[0] = (rows + 127) / 128;
    t.shape[1] = (cols + 127) / 128;
    push(b, t, scale_name);
}

/* Projections inside attention and MLP blocks (FP8-eligible). */
static void add_linear(builder *b, const char *prefix, const char *leaf, int64_t rows, int64_t cols)
{
    char name[NAME_SIZE];
    name_of(name, "%s.%s", prefix, leaf);
    add_matrix(b, name, rows, cols, true);
}

/* Routers, gates, lm_head, eh_proj: never quantized in the published FP8 checkpoints. */
static void add_plain_matrix(builder *b, const char *prefix, const char *leaf, int64_t rows, int64_t cols)
{
    char name[NAME_SIZE];
    name_of(name, "%s.%s", prefix, leaf);
    add_matrix(b, name, rows, cols, false);
}

static void add_vector_as(builder *b, const char *prefix, const char *leaf, int64_t n, synth_values v,
                          mp_dtype dt)
{
    char name[NAME_SIZE];
    name_of(name, "%s.%s", prefix, leaf);
    synth_tensor t = {.values = v, .enc = ENC_PLAIN, .dtype = dt, .ndim = 1, .shape = {n},
                      .experts = 1, .rows = 1, .cols = n, .seed = seed_of(b, name)};
    push(b, t, name);
}

static void add_norm(builder *b, const char *prefix, const char *leaf, int64_t n)
{
    add_vector_as(b, prefix, leaf, n, VAL_NORM, b->o->dtype);
}

static void add_bias(builder *b, const char *prefix, const char *leaf, int64_t n)
{
    add_vector_as(b, prefix, leaf, n, VAL_BIAS, b->o->dtype);
}

static void add_embedding(builder *b, const char *name)
{
    synth_tensor t = {.values = VAL_EMBED, .enc = ENC_PLAIN, .dtype = b->o->dtype, .ndim = 2,
                      .shape = {b->o->vocab, b->o->hidden}, .experts = 1, .rows = b->o->vocab,
                      .cols = b->o->hidden, .seed = seed_of(b, name), .hot_channels = b->o->outliers};
    push(b, t, name);
}

/* ---- attention ---- */

typedef struct {
    bool qkv_bias, o_bias;
    int64_t q_norm, k_norm; /* widths of q_norm/k_norm, 0 when absent */
    bool sinks;
} gqa_shape;

static void add_gqa_attention(builder *b, const char *layer, gqa_shape g)
{
    const synth_options *o = b->o;
    char p[NAME_SIZE];
    name_of(p, "%s.self_attn", layer);
    int64_t q_width = (int64_t)o->heads * o->head_dim, kv_width = (int64_t)o->kv_heads * o->head_dim;
    const char *names[3] = {"q_proj", "k_proj", "v_proj"};
    int64_t widths[3] = {q_width, kv_width, kv_width};
    for (int i = 0; i < 3; i++) {
        char leaf[NAME_SIZE];
        name_of(leaf, "%s.weight", names[i]);
        add_linear(b, p, leaf, widths[i], o->hidden);
        name_of(leaf, "%s.bias", names[i]);
        if (g.qkv_bias)
            add_bias(b, p, leaf, widths[i]);
    }
    add_linear(b, p, "o_proj.weight", o->hidden, q_width);
    if (g.o_bias)
        add_bias(b, p, "o_proj.bias", o->hidden);
    if (g.q_norm)
        add_norm(b, p, "q_norm.weight", g.q_norm);
    if (g.k_norm)
        add_norm(b, p, "k_norm.weight", g.k_norm);
    if (g.sinks)
        add_vector_as(b, p, "sinks", o->heads, VAL_SINK, o->dtype);
}

/* DeepSeek multi-head latent attention. */
static void add_mla_attention(builder *b, const char *layer)
{
    const synth_options *o = b->o;
    char p[NAME_SIZE];
    name_of(p, "%s.self_attn", layer);
    int64_t q_head = (int64_t)o->qk_nope_dim + o->qk_rope_dim;
    if (o->q_lora_rank == 0) {
        add_linear(b, p, "q_proj.weight", o->heads * q_head, o->hidden);
    } else {
        add_linear(b, p, "q_a_proj.weight", o->q_lora_rank, o->hidden);
        add_norm(b, p, "q_a_layernorm.weight", o->q_lora_rank);
        add_linear(b, p, "q_b_proj.weight", o->heads * q_head, o->q_lora_rank);
    }
    add_linear(b, p, "kv_a_proj_with_mqa.weight", (int64_t)o->kv_lora_rank + o->qk_rope_dim, o->hidden);
    add_norm(b, p, "kv_a_layernorm.weight", o->kv_lora_rank);
    add_linear(b, p, "kv_b_proj.weight", (int64_t)o->heads * (o->qk_nope_dim + o->v_head_dim),
               o->kv_lora_rank);
    add_linear(b, p, "o_proj.weight", o->hidden, (int64_t)o->heads * o->v_head_dim);
}

static void add_attention(builder *b, const char *layer)
{
    const synth_options *o = b->o;
    int64_t hd = o->head_dim;
    switch (o->family) {
    case FAM_QWEN2_MOE:
        add_gqa_attention(b, layer, (gqa_shape){.qkv_bias = true});
        break;
    case FAM_QWEN3_MOE:
    case FAM_GLM4_MOE: /* GLM-4.5: attention_bias on q/k/v only; use_qk_norm per head */
        add_gqa_attention(b, layer, (gqa_shape){.qkv_bias = o->family == FAM_GLM4_MOE,
                                                .q_norm = hd, .k_norm = hd});
        break;
    case FAM_OLMOE: /* OLMoE normalizes the whole projection, not each head */
        add_gqa_attention(b, layer, (gqa_shape){.q_norm = o->heads * hd, .k_norm = o->kv_heads * hd});
        break;
    case FAM_GPT_OSS:
        add_gqa_attention(b, layer, (gqa_shape){.qkv_bias = true, .o_bias = true, .sinks = true});
        break;
    case FAM_DEEPSEEK_V2:
    case FAM_DEEPSEEK_V3:
    case FAM_KIMI_K2:
        add_mla_attention(b, layer);
        break;
    default:
        add_gqa_attention(b, layer, (gqa_shape){0});
        break;
    }
}

/* ---- MLPs ---- */

/* gate/up [inter, hidden] and down [hidden, inter] under prefix, with the given leaf
 * names in state-dict order; down_index says which of the three is the down projection. */
static void add_swiglu(builder *b, const char *prefix, const char *const leaves[3], int down_index,
                       int64_t inter)
{
    for (int i = 0; i < 3; i++) {
        if (i == down_index)
            add_linear(b, prefix, leaves[i], b->o->hidden, inter);
        else
            add_linear(b, prefix, leaves[i], inter, b->o->hidden);
    }
}

static const char *const proj_leaves[3] = {"gate_proj.weight", "up_proj.weight", "down_proj.weight"};
/* Mixtral: w1 = gate, w2 = down, w3 = up. */
static const char *const mixtral_leaves[3] = {"w1.weight", "w2.weight", "w3.weight"};

static void add_expert_list(builder *b, const char *experts_prefix, const char *const leaves[3],
                            int down_index, int64_t inter)
{
    for (int e = 0; e < b->o->experts; e++) {
        char p[NAME_SIZE];
        name_of(p, "%s.%d", experts_prefix, e);
        add_swiglu(b, p, leaves, down_index, inter);
    }
}

static void add_mixtral_moe(builder *b, const char *layer)
{
    char p[NAME_SIZE], experts[NAME_SIZE];
    name_of(p, "%s.block_sparse_moe", layer);
    name_of(experts, "%s.experts", p);
    add_plain_matrix(b, p, "gate.weight", b->o->experts, b->o->hidden);
    add_expert_list(b, experts, mixtral_leaves, 1, b->o->inter);
}

/* Qwen2-MoE, Qwen3-MoE, OLMoE; only Qwen2-MoE has the sigmoid-gated shared expert. */
static void add_qwen_moe(builder *b, const char *mlp)
{
    const synth_options *o = b->o;
    char experts[NAME_SIZE], shared[NAME_SIZE];
    name_of(experts, "%s.experts", mlp);
    int64_t expert_inter = o->family == FAM_OLMOE ? o->inter : o->moe_inter;
    add_plain_matrix(b, mlp, "gate.weight", o->experts, o->hidden);
    add_expert_list(b, experts, proj_leaves, 2, expert_inter);
    if (o->family != FAM_QWEN2_MOE)
        return;
    name_of(shared, "%s.shared_expert", mlp);
    add_swiglu(b, shared, proj_leaves, 2, (int64_t)o->shared * o->moe_inter);
    add_plain_matrix(b, mlp, "shared_expert_gate.weight", 1, o->hidden);
}

/* DeepSeek-V2/V3, Kimi-K2, GLM-4.5: shared_experts is one MLP n_shared times as wide. */
static void add_deepseek_moe(builder *b, const char *mlp)
{
    const synth_options *o = b->o;
    char experts[NAME_SIZE], shared[NAME_SIZE];
    name_of(experts, "%s.experts", mlp);
    add_plain_matrix(b, mlp, "gate.weight", o->experts, o->hidden);
    if (synth_has_score_bias(o->family)) /* F32 even when everything else is BF16 */
        add_vector_as(b, mlp, "gate.e_score_correction_bias", o->experts, VAL_BIAS, MP_DT_F32);
    add_expert_list(b, experts, proj_leaves, 2, o->moe_inter);
    if (o->shared > 0) {
        name_of(shared, "%s.shared_experts", mlp);
        add_swiglu(b, shared, proj_leaves, 2, (int64_t)o->shared * o->moe_inter);
    }
}

/* One stacked GPT-OSS expert projection: logical [experts][rows][cols] = [E][out][in]. */
static void add_stacked_experts(builder *b, const char *mlp, const char *proj, int64_t rows, int64_t cols)
{
    const synth_options *o = b->o;
    char logical[NAME_SIZE], name[NAME_SIZE];
    name_of(logical, "%s.experts.%s", mlp, proj);
    int64_t e = o->experts;
    synth_tensor t = {.values = VAL_LINEAR, .experts = e, .rows = rows, .cols = cols,
                      .seed = seed_of(b, logical)};
    if (o->mxfp4) {
        t.enc = ENC_MXFP4_BLOCKS;
        t.dtype = MP_DT_U8;
        t.ndim = 4;
        memcpy(t.shape, (int64_t[4]){e, rows, cols / 32, 16}, sizeof t.shape);
        name_of(name, "%s_blocks", logical);
        push(b, t, name);
        t.enc = ENC_MXFP4_SCALES;
        t.ndim = 3;
        memcpy(t.shape, (int64_t[4]){e, rows, cols / 32, 0}, sizeof t.shape);
        name_of(name, "%s_scales", logical);
        push(b, t, name);
    } else { /* transformers' bf16 layout is input-major: [E, in, out] */
        t.enc = ENC_TRANSPOSED;
        t.dtype = o->dtype;
        t.ndim = 3;
        memcpy(t.shape, (int64_t[4]){e, cols, rows, 0}, sizeof t.shape);
        push(b, t, logical);
    }
    synth_tensor bias = {.values = VAL_BIAS, .enc = ENC_PLAIN, .dtype = o->dtype, .ndim = 2,
                         .shape = {e, rows}, .experts = e, .rows = 1, .cols = rows};
    name_of(name, "%s_bias", logical);
    bias.seed = seed_of(b, name);
    push(b, bias, name);
}

/* GPT-OSS: gate_up rows interleave gate (even) and up (odd). */
static void add_gpt_oss_moe(builder *b, const char *mlp)
{
    const synth_options *o = b->o;
    add_plain_matrix(b, mlp, "router.weight", o->experts, o->hidden);
    add_bias(b, mlp, "router.bias", o->experts);
    add_stacked_experts(b, mlp, "gate_up_proj", 2 * (int64_t)o->inter, o->hidden);
    add_stacked_experts(b, mlp, "down_proj", o->hidden, o->inter);
}

static void add_mlp(builder *b, const char *layer, int index)
{
    char mlp[NAME_SIZE];
    name_of(mlp, "%s.mlp", layer);
    if (!synth_layer_is_moe(b->o, index)) {
        add_swiglu(b, mlp, proj_leaves, 2, b->o->inter);
        return;
    }
    switch (b->o->family) {
    case FAM_MIXTRAL:
        add_mixtral_moe(b, layer);
        break;
    case FAM_QWEN2_MOE:
    case FAM_QWEN3_MOE:
    case FAM_OLMOE:
        add_qwen_moe(b, mlp);
        break;
    case FAM_GPT_OSS:
        add_gpt_oss_moe(b, mlp);
        break;
    default:
        add_deepseek_moe(b, mlp);
        break;
    }
}

static void add_decoder_layer(builder *b, int index)
{
    char layer[NAME_SIZE];
    name_of(layer, "model.layers.%d", index);
    add_attention(b, layer);
    add_mlp(b, layer, index);
    add_norm(b, layer, "input_layernorm.weight", b->o->hidden);
    add_norm(b, layer, "post_attention_layernorm.weight", b->o->hidden);
}

/* DeepSeek-V3 / GLM-4.5 multi-token prediction: a full decoder layer numbered after
 * the last one, plus its own embedding, norms, projection and head (all unquantized). */
static void add_mtp_layer(builder *b, int index)
{
    const synth_options *o = b->o;
    char layer[NAME_SIZE], name[NAME_SIZE];
    add_decoder_layer(b, index);
    name_of(layer, "model.layers.%d", index);
    name_of(name, "%s.embed_tokens.weight", layer);
    add_embedding(b, name);
    add_norm(b, layer, "enorm.weight", o->hidden);
    add_norm(b, layer, "hnorm.weight", o->hidden);
    add_plain_matrix(b, layer, "eh_proj.weight", o->hidden, 2 * (int64_t)o->hidden);
    add_norm(b, layer, "shared_head.norm.weight", o->hidden);
    add_plain_matrix(b, layer, "shared_head.head.weight", o->vocab, o->hidden);
}

int synth_build_tensors(const synth_options *o, synth_list *l, mp_error *err)
{
    builder b = {.o = o, .l = l, .channel_seed = synth_hash_name((uint64_t)o->seed, "input channels")};
    add_embedding(&b, "model.embed_tokens.weight");
    for (int i = 0; i < o->layers; i++)
        add_decoder_layer(&b, i);
    for (int i = 0; i < o->mtp; i++)
        add_mtp_layer(&b, o->layers + i);
    add_norm(&b, "model", "norm.weight", o->hidden);
    if (!o->tie)
        add_plain_matrix(&b, "lm_head", "weight", o->vocab, o->hidden);
    if (l->out_of_memory)
        return mp_fail(err, MP_EXIT_IO, "out of memory listing %d tensors", l->n);
    return MP_OK;
}
