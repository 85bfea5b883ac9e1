/* moepack verify: a pack against a reference run (file) or the original checkpoint
 * (run live, which adds per-layer, router and per-expert weight comparisons). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../commands.h"
#include "../core/progress.h"
#include "../formats/reference.h"
#include "model_run.h"
#include "run_options.h"
#include "verify_result.h"

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
    "  --max-kld X       fail (exit 1) when the mean KLD exceeds X\n"
    "  --min-top1 P      fail (exit 1) when same top-1 is below P percent\n"
    "  --report FILE     write a self-contained HTML report with plots\n"
    "  --threads N, --quiet, --json\n\n"
    "exit codes: 0 ok, 1 a threshold failed, 2 bad input or usage, 3 I/O failure\n";

typedef struct {
    mp_layer_metrics *layers;
    int n_layers, top_k;
    int64_t n, d;
    float *hidden;   /* [layer][n * d] of the reference */
    int *routes;     /* [layer][n * top_k] of the reference */
    bool comparing;  /* false while the reference runs, true while the pack runs */
} layer_capture;

static void capture_hidden(void *user, int layer, const float *h, int64_t n, int64_t d)
{
    layer_capture *c = user;
    float *mine = c->hidden + (int64_t)layer * c->n * c->d;
    if (!c->comparing)
        memcpy(mine, h, (size_t)(n * d) * sizeof *h);
    else
        mp_layer_metrics_hidden(c->layers, layer, mine, h, n, d);
}

static void capture_routing(void *user, int layer, const int *experts, const float *weights, int64_t n, int top_k)
{
    (void)weights;
    layer_capture *c = user;
    int *mine = c->routes + (int64_t)layer * c->n * top_k;
    if (!c->comparing) {
        memcpy(mine, experts, (size_t)(n * top_k) * sizeof *experts);
        return;
    }
    mp_layer_metrics_routing(c->layers, layer, mine, experts, n);
    mp_layer_metrics_count(c->layers, layer, experts, n);
}

static void count_routing(void *user, int layer, const int *experts, const float *weights, int64_t n, int top_k)
{
    (void)weights;
    (void)top_k;
    mp_layer_metrics_count(user, layer, experts, n);
}

static void targets_of(const int32_t *tokens, int n_chunks, int ctx, int first, int last, int32_t *targets)
{
    int per = last - first;
    for (int s = 0; s < n_chunks; s++)
        for (int j = 0; j < per; j++)
            targets[s * per + j] = tokens[(int64_t)s * ctx + first + j + 1];
}

/* ---- against the original checkpoint, run live ---- */

