/* moepack prune PACK|CKPT -o OUT.mpk --calib FILE (--keep F | --keep-per-layer N) --method M:
 * a checkpoint is first converted into a scratch pack (prune_input.c); then prune
 * scores every routed expert on calibration text (saliency.c), keeps the same number
 * of the most salient in every MoE layer (prune_plan.c), optionally folds the others
 * into their most similar kept expert (merge.c), writes the pack without the others
 * (prune_write.c), and optionally refits the routers to the original's logits
 * (router_fit.c: the pruned pack is written under OUT.unrefit-PID, run beside the
 * original, and copied to OUT with its routers replaced). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/cleanup.h"
#include "../core/cli.h"
#include "../core/fileio.h"
#include "../core/outdir.h"
#include "../core/version.h"
#include "../model/model.h"
#include "../model/pack_open.h"
#include "../quant/policy.h"
#include "merge.h"
#include "prune_commands.h"
#include "prune_input.h"
#include "prune_plan.h"
#include "prune_write.h"
#include "router_fit.h"
#include "saliency.h"

static const char *prune_help =
    "usage: moepack prune PACK|CKPT -o OUT.mpk --calib FILE (--keep FRACTION | --keep-per-layer N)\n"
    "                     [--method freq|reap|ean] [options]\n\n"
    "Drops (or with --merge folds) the least salient routed experts of every MoE layer and refits\n"
    "the routers to the original model's logits. Saliency is measured by running\n"
    "the pack over calibration text, one layer at a time:\n"
    "  freq   routed (token, top-k slot) selections of the expert\n"
    "  reap   mean over the expert's tokens of gate weight x ||expert output||_2 (REAP,\n"
    "         arXiv 2510.13999; the gate weight the model applies)\n"
    "  ean    sum over the expert's tokens of ||expert output||_2 (expert activation norm)\n"
    "Every layer keeps the same number of experts (renumbered in their original order); the\n"
    "routers, router biases and correction biases are cut to them exactly, kept expert records\n"
    "are copied byte for byte, config.json and the manifest get the new expert count, and the\n"
    "manifest records the method, the text and per layer the kept and dropped ids and every\n"
    "expert's saliency. Grouped routers (n_group) lose the same number in every group.\n"
    "MTP layers are not run: they keep their lowest-numbered experts (a warning says so).\n"
    "A HuggingFace checkpoint directory is first converted by moepack convert into a scratch pack\n"
    "beside OUT (removed when done, or on an interrupt): saliency, merge and refit then see exactly\n"
    "the pack `moepack convert CKPT` with the same encoding options makes (default its w4a16).\n\n"
    "  -o, --output OUT.mpk   the pack to write (under a temporary name, renamed when complete)\n"
    "  --calib FILE           calibration text, tokenized with the pack's tokenizer\n"
    "  --tokens FILE          or its token ids (space-separated), instead of --calib\n"
    "  --keep FRACTION        keep round(FRACTION x experts) experts per layer, 0 < FRACTION <= 1\n"
    "  --keep-per-layer N     keep N experts per layer\n"
    "  --method M             freq | reap | ean (default reap)\n"
    "  --merge                fold each dropped expert into the kept expert of its group whose mean\n"
    "                         output on the calibration tokens is most similar (cosine; HC-SMoE),\n"
    "                         as the selection-frequency-weighted average of their decoded weights,\n"
    "                         each folded expert's neurons first permuted to best match the kept\n"
    "                         expert's (M-SMoE weight matching; intermediate sizes up to 4096),\n"
    "                         re-encoded in the same encoding (w4 and grids: MSE grid search)\n"
    "  --refit-router         refit the kept router rows of every MoE layer to the original model's\n"
    "                         logits on the calibration tokens (ridge least squares on the pruned model's\n"
    "                         own router inputs; router bias and correction bias kept exact). On by\n"
    "                         default: it lowered REAP's KLD on moby-mixtral at 75% and 50% kept\n"
    "                         (docs/prune.md); it costs about two more calibration passes\n"
    "  --no-refit-router      keep the router rows exactly as cut\n"
    "  --similarity-tokens N  measure the merge similarity on at most N tokens (default 8192)\n"
    "  --ctx N                tokens per calibration chunk (default 256)\n"
    "  --calib-tokens N       at most N calibration tokens (default 131072)\n"
    "  --force                replace OUT.mpk if it exists\n"
    "Encoding of a checkpoint input (convert's options; refused for a pack, which is already encoded):\n"
    "  --scheme S             bf16 | fp8 | w4a16 | mixed | a llama.cpp grid (default w4a16)\n"
    "  --group G, --sym, --encode REGEX=ENC, --cold-codec C, --zstd-level N   as moepack convert\n"
    "  --quant-method M       convert's --method: rtn (default), mse, hqq, awq or gptq; awq and gptq\n"
    "                         calibrate on the --calib text with convert's defaults\n"
    "  --allow-nonfinite      convert the checkpoint's NaN or infinite weights as they are (default:\n"
    "                         exit 2 naming the tensor and its first bad flat index)\n"
    "  --threads N            worker threads (default: all cores)\n"
    "  --json                 the summary as JSON on stdout\n"
    "  --quiet                no progress bar\n\n"
    "exit codes: 0 ok, 2 bad input or usage, 3 I/O failure\n";

typedef struct {
    mp_common_opts common;
    const char *in, *out, *calib, *tokens, *keep_text;
    const char *pack; /* what is pruned: in, or the scratch pack converted from it */
    mp_convert_args convert;
    const char *quant_method;
    double keep_fraction;
    int keep_per_layer, ctx, calib_tokens, similarity_tokens;
    mp_saliency_method method;
    bool force, merge, refit;
} prune_opts;

