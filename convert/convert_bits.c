#include "convert_bits.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../formats/pack.h"
#include "../formats/stats.h"
#include "../model/weights.h"
#include "../quant/bit_plan.h"
#include "tiers.h"

static const char default_encodings[] = "w4g128,w4g64,w4g32,fp8-block,bf16";

static bool planned_class(mp_tensor_class c)
{
    return c == MP_CLASS_ATTN || c == MP_CLASS_DENSE || c == MP_CLASS_SHARED || c == MP_CLASS_EXPERT;
}

/* The encodings of the list; w4 ones follow --sym unless spelled with -sym. */
static int parse_encodings(const char *list, bool sym, mp_encoding *out, int *n, mp_error *err)
{
    char copy[512];
    snprintf(copy, sizeof copy, "%s", list ? list : default_encodings);
    *n = 0;
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (*n == MP_BIT_OPTIONS_MAX || mp_encoding_parse(tok, &out[*n]) != 0)
            return mp_fail(err, MP_EXIT_INPUT, "--bits-encodings: \"%s\" is not an encoding (or more than %d given)",
                           tok, MP_BIT_OPTIONS_MAX);
        if (out[*n].kind == MP_ENC_W4 && sym)
            out[*n].sym = true;
        (*n)++;
    }
    return *n > 0 ? MP_OK : mp_fail(err, MP_EXIT_INPUT, "--bits-encodings: empty list");
}

int mp_bits_encodings_check(const char *list, mp_error *err)
{
    mp_encoding e[MP_BIT_OPTIONS_MAX];
    int n;
    return parse_encodings(list, false, e, &n, err) == MP_OK ? 0 : -1;
}

/* The options that can hold a [rows, cols] tensor. */
static void set_options(mp_bit_item *it, const mp_encoding *all, int n_all, int64_t rows, int64_t cols)
{
    it->n_options = 0;
    for (int k = 0; k < n_all; k++) {
        char why[128];
        if (!mp_encoding_unfit(&all[k], rows, cols, why, sizeof why))
            it->options[it->n_options++] = all[k];
    }
}

/* The share of tokens reaching a part: its expert's routing frequency, else 1. */
static double frequency_of(const mp_stats *s, int layer, int expert)
{
    int row = expert >= 0 ? mp_stats_layer_row(s, layer) : -1;
    if (row < 0 || s->tokens == 0)
        return 1.0;
    return (double)s->counts[row * s->n_experts + expert] / (double)s->tokens;
}

typedef struct {
    int part, record, item;
} planned_part;

static int measure_part(const mp_model *m, const mp_plan_part *part, const mp_stats *s, double frequency,
                        uint64_t align, mp_bit_item *it, mp_error *err)
{
    float *W = malloc((size_t)(part->rows * part->cols) * sizeof *W), *imp = malloc((size_t)part->cols * sizeof *imp);
    int rc = W && imp ? mp_ckpt_read_rows(m, &part->lin, 0, part->rows, W, err)
                      : mp_fail(err, MP_EXIT_IO, "out of memory reading %s", part->name);
    int at = rc == MP_OK ? mp_stats_find(s, part->name) : -1;
    bool have = at >= 0 && s->linears[at].cols == part->cols; /* mp_stats_check_model made it so */
    if (have)
        rc = mp_stats_read_linear(s, at, imp, err);
    if (rc == MP_OK)
        rc = mp_bit_measure(it, W, part->rows, part->cols, have ? imp : NULL, frequency, align, err);
    free(W);
    free(imp);
    return rc;
}

/* The item a part joins: its own, or with `stacked` the one of its layer's projection
 * (the part name's last component: gate, up, down) shared by all the layer's experts. */
static int item_of(const mp_plan_part *part, const mp_plan_record *rec, bool stacked, int *stack_item, int n_items)
{
    if (!stacked || rec->expert < 0)
        return n_items;
    const char *dot = strrchr(part->name, '.');
    int proj = strcmp(dot + 1, "gate") == 0 ? 0 : strcmp(dot + 1, "up") == 0 ? 1 : 2;
    int *slot = &stack_item[rec->layer * 3 + proj];
    if (*slot < 0)
        *slot = n_items;
    return *slot;
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) / a * a;
}

static uint64_t layout_bytes(const mp_encoding *e, int64_t rows, int64_t cols)
{
    mp_enc_layout L;
    mp_encoding_layout(e, rows, cols, &L);
    return L.total;
}

/* Bytes of the planned tensors as the pack will hold them: parts padded to 64, expert
 * records to 4 KiB minus what their unplanned parts take. */