static int verify_against_checkpoint(const mp_run_options *o, mp_model_run *test, mp_verify_result *r, mp_error *err)
{
    mp_model_run ref;
    mp_chunks c;
    int rc = mp_model_run_open(&ref, o->reference, MP_ACT_F32, err);
    if (rc)
        return rc;
    const mp_config *cfg = mp_wsrc_config(&test->src);
    char why[160];
    json_t *a = mp_model_identity(mp_wsrc_config(&ref.src)), *b = mp_model_identity(cfg);
    if (mp_model_identity_differs(a, b, why, sizeof why))
        rc = mp_fail(err, MP_EXIT_INPUT, "%s and %s are different models (%s)", o->reference, o->model, why);
    json_decref(a);
    json_decref(b);
    if (!rc) rc = mp_chunks_load(&c, o->reference, o->text, o->tokens, o->ctx, o->max_chunks, err);
    if (rc) {
        mp_model_run_close(&ref);
        return rc;
    }
    int per = mp_batch_chunks(c.ctx), scored = mp_chunks_scored(&c), vocab = test->vocab, k = cfg->routing.top_k;
    int64_t n_max = (int64_t)per * c.ctx;
    layer_capture cap = {&r->layers, cfg->n_layers, k, n_max, cfg->hidden, NULL, NULL, false};
    cap.hidden = malloc((size_t)(cfg->n_layers * n_max * cfg->hidden) * sizeof *cap.hidden);
    cap.routes = malloc((size_t)(cfg->n_layers * n_max * (k > 0 ? k : 1)) * sizeof *cap.routes);
    int32_t *tokens = malloc((size_t)n_max * sizeof *tokens), *targets = malloc((size_t)n_max * sizeof *targets);
    float *ref_logits = malloc((size_t)per * (size_t)scored * (size_t)vocab * sizeof *ref_logits);
    float *logits = malloc((size_t)per * (size_t)scored * (size_t)vocab * sizeof *logits);
    if (!cap.hidden || !cap.routes || !tokens || !targets || !ref_logits || !logits)
        rc = mp_fail(err, MP_EXIT_IO, "out of memory for a batch of %lld tokens", (long long)n_max);
    mp_engine_hooks hooks = {&cap, NULL, capture_routing, capture_hidden};
    mp_progress progress;
    mp_progress_start(&progress, "verify", (uint64_t)c.n_chunks, false, o->common.quiet || o->common.json);
    for (int64_t c0 = 0; !rc && c0 < c.n_chunks; c0 += per) {
        int n = c.n_chunks - c0 < per ? (int)(c.n_chunks - c0) : per;
        cap.n = (int64_t)n * c.ctx;
        cap.comparing = false;
        rc = mp_model_run_batch(&ref, &c, c0, n, tokens, ref_logits, &hooks, err);
        cap.comparing = true;
        if (!rc) rc = mp_model_run_batch(test, &c, c0, n, tokens, logits, &hooks, err);
        targets_of(tokens, n, c.ctx, c.first, c.last, targets);
        mp_ref_rows rows = {ref_logits, NULL, NULL, NULL, 0, NULL, NULL};
        if (!rc && mp_logit_metrics_add(&r->logits, &rows, logits, (int64_t)n * scored, vocab, targets) != 0)
            rc = mp_fail(err, MP_EXIT_IO, "out of memory");
        mp_progress_add(&progress, (uint64_t)n);
    }
    mp_progress_finish(&progress);
    r->have_layers = rc == MP_OK;
    r->ctx = c.ctx;
    r->chunks = c.n_chunks;
    if (!rc) {
        rc = mp_weight_errors_compute(&r->weights, &ref.src, &test->src, o->common.quiet || o->common.json, err);
        r->have_weights = rc == MP_OK;
    }
    free(cap.hidden);
    free(cap.routes);
    free(tokens);
    free(targets);
    free(ref_logits);
    free(logits);
    mp_chunks_free(&c);
    mp_model_run_close(&ref);
    return rc;
}

/* ---- against a reference file ---- */

static int check_reference_matches(const mp_run_options *o, mp_model_run *test, mp_ref_reader *ref, mp_error *err)
{
    char why[160];
    json_t *mine = mp_model_identity(mp_wsrc_config(&test->src));
    const char *differs = mp_model_identity_differs(json_object_get(ref->footer, "model"), mine, why, sizeof why);
    json_decref(mine);
    if (differs)
        return mp_fail(err, MP_EXIT_INPUT, "%s was recorded from another model than %s (%s)", o->reference, o->model,
                       why);
    json_int_t first = json_integer_value(json_object_get(ref->footer, "first_scored"));
    if (first < 0 || first + ref->n_scored >= ref->ctx)
        return mp_fail(err, MP_EXIT_INPUT, "%s: footer field first_scored %lld does not fit ctx %d", o->reference,
                       (long long)first, ref->ctx);
    return MP_OK;
}

/* With --text, the text must tokenize to the chunks the reference ran. */
static int check_same_text(const mp_chunks *text, int64_t chunk, const int32_t *tokens, int ctx,
                           const char *ref_path, mp_error *err)
{
    if (!text)
        return MP_OK;
    int32_t *mine = malloc((size_t)ctx * sizeof *mine);
    if (!mine)
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    bool same = chunk < text->n_chunks && text->ctx == ctx;
    if (same) {
        mp_chunks_get(text, chunk, mine);
        same = memcmp(mine, tokens, (size_t)ctx * sizeof *mine) == 0;
    }
    free(mine);
    if (!same)
        return mp_fail(err, MP_EXIT_INPUT, "the text differs from the one %s was recorded on (chunk %lld)", ref_path,
                       (long long)chunk);
    return MP_OK;
}

