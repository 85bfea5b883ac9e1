/* synth: command line, per-family defaults and validation. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "synth.h"

static const char usage[] =
    "usage: synth --family F -o DIR [options]\n"
    "\n"
    "Writes a deterministic HuggingFace-style MoE checkpoint into DIR: config.json,\n"
    "generation_config.json, tokenizer_config.json and model.safetensors (or shards\n"
    "model-0000i-of-0000N.safetensors with model.safetensors.index.json). The same\n"
    "options always give byte-identical files. Tensors are generated and written one\n"
    "at a time, so memory stays at about one tensor whatever the checkpoint size.\n"
    "\n"
    "Families (--family):\n"
    "  mixtral      MixtralForCausalLM: block_sparse_moe.gate, experts.E.w1/w2/w3\n"
    "  qwen2_moe    Qwen2MoeForCausalLM: q/k/v biases, mlp.experts, shared_expert(+_gate)\n"
    "  qwen3_moe    Qwen3MoeForCausalLM: per-head q_norm/k_norm, no shared expert\n"
    "  olmoe        OlmoeForCausalLM: q_norm/k_norm over the whole projection\n"
    "  deepseek_v2  DeepseekV2ForCausalLM: MLA, softmax group_limited_greedy routing\n"
    "  deepseek_v3  DeepseekV3ForCausalLM: MLA, sigmoid noaux_tc routing, F32\n"
    "               e_score_correction_bias, MTP layers\n"
    "  kimi_k2      DeepseekV3ForCausalLM with model_type kimi_k2\n"
    "  glm4_moe     Glm4MoeForCausalLM: GQA with q/k/v biases and qk norms, sigmoid routing\n"
    "  gpt_oss      GptOssForCausalLM: sinks, router bias, stacked experts\n"
    "\n"
    "Shape (defaults in brackets; the family decides which apply, others are errors):\n"
    "  --layers N        decoder layers [2; 3 for deepseek_*, kimi_k2, glm4_moe]\n"
    "  --hidden N        hidden_size [64]\n"
    "  --heads N         num_attention_heads [4]\n"
    "  --kv-heads N      num_key_value_heads [2] (not MLA families)\n"
    "  --head-dim N      head_dim [16] (not MLA families)\n"
    "  --vocab N         vocab_size [256]; bos = N-2, eos = N-1\n"
    "  --experts N       routed experts [8]\n"
    "  --top-k N         experts per token [2]\n"
    "  --inter N         intermediate_size: dense MLP width, and the expert width of\n"
    "                    mixtral, olmoe and gpt_oss [128; 64 for those three]\n"
    "  --moe-inter N     moe_intermediate_size, the expert width elsewhere [32]\n"
    "  --shared N        qwen2_moe: shared_expert_intermediate_size = N * moe-inter [2];\n"
    "                    deepseek_*, kimi_k2, glm4_moe: n_shared_experts (0 = null)\n"
    "                    [2 for deepseek_v2, else 1]\n"
    "  --dense-layers N  first N layers dense: mlp_only_layers (qwen) or\n"
    "                    first_k_dense_replace [0 for qwen, 1 for the DeepSeek kin]\n"
    "  --mtp N           num_nextn_predict_layers: deepseek_v3, glm4_moe [1], kimi_k2 [0]\n"
    "  --q-lora-rank N   MLA q_lora_rank; 0 = null, a single q_proj [32]\n"
    "  --kv-lora-rank N  MLA kv_lora_rank [16]\n"
    "  --qk-nope-dim N   MLA qk_nope_head_dim [16]\n"
    "  --qk-rope-dim N   MLA qk_rope_head_dim, even [8]; head_dim is set to it\n"
    "  --v-head-dim N    MLA v_head_dim [16]\n"
    "  --groups N        n_group [4 for deepseek_v2/v3, else 1]\n"
    "  --topk-groups N   topk_group [2 for deepseek_v2/v3, else 1]\n"
    "  --routed-scale F  routed_scaling_factor [v2 16, v3 2.5, kimi 2.827, glm 2.5]\n"
    "  --yarn F          MLA families: rope_scaling yarn with this factor [none]\n"
    "  --sliding-window N  gpt_oss sliding_window [16]\n"
    "  --tie             tie_word_embeddings true: no lm_head.weight\n"
    "  --outliers        trained-looking activations: 1 in every 64 embedding\n"
    "                    columns 20x larger, so the residual stream carries a few\n"
    "                    hot channels into every norm and linear (off by default)\n"
    "\n"
    "Storage:\n"
    "  --dtype bf16|f32|f16  dtype of unquantized tensors [bf16];\n"
    "                    e_score_correction_bias is always F32, as published\n"
    "  --fp8             DeepSeek block FP8: attention and MLP linear weights (not\n"
    "                    embeddings, lm_head, routers, eh_proj, norms) as F8_E4M3 with\n"
    "                    '<name>_scale_inv' F32 [ceil(out/128), ceil(in/128)] = block\n"
    "                    amax/448; w = fp8 * scale_inv; adds quantization_config\n"
    "  --mxfp4           gpt_oss: experts as MXFP4 *_blocks/*_scales U8 (the published\n"
    "                    checkpoint); without it they are dequantized stacked tensors\n"
    "                    gate_up_proj [E,H,2I] and down_proj [E,I,H]\n"
    "  --shards N        N shards, greedy in state-dict order, with the index [1]\n"
    "  --seed N          value seed [0]\n"
    "  --deepseek-v3-full  DeepSeek-V3's real structure at tiny widths: 61 layers,\n"
    "                    3 dense, 256 routed + 1 shared experts, top-8, 8 groups,\n"
    "                    top-4 groups, scale 2.5, 1 MTP layer, yarn 40, FP8, 163 shards\n"
    "                    (91991 tensors); hidden 16, moe-inter 8, inter 32, vocab 64,\n"
    "                    heads 4, q/kv lora 16/8, rope/nope/v dims 4; options given\n"
    "                    explicitly still override\n"
    "  -h, --help        this text\n"
    "\n"
    "Values: linear weights ~N(0, (0.5..0.8)/sqrt(fan_in)) with 2 of every 64 input\n"
    "channels 10-30x larger; norms 1 + N(0, 0.1); biases N(0, 0.05).\n"
    "Exit status: 0 ok, 2 bad options, 3 I/O failure. A run into an existing directory\n"
    "replaces the files it writes and removes checkpoint files of another layout that\n"
    "an earlier run may have left (model.safetensors, the index, model-*-of-*.safetensors).\n";

static void set_unset(synth_options *o)
{
    memset(o, 0, sizeof *o);
    o->family = FAM_COUNT;
    o->dtype = MP_DT_COUNT;
    int *ints[] = {&o->layers,      &o->hidden,       &o->heads,       &o->kv_heads,    &o->head_dim,
                   &o->vocab,       &o->experts,      &o->top_k,       &o->moe_inter,   &o->inter,
                   &o->shared,      &o->dense_layers, &o->mtp,         &o->q_lora_rank, &o->kv_lora_rank,
                   &o->qk_nope_dim, &o->qk_rope_dim,  &o->v_head_dim,  &o->n_group,     &o->topk_group,
                   &o->sliding_window, &o->tie,      &o->shards};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        *ints[i] = -1;
    o->routed_scale = -1;
    o->yarn_factor = -1;
    o->seed = -1;
}

/* ---- parsing ---- */

