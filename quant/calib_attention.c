/* The attention of one layer: its linears' input statistics from the calibration
 * tokens, their quantization (AWQ first moves a scale into input_norm for the
 * linears that read it), then the quantized attention applied to the stream. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calib_internal.h"

enum { MAX_LINEARS = 16 };

/* Linears reading the same rows (q, k and v read one normed input) share one
 * accumulator: the engine hands them the same buffer one after the other. */
typedef struct {
    char names[MAX_LINEARS][96];
    int acc_of[MAX_LINEARS];
    int n_names;
    mp_hessian acc[MAX_LINEARS];
    int n_acc;
    const float *last_x;
    int last_acc;
    mp_error err;
    calib_teacher_capture *teacher; /* distilling: the teacher's rows of the batch */
    calib_teacher_sums tsum[MAX_LINEARS];
} attn_stats;

static int acc_for(attn_stats *s, const char *name, const float *x, int64_t cols)
{
    for (int i = 0; i < s->n_names; i++)
        if (strcmp(s->names[i], name) == 0)
            return s->acc_of[i];
    if (s->n_names == MAX_LINEARS)
        return -1;
    int a = s->n_acc;
    if (x == s->last_x && s->last_acc >= 0 && s->acc[s->last_acc].cols == cols)
        a = s->last_acc;
    else if (mp_hessian_init(&s->acc[s->n_acc++], cols, &s->err) != MP_OK)
        return -1;
    else if (s->teacher && calib_teacher_sums_init(&s->tsum[a], cols, &s->err) != MP_OK)
        return -1;
    snprintf(s->names[s->n_names], sizeof s->names[0], "%s", name);
    s->acc_of[s->n_names++] = a;
    return a;
}

static void on_input(void *user, const char *name, const float *x, int64_t n, int64_t cols)
{
    attn_stats *s = user;
    if (s->err.code != MP_OK)
        return;
    int a = acc_for(s, name, x, cols);
    if (a < 0) {
        if (s->err.code == MP_OK)
            mp_fail(&s->err, MP_EXIT_INPUT, "calibration: more than %d attention linears", MAX_LINEARS);
        return;
    }
    if ((x != s->last_x || a != s->last_acc) && s->teacher) {
        const float *xt = calib_teacher_rows(s->teacher, name, n, cols);
        if (!xt)
            mp_fail(&s->err, MP_EXIT_INPUT, "distill: the teacher has no %lld rows of %lld entering %s",
                    (long long)n, (long long)cols, name);
        else
            calib_teacher_sums_add(&s->tsum[a], xt, x, NULL, n, &s->err);
    }
    if (x != s->last_x || a != s->last_acc)
        mp_hessian_add(&s->acc[a], x, n, &s->err);
    s->last_x = x;
    s->last_acc = a;
}

/* Distilling: the teacher's attention over a batch, on a copy capturing its linears'
 * rows for the student's statistics (s set), or in place (the stream moves on). */
static int teacher_attention(calib_run *c, int li, int s0, int n_seq, attn_stats *s, float *copy, mp_error *err)
{
    int64_t d = c->cfg->hidden;
    float *xt = c->xt + (int64_t)s0 * c->ctx * d;
    if (!s)
        return mp_engine_attention_step(c->teacher, li, xt, n_seq, c->ctx, NULL, err);
    mp_engine_hooks capture = {.user = s->teacher, .linear_input = calib_teacher_capture_hook};
    calib_teacher_capture_reset(s->teacher);
    memcpy(copy, xt, (size_t)((int64_t)n_seq * c->ctx * d) * sizeof *xt);
    int rc = mp_engine_attention_step(c->teacher, li, copy, n_seq, c->ctx, &capture, err);
    if (rc == MP_OK && s->teacher->err.code != MP_OK)
        rc = mp_fail(err, s->teacher->err.code, "%s", s->teacher->err.msg);
    s->last_x = NULL; /* a new batch: the student's buffers may be reused */
    return rc;
}

/* Runs the attention over every batch: on a copy of the stream (statistics only)
 * or in place (the stream moves on); distilling, the teacher's too. */