/* convert's encoding options, kept in its spelling for the child convert. */
static int convert_value(prune_opts *o, const char *flag, const char *v, mp_error *err)
{
    mp_scheme scheme;
    if (strcmp(flag, "--scheme") == 0 && mp_scheme_parse(v, &scheme) != 0)
        return mp_fail(err, MP_EXIT_INPUT, "--scheme \"%s\": expected bf16, fp8, w4a16, mixed or a llama.cpp grid "
                       "(see moepack convert --help)", v);
    bool method = strcmp(flag, "--quant-method") == 0;
    if (method)
        o->quant_method = v;
    if (!o->convert.first)
        o->convert.first = flag;
    return mp_convert_args_add(&o->convert, method ? "--method" : flag, v, err);
}

static bool is_convert_flag(const char *flag)
{
    static const char *const flags[] = {"--scheme", "--group", "--encode", "--cold-codec", "--zstd-level",
                                        "--quant-method"};
    for (size_t f = 0; f < sizeof flags / sizeof flags[0]; f++)
        if (strcmp(flag, flags[f]) == 0)
            return true;
    return false;
}

static int parse_value(prune_opts *o, const char *flag, const char *v, mp_error *err)
{
    if (is_convert_flag(flag))
        return convert_value(o, flag, v, err);
    if (strcmp(flag, "--output") == 0 || strcmp(flag, "-o") == 0)
        o->out = v;
    else if (strcmp(flag, "--calib") == 0)
        o->calib = v;
    else if (strcmp(flag, "--tokens") == 0)
        o->tokens = v;
    else if (strcmp(flag, "--method") == 0 && mp_saliency_method_parse(v, &o->method) != 0)
        return mp_fail(err, MP_EXIT_INPUT, "--method \"%s\": expected freq, reap or ean", v);
    else if (strcmp(flag, "--keep") == 0) {
        char *end;
        o->keep_text = v;
        o->keep_fraction = strtod(v, &end);
        if (end == v || *end || !(o->keep_fraction > 0 && o->keep_fraction <= 1))
            return mp_fail(err, MP_EXIT_INPUT, "--keep \"%s\": expected a fraction in (0, 1]", v);
    } else if (strcmp(flag, "--keep-per-layer") == 0)
        return mp_cli_int("--keep-per-layer", v, 1, 1 << 20, &o->keep_per_layer, err);
    else if (strcmp(flag, "--ctx") == 0)
        return mp_cli_int("--ctx", v, 2, 1 << 20, &o->ctx, err);
    else if (strcmp(flag, "--calib-tokens") == 0)
        return mp_cli_int("--calib-tokens", v, 1, 1 << 30, &o->calib_tokens, err);
    else if (strcmp(flag, "--similarity-tokens") == 0)
        return mp_cli_int("--similarity-tokens", v, 1, 1 << 30, &o->similarity_tokens, err);
    return MP_OK;
}

