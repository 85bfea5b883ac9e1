#include "ct_config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/fileio.h"
#include "../core/json.h"

#define MAX_CONFIG_BYTES (64u << 20)

/* ---- quantization_config ---- */

/* QuantizationArgs with only the fields every compressed-tensors release knows (its
 * pydantic model forbids unknown ones). */
static json_t *args(int bits, const char *type, const char *strategy, json_t *group_size, json_t *block, bool dynamic,
                    bool sym)
{
    return json_pack("{s:i, s:s, s:b, s:o, s:s, s:o, s:b, s:n, s:o, s:{}}", "num_bits", bits, "type", type,
                     "symmetric", sym, "group_size", group_size, "strategy", strategy, "block_structure", block,
                     "dynamic", dynamic, "actorder", "observer", dynamic ? json_null() : json_string("minmax"),
                     "observer_kwargs");
}

static json_t *weight_args(const mp_encoding *e)
{
    if (e->kind == MP_ENC_W4)
        return args(4, "int", "group", json_integer(e->group), json_null(), false, e->sym);
    if (e->fp8_scale == MP_FP8_BLOCK)
        return args(8, "float", "block", json_null(), json_pack("[i,i]", MP_FP8_BLOCK_SIZE, MP_FP8_BLOCK_SIZE),
                    false, true);
    return args(8, "float", e->fp8_scale == MP_FP8_CHANNEL ? "channel" : "tensor", json_null(), json_null(), false,
                true);
}

/* fp8 weights go with fp8 activations quantized on the fly, as the FP8_BLOCK (groups of
 * 128) and FP8_DYNAMIC (per token) presets; a per-tensor weight scale with a dynamic
 * per-tensor one, the strategy vLLM's fp8 MoE pairs with it. int4 weights: 16-bit
 * activations (W4A16). */
static json_t *input_args(const mp_encoding *e)
{
    if (e->kind == MP_ENC_W4)
        return json_null();
    if (e->fp8_scale == MP_FP8_BLOCK)
        return args(8, "float", "group", json_integer(MP_FP8_BLOCK_SIZE), json_null(), true, true);
    return args(8, "float", e->fp8_scale == MP_FP8_CHANNEL ? "token" : "tensor", json_null(), json_null(), true,
                true);
}

static const char *scheme_format(const mp_encoding *e)
{
    return e->kind == MP_ENC_W4 ? "pack-quantized" : "float-quantized";
}

const char *ct_format_name(const ct_plan *plan)
{
    if (plan->n_schemes == 0)
        return "none";
    for (int s = 1; s < plan->n_schemes; s++)
        if (strcmp(scheme_format(&plan->schemes[s].enc), scheme_format(&plan->schemes[0].enc)) != 0)
            return "mixed-precision";
    return scheme_format(&plan->schemes[0].enc);
}

/* A module name as a Python regex literal. */
static void append_escaped(char *buf, size_t cap, const char *text)
{
    size_t n = strlen(buf);
    for (; *text && n + 3 < cap; text++) {
        char c = *text;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
            buf[n++] = '\\';
        buf[n++] = c;
    }
    buf[n] = '\0';
}

/* "model.layers.3.mlp.experts.7.down_proj" -> prefix length (up to ".7"), projection. */
static const char *split_expert_module(const char *module, size_t *prefix_len)
{
    const char *proj = strrchr(module, '.');
    if (!proj || proj == module)
        return NULL;
    const char *index = proj - 1;
    while (index > module && *index != '.')
        index--;
    if (index == module)
        return NULL;
    *prefix_len = (size_t)(index - module);
    return proj + 1;
}

/* Appends "|name" to an alternation unless it is there already. */
static void add_alternative(char *alts, size_t cap, const char *name)
{
    char have[320], want[96];
    snprintf(have, sizeof have, "|%s|", alts);
    snprintf(want, sizeof want, "|%s|", name);
    if (!strstr(have, want) && strlen(alts) + strlen(name) + 2 < cap)
        strcat(strcat(alts, "|"), name);
}