/* The reference rows of a whole batch, in one of the file's two layouts. */
typedef struct {
    float *lse, *lp, *max_lp;
    int32_t *ids;
    uint16_t *q;
} batch_rows;

static int alloc_rows(batch_rows *b, int64_t rows, int k, int vocab)
{
    b->lse = malloc((size_t)rows * sizeof *b->lse);
    if (k > 0) {
        b->ids = malloc((size_t)(rows * k) * sizeof *b->ids);
        b->lp = malloc((size_t)(rows * k) * sizeof *b->lp);
        return b->lse && b->ids && b->lp ? 0 : -1;
    }
    b->max_lp = malloc((size_t)rows * sizeof *b->max_lp);
    b->q = malloc((size_t)(rows * vocab) * sizeof *b->q);
    return b->lse && b->max_lp && b->q ? 0 : -1;
}

static void free_rows(batch_rows *b)
{
    free(b->lse);
    free(b->lp);
    free(b->max_lp);
    free(b->ids);
    free(b->q);
}

static int read_batch(mp_ref_reader *ref, const mp_chunks *text, int64_t c0, int n, mp_ref_chunk *chunk,
                      int32_t *tokens, batch_rows *b, mp_error *err)
{
    int scored = ref->n_scored, k = ref->k;
    for (int i = 0; i < n; i++) {
        int rc = mp_ref_read_chunk(ref, chunk, err);
        if (!rc) rc = check_same_text(text, c0 + i, chunk->tokens, ref->ctx, ref->path, err);
        if (rc)
            return rc;
        memcpy(tokens + (int64_t)i * ref->ctx, chunk->tokens, (size_t)ref->ctx * sizeof *tokens);
        memcpy(b->lse + (int64_t)i * scored, chunk->lse, (size_t)scored * sizeof *b->lse);
        if (k > 0) {
            memcpy(b->ids + (int64_t)i * scored * k, chunk->ids, (size_t)scored * (size_t)k * sizeof *b->ids);
            memcpy(b->lp + (int64_t)i * scored * k, chunk->logprobs, (size_t)scored * (size_t)k * sizeof *b->lp);
        } else {
            memcpy(b->max_lp + (int64_t)i * scored, chunk->max_lp, (size_t)scored * sizeof *b->max_lp);
            memcpy(b->q + (int64_t)i * scored * ref->vocab, chunk->q, (size_t)scored * (size_t)ref->vocab * sizeof *b->q);
        }
    }
    return MP_OK;
}

