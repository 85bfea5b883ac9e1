/* MLA's attention (DeepSeek-V2/V3) calibrated in the order its data flows, each
 * linear on the rows the already quantized ones produce:
 *   1. q_a and kv_a (or q without q_lora_rank) read input_norm's output;
 *   2. q_b reads q_a_norm(q_a(h)), kv_b reads kv_a_norm of kv_a's latent slice;
 *   3. o reads the heads' outputs, whose values are kv_b's v rows.
 * A single pass over the unquantized attention (calib_attention.c's default) gives q_b,
 * kv_b and o Hessians of inputs the pack never produces, and AWQ there folded one
 * input_norm scale twice (q_a and kv_a read the same rows at different times). AWQ's
 * folds: input_norm into q_a and kv_a jointly, kv_b's v rows into o (searched on o
 * before kv_b is quantized), q_a_norm into q_b, kv_a_norm into kv_b. Used for AWQ: GPTQ
 * on these staged Hessians measured slightly worse than on the single pass's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calib_internal.h"

typedef struct {
    char q_a[64], q_b[64], q[64], kv_a[64], kv_b[64], o[64];
    char input_norm[64], q_a_norm[64], kv_a_norm[64];
    bool lora_q; /* q_a / q_b, else one q */
} mla_names;

static void name_layer(mla_names *m, int li, const mp_config *cfg)
{
    snprintf(m->q_a, sizeof m->q_a, "layers.%d.attn.q_a", li);
    snprintf(m->q_b, sizeof m->q_b, "layers.%d.attn.q_b", li);
    snprintf(m->q, sizeof m->q, "layers.%d.attn.q", li);
    snprintf(m->kv_a, sizeof m->kv_a, "layers.%d.attn.kv_a", li);
    snprintf(m->kv_b, sizeof m->kv_b, "layers.%d.attn.kv_b", li);
    snprintf(m->o, sizeof m->o, "layers.%d.attn.o", li);
    snprintf(m->input_norm, sizeof m->input_norm, "layers.%d.input_norm", li);
    snprintf(m->q_a_norm, sizeof m->q_a_norm, "layers.%d.attn.q_a_norm", li);
    snprintf(m->kv_a_norm, sizeof m->kv_a_norm, "layers.%d.attn.kv_a_norm", li);
    m->lora_q = cfg->q_lora_rank > 0;
}

static bool is_awq(const calib_run *c)
{
    return c->o->method == MP_METHOD_AWQ;
}

static int commit(calib_run *c, const char *name, const mp_hessian *H, mp_error *err)
{
    c->report->tensors++;
    return calib_commit(c, name, H, is_awq(c), err);
}

static void free_all(mp_hessian *H, int n)
{
    for (int i = 0; i < n; i++)
        mp_hessian_free(&H[i]);
}

/* Step 1: the linears reading the normed hidden state share one Hessian and, under
 * AWQ, one input_norm scale searched on both. */
static int stage_inputs(calib_run *c, int li, const mla_names *m, mp_error *err)
{
    const char *readers[2] = {m->lora_q ? m->q_a : m->q, m->kv_a};
    mp_hessian H[1] = {{0}};
    int rc = calib_attention_hessians(c, li, readers, 1, H, err);
    if (rc == MP_OK && is_awq(c))
        rc = calib_awq_norm(c, m->input_norm, readers, 2, &H[0], err);
    for (int i = 0; i < 2 && rc == MP_OK; i++)
        rc = commit(c, readers[i], &H[0], err);
    free_all(H, 1);
    return rc;
}

/* AWQ between kv_b and o: o's input channel (head h, d) is kv_b's row
 * h * (nope + v_dim) + nope + d. Searched on o's loss, folded as those kv_b rows / s
 * and o's columns * s. */