static int parse_args(prune_opts *o, int argc, char **argv, mp_error *err)
{
    static const char *const flags[] = {"-o", "--output", "--calib", "--method", "--keep", "--keep-per-layer",
                                        "--ctx", "--calib-tokens", "--tokens", "--similarity-tokens", "--scheme",
                                        "--group", "--encode", "--cold-codec", "--zstd-level", "--quant-method"};
    memset(o, 0, sizeof *o);
    o->method = MP_SALIENCY_REAP;
    o->ctx = 256;
    o->calib_tokens = 131072;
    o->similarity_tokens = 8192;
    o->refit = true; /* measured: lowers KLD at 75 % and 50 % kept (docs/prune.md) */
    for (int i = 1; i < argc; i++) {
        int got = mp_cli_common(&o->common, argc, argv, &i, err);
        for (size_t f = 0; got == 0 && f < sizeof flags / sizeof flags[0]; f++) {
            const char *v;
            got = mp_cli_value(flags[f], argc, argv, &i, &v, err);
            if (got > 0 && parse_value(o, flags[f], v, err) != MP_OK)
                return err->code;
        }
        if (got < 0)
            return err->code;
        if (got > 0)
            continue;
        if (strcmp(argv[i], "--force") == 0)
            o->force = true;
        else if (strcmp(argv[i], "--sym") == 0 || strcmp(argv[i], "--allow-nonfinite") == 0) {
            o->convert.first = o->convert.first ? o->convert.first : argv[i];
            if (mp_convert_args_add(&o->convert, argv[i], NULL, err) != MP_OK)
                return err->code;
        } else if (strcmp(argv[i], "--merge") == 0)
            o->merge = true;
        else if (strcmp(argv[i], "--refit-router") == 0)
            o->refit = true;
        else if (strcmp(argv[i], "--no-refit-router") == 0)
            o->refit = false;
        else if (argv[i][0] == '-')
            return mp_fail(err, MP_EXIT_INPUT, "unknown option \"%s\"; see moepack prune --help", argv[i]);
        else if (o->in)
            return mp_fail(err, MP_EXIT_INPUT, "unexpected argument \"%s\"; see moepack prune --help", argv[i]);
        else
            o->in = argv[i];
    }
    if (o->common.help)
        return MP_OK;
    if (!o->in || !o->out || !o->calib == !o->tokens)
        return mp_fail(err, MP_EXIT_INPUT, "%s; see moepack prune --help",
                       !o->in ? "missing PACK or CKPT" : !o->out ? "missing -o OUT.mpk" : "give one of --calib FILE and --tokens FILE");
    if (!o->keep_text == !o->keep_per_layer)
        return mp_fail(err, MP_EXIT_INPUT, "give exactly one of --keep FRACTION and --keep-per-layer N");
    struct stat st;
    const char *calib = o->calib ? o->calib : o->tokens;
    if (stat(calib, &st) != 0 || !S_ISREG(st.st_mode))
        return mp_fail(err, MP_EXIT_INPUT, "%s %s: no such file", o->calib ? "--calib" : "--tokens", calib);
    if (stat(o->out, &st) == 0 && !o->force)
        return mp_fail(err, MP_EXIT_INPUT, "%s exists; --force replaces it", o->out);
    if (o->quant_method && (strcmp(o->quant_method, "awq") == 0 || strcmp(o->quant_method, "gptq") == 0)) {
        if (!o->calib)
            return mp_fail(err, MP_EXIT_INPUT, "--quant-method %s calibrates on text: give --calib FILE, not --tokens",
                           o->quant_method);
        return mp_convert_args_add(&o->convert, "--calib", o->calib, err);
    }
    return MP_OK;
}

