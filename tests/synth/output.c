/* Writing the checkpoint: safetensors shards one tensor at a time, the shard index,
 * and the JSON files that sit next to them in an HF checkpoint directory. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../core/fileio.h"
#include "../../formats/safetensors.h"
#include "synth.h"

/* JSON the way transformers writes it: indent 2, sorted keys, trailing newline.
 * Precision 15 prints 1e-06 and 0.707 as Python does, not their 17-digit forms. */
static int write_json(const char *dir, const char *file, json_t *doc, mp_error *err)
{
    char *path = mp_path_join(dir, file);
    char *tmp = path ? mp_temp_name(path) : NULL;
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(15));
    int rc = MP_OK;
    if (!path || !tmp || !text) {
        rc = mp_fail(err, MP_EXIT_IO, "%s/%s: out of memory", dir, file);
        goto done;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = mp_fail_errno(err, "%s: create", tmp);
        goto done;
    }
    rc = mp_write_full(fd, text, strlen(text), tmp, err);
    if (rc == MP_OK)
        rc = mp_write_full(fd, "\n", 1, tmp, err);
    if (close(fd) != 0 && rc == MP_OK)
        rc = mp_fail_errno(err, "%s: close", tmp);
    if (rc == MP_OK && rename(tmp, path) != 0)
        rc = mp_fail_errno(err, "%s: rename to %s", tmp, path);
    if (rc != MP_OK)
        unlink(tmp);
done:
    free(text);
    free(tmp);
    free(path);
    return rc;
}

/* ---- sharding ---- */

/* Greedy in state-dict order, exactly n_shards non-empty shards: each shard takes
 * tensors until it reaches its share of the bytes still unassigned, leaving at
 * least one tensor for every later shard. */
static void assign_shards(synth_list *l, int n_shards)
{
    uint64_t remaining = 0;
    for (int i = 0; i < l->n; i++)
        remaining += l->items[i].nbytes;
    int next = 0;
    for (int s = 0; s < n_shards; s++) {
        int shards_left = n_shards - s;
        uint64_t target = (remaining + (uint64_t)shards_left - 1) / (uint64_t)shards_left;
        uint64_t size = 0;
        do {
            l->items[next].shard = s;
            size += l->items[next].nbytes;
            next++;
        } while (next < l->n && l->n - next > shards_left - 1 && size + l->items[next].nbytes <= target);
        remaining -= size;
    }
}

static char *shard_file_name(int shard, int n_shards)
{
    char name[64];
    if (n_shards == 1)
        snprintf(name, sizeof name, "model.safetensors");
    else
        snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", shard + 1, n_shards);
    return mp_strdup(name);
}

/* The order the safetensors Python library writes: larger dtype alignment first, then name. */
static int file_order(const void *pa, const void *pb)
{
    const synth_tensor *a = *(const synth_tensor *const *)pa, *b = *(const synth_tensor *const *)pb;
    int bits_a = mp_dtype_bits(a->dtype), bits_b = mp_dtype_bits(b->dtype);
    if (bits_a != bits_b)
        return bits_a > bits_b ? -1 : 1;
    return strcmp(a->name, b->name);
}

static int sink_to_writer(void *ctx, const void *bytes, uint64_t len, mp_error *err)
{
    return mp_st_writer_write(ctx, bytes, len, err);
}

/* Declares the shard's tensors, then generates and writes them one at a time. */
static int write_shard(const char *path, synth_tensor **members, int count, mp_error *err)
{
    mp_st_writer *w = mp_st_writer_new(path);
    if (!w)
        return mp_fail(err, MP_EXIT_IO, "%s: out of memory", path);
    int rc = mp_st_writer_metadata(w, "format", "pt", err);
    for (int i = 0; i < count && rc == MP_OK; i++)
        rc = mp_st_writer_add(w, members[i]->name, members[i]->dtype, members[i]->ndim,
                              members[i]->shape, err);
    for (int i = 0; i < count && rc == MP_OK; i++)
        rc = synth_emit_tensor(members[i], sink_to_writer, w, err);
    if (rc != MP_OK) {
        mp_st_writer_abort(w);
        return rc;
    }
    return mp_st_writer_finish(w, err);
}