/* One layer's routed experts: "re:^<prefix>\.[0-9]+\.(<projections>)$" with vLLM's
 * gate_proj/up_proj/down_proj, by which its fused MoE looks the scheme up whatever the
 * checkpoint calls them, and the checkpoint's own names (Mixtral's w1/w3/w2). */
static json_t *expert_target(const ct_plan *plan, const char *layer)
{
    char prefix[512] = "", projs[256] = "gate_proj|up_proj|down_proj";
    for (int t = 0; t < plan->pack->n_tensors; t++) {
        const ct_item *it = &plan->items[t];
        size_t len;
        const char *proj;
        if (it->info.role != CT_EXPERT || strcmp(it->info.layer, layer) != 0 || !it->module ||
            !(proj = split_expert_module(it->module, &len)))
            continue;
        if (!prefix[0])
            snprintf(prefix, sizeof prefix, "%.*s", (int)len, it->module);
        add_alternative(projs, sizeof projs, proj);
    }
    char re[1024] = "re:^";
    append_escaped(re, sizeof re, prefix);
    size_t n = strlen(re);
    snprintf(re + n, sizeof re - n, "\\.[0-9]+\\.(%s)$", projs);
    return json_string(re);
}

static bool listed(json_t *list, const char *text)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        if (strcmp(json_string_value(v), text) == 0)
            return true;
    }
    return false;
}

/* With one scheme, the class target "Linear" (vLLM also matches its fused MoE by it);
 * with several, names: a regex per layer of routed experts, every other linear by its
 * module name (class targets would catch vLLM's fused layers before their parts' names). */
static json_t *targets(const ct_plan *plan, int s)
{
    json_t *list = json_array();
    if (plan->n_schemes == 1) {
        json_array_append_new(list, json_string("Linear"));
        return list;
    }
    json_t *layers_done = json_array();
    for (int t = 0; t < plan->pack->n_tensors; t++) {
        const ct_item *it = &plan->items[t];
        if (it->scheme != s)
            continue;
        if (it->info.role == CT_LINEAR)
            json_array_append_new(list, json_string(it->module));
        else if (it->info.role == CT_EXPERT && !listed(layers_done, it->info.layer)) {
            json_array_append_new(layers_done, json_string(it->info.layer));
            json_array_append_new(list, expert_target(plan, it->info.layer));
        }
    }
    json_decref(layers_done);
    return list;
}

static json_t *ignore_list(const ct_plan *plan)
{
    json_t *list = json_array();
    for (int t = 0; t < plan->pack->n_tensors; t++) {
        const ct_item *it = &plan->items[t];
        if (it->scheme == CT_UNQUANTIZED && it->module &&
            (it->info.role == CT_LINEAR || it->info.role == CT_FIXED_LINEAR))
            json_array_append_new(list, json_string(it->module));
    }
    return list;
}

json_t *ct_quantization_config(const ct_plan *plan, mp_error *err)
{
    if (plan->n_schemes == 0)
        return NULL;
    bool mixed = strcmp(ct_format_name(plan), "mixed-precision") == 0;
    json_t *groups = json_object();
    for (int s = 0; s < plan->n_schemes; s++) {
        const mp_encoding *e = &plan->schemes[s].enc;
        json_t *g = json_pack("{s:o, s:o, s:n, s:o}", "targets", targets(plan, s), "weights", weight_args(e),
                              "output_activations", "input_activations", input_args(e));
        if (mixed) /* a per-group format only where it is needed: older releases do not know the key */
            json_object_set_new(g, "format", json_string(scheme_format(e)));
        char name[24];
        snprintf(name, sizeof name, "group_%d", s);
        json_object_set_new(groups, name, g);
    }
    json_t *qc = json_pack("{s:o, s:s, s:n, s:o, s:n, s:s, s:s}", "config_groups", groups, "format",
                           ct_format_name(plan), "global_compression_ratio", "ignore", ignore_list(plan),
                           "kv_cache_scheme", "quant_method", "compressed-tensors", "quantization_status",
                           "compressed");
    if (!qc)
        mp_fail(err, MP_EXIT_IO, "%s: out of memory", plan->pack->dir);
    return qc;
}

