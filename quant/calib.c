/* The calibration driver: tokens in, layers one after the other. */
#include "calib.h"

#include <stdlib.h>
#include <string.h>

#include "../engine/chunks.h"
#include "../engine/model_run.h"
#include "calib_internal.h"

static const char *const method_names[] = {"rtn", "mse", "hqq", "awq", "gptq"};

const char *mp_method_name(mp_quant_method m)
{
    return method_names[m];
}

int mp_method_parse(const char *text, mp_quant_method *m)
{
    for (int i = 0; i < (int)(sizeof method_names / sizeof method_names[0]); i++)
        if (strcmp(text, method_names[i]) == 0) {
            *m = (mp_quant_method)i;
            return 0;
        }
    return -1;
}

bool mp_method_needs_calib(mp_quant_method m)
{
    return m == MP_METHOD_AWQ || m == MP_METHOD_GPTQ;
}

void mp_calib_report_free(mp_calib_report *r)
{
    free(r->fallbacks);
    free(r->fits);
    memset(r, 0, sizeof *r);
}

static int by_layer_and_expert(const void *a, const void *b)
{
    const mp_calib_fallback *x = a, *y = b;
    return x->layer != y->layer ? (x->layer > y->layer) - (x->layer < y->layer)
                                : (x->expert > y->expert) - (x->expert < y->expert);
}

/* Distilling: the layer's sums, slot by slot in a fixed order. */
static void sum_fits(calib_run *c, int li)
{
    mp_calib_fit *f = &c->report->fits[li];
    for (int i = 0; i <= c->cfg->routing.n_experts; i++) {
        f->before += c->fit_slots[i].before;
        f->after += c->fit_slots[i].after;
        f->norm += c->fit_slots[i].norm;
        f->tensors += c->fit_slots[i].tensors;
        c->fit_slots[i] = (calib_fit_slot){0};
    }
}

static int run_layers(calib_run *c, mp_error *err)
{
    int rc = MP_OK;
    const char *label = c->teacher && !c->o->teacher->same_model ? "distill" : "calibrate";
    mp_progress_start(&c->progress, label, (uint64_t)c->cfg->n_layers, false, c->o->quiet);
    for (int li = 0; li < c->cfg->n_layers && rc == MP_OK; li++) {
        rc = mp_engine_layer_load(c->engine, li, err);
        if (rc == MP_OK && c->teacher)
            rc = mp_engine_layer_load(c->teacher, li, err);
        if (rc == MP_OK)
            rc = calib_attention_stage(c, li, err);
        if (rc == MP_OK)
            rc = calib_mlp_stage(c, li, err);
        if (c->teacher) {
            sum_fits(c, li);
            mp_engine_layer_release(c->teacher, li);
        }
        mp_engine_layer_release(c->engine, li);
        mp_progress_add(&c->progress, 1);
    }
    mp_progress_finish(&c->progress);
    return rc;
}

/* The teacher's stream from the same tokens, and the per-layer fit records. */
static int start_teacher(calib_run *c, mp_model_run *teacher, const mp_chunks *chunks, mp_error *err)
{
    const mp_config *tc = mp_wsrc_config(&teacher->src);
    if (tc->hidden != c->cfg->hidden || tc->n_layers != c->cfg->n_layers)
        return mp_fail(err, MP_EXIT_INPUT, "distill: teacher %s has %d layers of %d, the student %d of %d",
                       c->o->teacher->path, tc->n_layers, tc->hidden, c->cfg->n_layers, c->cfg->hidden);
    c->teacher = teacher->engine;
    c->report->fits = calloc((size_t)c->cfg->n_layers, sizeof *c->report->fits);
    c->fit_slots = calloc((size_t)c->cfg->routing.n_experts + 1, sizeof *c->fit_slots);
    if (!c->report->fits || !c->fit_slots)
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    c->report->n_fits = c->cfg->n_layers;
    return mp_embed_chunks(c->teacher, chunks, c->n_seq, c->ctx, c->cfg->hidden, &c->xt, err);
}

int mp_calibrate(const char *model_path, const mp_calib_options *o, mp_stage *stage, mp_calib_report *report,
                 mp_error *err)
{
    memset(report, 0, sizeof *report);
    double start = mp_now();
    mp_chunks chunks;
    int64_t max_seqs = o->calib_tokens / o->calib_ctx;
    if (max_seqs < 1)
        return mp_fail(err, MP_EXIT_INPUT, "--calib-tokens %lld is less than one sequence of --calib-ctx %d",
                       (long long)o->calib_tokens, o->calib_ctx);
    int rc = mp_chunks_load(&chunks, model_path, o->calib_path, o->tokens_path, o->calib_ctx, max_seqs, err);
    if (rc != MP_OK)
        return rc;
    /* GPTQ fits every linear to the original model's output at the same tokens
     * (W x_original) from the quantized stream's inputs: the original model is its teacher. */
    mp_calib_teacher original = {.path = model_path, .keep_router = true, .same_model = true};
    mp_calib_options with_teacher = *o;
    if (!o->teacher && o->method == MP_METHOD_GPTQ && !o->gptq_layer_target) {
        with_teacher.teacher = &original;
        o = &with_teacher;
    }
    mp_model_run run, teacher = {0};
    rc = mp_model_run_open(&run, model_path, MP_ACT_F32, o->allow_nonfinite, err);
    if (rc == MP_OK && o->teacher && (rc = mp_model_run_open(&teacher, o->teacher->path, MP_ACT_F32, o->allow_nonfinite, err)) != MP_OK)
        mp_model_run_close(&run);
    if (rc != MP_OK) {
        mp_chunks_free(&chunks);
        return rc;
    }
    calib_run c = {.o = o, .engine = run.engine, .cfg = mp_wsrc_config(&run.src), .stage = stage, .report = report};
    c.n_seq = (int)chunks.n_chunks;
    c.ctx = o->calib_ctx;
    c.n = (int64_t)c.n_seq * c.ctx;
    c.batch_seqs = mp_batch_chunks(c.ctx);
    /* GPTQModel's default: a module seeing under 0.5 % of the tokens is not calibrated. */
    c.min_tokens = o->min_tokens >= 0 ? o->min_tokens : c.n / 200;
    report->tokens = c.n;
    report->sequences = c.n_seq;
    rc = mp_embed_chunks(c.engine, &chunks, c.n_seq, c.ctx, c.cfg->hidden, &c.x, err);
    if (rc == MP_OK && o->teacher)
        rc = start_teacher(&c, &teacher, &chunks, err);
    if (rc == MP_OK)
        rc = run_layers(&c, err);
    free(c.x);
    free(c.xt);
    free(c.fit_slots);
    if (o->teacher)
        mp_model_run_close(&teacher);
    mp_model_run_close(&run);
    mp_chunks_free(&chunks);
    /* experts fall back from parallel threads: the report lists them in order */
    if (report->n_fallbacks > 1)
        qsort(report->fallbacks, (size_t)report->n_fallbacks, sizeof *report->fallbacks, by_layer_and_expert);
    report->seconds = mp_now() - start;
    return rc;
}