static int run_attention(calib_run *c, int li, const mp_engine_hooks *hooks, bool in_place, mp_error *err)
{
    attn_stats *s = hooks ? hooks->user : NULL;
    int64_t d = c->cfg->hidden, per = (int64_t)c->batch_seqs * c->ctx;
    float *copy = in_place ? NULL : malloc((size_t)(per * d) * sizeof *copy);
    float *tcopy = !in_place && c->teacher ? malloc((size_t)(per * d) * sizeof *tcopy) : NULL;
    int rc = (!in_place && !copy) || (!in_place && c->teacher && !tcopy)
                 ? mp_fail(err, MP_EXIT_IO, "out of memory for a calibration batch") : MP_OK;
    for (int s0 = 0; s0 < c->n_seq && rc == MP_OK; s0 += c->batch_seqs) {
        int n_seq = c->n_seq - s0 < c->batch_seqs ? c->n_seq - s0 : c->batch_seqs;
        float *x = c->x + (int64_t)s0 * c->ctx * d;
        if (copy)
            x = memcpy(copy, x, (size_t)((int64_t)n_seq * c->ctx * d) * sizeof *x);
        if (c->teacher)
            rc = teacher_attention(c, li, s0, n_seq, in_place ? NULL : s, tcopy, err);
        if (rc == MP_OK)
            rc = mp_engine_attention_step(c->engine, li, x, n_seq, c->ctx, hooks, err);
    }
    free(copy);
    free(tcopy);
    return rc;
}

/* The linears reading input_norm's output: the group holding q (or MLA's q_a / kv_a). */
static bool reads_input_norm(const char *name, int li)
{
    const char *readers[] = {"attn.q", "attn.q_a", "attn.kv_a"};
    for (size_t i = 0; i < sizeof readers / sizeof readers[0]; i++) {
        char full[96];
        snprintf(full, sizeof full, "layers.%d.%s", li, readers[i]);
        if (strcmp(name, full) == 0)
            return true;
    }
    return false;
}

/* The v row feeding o's input column j: head j / hd reads kv head (j / hd) / per_kv. */
static int64_t v_row_of(int64_t j, int hd, int per_kv)
{
    return (j / hd / per_kv) * hd + j % hd;
}

static void expand_to_o(const float *sv, float *so, int64_t ocols, int hd, int per_kv)
{
    for (int64_t j = 0; j < ocols; j++)
        so[j] = sv[v_row_of(j, hd, per_kv)];
}

/* AWQ between v and o (GQA): o's input channel (head h, d) is v's output row
 * (kv head h / (heads / kv_heads), d), so one scale per v row serves every query
 * head sharing it. Searched on o's loss, folded as v rows / s and o columns * s. */
