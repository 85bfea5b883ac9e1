/* moepack verify: a pack against a reference run (file) or the original checkpoint
 * (run live, which adds per-layer, router and per-expert weight comparisons). The
 * measuring is in verify_run.c (shared with compare); this file judges and prints. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "verify_commands.h"
#include "verify_run.h"

static const char *verify_help =
    "usage: moepack verify PACK --reference REF|CKPT [--text FILE] [options]\n\n"
    "Runs the pack over the reference's text and compares its predictions with the reference:\n"
    "perplexity of both, KL divergence per scored token (mean, median, p99, max) and the share\n"
    "of tokens whose most probable next token agrees (same top-1), scored as llama.cpp's\n"
    "perplexity --kl-divergence does. With a reference file (moepack reference) the KLD uses\n"
    "its top-K log-probs plus one bucket for the rest of the vocabulary (a lower bound, close\n"
    "for K = 64). With the original checkpoint as reference (then --text is required) the\n"
    "KLD is exact, and verify adds per-layer hidden-state cosine and relative error, router\n"
    "top-k overlap per layer and every tensor's relative weight error.\n\n"
    "  --reference R     a reference file, or the checkpoint directory\n"
    "  --text FILE       the text (required with a checkpoint; with a file it must match)\n"
    "  --tokens FILE     token ids instead of text\n"
    "  --ctx N           context (checkpoint references; default 256)\n"
    "  --chunks N        only the first N chunks\n"
    "  --act MODE        the pack's activations: f32 (default), bf16 or fp8\n"
    "  --allow-nonfinite run a checkpoint's NaN or infinite weights as they are (default:\n"
    "                    exit 2 naming the tensor and its first bad flat index)\n"
    "  --max-kld X       fail (exit 1) when the mean KLD exceeds X\n"
    "  --min-top1 P      fail (exit 1) when same top-1 is below P percent\n"
    "  --report FILE     write a self-contained HTML report with plots\n"
    "  --threads N, --quiet, --json\n\n"
    "exit codes: 0 ok, 1 a threshold failed, 2 bad input or usage, 3 I/O failure\n";

/* ---- output ---- */

static void judge(mp_verify_result *r)
{
    r->passed = true;
    if (r->max_kld >= 0 && !(r->summary.kld_mean <= r->max_kld)) {
        r->passed = false;
        snprintf(r->failure, sizeof r->failure, "mean KLD %.6f is above --max-kld %g", r->summary.kld_mean, r->max_kld);
    } else if (r->min_top1 >= 0 && !(r->summary.same_top1 >= r->min_top1)) {
        r->passed = false;
        snprintf(r->failure, sizeof r->failure, "same top-1 %.3f%% is below --min-top1 %g", r->summary.same_top1,
                 r->min_top1);
    }
}

static void print_layers(const mp_verify_result *r)
{
    const mp_layer_metrics *m = &r->layers;
    printf("  layer  hidden cosine  hidden rel.err  router top-k overlap\n");
    for (int l = 0; l < m->n_layers; l++) {
        double t = m->tokens[l] ? (double)m->tokens[l] : 1, rt = m->route_tokens[l] ? (double)m->route_tokens[l] : 1;
        printf("  %5d  %13.6f  %14.6f  %20.4f\n", l, m->cos_sum[l] / t,
               m->ref_sq[l] > 0 ? sqrt(m->diff_sq[l] / m->ref_sq[l]) : 0.0, m->overlap_sum[l] / rt);
    }
}

static void print_weights(const mp_weight_errors *w)
{
    int worst = 0;
    double sum = 0;
    for (int i = 0; i < w->n; i++) {
        sum += w->tensors[i].rel;
        if (w->tensors[i].rel > w->tensors[worst].rel)
            worst = i;
    }
    if (w->n > 0)
        printf("  weight error: mean relative %.5f over %d tensors, worst %.5f (%s, %s)\n", sum / w->n, w->n,
               w->tensors[worst].rel, w->tensors[worst].name, w->tensors[worst].encoding);
}