static int write_shards(const char *dir, synth_list *l, int n_shards, mp_error *err)
{
    synth_tensor **members = malloc((size_t)l->n * sizeof *members);
    if (!members)
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    int rc = MP_OK, first = 0;
    for (int s = 0; s < n_shards && rc == MP_OK; s++) {
        int count = 0;
        while (first + count < l->n && l->items[first + count].shard == s) {
            members[count] = &l->items[first + count];
            count++;
        }
        first += count;
        qsort(members, (size_t)count, sizeof *members, file_order);
        char *file = shard_file_name(s, n_shards);
        char *path = file ? mp_path_join(dir, file) : NULL;
        rc = path ? write_shard(path, members, count, err) : mp_fail(err, MP_EXIT_IO, "out of memory");
        free(path);
        free(file);
    }
    free(members);
    return rc;
}

static int write_index(const char *dir, const synth_list *l, int n_shards, mp_error *err)
{
    json_t *map = json_object();
    uint64_t total = 0;
    for (int i = 0; i < l->n; i++) {
        char *file = shard_file_name(l->items[i].shard, n_shards);
        if (file)
            json_object_set_new(map, l->items[i].name, json_string(file));
        free(file);
        total += l->items[i].nbytes;
    }
    json_t *index = json_pack("{s:{s:I}, s:o}", "metadata", "total_size", (json_int_t)total, "weight_map", map);
    int rc = index ? write_json(dir, "model.safetensors.index.json", index, err)
                   : mp_fail(err, MP_EXIT_IO, "out of memory building the shard index");
    json_decref(index);
    return rc;
}

/* Our shard names: "model-%05d-of-%05d.safetensors". Returns the shard count or -1. */
static int shard_count_in_name(const char *name)
{
    int index, count, used = 0;
    if (strlen(name) != 32 || sscanf(name, "model-%5d-of-%5d.safetensors%n", &index, &count, &used) != 2)
        return -1;
    return used == 32 ? count : -1;
}

/* A previous run into the same directory may have left another layout behind: a
 * stale index would shadow a new single file, and shards of another count would
 * sit beside the new ones. Only files with the names this tool writes are removed. */
static int remove_other_layouts(const char *dir, int n_shards, mp_error *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return mp_fail_errno(err, "%s: open directory", dir);
    int rc = MP_OK;
    struct dirent *entry;
    while (rc == MP_OK && (entry = readdir(d)) != NULL) {
        const char *name = entry->d_name;
        int count = shard_count_in_name(name);
        bool stale = (count > 0 && count != n_shards) ||
                     (n_shards == 1 && strcmp(name, "model.safetensors.index.json") == 0) ||
                     (n_shards > 1 && strcmp(name, "model.safetensors") == 0);
        if (!stale)
            continue;
        char *path = mp_path_join(dir, name);
        if (!path)
            rc = mp_fail(err, MP_EXIT_IO, "out of memory");
        else if (unlink(path) != 0 && errno != ENOENT)
            rc = mp_fail_errno(err, "%s: remove stale file", path);
        free(path);
    }
    closedir(d);
    return rc;
}

int synth_write_checkpoint(const synth_options *o, synth_list *l, mp_error *err)
{
    assign_shards(l, o->shards);
    int rc = remove_other_layouts(o->out_dir, o->shards, err);
    if (rc == MP_OK)
        rc = write_shards(o->out_dir, l, o->shards, err);
    if (rc == MP_OK && o->shards > 1)
        rc = write_index(o->out_dir, l, o->shards, err);
    return rc;
}

/* ---- config.json and friends ---- */

static int bos_token(const synth_options *o)
{
    return o->vocab - 2;
}

static int eos_token(const synth_options *o)
{
    return o->vocab - 1;
}

static int max_positions(const synth_options *o)
{
    return o->yarn_factor > 0 ? (int)(4096 * o->yarn_factor) : 4096;
}

static const char *torch_dtype_name(mp_dtype dt)
{
    return dt == MP_DT_F32 ? "float32" : dt == MP_DT_F16 ? "float16" : "bfloat16";
}

static const char *architecture(synth_family f)
{
    static const char *const names[FAM_COUNT] = {
        "MixtralForCausalLM",    "Qwen2MoeForCausalLM",   "Qwen3MoeForCausalLM",
        "OlmoeForCausalLM",      "DeepseekV2ForCausalLM", "DeepseekV3ForCausalLM",
        "DeepseekV3ForCausalLM", "Glm4MoeForCausalLM",    "GptOssForCausalLM",
    };
    return names[f];
}