typedef struct {
    const char *flag;
    int *value;
    int min;
} int_flag;

static int parse_int(const char *flag, const char *text, int min, int *out, mp_error *err)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < min || v > 1000000)
        return mp_fail(err, MP_EXIT_INPUT, "%s '%s': expected an integer from %d to 1000000", flag, text, min);
    *out = (int)v;
    return MP_OK;
}

static int parse_positive_real(const char *flag, const char *text, double *out, mp_error *err)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !(v > 0 && v <= 1e6))
        return mp_fail(err, MP_EXIT_INPUT, "%s '%s': expected a positive number", flag, text);
    *out = v;
    return MP_OK;
}

static int parse_seed(const char *text, long long *out, mp_error *err)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v < 0)
        return mp_fail(err, MP_EXIT_INPUT, "--seed '%s': expected a non-negative integer", text);
    *out = v;
    return MP_OK;
}

static int parse_family(const char *text, synth_family *out, mp_error *err)
{
    char valid[256] = "";
    for (int f = 0; f < FAM_COUNT; f++) {
        if (strcmp(text, synth_family_name((synth_family)f)) == 0) {
            *out = (synth_family)f;
            return MP_OK;
        }
        strcat(valid, f ? ", " : "");
        strcat(valid, synth_family_name((synth_family)f));
    }
    return mp_fail(err, MP_EXIT_INPUT, "unknown family '%s'; valid families: %s", text, valid);
}

