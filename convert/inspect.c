/* moepack inspect CKPT: what a checkpoint holds, as text or JSON. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "../core/cli.h"
#include "../formats/pack.h"
#include "../model/checkpoint.h"
#include "../model/model_stats.h"
#include "convert_commands.h"
#include "inspect_pack.h"

static const char *inspect_help =
    "usage: moepack inspect CKPT|PACK [--json]\n\n"
    "Reads a HuggingFace checkpoint directory (config.json + *.safetensors, sharded or not)\n"
    "and prints its family, layers, hidden size, vocabulary, experts per layer, top-k, shared\n"
    "experts, dense layers, dtype histogram, bytes, total parameters and parameters active per\n"
    "token, and the expert tensors found and missing in each layer.\n"
    "Given a pack (a directory with manifest.json), prints its tiers, encodings, bits per\n"
    "weight overall and per class (attention, experts, ...), and provenance.\n\n"
    "  --json     machine-readable output on stdout\n"
    "  --quiet    no progress output\n"
    "  --help     this text\n\n"
    "exit codes: 0 ok, 2 bad input (unreadable, unsupported, or tensors missing or mis-shaped;\n"
    "the report is still printed and the first problem is named on stderr), 3 I/O failure\n";

static const char *routing_text(const mp_routing *r, char *buf, size_t cap)
{
    const char *score = r->score == MP_SCORE_SIGMOID ? "sigmoid" : "softmax";
    if (r->order == MP_ROUTE_TOPK_THEN_SOFTMAX)
        snprintf(buf, cap, "top-%d of logits, then softmax over the %d", r->top_k, r->top_k);
    else
        snprintf(buf, cap, "%s%s, top-%d%s%s", score, r->correction_bias ? " + correction bias" : "",
                 r->top_k, r->norm_topk ? ", renormalised" : "", r->group_rule != MP_GROUPS_NONE ? ", grouped" : "");
    return buf;
}

static const char *weights_text(const mp_config *c)
{
    switch (c->weights) {
    case MP_WEIGHTS_FP8_BLOCK:
        return "fp8 e4m3, block-scaled (weight_scale_inv)";
    case MP_WEIGHTS_MXFP4:
        return "mxfp4 experts";
    default:
        return "unquantized";
    }
}

static void print_dtypes(const mp_model_stats *s)
{
    printf("dtypes      ");
    const char *sep = "";
    for (int d = 0; d < MP_DT_COUNT; d++)
        if (s->dtype_tensors[d]) {
            printf("%s%s %llu tensors %.2f MB", sep, mp_dtype_name((mp_dtype)d),
                   (unsigned long long)s->dtype_tensors[d], (double)s->dtype_bytes[d] / 1e6);
            sep = "; ";
        }
    printf("\n");
}

static void print_layers(const mp_model *m, const mp_model_stats *s)
{
    printf("\nlayer  mlp    attention  expert tensors found/expected  shared\n");
    for (int i = 0; i < m->cfg.n_layers; i++) {
        const mp_layer *L = &m->layers[i];
        const mp_layer_stats *ls = &s->layers[i];
        printf("%5d  %-5s  %-9s  ", i, L->is_moe ? "moe" : "dense", L->attn.kind == MP_ATTN_MLA ? "mla" : "gqa");
        if (L->is_moe)
            printf("%6d/%-6d %s", ls->expert_linears_found, ls->expert_linears_expected,
                   ls->expert_linears_found == ls->expert_linears_expected ? "complete" : "MISSING");
        else
            printf("%-22s", "-");
        printf("        %s%s\n", L->has_shared ? "yes" : "no", L->sliding ? "  sliding-window" : "");
    }
}

static void print_text(const mp_checkpoint *ck, const mp_model_stats *s)
{
    const mp_model *m = &ck->model;
    const mp_config *c = &m->cfg;
    char routing[160];
    printf("checkpoint  %s\n", ck->dir);
    printf("family      %s (%s, model_type %s)\n", mp_family_name(c->family), c->architecture, c->model_type);
    printf("weights     %s\n", weights_text(c));
    printf("layers      %d (%d MoE, %d dense)%s\n", c->n_layers, s->moe_layers, s->dense_layers,
           c->n_mtp ? " + MTP" : "");
    if (c->n_mtp)
        printf("mtp layers  %d\n", c->n_mtp);
    printf("hidden      %d\n", c->hidden);
    printf("vocab       %d\n", c->vocab);
    if (m->layers[0].attn.kind == MP_ATTN_MLA)
        printf("attention   MLA, %d heads, q_lora %d, kv_lora %d, qk %d+%d, v %d\n", c->n_heads, c->q_lora_rank,
               c->kv_lora_rank, c->qk_nope_dim, c->qk_rope_dim, c->v_head_dim);
    else
        printf("attention   GQA, %d heads x %d, %d kv heads%s\n", c->n_heads, c->head_dim, c->n_kv_heads,
               c->qk_norm ? ", q/k norm" : "");
    printf("experts     %d routed per MoE layer, width %d\n", c->routing.n_experts, c->moe_intermediate);
    printf("top-k       %d\n", c->routing.top_k);
    printf("routing     %s\n", routing_text(&c->routing, routing, sizeof routing));
    printf("shared      %d%s\n", c->n_shared_experts, c->n_shared_experts ? " per MoE layer" : "");
    printf("dense       %d layers\n", s->dense_layers);
    printf("tensors     %d in %d file%s, %llu bytes\n", ck->st.n_tensors, ck->st.n_files,
           ck->st.n_files == 1 ? "" : "s", (unsigned long long)s->total_bytes);
    print_dtypes(s);
    printf("parameters  %llu total (%.2f M), %llu active per token (%.2f M)", (unsigned long long)s->total_params,
           (double)s->total_params / 1e6, (unsigned long long)s->active_params, (double)s->active_params / 1e6);
    if (s->mtp_params)
        printf(", %llu in MTP layers", (unsigned long long)s->mtp_params);
    printf("\n");
    print_layers(m, s);
    if (s->unused_tensors)
        printf("\n%d tensors are not part of the model (ignored)\n", s->unused_tensors);
    printf("\nproblems    %d\n", m->n_problems);
    for (int i = 0; i < m->n_problems; i++)
        printf("  %s\n", m->problems[i]);
}

static json_t *json_config(const mp_config *c, const mp_model_stats *s)
{
    const mp_routing *r = &c->routing;
    return json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:s, s:b, s:f, s:i, s:i}",
                     "family", mp_family_name(c->family), "architecture", c->architecture, "model_type",
                     c->model_type, "weights", weights_text(c), "layers", c->n_layers, "moe_layers",
                     s->moe_layers, "dense_layers", s->dense_layers, "mtp_layers", c->n_mtp, "hidden",
                     c->hidden, "vocab", c->vocab, "heads", c->n_heads, "kv_heads", c->n_kv_heads,
                     "experts", r->n_experts, "top_k", r->top_k, "shared_experts", c->n_shared_experts,
                     "expert_width", c->moe_intermediate, "scoring", r->score == MP_SCORE_SIGMOID ? "sigmoid" : "softmax",
                     "norm_topk", r->norm_topk, "routed_scaling_factor", r->scaling, "n_group", r->n_group,
                     "topk_group", r->topk_group);
}

static json_t *json_report(const mp_checkpoint *ck, const mp_model_stats *s)
{
    const mp_model *m = &ck->model;
    json_t *root = json_config(&m->cfg, s);
    json_object_set_new(root, "checkpoint", json_string(ck->dir));
    json_object_set_new(root, "tensors", json_integer(ck->st.n_tensors));
    json_object_set_new(root, "files", json_integer(ck->st.n_files));
    json_object_set_new(root, "bytes", json_integer((json_int_t)s->total_bytes));
    json_object_set_new(root, "params_total", json_integer((json_int_t)s->total_params));
    json_object_set_new(root, "params_active", json_integer((json_int_t)s->active_params));
    json_object_set_new(root, "params_mtp", json_integer((json_int_t)s->mtp_params));
    json_object_set_new(root, "unused_tensors", json_integer(s->unused_tensors));
    json_t *dtypes = json_object();
    for (int d = 0; d < MP_DT_COUNT; d++)
        if (s->dtype_tensors[d])
            json_object_set_new(dtypes, mp_dtype_name((mp_dtype)d),
                                json_pack("{s:I, s:I}", "tensors", (json_int_t)s->dtype_tensors[d], "bytes",
                                          (json_int_t)s->dtype_bytes[d]));
    json_object_set_new(root, "dtypes", dtypes);
    json_t *layers = json_array();
    for (int i = 0; i < m->cfg.n_layers; i++) {
        const mp_layer *L = &m->layers[i];
        json_array_append_new(layers, json_pack("{s:s, s:s, s:b, s:b, s:i, s:i}", "mlp", L->is_moe ? "moe" : "dense",
                                                "attention", L->attn.kind == MP_ATTN_MLA ? "mla" : "gqa", "shared",
                                                L->has_shared, "sliding", L->sliding, "expert_tensors_found",
                                                s->layers[i].expert_linears_found, "expert_tensors_expected",
                                                s->layers[i].expert_linears_expected));
    }
    json_object_set_new(root, "layers_detail", layers);
    json_t *problems = json_array();
    for (int i = 0; i < m->n_problems; i++)
        json_array_append_new(problems, json_string(m->problems[i]));
    json_object_set_new(root, "problems", problems);
    return root;
}

static int parse_args(int argc, char **argv, mp_common_opts *opts, const char **path, mp_error *err)
{
    *path = NULL;
    for (int i = 1; i < argc; i++) {
        int got = mp_cli_common(opts, argc, argv, &i, err);
        if (got < 0)
            return err->code;
        if (got)
            continue;
        if (argv[i][0] == '-' || *path)
            return mp_fail(err, MP_EXIT_INPUT, "unexpected argument \"%s\"; see moepack inspect --help", argv[i]);
        *path = argv[i];
    }
    if (!*path && !opts->help)
        return mp_fail(err, MP_EXIT_INPUT, "missing CKPT; see moepack inspect --help");
    return MP_OK;
}

int mp_cmd_inspect(int argc, char **argv, mp_error *err)
{
    mp_common_opts opts = {0};
    const char *path;
    int rc = parse_args(argc, argv, &opts, &path, err);
    if (rc != MP_OK || opts.help) {
        fputs(inspect_help, rc == MP_OK ? stdout : stderr);
        return rc;
    }
    if (mp_is_pack(path))
        return mp_inspect_pack(path, opts.json, err);
    mp_checkpoint ck;
    if ((rc = mp_checkpoint_open(&ck, path, err)) != MP_OK)
        return rc;
    mp_model_stats stats;
    rc = mp_model_stats_compute(&stats, &ck.model, err);
    if (rc == MP_OK && opts.json) {
        json_t *report = json_report(&ck, &stats);
        json_dumpf(report, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("\n");
        json_decref(report);
    } else if (rc == MP_OK) {
        print_text(&ck, &stats);
    }
    if (rc == MP_OK && ck.model.n_problems > 0)
        rc = mp_fail(err, MP_EXIT_INPUT, "%s: %d tensor problem%s, first: %s", path, ck.model.n_problems,
                     ck.model.n_problems == 1 ? "" : "s", ck.model.problems[0]);
    mp_model_stats_free(&stats);
    mp_checkpoint_close(&ck);
    return rc;
}