/* rope_theta and rms_norm_eps of the family's published configs. */
static void set_norm_and_rope(json_t *c, synth_family f)
{
    static const double theta[FAM_COUNT] = {1e6, 1e6, 1e6, 1e4, 1e4, 1e4, 5e4, 1e6, 150000};
    static const double eps[FAM_COUNT] = {1e-5, 1e-6, 1e-6, 1e-5, 1e-6, 1e-6, 1e-6, 1e-5, 1e-5};
    json_object_set_new(c, "rope_theta", json_real(theta[f]));
    json_object_set_new(c, "rms_norm_eps", json_real(eps[f]));
}

static json_t *common_config(const synth_options *o)
{
    json_t *c = json_object();
    json_object_set_new(c, "architectures", json_pack("[s]", architecture(o->family)));
    json_object_set_new(c, "model_type", json_string(synth_family_name(o->family)));
    json_object_set_new(c, "hidden_size", json_integer(o->hidden));
    json_object_set_new(c, "num_hidden_layers", json_integer(o->layers));
    json_object_set_new(c, "num_attention_heads", json_integer(o->heads));
    json_object_set_new(c, "num_key_value_heads", json_integer(o->kv_heads));
    json_object_set_new(c, "head_dim", json_integer(o->head_dim));
    json_object_set_new(c, "vocab_size", json_integer(o->vocab));
    json_object_set_new(c, "intermediate_size", json_integer(o->inter));
    json_object_set_new(c, "tie_word_embeddings", json_boolean(o->tie));
    json_object_set_new(c, "hidden_act", json_string("silu"));
    json_object_set_new(c, "max_position_embeddings", json_integer(max_positions(o)));
    json_object_set_new(c, "initializer_range", json_real(0.02));
    json_object_set_new(c, "attention_dropout", json_real(0.0));
    json_object_set_new(c, "use_cache", json_true());
    json_object_set_new(c, "bos_token_id", json_integer(bos_token(o)));
    json_object_set_new(c, "eos_token_id", json_integer(eos_token(o)));
    json_object_set_new(c, "torch_dtype", json_string(torch_dtype_name(o->dtype)));
    json_object_set_new(c, "transformers_version", json_string("4.57.1"));
    json_object_set_new(c, "rope_scaling", json_null());
    set_norm_and_rope(c, o->family);
    return c;
}

static json_t *layer_index_list(int count)
{
    json_t *a = json_array();
    for (int i = 0; i < count; i++)
        json_array_append_new(a, json_integer(i));
    return a;
}

static void set_mixtral(json_t *c, const synth_options *o)
{
    json_object_set_new(c, "num_local_experts", json_integer(o->experts));
    json_object_set_new(c, "num_experts_per_tok", json_integer(o->top_k));
    json_object_set_new(c, "router_aux_loss_coef", json_real(0.02));
    json_object_set_new(c, "output_router_logits", json_false());
    json_object_set_new(c, "sliding_window", json_null());
}

/* Qwen2-MoE, Qwen3-MoE and OLMoE share the num_experts spelling. */
static void set_qwen(json_t *c, const synth_options *o)
{
    json_object_set_new(c, "num_experts", json_integer(o->experts));
    json_object_set_new(c, "num_experts_per_tok", json_integer(o->top_k));
    json_object_set_new(c, "norm_topk_prob", json_boolean(o->family == FAM_QWEN3_MOE));
    json_object_set_new(c, "router_aux_loss_coef", json_real(o->family == FAM_OLMOE ? 0.01 : 0.001));
    json_object_set_new(c, "output_router_logits", json_false());
    json_object_set_new(c, "attention_bias", json_false());
    if (o->family == FAM_OLMOE) {
        json_object_set_new(c, "clip_qkv", json_null());
        return;
    }
    json_object_set_new(c, "moe_intermediate_size", json_integer(o->moe_inter));
    json_object_set_new(c, "decoder_sparse_step", json_integer(1));
    json_object_set_new(c, "mlp_only_layers", layer_index_list(o->dense_layers));
    json_object_set_new(c, "use_sliding_window", json_false());
    json_object_set_new(c, "sliding_window", json_null());
    json_object_set_new(c, "max_window_layers", json_integer(o->layers));
    if (o->family == FAM_QWEN2_MOE) {
        json_object_set_new(c, "shared_expert_intermediate_size", json_integer((json_int_t)o->shared * o->moe_inter));
        /* q/k/v carry biases, o_proj does not: that is not Llama's attention_bias */
        json_object_del(c, "attention_bias");
        json_object_set_new(c, "qkv_bias", json_true());
    }
}