static int open_input(const prune_opts *o, mp_pack *p, mp_config *cfg, mp_error *err)
{
    int rc = mp_model_pack_open(p, o->pack, false, err);
    if (rc != MP_OK)
        return rc;
    char *path = mp_path_join(o->pack, "config.json");
    rc = path ? mp_config_read(cfg, path, err) : mp_fail(err, MP_EXIT_IO, "out of memory");
    free(path);
    if (rc == MP_OK && cfg->routing.n_experts <= 0)
        rc = mp_fail(err, MP_EXIT_INPUT, "%s: the model has no routed experts", o->in);
    if (rc != MP_OK)
        mp_pack_close(p);
    return rc;
}

/* The MoE layers: decoder layers the saliency pass scored, then MTP layers with a router. */
static int build_plan(const prune_opts *o, const mp_pack *p, const mp_config *cfg, const mp_saliency *s, int keep,
                      mp_prune_plan *plan, mp_error *err)
{
    int n = 0, mtp_routed = 0;
    for (int li = 0; li < s->n_layers; li++)
        n += s->moe[li];
    for (int j = 0; j < cfg->n_mtp; j++) {
        char router[48];
        snprintf(router, sizeof router, "mtp.%d.router", j);
        mtp_routed += mp_pack_find(p, router) >= 0;
    }
    int rc = mp_prune_plan_init(plan, &cfg->routing, keep, n + mtp_routed, err);
    double *scores = rc == MP_OK ? malloc((size_t)s->n_experts * sizeof *scores) : NULL;
    if (rc == MP_OK && !scores)
        rc = mp_fail(err, MP_EXIT_IO, "out of memory");
    for (int li = 0, i = 0; rc == MP_OK && li < s->n_layers; li++) {
        if (!s->moe[li])
            continue;
        for (int e = 0; e < s->n_experts; e++)
            scores[e] = mp_saliency_value(s, o->method, li, e);
        mp_prune_plan_layer(plan, i++, li, scores);
    }
    for (int j = 0, i = n; rc == MP_OK && j < cfg->n_mtp; j++) {
        char router[48];
        snprintf(router, sizeof router, "mtp.%d.router", j);
        if (mp_pack_find(p, router) >= 0)
            mp_prune_plan_layer(plan, i++, cfg->n_layers + j, NULL);
    }
    if (rc == MP_OK && mtp_routed) /* even with --quiet: the choice is not the method's */
        fprintf(stderr, "moepack prune: warning: %d MTP layer%s %s not run on the calibration text: %s experts kept "
                "by lowest id, not by saliency\n", mtp_routed, mtp_routed == 1 ? "" : "s", mtp_routed == 1 ? "is" : "are",
                mtp_routed == 1 ? "its" : "their");
    free(scores);
    return rc;
}

/* ---- provenance: what was pruned, from what, and why ---- */

static json_t *ids_where(const mp_prune_layer *L, int n, bool kept)
{
    json_t *a = json_array();
    for (int e = 0; e < n; e++)
        if ((L->new_id[e] >= 0) == kept)
            json_array_append_new(a, json_integer(e));
    return a;
}

/* Per merged expert: where it went, how similar, with what weight. */
static json_t *merged_json(const mp_prune_layer *L, const mp_saliency *s, int n)
{
    json_t *a = json_array();
    const int64_t *count = s->count + (int64_t)L->layer * s->n_experts;
    for (int e = 0; e < n; e++) {
        if (L->into[e] < 0)
            continue;
        int64_t total = 0;
        for (int m = 0; m < n; m++)
            total += m == L->into[e] || L->into[m] == L->into[e] ? count[m] : 0;
        json_array_append_new(a, json_pack("{s:i, s:i, s:f, s:f}", "expert", e, "into", L->into[e], "similarity",
                                           L->into_similarity[e], "weight",
                                           total > 0 ? (double)count[e] / (double)total : 0.0));
    }
    return a;
}

static json_t *layer_json(const mp_prune_layer *L, const mp_saliency *s, int n)
{
    json_t *sal = json_array(), *sel = json_array(), *never = json_array();
    for (int e = 0; e < n; e++) {
        json_array_append_new(sal, json_real(L->saliency[e]));
        if (L->scored) {
            int64_t c = s->count[(int64_t)L->layer * s->n_experts + e];
            json_array_append_new(sel, json_integer(c));
            if (c == 0)
                json_array_append_new(never, json_integer(e));
        }
    }
    json_t *o = json_pack("{s:i, s:b, s:o, s:o, s:o}", "layer", L->layer, "scored", L->scored, "kept",
                          ids_where(L, n, true), "dropped", ids_where(L, n, false), "saliency", sal);
    if (L->scored && s->similarity)
        json_object_set_new(o, "merged", merged_json(L, s, n));
    if (L->scored) {
        json_object_set_new(o, "selections", sel);
        json_object_set_new(o, "never_routed", never);
    } else {
        json_decref(sel);
        json_decref(never);
        json_object_set_new(o, "why", json_string("MTP layer, not run on the calibration text: lowest ids kept"));
    }
    return o;
}

