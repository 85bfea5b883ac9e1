/* What vLLM cannot load, refused before anything is written (docs/export-compressed-tensors.md
 * gives the sources). Each rule names the first tensor that breaks it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ct_plan.h"

#define FP8_BLOCK 128 /* vLLM's block_n: rows of one fp8 weight block */

static bool is_gpt_oss(const ct_plan *plan)
{
    json_t *family = json_object_get(json_object_get(plan->pack->manifest, "model"), "family");
    return json_is_string(family) && strcmp(json_string_value(family), "gpt_oss") == 0;
}

static void encoding_text(const ct_plan *plan, int t, char *buf, size_t cap)
{
    mp_encoding_format(&plan->pack->tensors[t].enc, buf, cap);
}

/* Grids, quantized tensors vLLM builds unquantized, quantized weights without a module. */
static int check_tensor(const ct_plan *plan, int t, mp_error *err)
{
    const ct_item *it = &plan->items[t];
    char label[512], enc[32];
    ct_label(plan, t, label, sizeof label);
    encoding_text(plan, t, enc, sizeof enc);
    if (it->scheme == CT_GRID)
        return mp_fail(err, MP_EXIT_INPUT,
                       "%s: %s is a llama.cpp grid with no compressed-tensors equivalent; export this pack with "
                       "--to gguf",
                       label, enc);
    if (strchr(plan->pack->tensors[t].source, '['))
        return mp_fail(err, MP_EXIT_INPUT,
                       "%s: a slice of a stacked checkpoint tensor; a compressed-tensors checkpoint needs tensors of "
                       "their own",
                       label);
    if (it->scheme == CT_UNQUANTIZED)
        return MP_OK;
    if (it->info.role == CT_OTHER || it->info.role == CT_FIXED_LINEAR)
        return mp_fail(err, MP_EXIT_INPUT,
                       "%s: %s, but vLLM loads %s unquantized only; convert with --keep for this tensor", label, enc,
                       it->info.what);
    if (!it->module)
        return mp_fail(err, MP_EXIT_INPUT, "%s: %s, but its source is not a \".weight\" tensor", label, enc);
    const mp_encoding *e = &plan->pack->tensors[t].enc;
    if (e->nm24)
        return mp_fail(err, MP_EXIT_INPUT,
                       "%s: %s is 2:4 sparse, which this export does not write yet; export to GGUF (it densifies)",
                       label, enc);
    if (e->kind == MP_ENC_W4 && e->group != 32 && e->group != 64 && e->group != 128)
        return mp_fail(err, MP_EXIT_INPUT, "%s: w4 group %d: vLLM's int4 kernels take groups 32, 64 and 128", label,
                       e->group);
    return MP_OK;
}

/* ---- groups of tensors that must share one scheme ---- */

typedef struct {
    const char *key;
    int tensor;
} keyed;

static int by_key(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->tensor > y->tensor) - (x->tensor < y->tensor);
}

/* The tensors of each group, sorted by (group, tensor): a group's first member is its
 * lowest tensor index. */
static keyed *collect(const ct_plan *plan, bool experts, int *n)
{
    keyed *k = malloc((size_t)plan->pack->n_tensors * sizeof *k + 1);
    *n = 0;
    for (int t = 0; k && t < plan->pack->n_tensors; t++) {
        const ct_name_info *info = &plan->items[t].info;
        if (experts && info->role == CT_EXPERT)
            k[(*n)++] = (keyed){info->layer, t};
        else if (!experts && info->fused)
            k[(*n)++] = (keyed){info->fused_key, t};
    }
    if (k)
        qsort(k, (size_t)*n, sizeof *k, by_key);
    return k;
}

static int differs(const ct_plan *plan, int first, int t, const char *why, mp_error *err)
{
    char a[512], b[32], c[32];
    ct_label(plan, t, a, sizeof a);
    encoding_text(plan, t, b, sizeof b);
    encoding_text(plan, first, c, sizeof c);
    return mp_fail(err, MP_EXIT_INPUT, "%s: %s, but %s is %s: %s", a, b, plan->pack->tensors[first].name, c, why);
}

/* Routed experts: one quantized, loadable scheme for every expert and projection of a layer. */
static int check_expert(const ct_plan *plan, int first, int t, mp_error *err)
{
    char label[512], enc[32];
    ct_label(plan, t, label, sizeof label);
    encoding_text(plan, t, enc, sizeof enc);
    int s = plan->items[t].scheme;
    if (s != plan->items[first].scheme)
        return differs(plan, first, t,
                       "vLLM's fused MoE holds all experts and projections of a layer in one scheme", err);
    if (s == CT_UNQUANTIZED && plan->n_schemes > 0) /* with nothing quantized: a plain checkpoint */
        return mp_fail(err, MP_EXIT_INPUT,
                       "%s: %s: routed experts must be quantized (w4 or fp8); unquantized experts would be listed in "
                       "\"ignore\", which vLLM's fused MoE does not load",
                       label, enc);
    const mp_pack_tensor *x = &plan->pack->tensors[t];
    if (x->enc.kind == MP_ENC_W4 && !x->enc.sym)
        return mp_fail(err, MP_EXIT_INPUT,
                       "%s: %s is asymmetric: vLLM's int4 fused MoE loads symmetric weights only "
                       "(compressed_tensors_moe_wna16*.py); convert with --sym",
                       label, enc);
    const char *role = strrchr(x->name, '.');
    if (x->enc.kind == MP_ENC_FP8 && x->enc.fp8_scale == MP_FP8_BLOCK && role && strcmp(role, ".down") != 0 &&
        x->rows % FP8_BLOCK != 0)
        return mp_fail(err, MP_EXIT_INPUT,
                       "%s: %s with %lld rows: vLLM's fp8 fused MoE needs the expert width divisible by the %d-row "
                       "block (compressed_tensors_moe_w8a8_fp8.py)",
                       label, enc, (long long)x->rows, FP8_BLOCK);
    return MP_OK;
}

