#include "convert_bits.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../formats/stats.h"
#include "../model/weights.h"
#include "../quant/bit_plan.h"

static const char *const option_names[] = {"w4g128", "w4g64", "w4g32", "fp8-block", "bf16"};
enum { N_OPTIONS = 5 };

static bool planned_class(mp_tensor_class c)
{
    return c == MP_CLASS_ATTN || c == MP_CLASS_DENSE || c == MP_CLASS_SHARED || c == MP_CLASS_EXPERT;
}

/* The options that can hold a [rows, cols] tensor, as indices into option_names. */
static void set_options(mp_bit_item *it, int *which, bool sym, int64_t rows, int64_t cols)
{
    it->n_options = 0;
    for (int k = 0; k < N_OPTIONS; k++) {
        mp_encoding e;
        char text[32], why[128];
        snprintf(text, sizeof text, "%s%s", option_names[k], k < 3 && sym ? "-sym" : "");
        if (mp_encoding_parse(text, &e) != 0 || mp_encoding_unfit(&e, rows, cols, why, sizeof why))
            continue;
        which[it->n_options] = k;
        it->options[it->n_options++] = e;
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
    int part, layer, expert;
    int which[N_OPTIONS];
} planned_part;

static int measure_part(const mp_model *m, const mp_plan_part *part, const mp_stats *s, double frequency,
                        mp_bit_item *it, mp_error *err)
{
    float *W = malloc((size_t)(part->rows * part->cols) * sizeof *W), *imp = malloc((size_t)part->cols * sizeof *imp);
    int rc = W && imp ? mp_ckpt_read_rows(m, &part->lin, 0, part->rows, W, err)
                      : mp_fail(err, MP_EXIT_IO, "out of memory reading %s", part->name);
    int at = rc == MP_OK ? mp_stats_find(s, part->name) : -1;
    if (at >= 0 && s->linears[at].cols == part->cols)
        rc = mp_stats_read_linear(s, at, imp, err);
    if (rc == MP_OK)
        rc = mp_bit_measure(it, W, part->rows, part->cols, at >= 0 ? imp : NULL, frequency, err);
    free(W);
    free(imp);
    return rc;
}

static json_t *summary_json(const mp_plan *plan, const planned_part *pp, const mp_bit_item *items, int n, double bits)
{
    uint64_t bytes = 0;
    int64_t params = 0;
    double loss = 0;
    json_t *classes = json_object();
    for (int i = 0; i < n; i++) {
        const mp_bit_item *it = &items[i];
        bytes += it->bytes[it->choice];
        params += it->params;
        loss += it->loss[it->choice];
        const char *cls = mp_class_name(plan->parts[pp[i].part].cls), *opt = option_names[pp[i].which[it->choice]];
        json_t *counts = json_object_get(classes, cls);
        if (!counts)
            json_object_set_new(classes, cls, counts = json_object());
        json_object_set_new(counts, opt, json_integer(json_integer_value(json_object_get(counts, opt)) + 1));
    }
    return json_pack("{s:f, s:f, s:i, s:I, s:f, s:o}", "bits", bits, "achieved",
                     params ? 8.0 * (double)bytes / (double)params : 0.0, "tensors", n, "bytes", (json_int_t)bytes,
                     "estimated_loss", loss, "by_class", classes);
}

/* The planned encodings go into the policy under the parts' names. */
static int hand_to_policy(mp_policy *policy, const mp_plan *plan, const planned_part *pp, const mp_bit_item *items,
                          int n, mp_error *err)
{
    char **names = calloc((size_t)n + 1, sizeof *names);
    mp_encoding *encs = calloc((size_t)n + 1, sizeof *encs);
    if (!names || !encs) {
        free(names);
        free(encs);
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        names[i] = strdup(plan->parts[pp[i].part].name);
        encs[i] = items[i].options[items[i].choice];
    }
    return mp_policy_set_planned(policy, names, encs, n, err);
}

int mp_convert_plan_bits(const mp_model *m, const mp_plan *plan, mp_policy *policy, double bits,
                         const char *stats_path, json_t **summary, mp_error *err)
{
    mp_stats s;
    int rc = mp_stats_open(&s, stats_path, true, err);
    if (rc != MP_OK)
        return rc;
    planned_part *pp = calloc((size_t)plan->n_parts + 1, sizeof *pp);
    mp_bit_item *items = calloc((size_t)plan->n_parts + 1, sizeof *items);
    int n = 0;
    int64_t params = 0;
    rc = pp && items ? MP_OK : mp_fail(err, MP_EXIT_IO, "out of memory");
    for (int r = 0; r < plan->n_records && rc == MP_OK; r++) {
        const mp_plan_record *rec = &plan->records[r];
        for (int k = 0; k < rec->n_parts && rc == MP_OK; k++) {
            const mp_plan_part *part = &plan->parts[rec->first_part + k];
            if (!planned_class(part->cls) || part->is_bias || part->ndim != 2 ||
                mp_policy_has_rule(policy, part->name, part->source))
                continue;
            pp[n] = (planned_part){.part = rec->first_part + k, .layer = rec->layer, .expert = rec->expert};
            set_options(&items[n], pp[n].which, policy->sym, part->rows, part->cols);
            rc = measure_part(m, part, &s, frequency_of(&s, rec->layer, rec->expert), &items[n], err);
            params += part->rows * part->cols;
            n++;
        }
    }
    if (rc == MP_OK)
        rc = mp_bit_allocate(items, n, (uint64_t)(bits * (double)params / 8.0), err);
    if (rc == MP_OK)
        rc = hand_to_policy(policy, plan, pp, items, n, err);
    if (rc == MP_OK)
        *summary = summary_json(plan, pp, items, n, bits);
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
    const char *cls;
    json_t *counts;
    json_object_foreach(json_object_get(summary, "by_class"), cls, counts) {
        printf("  %-10s", cls);
        for (int k = 0; k < N_OPTIONS; k++) {
            json_t *v = json_object_get(counts, option_names[k]);
            if (v)
                printf(" %5lld %s", (long long)json_integer_value(v), option_names[k]);
        }
        printf("\n");
    }
}