static int awq_v_o(calib_run *c, int li, mp_hessian *H, mp_error *err)
{
    char v[64], o[64], vb[72];
    snprintf(v, sizeof v, "layers.%d.attn.v", li);
    snprintf(o, sizeof o, "layers.%d.attn.o", li);
    snprintf(vb, sizeof vb, "%s.bias", v);
    int64_t vr, vc, orows, ocols, br, bc;
    float *V = mp_engine_weight(c->engine, v, &vr, &vc), *O = mp_engine_weight(c->engine, o, &orows, &ocols);
    float *bias = mp_engine_weight(c->engine, vb, &br, &bc);
    int hd = c->cfg->head_dim, per_kv = c->cfg->n_kv_heads > 0 ? c->cfg->n_heads / c->cfg->n_kv_heads : 0;
    if (!V || !O || per_kv < 1 || vr * per_kv != ocols || vr % hd != 0)
        return MP_OK;
    float *mean_o = malloc((size_t)ocols * sizeof *mean_o), *mean_v = calloc((size_t)vr, sizeof *mean_v);
    float *w_mean = calloc((size_t)vr, sizeof *w_mean), *sv = malloc((size_t)vr * sizeof *sv);
    float *so = malloc((size_t)ocols * sizeof *so), *w_mean_o = malloc((size_t)ocols * sizeof *w_mean_o);
    double losses[CALIB_AWQ_GRID] = {0};
    const char *names[1] = {o};
    int rc = mean_o && mean_v && w_mean && sv && so && w_mean_o ? MP_OK : mp_fail(err, MP_EXIT_IO, "out of memory");
    if (rc == MP_OK)
        rc = calib_awq_weight_mean(c, names, 1, ocols, w_mean_o, err);
    if (rc == MP_OK) {
        mp_hessian_mean_abs(H, mean_o);
        for (int64_t j = 0; j < ocols; j++) {
            int64_t row = v_row_of(j, hd, per_kv);
            mean_v[row] += mean_o[j] / (float)per_kv;
            w_mean[row] += w_mean_o[j] / (float)per_kv;
        }
        for (int k = 0; k < CALIB_AWQ_GRID; k++) {
            calib_awq_pick_one(k, mean_v, w_mean, vr, sv);
            expand_to_o(sv, so, ocols, hd, per_kv);
            losses[k] = calib_awq_loss_of(c, o, so, H);
        }
        calib_awq_pick(losses, mean_v, w_mean, vr, sv);
        for (int64_t r = 0; r < vr; r++) {
            for (int64_t j = 0; j < vc; j++)
                V[r * vc + j] /= sv[r];
            if (bias)
                bias[r] /= sv[r];
        }
        expand_to_o(sv, so, ocols, hd, per_kv);
        for (int64_t r = 0; r < orows; r++)
            for (int64_t j = 0; j < ocols; j++)
                O[r * ocols + j] *= so[j];
        mp_hessian_divide_inputs(H, so);
    }
    free(mean_o);
    free(mean_v);
    free(w_mean);
    free(sv);
    free(so);
    free(w_mean_o);
    return rc;
}

/* AWQ for the group of accumulator a when it reads input_norm: search, then fold. */
static int awq_group(calib_run *c, int li, attn_stats *s, int a, mp_error *err)
{
    const char *members[MAX_LINEARS];
    int n = 0;
    bool folds = false;
    char o[64];
    snprintf(o, sizeof o, "layers.%d.attn.o", li);
    for (int i = 0; i < s->n_names; i++)
        if (s->acc_of[i] == a) {
            members[n++] = s->names[i];
            folds |= reads_input_norm(s->names[i], li);
            if (strcmp(s->names[i], o) == 0)
                return awq_v_o(c, li, &s->acc[a], err);
        }
    if (!folds)
        return MP_OK;
    char norm[64];
    snprintf(norm, sizeof norm, "layers.%d.input_norm", li);
    return calib_awq_norm(c, norm, members, n, &s->acc[a], err);
}

int calib_awq_norm(calib_run *c, const char *norm, const char *const *members, int n, mp_hessian *H, mp_error *err)
{
    int64_t cols = H->cols;
    float *mean_abs = malloc((size_t)cols * sizeof *mean_abs), *scale = malloc((size_t)cols * sizeof *scale);
    float *w_mean = malloc((size_t)cols * sizeof *w_mean);
    double losses[CALIB_AWQ_GRID] = {0};
    int rc = mean_abs && scale && w_mean ? MP_OK : mp_fail(err, MP_EXIT_IO, "out of memory");
    if (rc == MP_OK) {
        mp_hessian_mean_abs(H, mean_abs);
        rc = calib_awq_weight_mean(c, members, n, cols, w_mean, err);
    }
    if (rc == MP_OK)
        rc = calib_awq_losses(c, members, n, H, mean_abs, w_mean, losses, err);
    if (rc == MP_OK) {
        calib_awq_pick(losses, mean_abs, w_mean, cols, scale);
        rc = calib_fold_norm(c, norm, members, n, scale, err);
    }
    if (rc == MP_OK)
        mp_hessian_divide_inputs(H, scale);
    free(mean_abs);
    free(scale);
    free(w_mean);
    return rc;
}

/* Distilling: one statistics pass per group of linears reading the same rows, in the
 * order the attention reads them (q, k, v; then o), each group fitted on the rows the
 * groups fitted before it produce. Returns the number of groups in *n_groups. */