static json_t *yarn_scaling(const synth_options *o)
{
    double mscale = o->family == FAM_DEEPSEEK_V2 ? 0.707 : 1.0; /* as the published configs */
    return json_pack("{s:s, s:f, s:f, s:f, s:i, s:f, s:f}", "type", "yarn", "factor", o->yarn_factor,
                     "mscale", mscale, "mscale_all_dim", mscale, "original_max_position_embeddings", 4096,
                     "beta_fast", 32.0, "beta_slow", 1.0);
}

/* Keys shared by DeepSeek-V2/V3, Kimi-K2 and GLM-4.5. */
static void set_deepseek_moe(json_t *c, const synth_options *o)
{
    bool sigmoid = synth_has_score_bias(o->family);
    json_object_set_new(c, "n_routed_experts", json_integer(o->experts));
    json_object_set_new(c, "n_shared_experts", o->shared > 0 ? json_integer(o->shared) : json_null());
    json_object_set_new(c, "num_experts_per_tok", json_integer(o->top_k));
    json_object_set_new(c, "moe_intermediate_size", json_integer(o->moe_inter));
    json_object_set_new(c, "first_k_dense_replace", json_integer(o->dense_layers));
    json_object_set_new(c, "n_group", json_integer(o->n_group));
    json_object_set_new(c, "topk_group", json_integer(o->topk_group));
    json_object_set_new(c, "routed_scaling_factor", json_real(o->routed_scale));
    json_object_set_new(c, "norm_topk_prob", json_boolean(sigmoid));
    if (o->family != FAM_DEEPSEEK_V2)
        json_object_set_new(c, "num_nextn_predict_layers", json_integer(o->mtp));
    if (o->family == FAM_GLM4_MOE) { /* sigmoid routing is implied by the architecture */
        json_object_set_new(c, "attention_bias", json_true());
        json_object_set_new(c, "use_qk_norm", json_true());
        json_object_set_new(c, "partial_rotary_factor", json_real(0.5));
        return;
    }
    json_object_set_new(c, "moe_layer_freq", json_integer(1));
    json_object_set_new(c, "topk_method", json_string(sigmoid ? "noaux_tc" : "group_limited_greedy"));
    json_object_set_new(c, "scoring_func", json_string(sigmoid ? "sigmoid" : "softmax"));
    json_object_set_new(c, "aux_loss_alpha", json_real(0.001));
    json_object_set_new(c, "seq_aux", json_true());
    json_object_set_new(c, "ep_size", json_integer(1));
    json_object_set_new(c, "attention_bias", json_false());
    json_object_set_new(c, "q_lora_rank", o->q_lora_rank > 0 ? json_integer(o->q_lora_rank) : json_null());
    json_object_set_new(c, "kv_lora_rank", json_integer(o->kv_lora_rank));
    json_object_set_new(c, "qk_nope_head_dim", json_integer(o->qk_nope_dim));
    json_object_set_new(c, "qk_rope_head_dim", json_integer(o->qk_rope_dim));
    json_object_set_new(c, "v_head_dim", json_integer(o->v_head_dim));
    json_object_set_new(c, "rope_interleave", json_true());
    json_object_set_new(c, "pretraining_tp", json_integer(1));
    if (o->yarn_factor > 0)
        json_object_set_new(c, "rope_scaling", yarn_scaling(o));
}

static json_t *layer_types(int layers)
{
    json_t *a = json_array();
    for (int i = 0; i < layers; i++)
        json_array_append_new(a, json_string(i % 2 == 0 ? "sliding_attention" : "full_attention"));
    return a;
}