static int awq_kv_b_o(calib_run *c, const mla_names *m, const mp_hessian *Ho, mp_error *err)
{
    const mp_config *cfg = c->cfg;
    int64_t br, bc, orows, ocols;
    float *B = mp_engine_weight(c->engine, m->kv_b, &br, &bc), *O = mp_engine_weight(c->engine, m->o, &orows, &ocols);
    int nope = cfg->qk_nope_dim, vd = cfg->v_head_dim;
    if (!B || !O || ocols != (int64_t)cfg->n_heads * vd || br != (int64_t)cfg->n_heads * (nope + vd))
        return MP_OK;
    float *mean_abs = malloc((size_t)ocols * sizeof *mean_abs), *w_mean = malloc((size_t)ocols * sizeof *w_mean);
    float *s = malloc((size_t)ocols * sizeof *s);
    double losses[CALIB_AWQ_GRID] = {0};
    const char *names[1] = {m->o};
    int rc = mean_abs && w_mean && s ? MP_OK : mp_fail(err, MP_EXIT_IO, "out of memory");
    if (rc == MP_OK) {
        mp_hessian_mean_abs(Ho, mean_abs);
        rc = calib_awq_weight_mean(c, names, 1, ocols, w_mean, err);
    }
    if (rc == MP_OK)
        rc = calib_awq_losses(c, names, 1, Ho, mean_abs, w_mean, losses, err);
    if (rc == MP_OK) {
        calib_awq_pick(losses, mean_abs, w_mean, ocols, s);
        for (int64_t j = 0; j < ocols; j++) {
            int64_t row = j / vd * (nope + vd) + nope + j % vd;
            for (int64_t k = 0; k < bc; k++)
                B[row * bc + k] /= s[j];
        }
        for (int64_t r = 0; r < orows; r++)
            for (int64_t j = 0; j < ocols; j++)
                O[r * ocols + j] *= s[j];
    }
    free(mean_abs);
    free(w_mean);
    free(s);
    return rc;
}

/* Step 2: q_b and kv_b on the rows the quantized q_a and kv_a produce. */
static int stage_up_projections(calib_run *c, int li, const mla_names *m, mp_error *err)
{
    const char *names[3] = {m->kv_b, m->o, m->q_b};
    int n = m->lora_q ? 3 : 2;
    mp_hessian H[3] = {{0}};
    int rc = calib_attention_hessians(c, li, names, n, H, err);
    if (rc == MP_OK && is_awq(c))
        rc = awq_kv_b_o(c, m, &H[1], err);
    if (rc == MP_OK && is_awq(c))
        rc = calib_awq_norm(c, m->kv_a_norm, &names[0], 1, &H[0], err);
    if (rc == MP_OK && is_awq(c) && m->lora_q)
        rc = calib_awq_norm(c, m->q_a_norm, &names[2], 1, &H[2], err);
    if (rc == MP_OK)
        rc = commit(c, m->kv_b, &H[0], err);
    if (rc == MP_OK && m->lora_q)
        rc = commit(c, m->q_b, &H[2], err);
    free_all(H, 3);
    return rc;
}

/* Step 3: o on the heads' outputs of the quantized attention. */
static int stage_output(calib_run *c, int li, const mla_names *m, mp_error *err)
{
    const char *names[1] = {m->o};
    mp_hessian H[1] = {{0}};
    int rc = calib_attention_hessians(c, li, names, 1, H, err);
    if (rc == MP_OK)
        rc = commit(c, m->o, &H[0], err);
    free_all(H, 1);
    return rc;
}

int calib_mla_stage(calib_run *c, int li, mp_error *err)
{
    mla_names m;
    name_layer(&m, li, c->cfg);
    int rc = stage_inputs(c, li, &m, err);
    if (rc == MP_OK)
        rc = stage_up_projections(c, li, &m, err);
    if (rc == MP_OK)
        rc = stage_output(c, li, &m, err);
    return rc == MP_OK ? calib_attention_apply(c, li, err) : rc;
}
