/* Measuring one pack against a reference, the part verify and compare share: the
 * reference is a reference file (moepack reference) or the original checkpoint, run
 * live beside the pack (which adds per-layer, router and per-tensor weight errors). */
#include "verify_run.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../core/progress.h"
#include "../engine/model_run.h"
#include "../formats/reference.h"

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

/* The pack must be the model the reference is (or was recorded from): the one check
 * and message verify and compare's up-front check share. */
static int same_model(json_t *ref_identity, const mp_weight_source *pack, const mp_run_options *o, bool ref_is_file,
                      mp_error *err)
{
    char why[160];
    json_t *mine = mp_model_identity(mp_wsrc_config(pack));
    const char *differs = mp_model_identity_differs(ref_identity, mine, mp_wsrc_pruned(pack), why, sizeof why);
    json_decref(mine);
    if (differs && ref_is_file)
        return mp_fail(err, MP_EXIT_INPUT, "%s was recorded from another model than %s (%s)", o->reference, o->model,
                       why);
    if (differs)
        return mp_fail(err, MP_EXIT_INPUT, "%s and %s are different models (%s)", o->reference, o->model, why);
    return MP_OK;
}

/* ---- against the original checkpoint, run live ---- */

static int verify_against_checkpoint(const mp_run_options *o, const char *what, mp_model_run *test, mp_verify_result *r,
                                     mp_error *err)
{
    mp_model_run ref;
    mp_chunks c;
    int rc = mp_model_run_open(&ref, o->reference, MP_ACT_F32, o->allow_nonfinite, err);
    if (rc)
        return rc;
    const mp_config *cfg = mp_wsrc_config(&test->src);
    json_t *ref_identity = mp_model_identity(mp_wsrc_config(&ref.src));
    rc = same_model(ref_identity, &test->src, o, false, err);
    json_decref(ref_identity);
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
    mp_progress_start(&progress, what, (uint64_t)c.n_chunks, false, o->common.quiet || o->common.json);
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

/* The reader checked the file against itself; here it meets the pack: the same
 * model identity, then vocabulary and (with a text, whose tokenizer gives it) BOS. */
static int check_reference_matches(const mp_run_options *o, mp_model_run *test, mp_ref_reader *ref, int bos,
                                   mp_error *err)
{
    int rc = same_model(json_object_get(ref->footer, "model"), &test->src, o, true, err);
    if (!rc) rc = mp_ref_check_model(ref, test->vocab, bos, err);
    return rc;
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

static int run_against_file(const mp_run_options *o, const char *what, mp_model_run *test, mp_ref_reader *ref,
                            const mp_chunks *text, mp_verify_result *r, mp_error *err)
{
    int ctx = ref->ctx, scored = ref->n_scored, k = ref->k, vocab = test->vocab, first = ref->first_scored;
    int per = mp_batch_chunks(ctx);
    int64_t n_chunks = o->max_chunks > 0 && o->max_chunks < ref->n_chunks ? o->max_chunks : ref->n_chunks;
    mp_ref_chunk chunk = {0};
    int32_t *tokens = malloc((size_t)per * (size_t)ctx * sizeof *tokens);
    int32_t *targets = malloc((size_t)per * (size_t)scored * sizeof *targets);
    float *logits = malloc((size_t)per * (size_t)scored * (size_t)vocab * sizeof *logits);
    batch_rows b = {0};
    int rc = MP_OK;
    if (mp_ref_reader_chunk_alloc(ref, &chunk) != 0 || alloc_rows(&b, (int64_t)per * scored, k, vocab) ||
        !tokens || !targets || !logits)
        rc = mp_fail(err, MP_EXIT_IO, "out of memory");
    mp_engine_hooks hooks = {&r->layers, NULL, count_routing, NULL};
    mp_progress progress;
    mp_progress_start(&progress, what, (uint64_t)n_chunks, false, o->common.quiet || o->common.json);
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
static int verify_against_file(const mp_run_options *o, const char *what, mp_model_run *test, mp_verify_result *r,
                               mp_error *err)
{
    mp_ref_reader ref;
    mp_chunks text = {0};
    int rc = mp_ref_open(&ref, o->reference, err);
    if (rc)
        return rc;
    if (o->text || o->tokens)
        rc = mp_chunks_load(&text, o->model, o->text, o->tokens, ref.ctx, 0, err);
    if (!rc)
        rc = check_reference_matches(o, test, &ref, o->text || o->tokens ? text.bos : MP_REF_BOS_UNKNOWN, err);
    if (!rc)
        rc = run_against_file(o, what, test, &ref, o->text || o->tokens ? &text : NULL, r, err);
    if (!rc) {
        double nll = json_number_value(json_object_get(ref.footer, "nll_mean"));
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

/* Which kind of reference o names; a checkpoint needs a text to run both models on. */
static int reference_kind(const mp_run_options *o, bool *is_file, mp_error *err)
{
    *is_file = !is_directory(o->reference);
    if (!*is_file && !o->text && !o->tokens)
        return mp_fail(err, MP_EXIT_INPUT, "--reference %s is a model: give --text FILE to run both on", o->reference);
    return MP_OK;
}

int mp_verify_measure(const mp_run_options *o, const char *what, mp_verify_result *r, mp_error *err)
{
    *r = (mp_verify_result){.pack = o->model, .reference = o->reference, .text = o->text, .act = o->act_name,
                            .max_kld = o->max_kld, .min_top1 = o->min_top1};
    int rc = reference_kind(o, &r->reference_is_file, err);
    if (rc)
        return rc;
    double t0 = mp_now();
    mp_model_run test;
    rc = mp_model_run_open(&test, o->model, o->act, o->allow_nonfinite, err);
    if (rc)
        return rc;
    const mp_config *cfg = mp_wsrc_config(&test.src);
    if (mp_layer_metrics_init(&r->layers, cfg->n_layers, cfg->routing.n_experts, cfg->routing.top_k) != 0)
        rc = mp_fail(err, MP_EXIT_IO, "out of memory");
    if (!rc)
        rc = r->reference_is_file ? verify_against_file(o, what, &test, r, err)
                                  : verify_against_checkpoint(o, what, &test, r, err);
    r->seconds = mp_now() - t0;
    if (!rc)
        mp_logit_metrics_summary(&r->logits, &r->summary);
    mp_model_run_close(&test);
    return rc;
}

/* Opens only the pack's weight source and the reference's footer or checkpoint
 * headers: no engine, no text. */
int mp_verify_check_model(const mp_run_options *o, mp_error *err)
{
    bool is_file;
    int rc = reference_kind(o, &is_file, err);
    mp_weight_source pack, ckpt;
    mp_ref_reader ref;
    if (rc || (rc = mp_wsrc_open(&pack, o->model, err)) != MP_OK)
        return rc;
    if (is_file && (rc = mp_ref_open(&ref, o->reference, err)) == MP_OK) {
        rc = same_model(json_object_get(ref.footer, "model"), &pack, o, true, err);
        if (!rc) rc = mp_ref_check_model(&ref, mp_wsrc_config(&pack)->vocab, MP_REF_BOS_UNKNOWN, err);
        mp_ref_close(&ref);
    } else if (!is_file && (rc = mp_wsrc_open(&ckpt, o->reference, err)) == MP_OK) {
        json_t *identity = mp_model_identity(mp_wsrc_config(&ckpt));
        rc = same_model(identity, &pack, o, false, err);
        json_decref(identity);
        mp_wsrc_close(&ckpt);
    }
    mp_wsrc_close(&pack);
    return rc;
}

void mp_verify_result_free(mp_verify_result *r)
{
    mp_weight_errors_free(&r->weights);
    mp_layer_metrics_free(&r->layers);
    mp_logit_metrics_free(&r->logits);
}