static int parse_dtype(const char *text, mp_dtype *out, mp_error *err)
{
    if (strcmp(text, "bf16") == 0)
        *out = MP_DT_BF16;
    else if (strcmp(text, "f32") == 0)
        *out = MP_DT_F32;
    else if (strcmp(text, "f16") == 0)
        *out = MP_DT_F16;
    else
        return mp_fail(err, MP_EXIT_INPUT, "--dtype '%s': expected bf16, f32 or f16", text);
    return MP_OK;
}

/* Flags that take no value. Returns 1 when arg was one of them. */
static int parse_switch(const char *arg, synth_options *o, bool *help)
{
    if (strcmp(arg, "--fp8") == 0)
        o->fp8 = true;
    else if (strcmp(arg, "--mxfp4") == 0)
        o->mxfp4 = true;
    else if (strcmp(arg, "--deepseek-v3-full") == 0)
        o->v3_full = true;
    else if (strcmp(arg, "--tie") == 0)
        o->tie = 1;
    else if (strcmp(arg, "--outliers") == 0)
        o->outliers = true;
    else if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
        *help = true;
    else
        return 0;
    return 1;
}

static int parse_valued(const char *flag, const char *value, synth_options *o, mp_error *err)
{
    const int_flag ints[] = {
        {"--layers", &o->layers, 1},           {"--hidden", &o->hidden, 1},
        {"--heads", &o->heads, 1},             {"--kv-heads", &o->kv_heads, 1},
        {"--head-dim", &o->head_dim, 1},       {"--vocab", &o->vocab, 2},
        {"--experts", &o->experts, 1},         {"--top-k", &o->top_k, 1},
        {"--moe-inter", &o->moe_inter, 1},     {"--inter", &o->inter, 1},
        {"--shared", &o->shared, 0},           {"--dense-layers", &o->dense_layers, 0},
        {"--mtp", &o->mtp, 0},                 {"--shards", &o->shards, 1},
        {"--q-lora-rank", &o->q_lora_rank, 0}, {"--kv-lora-rank", &o->kv_lora_rank, 1},
        {"--qk-nope-dim", &o->qk_nope_dim, 1}, {"--qk-rope-dim", &o->qk_rope_dim, 2},
        {"--v-head-dim", &o->v_head_dim, 1},   {"--groups", &o->n_group, 1},
        {"--topk-groups", &o->topk_group, 1},  {"--sliding-window", &o->sliding_window, 1},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (strcmp(flag, ints[i].flag) == 0)
            return parse_int(flag, value, ints[i].min, ints[i].value, err);
    if (strcmp(flag, "--family") == 0)
        return parse_family(value, &o->family, err);
    if (strcmp(flag, "-o") == 0 || strcmp(flag, "--output") == 0) {
        o->out_dir = value;
        return MP_OK;
    }
    if (strcmp(flag, "--dtype") == 0)
        return parse_dtype(value, &o->dtype, err);
    if (strcmp(flag, "--seed") == 0)
        return parse_seed(value, &o->seed, err);
    if (strcmp(flag, "--routed-scale") == 0)
        return parse_positive_real(flag, value, &o->routed_scale, err);
    if (strcmp(flag, "--yarn") == 0)
        return parse_positive_real(flag, value, &o->yarn_factor, err);
    return mp_fail(err, MP_EXIT_INPUT, "unknown option '%s' (see --help)", flag);
}

static int parse_args(int argc, char **argv, synth_options *o, bool *help, mp_error *err)
{
    for (int i = 1; i < argc; i++) {
        if (parse_switch(argv[i], o, help))
            continue;
        if (strncmp(argv[i], "-", 1) != 0)
            return mp_fail(err, MP_EXIT_INPUT, "unexpected argument '%s' (see --help)", argv[i]);
        if (i + 1 >= argc)
            return mp_fail(err, MP_EXIT_INPUT, "option '%s' needs a value (see --help)", argv[i]);
        int rc = parse_valued(argv[i], argv[i + 1], o, err);
        if (rc != MP_OK)
            return rc;
        i++;
    }
    return MP_OK;
}

/* ---- defaults ---- */

static void set_default(int *value, int fallback)
{
    if (*value < 0)
        *value = fallback;
}

/* DeepSeek-V3's counts (config.json of deepseek-ai/DeepSeek-V3) at tiny widths. */
static void apply_v3_full_preset(synth_options *o)
{
    set_default(&o->layers, 61);
    set_default(&o->dense_layers, 3);
    set_default(&o->experts, 256);
    set_default(&o->shared, 1);
    set_default(&o->top_k, 8);
    set_default(&o->n_group, 8);
    set_default(&o->topk_group, 4);
    set_default(&o->mtp, 1);
    set_default(&o->shards, 163);
    set_default(&o->hidden, 16);
    set_default(&o->heads, 4);
    set_default(&o->moe_inter, 8);
    set_default(&o->inter, 32);
    set_default(&o->vocab, 64);
    set_default(&o->q_lora_rank, 16);
    set_default(&o->kv_lora_rank, 8);
    set_default(&o->qk_rope_dim, 4);
    set_default(&o->qk_nope_dim, 4);
    set_default(&o->v_head_dim, 4);
    if (o->routed_scale < 0)
        o->routed_scale = 2.5;
    if (o->yarn_factor < 0)
        o->yarn_factor = 40;
    o->fp8 = true;
}

static void apply_family_defaults(synth_options *o)
{
    synth_family f = o->family;
    bool mla = synth_is_deepseek(f), ds_routing = mla || f == FAM_GLM4_MOE;
    bool experts_use_inter = f == FAM_MIXTRAL || f == FAM_OLMOE || f == FAM_GPT_OSS;
    set_default(&o->layers, ds_routing ? 3 : 2);
    set_default(&o->hidden, 64);
    set_default(&o->heads, 4);
    set_default(&o->vocab, 256);
    set_default(&o->experts, 8);
    set_default(&o->top_k, 2);
    set_default(&o->moe_inter, 32);
    set_default(&o->inter, experts_use_inter ? 64 : 128);
    set_default(&o->shared, f == FAM_QWEN2_MOE || f == FAM_DEEPSEEK_V2 ? 2 : ds_routing ? 1 : 0);
    set_default(&o->dense_layers, ds_routing ? 1 : 0);
    set_default(&o->mtp, f == FAM_DEEPSEEK_V3 || f == FAM_GLM4_MOE ? 1 : 0);
    set_default(&o->q_lora_rank, 32);
    set_default(&o->kv_lora_rank, 16);
    set_default(&o->qk_nope_dim, 16);
    set_default(&o->qk_rope_dim, 8);
    set_default(&o->v_head_dim, 16);
    bool v2_v3 = f == FAM_DEEPSEEK_V2 || f == FAM_DEEPSEEK_V3;
    set_default(&o->n_group, v2_v3 ? 4 : 1);
    set_default(&o->topk_group, v2_v3 ? 2 : 1);
    set_default(&o->sliding_window, f == FAM_GPT_OSS ? 16 : 0);
    set_default(&o->shards, 1);
    set_default(&o->tie, 0);
    /* MLA has one key/value latent per head; transformers sets head_dim to the rope width */
    set_default(&o->kv_heads, mla ? o->heads : 2);
    set_default(&o->head_dim, mla ? o->qk_rope_dim : 16);
    if (o->routed_scale < 0)
        o->routed_scale = f == FAM_DEEPSEEK_V2 ? 16.0 : f == FAM_KIMI_K2 ? 2.827 : ds_routing ? 2.5 : 1.0;
    if (o->yarn_factor < 0)
        o->yarn_factor = 0;
    if (o->seed < 0)
        o->seed = 0;
    if (o->dtype == MP_DT_COUNT)
        o->dtype = MP_DT_BF16;
}

/* ---- validation ---- */

static unsigned family_bit(synth_family f)
{
    return 1u << f;
}

typedef struct {
    const char *flag;
    bool given;
    unsigned families; /* bit per family that uses the option */
} option_scope;

/* An option the family does not use is an error rather than silently ignored. */
static int check_scopes(const synth_options *o, mp_error *err)
{
    unsigned all = (1u << FAM_COUNT) - 1;
    unsigned mla = family_bit(FAM_DEEPSEEK_V2) | family_bit(FAM_DEEPSEEK_V3) | family_bit(FAM_KIMI_K2);
    unsigned ds_routing = mla | family_bit(FAM_GLM4_MOE);
    unsigned inter_experts = family_bit(FAM_MIXTRAL) | family_bit(FAM_OLMOE) | family_bit(FAM_GPT_OSS);
    unsigned qwen = family_bit(FAM_QWEN2_MOE) | family_bit(FAM_QWEN3_MOE);
    unsigned mtp = family_bit(FAM_DEEPSEEK_V3) | family_bit(FAM_KIMI_K2) | family_bit(FAM_GLM4_MOE);
    const option_scope scopes[] = {
        {"--kv-heads", o->kv_heads >= 0, all & ~mla},
        {"--head-dim", o->head_dim >= 0, all & ~mla},
        {"--q-lora-rank", o->q_lora_rank >= 0, mla},
        {"--kv-lora-rank", o->kv_lora_rank >= 0, mla},
        {"--qk-nope-dim", o->qk_nope_dim >= 0, mla},
        {"--qk-rope-dim", o->qk_rope_dim >= 0, mla},
        {"--v-head-dim", o->v_head_dim >= 0, mla},
        {"--yarn", o->yarn_factor >= 0, mla},
        {"--moe-inter", o->moe_inter >= 0, all & ~inter_experts},
        {"--shared", o->shared >= 0, ds_routing | family_bit(FAM_QWEN2_MOE)},
        {"--dense-layers", o->dense_layers >= 0, ds_routing | qwen},
        {"--mtp", o->mtp >= 0, mtp},
        {"--groups", o->n_group >= 0, ds_routing},
        {"--topk-groups", o->topk_group >= 0, ds_routing},
        {"--routed-scale", o->routed_scale >= 0, ds_routing},
        {"--sliding-window", o->sliding_window >= 0, family_bit(FAM_GPT_OSS)},
        {"--mxfp4", o->mxfp4, family_bit(FAM_GPT_OSS)},
        {"--fp8", o->fp8, all & ~family_bit(FAM_GPT_OSS)},
        {"--deepseek-v3-full", o->v3_full, family_bit(FAM_DEEPSEEK_V3)},
    };
    for (size_t i = 0; i < sizeof scopes / sizeof scopes[0]; i++)
        if (scopes[i].given && !(scopes[i].families & family_bit(o->family)))
            return mp_fail(err, MP_EXIT_INPUT, "%s does not apply to family %s (see --help)", scopes[i].flag,
                           synth_family_name(o->family));
    return MP_OK;
}

static int check_routing(const synth_options *o, mp_error *err)
{
    if (o->top_k > o->experts)
        return mp_fail(err, MP_EXIT_INPUT, "--top-k %d exceeds --experts %d", o->top_k, o->experts);
    if (o->dense_layers > o->layers)
        return mp_fail(err, MP_EXIT_INPUT, "--dense-layers %d exceeds --layers %d", o->dense_layers, o->layers);
    if (o->family == FAM_QWEN2_MOE && o->shared < 1)
        return mp_fail(err, MP_EXIT_INPUT, "qwen2_moe always has a shared expert: --shared must be >= 1");
    if (!synth_is_deepseek(o->family) && o->family != FAM_GLM4_MOE)
        return MP_OK;
    if (o->experts % o->n_group != 0 || o->topk_group > o->n_group)
        return mp_fail(err, MP_EXIT_INPUT, "--groups %d / --topk-groups %d: experts (%d) must split evenly into "
                       "groups and topk_group must not exceed n_group", o->n_group, o->topk_group, o->experts);
    int per_group = o->experts / o->n_group;
    if (o->top_k > o->topk_group * per_group)
        return mp_fail(err, MP_EXIT_INPUT, "--top-k %d exceeds the %d experts of the %d selected groups", o->top_k,
                       o->topk_group * per_group, o->topk_group);
    if (synth_has_score_bias(o->family) && per_group < 2) /* noaux_tc scores a group by its top-2 */
        return mp_fail(err, MP_EXIT_INPUT, "--groups %d: sigmoid routing needs at least 2 experts per group",
                       o->n_group);
    return MP_OK;
}

static int check_shapes(const synth_options *o, mp_error *err)
{
    if (!synth_is_deepseek(o->family) && o->heads % o->kv_heads != 0)
        return mp_fail(err, MP_EXIT_INPUT, "--heads %d is not a multiple of --kv-heads %d", o->heads, o->kv_heads);
    if (synth_is_deepseek(o->family) && o->qk_rope_dim % 2 != 0)
        return mp_fail(err, MP_EXIT_INPUT, "--qk-rope-dim %d: rotary pairs need an even width", o->qk_rope_dim);
    if (o->mxfp4 && (o->hidden % 32 != 0 || o->inter % 32 != 0))
        return mp_fail(err, MP_EXIT_INPUT, "--mxfp4 needs --hidden (%d) and --inter (%d) to be multiples of 32",
                       o->hidden, o->inter);
    return MP_OK;
}

static int finish_options(synth_options *o, mp_error *err)
{
    if (o->v3_full && o->family == FAM_COUNT)
        o->family = FAM_DEEPSEEK_V3;
    if (o->family == FAM_COUNT)
        return mp_fail(err, MP_EXIT_INPUT, "missing --family (see --help)");
    if (!o->out_dir || !*o->out_dir)
        return mp_fail(err, MP_EXIT_INPUT, "missing -o DIR (see --help)");
    int rc = check_scopes(o, err);
    if (rc != MP_OK)
        return rc;
    if (o->v3_full)
        apply_v3_full_preset(o);
    apply_family_defaults(o);
    rc = check_routing(o, err);
    return rc == MP_OK ? check_shapes(o, err) : rc;
}

/* mkdir -p */
static int make_directory(const char *path, mp_error *err)
{
    char *copy = strdup(path);
    if (!copy)
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    int rc = MP_OK;
    for (char *p = copy + 1; rc == MP_OK; p++) {
        bool end = *p == '\0';
        if (*p != '/' && !end)
            continue;
        *p = '\0';
        if (mkdir(copy, 0755) != 0 && errno != EEXIST)
            rc = mp_fail_errno(err, "%s: create directory", copy);
        if (end)
            break;
        *p = '/';
    }
    struct stat st;
    if (rc == MP_OK && (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)))
        rc = mp_fail(err, MP_EXIT_IO, "%s: not a directory", path);
    free(copy);
    return rc;
}