static uint64_t padded_bytes(const mp_plan *plan, const mp_policy *policy, const planned_part *pp, int n,
                             const mp_bit_item *items, const mp_model *m)
{
    uint64_t total = 0;
    for (int i = 0; i < n;) {
        const mp_plan_record *rec = &plan->records[pp[i].record];
        uint64_t record = 0, unplanned = 0;
        for (int k = 0; k < rec->n_parts; k++) {
            const mp_plan_part *part = &plan->parts[rec->first_part + k];
            int at = i;
            while (at < n && pp[at].record == pp[i].record && pp[at].part != rec->first_part + k)
                at++;
            uint64_t bytes;
            if (at < n && pp[at].part == rec->first_part + k) {
                const mp_bit_item *it = &items[pp[at].item];
                bytes = layout_bytes(&it->options[it->choice], part->rows, part->cols);
            } else {
                mp_encoding e;
                bool fell_back;
                mp_error ignored = {0};
                if (mp_policy_choose(policy, part->name, part->source, part->cls, mp_plan_source_dtype(m, part),
                                     part->ndim == 2 ? part->rows : 1, part->cols, &e, &fell_back, &ignored) != MP_OK)
                    e.kind = MP_ENC_F32;
                bytes = layout_bytes(&e, part->ndim == 2 ? part->rows : 1, part->cols);
                unplanned += bytes;
            }
            record += align_up(bytes, MP_PACK_PART_ALIGN);
        }
        total += align_up(record, rec->expert >= 0 ? MP_PACK_EXPERT_ALIGN : MP_PACK_PART_ALIGN) - unplanned;
        int r = pp[i].record;
        while (i < n && pp[i].record == r)
            i++;
    }
    return total;
}

/* Allocates under the budget; per-tensor plans are redone with the budget lowered by
 * the padding overshoot until the padded bytes fit. */
static int allocate(const mp_plan *plan, const mp_policy *policy, const planned_part *pp, int n, mp_bit_item *items,
                    int n_items, uint64_t target, bool stacked, const mp_model *m, mp_error *err)
{
    uint64_t budget = target;
    for (int round = 0; round < 32; round++) {
        int rc = mp_bit_allocate(items, n_items, budget, err);
        if (rc != MP_OK || stacked)
            return rc;
        uint64_t real = padded_bytes(plan, policy, pp, n, items, m);
        if (real <= target)
            return MP_OK;
        if (real - target >= budget)
            break;
        budget -= real - target;
    }
    return mp_fail(err, MP_EXIT_INPUT, "--bits: the planned tensors do not fit the budget once padded to their "
                   "records (64 bytes per part, 4 KiB per expert); ask for more bits");
}

static json_t *summary_json(const mp_plan *plan, const planned_part *pp, int n, const mp_bit_item *items,
                            int n_items, const mp_bits_request *req, uint64_t bytes)
{
    int64_t params = 0;
    double loss = 0;
    for (int i = 0; i < n_items; i++) {
        params += items[i].params;
        loss += items[i].loss[items[i].choice];
    }
    json_t *classes = json_object();
    for (int i = 0; i < n; i++) {
        const mp_bit_item *it = &items[pp[i].item];
        char opt[32];
        mp_encoding_format(&it->options[it->choice], opt, sizeof opt);
        const char *cls = mp_class_name(plan->parts[pp[i].part].cls);
        json_t *counts = json_object_get(classes, cls);
        if (!counts)
            json_object_set_new(classes, cls, counts = json_object());
        json_object_set_new(counts, opt, json_integer(json_integer_value(json_object_get(counts, opt)) + 1));
    }
    return json_pack("{s:f, s:f, s:i, s:I, s:f, s:s, s:b, s:o}", "bits", req->bits, "achieved",
                     params ? 8.0 * (double)bytes / (double)params : 0.0, "tensors", n, "bytes", (json_int_t)bytes,
                     "estimated_loss", loss, "encodings", req->encodings ? req->encodings : default_encodings,
                     "stacked", req->stacked, "by_class", classes);
}

/* The planned encodings go into the policy under the parts' names. */
static int hand_to_policy(mp_policy *policy, const mp_plan *plan, const planned_part *pp, int n,
                          const mp_bit_item *items, mp_error *err)
{
    char **names = calloc((size_t)n + 1, sizeof *names);
    mp_encoding *encs = calloc((size_t)n + 1, sizeof *encs);
    if (!names || !encs) {
        free(names);
        free(encs);
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        const mp_bit_item *it = &items[pp[i].item];
        names[i] = strdup(plan->parts[pp[i].part].name);
        encs[i] = it->options[it->choice];
    }
    return mp_policy_set_planned(policy, names, encs, n, err);
}