static void command_line(const prune_opts *o, char *buf, size_t cap)
{
    char keep[64];
    if (o->keep_text)
        snprintf(keep, sizeof keep, "--keep %s", o->keep_text);
    else
        snprintf(keep, sizeof keep, "--keep-per-layer %d", o->keep_per_layer);
    int used = snprintf(buf, cap, "moepack prune %s %s %s %s --method %s --ctx %d --calib-tokens %d%s%s", o->in,
                        o->calib ? "--calib" : "--tokens", o->calib ? o->calib : o->tokens, keep,
                        mp_saliency_method_name(o->method), o->ctx, o->calib_tokens, o->merge ? " --merge" : "",
                        o->refit ? " --refit-router" : " --no-refit-router");
    /* the encoding options, minus the --calib a calibrated --quant-method adds */
    for (int i = 0; i < o->convert.argc && used > 0 && (size_t)used < cap; i++) {
        if (strcmp(o->convert.argv[i], "--calib") == 0) {
            i++;
            continue;
        }
        const char *word = strcmp(o->convert.argv[i], "--method") == 0 ? "--quant-method" : o->convert.argv[i];
        used += snprintf(buf + used, cap - (size_t)used, " %s", word);
    }
}

static json_t *prune_json(const prune_opts *o, const mp_prune_plan *plan, const mp_saliency *s)
{
    char xxh[17];
    snprintf(xxh, sizeof xxh, "%016llx", (unsigned long long)s->text_xxh3);
    json_t *calib = json_pack("{s:s, s:s, s:I, s:s, s:I, s:I, s:i}", "kind", o->calib ? "text" : "tokens", "path",
                              o->calib ? o->calib : o->tokens, "bytes", (json_int_t)s->text_bytes,
                              "xxh3", xxh, "tokens", (json_int_t)s->tokens, "chunks", (json_int_t)s->chunks, "ctx",
                              o->ctx);
    json_t *layers = json_array();
    for (int i = 0; i < plan->n_layers; i++)
        json_array_append_new(layers, layer_json(&plan->layers[i], s, plan->n_experts));
    json_t *out = json_pack("{s:s, s:s, s:o, s:i, s:i, s:i, s:s, s:o}", "action", o->merge ? "merge" : "drop",
                            "method", mp_saliency_method_name(o->method), "calibration", calib, "experts_before",
                            plan->n_experts, "experts_after", plan->keep, "groups", plan->n_group, "rule",
                            "per layer (and per group), the experts of lowest saliency are dropped; ties drop the "
                            "higher id", "layers", layers);
    if (o->merge)
        json_object_set_new(out, "merge", json_pack("{s:s, s:I, s:I, s:s, s:s}", "similarity",
            "cosine of the experts' mean outputs f_e(x) (down bias included) over every stride-th calibration token, "
            "all experts run on each (HC-SMoE's output feature)", "similarity_tokens", (json_int_t)s->similarity_tokens,
            "stride", (json_int_t)s->similarity_stride, "assignment",
            "each dropped expert into the most similar kept expert of its group (ties to the lower id)", "weights",
            "frequency-weighted average (selections on the calibration text) of the decoded f32 weights and biases, "
            "re-encoded in the kept tensor's encoding (w4 and grids: MSE grid search); experts never selected "
            "weigh 0; kept experts receiving nothing copied byte for byte"));
    return out;
}