static void set_gpt_oss(json_t *c, const synth_options *o)
{
    json_object_set_new(c, "num_local_experts", json_integer(o->experts));
    json_object_set_new(c, "num_experts_per_tok", json_integer(o->top_k));
    json_object_set_new(c, "experts_per_token", json_integer(o->top_k));
    json_object_set_new(c, "sliding_window", json_integer(o->sliding_window));
    json_object_set_new(c, "layer_types", layer_types(o->layers));
    json_object_set_new(c, "attention_bias", json_true());
    json_object_set_new(c, "swiglu_limit", json_real(7.0));
    json_object_set_new(c, "initial_context_length", json_integer(4096));
    json_object_set_new(c, "router_aux_loss_coef", json_real(0.9));
    json_object_set_new(c, "output_router_logits", json_false());
    json_object_set_new(c, "rope_scaling",
                        json_pack("{s:s, s:f, s:i, s:f, s:f, s:b}", "rope_type", "yarn", "factor", 32.0,
                                  "original_max_position_embeddings", 4096, "beta_fast", 32.0, "beta_slow",
                                  1.0, "truncate", 0));
    json_object_set_new(c, "max_position_embeddings", json_integer(131072));
    if (o->mxfp4)
        json_object_set_new(c, "quantization_config",
                            json_pack("{s:s, s:[s,s,s,s]}", "quant_method", "mxfp4", "modules_to_not_convert",
                                      "model.layers.*.self_attn", "model.layers.*.mlp.router",
                                      "model.embed_tokens", "lm_head"));
}

static json_t *fp8_quantization_config(void)
{
    return json_pack("{s:s, s:s, s:s, s:[i,i]}", "quant_method", "fp8", "fmt", "e4m3", "activation_scheme",
                     "dynamic", "weight_block_size", 128, 128);
}

static json_t *model_config(const synth_options *o)
{
    json_t *c = common_config(o);
    switch (o->family) {
    case FAM_MIXTRAL:
        set_mixtral(c, o);
        break;
    case FAM_QWEN2_MOE:
    case FAM_QWEN3_MOE:
    case FAM_OLMOE:
        set_qwen(c, o);
        break;
    case FAM_GPT_OSS:
        set_gpt_oss(c, o);
        break;
    default:
        set_deepseek_moe(c, o);
        break;
    }
    if (o->fp8)
        json_object_set_new(c, "quantization_config", fp8_quantization_config());
    return c;
}

/* An added_tokens_decoder entry; its id is the key, as transformers writes it. */
static json_t *added_token(const char *content)
{
    return json_pack("{s:s, s:b, s:b, s:b, s:b, s:b}", "content", content, "single_word", 0,
                     "lstrip", 0, "rstrip", 0, "normalized", 0, "special", 1);
}

static json_t *tokenizer_config(const synth_options *o)
{
    char bos[16], eos[16];
    snprintf(bos, sizeof bos, "%d", bos_token(o));
    snprintf(eos, sizeof eos, "%d", eos_token(o));
    json_t *added = json_object();
    json_object_set_new(added, bos, added_token("<|begin_of_text|>"));
    json_object_set_new(added, eos, added_token("<|end_of_text|>"));
    return json_pack("{s:s, s:s, s:s, s:n, s:i, s:b, s:o}", "tokenizer_class", "PreTrainedTokenizerFast",
                     "bos_token", "<|begin_of_text|>", "eos_token", "<|end_of_text|>", "pad_token",
                     "model_max_length", max_positions(o), "clean_up_tokenization_spaces", 0,
                     "added_tokens_decoder", added);
}

static json_t *generation_config(const synth_options *o)
{
    return json_pack("{s:b, s:i, s:i, s:b, s:s}", "_from_model_config", 1, "bos_token_id", bos_token(o),
                     "eos_token_id", eos_token(o), "do_sample", 0, "transformers_version", "4.57.1");
}

int synth_write_configs(const synth_options *o, mp_error *err)
{
    const char *files[3] = {"config.json", "generation_config.json", "tokenizer_config.json"};
    json_t *docs[3] = {model_config(o), generation_config(o), tokenizer_config(o)};
    int rc = MP_OK;
    for (int i = 0; i < 3; i++) {
        if (rc == MP_OK)
            rc = docs[i] ? write_json(o->out_dir, files[i], docs[i], err)
                         : mp_fail(err, MP_EXIT_IO, "%s: out of memory", files[i]);
        json_decref(docs[i]);
    }
    return rc;
}