/* Every planned part, measured into its item. */
static int collect(const mp_model *m, const mp_plan *plan, const mp_policy *policy, const mp_bits_request *req,
                   const mp_stats *s, planned_part *pp, int *n, mp_bit_item *items, int *n_items, mp_error *err)
{
    mp_encoding all[MP_BIT_OPTIONS_MAX];
    int n_all, layers = m->cfg.n_layers + m->cfg.n_mtp;
    int rc = parse_encodings(req->encodings, policy->sym, all, &n_all, err);
    int *stack_item = malloc((size_t)(3 * layers + 1) * sizeof *stack_item);
    if (rc == MP_OK && !stack_item)
        rc = mp_fail(err, MP_EXIT_IO, "out of memory");
    for (int i = 0; rc == MP_OK && i < 3 * layers; i++)
        stack_item[i] = -1;
    for (int r = 0; r < plan->n_records && rc == MP_OK; r++) {
        const mp_plan_record *rec = &plan->records[r];
        for (int k = 0; k < rec->n_parts && rc == MP_OK; k++) {
            const mp_plan_part *part = &plan->parts[rec->first_part + k];
            if (!planned_class(part->cls) || part->is_bias || part->ndim != 2 ||
                mp_policy_has_rule(policy, part->name, part->source))
                continue;
            int item = item_of(part, rec, req->stacked, stack_item, *n_items);
            if (item == *n_items)
                set_options(&items[(*n_items)++], all, n_all, part->rows, part->cols);
            pp[*n] = (planned_part){.part = rec->first_part + k, .record = r, .item = item};
            rc = measure_part(m, part, s, frequency_of(s, rec->layer, rec->expert), req->stacked ? 32 : 1,
                              &items[item], err);
            (*n)++;
        }
    }
    free(stack_item);
    return rc;
}

int mp_convert_plan_bits(const mp_model *m, const mp_plan *plan, mp_policy *policy, const mp_bits_request *req,
                         const char *stats_path, json_t **summary, mp_error *err)
{
    mp_stats s;
    int rc = mp_stats_open(&s, stats_path, true, err);
    if (rc == MP_OK)
        rc = mp_tiers_check_model(&s, m, plan, "the checkpoint", err);
    if (rc != MP_OK) {
        mp_stats_close(&s);
        return rc;
    }
    planned_part *pp = calloc((size_t)plan->n_parts + 1, sizeof *pp);
    mp_bit_item *items = calloc((size_t)plan->n_parts + 1, sizeof *items);
    int n = 0, n_items = 0;
    rc = pp && items ? collect(m, plan, policy, req, &s, pp, &n, items, &n_items, err)
                     : mp_fail(err, MP_EXIT_IO, "out of memory");
    int64_t params = 0;
    for (int i = 0; i < n_items; i++)
        params += items[i].params;
    if (rc == MP_OK)
        rc = allocate(plan, policy, pp, n, items, n_items, (uint64_t)(req->bits * (double)params / 8.0), req->stacked,
                      m, err);
    if (rc == MP_OK)
        rc = hand_to_policy(policy, plan, pp, n, items, err);
    uint64_t bytes = 0;
    for (int i = 0; i < n_items; i++)
        bytes += items[i].bytes[items[i].choice];
    if (rc == MP_OK && !req->stacked)
        bytes = padded_bytes(plan, policy, pp, n, items, m);
    if (rc == MP_OK)
        *summary = summary_json(plan, pp, n, items, n_items, req, bytes);
    free(pp);
    free(items);
    mp_stats_close(&s);
    return rc;
}

void mp_bit_plan_print(const json_t *summary)
{
    printf("bit plan    %.3f bits per weight asked, %.3f planned over %d tensors (estimated loss %.4g)\n",
           json_real_value(json_object_get(summary, "bits")), json_real_value(json_object_get(summary, "achieved")),
           (int)json_integer_value(json_object_get(summary, "tensors")),
           json_real_value(json_object_get(summary, "estimated_loss")));
    const char *cls, *enc;
    json_t *counts, *v;
    json_object_foreach(json_object_get(summary, "by_class"), cls, counts) {
        printf("  %-10s", cls);
        json_object_foreach(counts, enc, v)
            printf(" %5lld %s", (long long)json_integer_value(v), enc);
        printf("\n");
    }
}