static json_t *provenance_json(const prune_opts *o, const mp_pack *p, const mp_prune_plan *plan, const mp_saliency *s)
{
    char command[4096];
    command_line(o, command, sizeof command);
    json_t *input = json_object_get(p->manifest, "provenance");
    json_t *prov = json_is_object(input) ? json_deep_copy(input) : json_object();
    json_object_set_new(prov, "tool", json_string("moepack " MP_VERSION));
    json_object_set_new(prov, "command", json_string(command));
    json_object_set_new(prov, "source", json_string(o->in));
    json_object_set_new(prov, "input", json_is_object(input) ? json_deep_copy(input) : json_null());
    json_object_set_new(prov, "prune", prune_json(o, plan, s));
    return prov;
}

static json_t *refit_json(const mp_refit_result *r)
{
    json_t *layers = json_array();
    for (int i = 0; i < r->n_layers; i++)
        json_array_append_new(layers, json_pack("{s:i, s:f, s:f, s:f}", "layer", r->layers[i].layer, "lambda",
                                                r->layers[i].lambda, "residual_before", r->layers[i].before,
                                                "residual_after", r->layers[i].after));
    return json_pack("{s:s, s:s, s:I, s:o}", "objective",
                     "per MoE layer W = argmin ||X W^T - L||^2 + lambda ||W - W0||^2, X the pruned model's router "
                     "inputs, L the original model's logits of the kept experts (router bias and correction bias "
                     "kept exact), W0 the rows as cut; residuals relative to ||L||^2, after = the stored rows",
                     "lambda", "1e-3 * trace(X^T X) / hidden", "tokens", (json_int_t)r->tokens, "layers", layers);
}

/* ---- summary ---- */

static int never_routed(const mp_saliency *s)
{
    int n = 0;
    for (int li = 0; li < s->n_layers; li++)
        for (int e = 0; li < s->n_layers && s->moe[li] && e < s->n_experts; e++)
            n += s->count[(int64_t)li * s->n_experts + e] == 0;
    return n;
}

static void print_summary(const prune_opts *o, const mp_prune_plan *plan, const mp_saliency *s,
                          const mp_prune_written *w, const mp_merge_stats *ms, const mp_refit_result *fit)
{
    printf("pruned      %s -> %s (method %s, %d of %d experts kept per layer%s)\n", o->in, o->out,
           mp_saliency_method_name(o->method), plan->keep, plan->n_experts, plan->n_group > 1 ? ", per group" : "");
    printf("saliency    %lld tokens in %lld chunks of %d from %s, %.1f s\n", (long long)s->tokens,
           (long long)s->chunks, o->ctx, o->calib ? o->calib : o->tokens, s->seconds);
    printf("experts     %d kept, %d dropped over %d MoE layers; %d never routed on the text\n", w->experts_kept,
           w->experts_dropped, plan->n_layers, never_routed(s));
    printf("routing     %d router tensors cut to the kept experts\n", w->sliced);
    printf("bytes       %llu -> %llu (%.1f%%)\n", (unsigned long long)w->bytes_in, (unsigned long long)w->bytes_out,
           w->bytes_in ? 100.0 * (double)w->bytes_out / (double)w->bytes_in : 0.0);
    if (o->merge)
        printf("merged      %d dropped experts folded into %d kept ones (%d tensors re-encoded); similarity on %lld "
               "tokens\n", ms->experts_merged, ms->experts_changed, ms->tensors, (long long)s->similarity_tokens);
    for (int i = 0; o->refit && i < fit->n_layers; i++)
        printf("refit %-5d router residual %.4g -> %.4g (relative, lambda %.3g)\n", fit->layers[i].layer,
               fit->layers[i].before, fit->layers[i].after, fit->layers[i].lambda);
    for (int i = 0; i < plan->n_layers && plan->n_layers <= 64; i++) {
        const mp_prune_layer *L = &plan->layers[i];
        if (L->scored)
            printf("layer %-4d dropped", L->layer);
        else
            printf("mtp %-6d dropped", L->layer - s->n_layers);
        for (int e = 0; e < plan->n_experts; e++)
            if (L->new_id[e] < 0 && L->into[e] >= 0)
                printf(" %d->%d", e, L->into[e]);
            else if (L->new_id[e] < 0)
                printf(" %d", e);
        printf("\n");
    }
}