static void print_text(const mp_verify_result *r)
{
    const mp_logit_summary *s = &r->summary;
    printf("verify %s against %s (%s): %lld chunks of %d, %lld scored tokens, %.1f s\n", r->pack, r->reference,
           r->reference_is_file ? "reference run" : "checkpoint", (long long)r->chunks, r->ctx, (long long)r->logits.n,
           r->seconds);
    printf("  PPL          pack %.4f   reference %.4f   (%+.3f%%)\n", s->ppl_test, s->ppl_ref,
           100 * (s->ppl_test / s->ppl_ref - 1));
    printf("  KLD          mean %.6f   median %.6f   p99 %.6f   max %.6f%s\n", s->kld_mean, s->kld_median, s->kld_p99,
           s->kld_max, r->top_k ? "   (top-K + tail)" : "");
    printf("  same top-1   %.3f%%\n", s->same_top1);
    if (r->have_layers)
        print_layers(r);
    if (r->have_weights)
        print_weights(&r->weights);
    if (!r->passed)
        printf("FAILED: %s\n", r->failure);
}

static json_t *layers_json(const mp_layer_metrics *m)
{
    json_t *a = json_array();
    for (int l = 0; l < m->n_layers; l++) {
        double t = m->tokens[l] ? (double)m->tokens[l] : 1, rt = m->route_tokens[l] ? (double)m->route_tokens[l] : 1;
        json_array_append_new(a, json_pack("{s:i, s:f, s:f, s:f}", "layer", l, "hidden_cosine", m->cos_sum[l] / t,
                                           "hidden_rel_err", m->ref_sq[l] > 0 ? sqrt(m->diff_sq[l] / m->ref_sq[l]) : 0.0,
                                           "router_overlap", m->overlap_sum[l] / rt));
    }
    return a;
}

static json_t *weights_json(const mp_weight_errors *w)
{
    json_t *a = json_array();
    for (int i = 0; i < w->n; i++)
        json_array_append_new(a, json_pack("{s:s, s:s, s:f}", "name", w->tensors[i].name, "encoding",
                                           w->tensors[i].encoding, "rel_err", isfinite(w->tensors[i].rel) ? w->tensors[i].rel : -1.0));
    return a;
}

static void print_json(const mp_verify_result *r)
{
    const mp_logit_summary *s = &r->summary;
    json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:i, s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:b, s:s}", "pack",
                          r->pack, "reference", r->reference, "reference_kind",
                          r->reference_is_file ? "reference-run" : "checkpoint", "chunks", (json_int_t)r->chunks, "ctx",
                          r->ctx, "scored", (json_int_t)r->logits.n, "ppl", s->ppl_test, "ppl_reference",
                          isfinite(s->ppl_ref) ? s->ppl_ref : -1.0, "kld_mean", s->kld_mean, "kld_median",
                          s->kld_median, "kld_p99", s->kld_p99, "kld_max", s->kld_max, "same_top1", s->same_top1,
                          "seconds", r->seconds, "passed", r->passed, "failure", r->failure);
    if (r->have_layers)
        json_object_set_new(o, "layers", layers_json(&r->layers));
    if (r->have_weights)
        json_object_set_new(o, "weights", weights_json(&r->weights));
    json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    printf("\n");
    json_decref(o);
}

int mp_cmd_verify(int argc, char **argv, mp_error *err)
{
    mp_run_options o;
    int rc = mp_run_options_parse(&o, argc, argv, MP_RUN_VERIFY, verify_help, err);
    if (rc || o.common.help)
        return rc;
    mp_verify_result r;
    rc = mp_verify_measure(&o, "verify", &r, err);
    if (!rc) {
        judge(&r);
        if (o.common.json)
            print_json(&r);
        else if (!o.common.quiet)
            print_text(&r);
    }
    if (!rc && o.report)
        rc = mp_verify_report_write(&r, o.report, err);
    if (!rc && !r.passed)
        rc = mp_fail(err, MP_EXIT_VERIFY, "%s", r.failure);
    mp_verify_result_free(&r);
    return rc;
}