static uint64_t total_bytes(const synth_list *l)
{
    uint64_t total = 0;
    for (int i = 0; i < l->n; i++)
        total += l->items[i].nbytes;
    return total;
}

int main(int argc, char **argv)
{
    synth_options o;
    synth_list list = {0};
    mp_error err = {0};
    bool help = false;
    set_unset(&o);
    int rc = parse_args(argc, argv, &o, &help, &err);
    if (rc == MP_OK && help) {
        fputs(usage, stdout);
        return 0;
    }
    if (rc == MP_OK)
        rc = finish_options(&o, &err);
    if (rc == MP_OK)
        rc = synth_build_tensors(&o, &list, &err);
    if (rc == MP_OK && o.shards > list.n)
        rc = mp_fail(&err, MP_EXIT_INPUT, "--shards %d: the checkpoint has only %d tensors", o.shards, list.n);
    if (rc == MP_OK)
        rc = make_directory(o.out_dir, &err);
    if (rc == MP_OK)
        rc = synth_write_checkpoint(&o, &list, &err);
    if (rc == MP_OK)
        rc = synth_write_configs(&o, &err);
    if (rc == MP_OK)
        printf("synth: %s -> %s: %d tensors, %llu bytes, %d shard%s\n", synth_family_name(o.family), o.out_dir,
               list.n, (unsigned long long)total_bytes(&list), o.shards, o.shards == 1 ? "" : "s");
    else
        fprintf(stderr, "synth: %s\n", err.msg);
    synth_list_free(&list);
    return rc;
}