static void print_json(const prune_opts *o, const mp_prune_plan *plan, const mp_saliency *s, const mp_prune_written *w,
                       const mp_merge_stats *ms, const mp_refit_result *fit)
{
    json_t *root = json_pack("{s:s, s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:I, s:I, s:I, s:f}", "input", o->in, "output",
                             o->out, "method", mp_saliency_method_name(o->method), "experts_before", plan->n_experts,
                             "experts_after", plan->keep, "experts_kept", w->experts_kept, "experts_dropped",
                             w->experts_dropped, "never_routed", never_routed(s), "tokens", (json_int_t)s->tokens,
                             "bytes_in", (json_int_t)w->bytes_in, "bytes_out", (json_int_t)w->bytes_out, "seconds",
                             s->seconds);
    json_t *layers = json_array();
    for (int i = 0; i < plan->n_layers; i++)
        json_array_append_new(layers, layer_json(&plan->layers[i], s, plan->n_experts));
    json_object_set_new(root, "layers", layers);
    if (o->merge)
        json_object_set_new(root, "merge", json_pack("{s:i, s:i, s:i, s:i, s:I}", "experts_merged", ms->experts_merged,
                                                     "experts_aligned", ms->experts_aligned,
                                                     "experts_changed", ms->experts_changed, "tensors", ms->tensors,
                                                     "similarity_tokens", (json_int_t)s->similarity_tokens));
    if (o->refit)
        json_object_set_new(root, "router_refit", refit_json(fit));
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (text)
        puts(text);
    free(text);
    json_decref(root);
}

/* Pruned (and merged) pack under a temporary name, routers refit against the
 * original, then OUT = that pack with the refit routers. */
static int write_refit(const prune_opts *o, const mp_pack *p, int n_layers, const mp_prune_plan *plan,
                       const mp_stage *merged, json_t *prov, mp_refit_result *fit, mp_prune_written *written, mp_error *err)
{
    char tmp[4096], stage_path[4200];
    snprintf(tmp, sizeof tmp, "%s.unrefit-%d", o->out, (int)getpid());
    snprintf(stage_path, sizeof stage_path, "%s.routers", tmp);
    mp_prune_write_options wo = {.out = tmp, .force = true, .quiet = o->common.quiet, .n_layers = n_layers,
                                 .provenance = json_deep_copy(prov), .replace = merged};
    mp_cleanup_scratch(tmp);
    int rc = mp_prune_write(p, plan, &wo, written, err);
    mp_pack pruned;
    mp_stage routers = {.fd = -1};
    if (rc == MP_OK && (rc = mp_model_pack_open(&pruned, tmp, false, err)) != MP_OK)
        mp_remove_tree(tmp);
    if (rc != MP_OK) {
        mp_cleanup_scratch(NULL);
        json_decref(prov);
        return rc;
    }
    rc = mp_stage_open(&routers, stage_path, err);
    mp_refit_options ro = {.original = o->pack, .pruned = tmp, .text_path = o->calib, .tokens_path = o->tokens,
                           .ctx = o->ctx, .max_tokens = o->calib_tokens, .quiet = o->common.quiet};
    if (rc == MP_OK)
        rc = mp_refit_routers(&ro, plan, &pruned, &routers, fit, err);
    mp_prune_plan same = {.n_experts = plan->keep, .keep = plan->keep, .n_group = plan->n_group};
    json_t *prune = json_object_get(prov, "prune");
    if (rc == MP_OK)
        json_object_set_new(prune, "router_refit", refit_json(fit));
    mp_prune_written second;
    mp_prune_write_options fo = {.out = o->out, .force = o->force, .quiet = o->common.quiet, .n_layers = n_layers,
                                 .provenance = prov, .replace = &routers};
    if (rc == MP_OK)
        rc = mp_prune_write(&pruned, &same, &fo, &second, err);
    else
        json_decref(prov);
    written->bytes_out = rc == MP_OK ? second.bytes_out : written->bytes_out;
    mp_stage_close(&routers);
    mp_pack_close(&pruned);
    mp_remove_tree(tmp);
    mp_cleanup_scratch(NULL);
    return rc;
}

