/* The HTML report of moepack verify: summary, per-layer curves, per-expert weight
 * error heat map, routing frequency per expert, worst tensors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/version.h"
#include "../report/html_report.h"
#include "verify_result.h"

static void summary(mp_report *rep, const mp_verify_result *r)
{
    const mp_logit_summary *s = &r->summary;
    char v[10][64];
    snprintf(v[0], 64, "%.4f", s->ppl_test);
    snprintf(v[1], 64, isfinite(s->ppl_ref) ? "%.4f" : "-", s->ppl_ref);
    snprintf(v[2], 64, isfinite(s->ppl_ref) ? "%+.3f%%" : "-", 100 * (s->ppl_test / s->ppl_ref - 1));
    snprintf(v[3], 64, "%.6f", s->kld_mean);
    snprintf(v[4], 64, "%.6f", s->kld_median);
    snprintf(v[5], 64, "%.6f", s->kld_p99);
    snprintf(v[6], 64, "%.6f", s->kld_max);
    snprintf(v[7], 64, "%.3f%%", s->same_top1);
    snprintf(v[8], 64, "%lld", (long long)r->logits.n);
    snprintf(v[9], 64, "%.1f s", r->seconds);
    mp_report_kv rows[] = {{"PPL (pack)", v[0]},   {"PPL (reference)", v[1]}, {"PPL change", v[2]},
                           {"KLD mean", v[3]},     {"KLD median", v[4]},      {"KLD p99", v[5]},
                           {"KLD max", v[6]},      {"same top-1", v[7]},      {"scored tokens", v[8]},
                           {"time", v[9]}};
    mp_report_summary(rep, rows, sizeof rows / sizeof *rows);
}

static void per_layer(mp_report *rep, const mp_layer_metrics *m)
{
    int n = m->n_layers;
    double *err = malloc((size_t)n * sizeof *err), *overlap = malloc((size_t)n * sizeof *overlap);
    double *cosine = malloc((size_t)n * sizeof *cosine);
    for (int l = 0; err && overlap && cosine && l < n; l++) {
        err[l] = m->ref_sq[l] > 0 ? sqrt(m->diff_sq[l] / m->ref_sq[l]) : NAN;
        cosine[l] = m->tokens[l] ? m->cos_sum[l] / (double)m->tokens[l] : NAN;
        overlap[l] = m->route_tokens[l] ? m->overlap_sum[l] / (double)m->route_tokens[l] : NAN;
    }
    if (err && overlap && cosine) {
        mp_report_heading(rep, 2, "Per layer");
        mp_plot_series e = {"pack vs checkpoint", NULL, err, NULL, n};
        mp_line_chart c1 = {"Hidden-state relative error after each layer", "layer", "||h_pack - h_ref|| / ||h_ref||",
                            &e, 1, true};
        mp_report_line_chart(rep, &c1, "How far the residual stream drifts from the original model, layer by layer.");
        mp_plot_series o = {"router top-k overlap", NULL, overlap, NULL, n};
        mp_plot_series c = {"hidden-state cosine", NULL, cosine, NULL, n};
        mp_plot_series both[2] = {o, c};
        mp_line_chart c2 = {"Router agreement and hidden-state cosine", "layer", "fraction", both, 2, false};
        mp_report_line_chart(rep, &c2, "Share of the pack's top-k experts that the original model also chose.");
    }
    free(err);
    free(overlap);
    free(cosine);
}

static void routing(mp_report *rep, const mp_layer_metrics *m)
{
    if (m->n_experts <= 0)
        return;
    int L = m->n_layers, E = m->n_experts;
    double *share = malloc((size_t)L * (size_t)E * sizeof *share);
    mp_bar_group *groups = malloc((size_t)L * sizeof *groups);
    char (*names)[24] = malloc((size_t)L * sizeof *names);
    if (share && groups && names) {
        for (int l = 0; l < L; l++) {
            int64_t total = 0;
            for (int e = 0; e < E; e++)
                total += m->expert_count[(int64_t)l * E + e];
            for (int e = 0; e < E; e++)
                share[(int64_t)l * E + e] = total ? (double)m->expert_count[(int64_t)l * E + e] / (double)total : 0;
            snprintf(names[l], sizeof names[l], "layer %d", l);
            groups[l] = (mp_bar_group){names[l], share + (int64_t)l * E};
        }
        mp_report_heading(rep, 2, "Routing");
        if (L * E <= 256) {
            mp_bar_chart c = {"Routing frequency per expert (pack)", "expert", "share of top-k assignments", NULL, E,
                              groups, L};
            mp_report_bar_chart(rep, &c, "Uniform routing would give 1 / experts to each.");
        } else {
            mp_heat_map h = {"Routing frequency per expert (pack)", "expert", "layer", "share", share, L, E, NULL,
                             NULL, false};
            mp_report_heat_map(rep, &h, "Share of each layer's top-k assignments per expert.");
        }
    }
    free(share);
    free(groups);
    free(names);
}

static int by_error(const void *a, const void *b)
{
    double x = ((const mp_tensor_error *)a)->rel, y = ((const mp_tensor_error *)b)->rel;
    return (x < y) - (x > y);
}

static void weights(mp_report *rep, const mp_weight_errors *w)
{
    mp_report_heading(rep, 2, "Weights");
    if (w->n_experts > 0) {
        mp_heat_map h = {"Relative weight error per expert", "expert", "layer",
                         "relative error", w->expert_rel, w->n_layers, w->n_experts, NULL, NULL, false};
        mp_report_heat_map(rep, &h, "||W_pack - W_ref|| / ||W_ref|| over each routed expert's three matrices.");
    }
    int n = w->n < 20 ? w->n : 20;
    mp_tensor_error *sorted = malloc((size_t)w->n * sizeof *sorted);
    const char **cells = malloc((size_t)n * 3 * sizeof *cells);
    char (*values)[32] = malloc((size_t)n * sizeof *values);
    if (sorted && cells && values) {
        memcpy(sorted, w->tensors, (size_t)w->n * sizeof *sorted);
        qsort(sorted, (size_t)w->n, sizeof *sorted, by_error);
        for (int i = 0; i < n; i++) {
            snprintf(values[i], sizeof values[i], "%.5f", sorted[i].rel);
            cells[3 * i] = sorted[i].name;
            cells[3 * i + 1] = sorted[i].encoding;
            cells[3 * i + 2] = values[i];
        }
        const char *header[3] = {"tensor", "encoding", "relative error"};
        mp_report_table t = {"The tensors with the largest relative error", header, 3, cells, n};
        mp_report_table_write(rep, &t);
    }
    free(sorted);
    free(cells);
    free(values);
}

int mp_verify_report_write(const mp_verify_result *r, const char *path, mp_error *err)
{
    mp_report rep;
    char title[512], sub[1024];
    snprintf(title, sizeof title, "moepack verify: %s", r->pack);
    snprintf(sub, sizeof sub, "reference: %s (%s); text: %s; ctx %d, %lld chunks; activations %s; moepack %s",
             r->reference, r->reference_is_file ? "reference run" : "checkpoint, run live", r->text ? r->text : "from the reference",
             r->ctx, (long long)r->chunks, r->act, MP_VERSION);
    int rc = mp_report_begin(&rep, path, title, sub, err);
    if (rc)
        return rc;
    mp_report_verdict(&rep, r->passed, r->passed ? "all thresholds met" : r->failure);
    summary(&rep, r);
    if (r->have_layers)
        per_layer(&rep, &r->layers);
    routing(&rep, &r->layers);
    if (r->have_weights)
        weights(&rep, &r->weights);
    return mp_report_end(&rep, err);
}