static int distill_group(calib_run *c, int li, int group, int *n_groups, mp_error *err)
{
    attn_stats *s = calloc(1, sizeof *s);
    if (!s)
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    s->last_acc = -1;
    calib_teacher_capture capture = {0};
    s->teacher = &capture;
    mp_engine_hooks hooks = {.user = s, .linear_input = on_input};
    int rc = run_attention(c, li, &hooks, false, err);
    if (rc == MP_OK && s->err.code != MP_OK)
        rc = mp_fail(err, s->err.code, "%s", s->err.msg);
    for (int i = 0; rc == MP_OK && i < s->n_names; i++)
        if (s->acc_of[i] == group) {
            rc = calib_distill_commit(c, s->names[i], s->names[i], &s->acc[group], &s->tsum[group], 0, err);
            c->report->tensors++;
        }
    *n_groups = s->n_acc;
    for (int a = 0; a < s->n_acc; a++) {
        mp_hessian_free(&s->acc[a]);
        calib_teacher_sums_free(&s->tsum[a]);
    }
    calib_teacher_capture_free(&capture);
    free(s);
    return rc;
}

int calib_attention_hessians(calib_run *c, int li, const char *const *names, int n, mp_hessian *H, mp_error *err)
{
    attn_stats *s = calloc(1, sizeof *s);
    if (!s)
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    s->last_acc = -1;
    mp_engine_hooks hooks = {.user = s, .linear_input = on_input};
    int rc = run_attention(c, li, &hooks, false, err);
    if (rc == MP_OK && s->err.code != MP_OK)
        rc = mp_fail(err, s->err.code, "%s", s->err.msg);
    for (int k = 0; rc == MP_OK && k < n; k++) {
        int i = 0;
        while (i < s->n_names && strcmp(s->names[i], names[k]) != 0)
            i++;
        rc = i < s->n_names ? mp_hessian_copy(&s->acc[s->acc_of[i]], &H[k], err)
                            : mp_fail(err, MP_EXIT_INPUT, "calibration: attention of layer %d never reads %s", li,
                                      names[k]);
    }
    for (int a = 0; a < s->n_acc; a++)
        mp_hessian_free(&s->acc[a]);
    free(s);
    return rc;
}

int calib_attention_apply(calib_run *c, int li, mp_error *err)
{
    return run_attention(c, li, NULL, true, err);
}

int calib_attention_stage(calib_run *c, int li, mp_error *err)
{
    int rc = MP_OK;
    /* AWQ's folds on MLA need its data-flow order; GPTQ measured better (moby-dsv3 KLD
     * 0.00617 against 0.00633) on the Hessians of the unquantized attention, as GQA. */
    if (!c->teacher && c->cfg->kv_lora_rank > 0 && c->o->method == MP_METHOD_AWQ)
        return calib_mla_stage(c, li, err);
    for (int g = 0, n_groups = 1; c->teacher && rc == MP_OK && g < n_groups; g++)
        rc = distill_group(c, li, g, &n_groups, err);
    if (c->teacher)
        return rc == MP_OK ? run_attention(c, li, NULL, true, err) : rc;
    attn_stats *s = calloc(1, sizeof *s);
    if (!s)
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    s->last_acc = -1;
    mp_engine_hooks hooks = {.user = s, .linear_input = on_input};
    rc = run_attention(c, li, &hooks, false, err);
    if (rc == MP_OK && s->err.code != MP_OK)
        rc = mp_fail(err, s->err.code, "%s", s->err.msg);
    for (int a = 0; rc == MP_OK && c->o->method == MP_METHOD_AWQ && a < s->n_acc; a++)
        rc = awq_group(c, li, s, a, err);
    for (int i = 0; rc == MP_OK && i < s->n_names; i++) {
        rc = calib_commit(c, s->names[i], &s->acc[s->acc_of[i]], c->o->method == MP_METHOD_AWQ, err);
        c->report->tensors++;
    }
    for (int a = 0; a < s->n_acc; a++)
        mp_hessian_free(&s->acc[a]);
    free(s);
    return rc == MP_OK ? run_attention(c, li, NULL, true, err) : rc;
}