static int prune_pack(const prune_opts *o, mp_error *err)
{
    mp_pack p;
    mp_config cfg;
    int rc = open_input(o, &p, &cfg, err);
    if (rc != MP_OK)
        return rc;
    int keep = 0;
    mp_saliency s = {0};
    mp_prune_plan plan = {0};
    mp_prune_written written = {0};
    mp_merge_stats ms = {0};
    mp_refit_result fit = {0};
    mp_stage merged = {.fd = -1};
    char stage_path[4096];
    snprintf(stage_path, sizeof stage_path, "%s.merge-%d", o->out, (int)getpid());
    rc = mp_prune_keep_count(&cfg.routing, o->keep_fraction, o->keep_per_layer, &keep, err);
    mp_saliency_options so = {.text_path = o->calib, .tokens_path = o->tokens, .ctx = o->ctx,
                              .max_tokens = o->calib_tokens, .quiet = o->common.quiet, .similarity = o->merge,
                              .similarity_tokens = o->similarity_tokens};
    if (rc == MP_OK)
        rc = mp_saliency_compute(o->pack, &so, &s, err);
    if (rc == MP_OK)
        rc = build_plan(o, &p, &cfg, &s, keep, &plan, err);
    for (int i = 0; rc == MP_OK && o->merge && i < plan.n_layers; i++)
        if (plan.layers[i].scored)
            mp_prune_plan_merge(&plan, i, mp_saliency_similarity(&s, plan.layers[i].layer));
    if (rc == MP_OK && o->merge)
        rc = mp_stage_open(&merged, stage_path, err);
    if (rc == MP_OK && o->merge)
        rc = mp_merge_experts(&p, &plan, &s, &merged, &ms, err);
    if (rc == MP_OK && o->refit) {
        rc = write_refit(o, &p, cfg.n_layers, &plan, o->merge ? &merged : NULL, provenance_json(o, &p, &plan, &s), &fit, &written,
                         err);
    } else if (rc == MP_OK) {
        mp_prune_write_options wo = {.out = o->out, .force = o->force, .quiet = o->common.quiet,
                                     .n_layers = cfg.n_layers, .provenance = provenance_json(o, &p, &plan, &s),
                                     .replace = o->merge ? &merged : NULL};
        rc = mp_prune_write(&p, &plan, &wo, &written, err);
    }
    if (merged.fd >= 0)
        mp_stage_close(&merged);
    if (rc == MP_OK && o->common.json)
        print_json(o, &plan, &s, &written, &ms, &fit);
    else if (rc == MP_OK && !o->common.quiet)
        print_summary(o, &plan, &s, &written, &ms, &fit);
    mp_refit_result_free(&fit);
    mp_prune_plan_free(&plan);
    mp_saliency_free(&s);
    mp_config_free(&cfg);
    mp_pack_close(&p);
    return rc;
}

/* A checkpoint: converted into OUT.ckpt-PID, pruned as a pack, the scratch removed. */
static int prune_checkpoint(prune_opts *o, mp_error *err)
{
    char scratch[4096];
    snprintf(scratch, sizeof scratch, "%s.ckpt-%d", o->out, (int)getpid());
    mp_remove_tree(scratch);
    mp_cleanup_scratch(scratch);
    int rc = mp_prune_input_convert(o->in, scratch, &o->convert, o->common.threads, o->common.quiet, err);
    o->pack = scratch;
    if (rc == MP_OK)
        rc = prune_pack(o, err);
    mp_remove_tree(scratch);
    mp_cleanup_scratch(NULL);
    return rc;
}

int mp_cmd_prune(int argc, char **argv, mp_error *err)
{
    prune_opts o;
    bool checkpoint = false;
    int rc = parse_args(&o, argc, argv, err);
    if (rc == MP_OK && o.common.help) {
        fputs(prune_help, stdout);
        return MP_OK;
    }
    if (rc == MP_OK)
        rc = mp_prune_input_kind(o.in, &checkpoint, err);
    if (rc == MP_OK && !checkpoint && o.convert.argc > 0)
        rc = mp_fail(err, MP_EXIT_INPUT, "%s is a pack, already encoded: %s applies to a checkpoint input", o.in,
                     o.convert.first);
    if (rc != MP_OK)
        return rc;
    mp_threads_apply(o.common.threads);
    o.pack = o.in;
    return checkpoint ? prune_checkpoint(&o, err) : prune_pack(&o, err);
}