static int run_against_file(const mp_run_options *o, mp_model_run *test, mp_ref_reader *ref, const mp_chunks *text,
                            mp_verify_result *r, mp_error *err)
{
    int ctx = ref->ctx, scored = ref->n_scored, k = ref->k, vocab = test->vocab;
    int first = (int)json_integer_value(json_object_get(ref->footer, "first_scored"));
    int per = mp_batch_chunks(ctx);
    int64_t n_chunks = o->max_chunks > 0 && o->max_chunks < ref->n_chunks ? o->max_chunks : ref->n_chunks;
    mp_ref_chunk chunk = {0};
    int32_t *tokens = malloc((size_t)per * (size_t)ctx * sizeof *tokens);
    int32_t *targets = malloc((size_t)per * (size_t)scored * sizeof *targets);
    float *logits = malloc((size_t)per * (size_t)scored * (size_t)vocab * sizeof *logits);
    batch_rows b = {0};
    int rc = MP_OK;
    if (ref->vocab != vocab)
        return mp_fail(err, MP_EXIT_INPUT, "%s: vocabulary of %d, the pack has %d", ref->path, ref->vocab, vocab);
    if (mp_ref_chunk_alloc(&chunk, ctx, scored, k, vocab) != 0 || alloc_rows(&b, (int64_t)per * scored, k, vocab) ||
        !tokens || !targets || !logits)
        rc = mp_fail(err, MP_EXIT_IO, "out of memory");
    mp_engine_hooks hooks = {&r->layers, NULL, count_routing, NULL};
    mp_progress progress;
    mp_progress_start(&progress, "verify", (uint64_t)n_chunks, false, o->common.quiet || o->common.json);
    for (int64_t c0 = 0; !rc && c0 < n_chunks; c0 += per) {
        int n = n_chunks - c0 < per ? (int)(n_chunks - c0) : per;
        rc = read_batch(ref, text, c0, n, &chunk, tokens, &b, err);
        if (!rc)
            rc = mp_engine_forward(test->engine, tokens, n, ctx, first, first + scored, logits, &hooks, err);
        targets_of(tokens, n, ctx, first, first + scored, targets);
        mp_ref_rows rows = {NULL, b.lse, b.ids, b.lp, k, b.max_lp, b.q};
        if (!rc && mp_logit_metrics_add(&r->logits, &rows, logits, (int64_t)n * scored, vocab, targets) != 0)
            rc = mp_fail(err, MP_EXIT_IO, "out of memory");
        mp_progress_add(&progress, (uint64_t)n);
    }
    mp_progress_finish(&progress);
    r->ctx = ctx;
    r->top_k = k;
    r->chunks = n_chunks;
    mp_ref_chunk_free(&chunk);
    free(tokens);
    free(targets);
    free_rows(&b);
    free(logits);
    return rc;
}

/* The reference's own perplexity: from its footer when the whole file was used,
 * else from the stored 16-bit log-probs of the targets (top-K files: unknown). */
static int verify_against_file(const mp_run_options *o, mp_model_run *test, mp_verify_result *r, mp_error *err)
{
    mp_ref_reader ref;
    mp_chunks text = {0};
    int rc = mp_ref_open(&ref, o->reference, err);
    if (rc)
        return rc;
    rc = check_reference_matches(o, test, &ref, err);
    if (!rc && (o->text || o->tokens))
        rc = mp_chunks_load(&text, o->model, o->text, o->tokens, ref.ctx, 0, err);
    if (!rc)
        rc = run_against_file(o, test, &ref, o->text || o->tokens ? &text : NULL, r, err);
    if (!rc) {
        double nll = json_real_value(json_object_get(ref.footer, "nll_mean"));
        if (r->chunks == ref.n_chunks)
            r->logits.nll_ref = nll * (double)r->logits.n; /* exact, where the rows hold 16-bit or top-K values */
    }
    mp_chunks_free(&text);
    mp_ref_close(&ref);
    return rc;
}

static bool is_directory(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

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
    mp_verify_result r = {.pack = o.model, .reference = o.reference, .text = o.text, .act = o.act_name,
                          .max_kld = o.max_kld, .min_top1 = o.min_top1};
    r.reference_is_file = !is_directory(o.reference);
    if (!r.reference_is_file && !o.text && !o.tokens)
        return mp_fail(err, MP_EXIT_INPUT, "--reference %s is a model: give --text FILE to run both on", o.reference);
    double t0 = mp_now();
    mp_model_run test;
    rc = mp_model_run_open(&test, o.model, o.act, err);
    if (rc)
        return rc;
    const mp_config *cfg = mp_wsrc_config(&test.src);
    if (mp_layer_metrics_init(&r.layers, cfg->n_layers, cfg->routing.n_experts, cfg->routing.top_k) != 0)
        rc = mp_fail(err, MP_EXIT_IO, "out of memory");
    if (!rc)
        rc = r.reference_is_file ? verify_against_file(&o, &test, &r, err) : verify_against_checkpoint(&o, &test, &r, err);
    r.seconds = mp_now() - t0;
    if (!rc) {
        mp_logit_metrics_summary(&r.logits, &r.summary);
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
    mp_weight_errors_free(&r.weights);
    mp_layer_metrics_free(&r.layers);
    mp_logit_metrics_free(&r.logits);
    mp_model_run_close(&test);
    return rc;
}