/* ---- files ---- */

static int write_file(const char *dir, const char *name, const void *data, size_t len, mp_error *err)
{
    char *path = mp_path_join(dir, name);
    int fd = path ? open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644) : -1;
    int rc = fd < 0 ? mp_fail_errno(err, "%s: create", path ? path : dir) : mp_write_full(fd, data, len, path, err);
    if (fd >= 0 && close(fd) != 0 && rc == MP_OK)
        rc = mp_fail_errno(err, "%s: close", path);
    free(path);
    return rc;
}

static int write_json(const char *dir, const char *name, json_t *root, size_t flags, mp_error *err)
{
    char *text = json_dumps(root, JSON_INDENT(2) | flags);
    if (!text)
        return mp_fail(err, MP_EXIT_IO, "%s/%s: cannot serialise", dir, name);
    size_t len = strlen(text);
    text[len] = '\n'; /* json_dumps's terminator becomes the final newline */
    int rc = write_file(dir, name, text, len + 1, err);
    free(text);
    return rc;
}

int ct_write_config(const ct_plan *plan, json_t *qc, const char *dir, mp_error *err)
{
    char *path = mp_path_join(plan->pack->dir, "config.json");
    json_t *config = NULL;
    int rc = path ? mp_json_load_file_tolerant(path, MAX_CONFIG_BYTES, &config, err)
                  : mp_fail(err, MP_EXIT_IO, "out of memory");
    free(path);
    if (rc == MP_OK && !json_is_object(config))
        rc = mp_fail(err, MP_EXIT_INPUT, "%s/config.json: expected a JSON object", plan->pack->dir);
    if (rc == MP_OK) {
        json_object_del(config, "quantization_config"); /* the source checkpoint's (FP8, MXFP4) */
        if (qc)
            json_object_set(config, "quantization_config", qc);
        rc = write_json(dir, "config.json", config, JSON_PRESERVE_ORDER, err);
    }
    json_decref(config);
    json_decref(qc);
    return rc;
}

int ct_write_index(const ct_plan *plan, const char *dir, mp_error *err)
{
    json_t *map = json_object();
    for (int i = 0; i < plan->n_out; i++) {
        char shard[64];
        ct_shard_name(plan->out[i].shard, plan->n_shards, shard, sizeof shard);
        json_object_set_new(map, plan->out[i].name, json_string(shard));
    }
    json_t *index = json_pack("{s:{s:I}, s:o}", "metadata", "total_size", (json_int_t)plan->total_bytes,
                              "weight_map", map);
    int rc = index ? write_json(dir, "model.safetensors.index.json", index, JSON_SORT_KEYS, err)
                   : mp_fail(err, MP_EXIT_IO, "%s: out of memory", dir);
    json_decref(index);
    return rc;
}

int ct_copy_side_files(const ct_plan *plan, const char *dir, mp_error *err)
{
    static const char *const names[] = {"generation_config.json", "tokenizer.json", "tokenizer_config.json",
                                        "special_tokens_map.json", "tokenizer.model", "chat_template.jinja"};
    int rc = MP_OK;
    for (size_t i = 0; i < sizeof names / sizeof *names && rc == MP_OK; i++) {
        char *src = mp_path_join(plan->pack->dir, names[i]);
        struct stat st;
        if (src && stat(src, &st) == 0 && S_ISREG(st.st_mode)) {
            char *text = NULL;
            size_t len = 0;
            rc = mp_read_small_file(src, 1u << 30, &text, &len, err);
            if (rc == MP_OK)
                rc = write_file(dir, names[i], text, len, err);
            free(text);
        }
        free(src);
    }
    return rc;
}