/* Parts of one fused vLLM layer: one scheme; with fp8 blocks, every part but the last
 * a whole number of 128-row blocks (vLLM's validate_fp8_block_shape). */
static int check_fused(const ct_plan *plan, int first, int t, mp_error *err)
{
    const ct_item *it = &plan->items[t];
    if (it->scheme != plan->items[first].scheme) {
        char why[160];
        snprintf(why, sizeof why, "vLLM loads them as one %s, which needs one scheme for all its parts",
                 it->info.fused);
        return differs(plan, first, t, why, err);
    }
    const mp_pack_tensor *x = &plan->pack->tensors[t];
    if (it->scheme >= 0 && x->enc.kind == MP_ENC_FP8 && x->enc.fp8_scale == MP_FP8_BLOCK && !it->info.fused_last &&
        x->rows % FP8_BLOCK != 0) {
        char label[512];
        ct_label(plan, t, label, sizeof label);
        return mp_fail(err, MP_EXIT_INPUT,
                       "%s: fp8-block with %lld rows: vLLM fuses it into %s and needs each part but the last "
                       "divisible by the %d-row block (validate_fp8_block_shape)",
                       label, (long long)x->rows, it->info.fused, FP8_BLOCK);
    }
    return MP_OK;
}

static int check_groups(const ct_plan *plan, bool experts, mp_error *err)
{
    int n;
    keyed *k = collect(plan, experts, &n);
    if (!k)
        return mp_fail(err, MP_EXIT_IO, "%s: out of memory", plan->pack->dir);
    int rc = MP_OK;
    for (int i = 0, first = 0; i < n && rc == MP_OK; i++) {
        if (i == 0 || strcmp(k[i].key, k[i - 1].key) != 0)
            first = k[i].tensor;
        rc = experts ? check_expert(plan, first, k[i].tensor, err) : check_fused(plan, first, k[i].tensor, err);
    }
    free(k);
    return rc;
}

int ct_check(const ct_plan *plan, mp_error *err)
{
    if (is_gpt_oss(plan))
        return mp_fail(err, MP_EXIT_INPUT,
                       "%s: GPT-OSS cannot be exported to compressed-tensors: vLLM's gpt-oss loader "
                       "(models/gpt_oss.py) reads routed experts only as stacked tensors (MXFP4, Quark or bf16), not "
                       "as per-expert compressed-tensors weights, and its int4 MoE kernels take no expert biases; "
                       "export it with --to gguf",
                       plan->pack->dir);
    int rc = MP_OK;
    for (int t = 0; t < plan->pack->n_tensors && rc == MP_OK; t++)
        rc = check_tensor(plan, t, err);
    if (rc == MP_OK)
        rc = check_groups(plan, true, err);
    if (rc == MP_OK)
        rc = check_groups(plan, false, err);
    return rc;
}

/* ---- notes: loadable, with limits worth knowing ---- */

static bool marlin_shape(const mp_pack_tensor *x)
{
    return x->rows % 64 == 0 && x->cols % 128 == 0;
}

void ct_notes(const ct_plan *plan, FILE *out)
{
    int odd = 0, first_odd = -1;
    for (int t = 0; t < plan->pack->n_tensors; t++) {
        const ct_item *it = &plan->items[t];
        const mp_pack_tensor *x = &plan->pack->tensors[t];
        if (it->scheme < 0)
            continue;
        if (it->info.role == CT_LINEAR && x->enc.kind == MP_ENC_W4 && !marlin_shape(x) && odd++ == 0)
            first_odd = t;
        if (strstr(x->name, ".eh_proj") && it->info.role == CT_LINEAR)
            fprintf(out,
                    "moepack export: note: %s is quantized; vLLM's MTP draft layer builds eh_proj unquantized, so "
                    "serve without MTP speculative decoding or convert with --keep eh_proj\n",
                    x->name);
    }
    if (odd > 0) {
        const mp_pack_tensor *x = &plan->pack->tensors[first_odd];
        fprintf(out,
                "moepack export: note: %d w4 linear(s), first %s [%lld, %lld], have rows not a multiple of 64 or "
                "columns not a multiple of 128: vLLM's Marlin kernel cannot run them; other int4 kernels may, "
                "depending on GPU, dtype and tensor parallelism\n",
                odd, x->name, (long long)x->rows, (long long)x->cols);
    }
}
