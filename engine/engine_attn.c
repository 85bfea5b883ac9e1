/* Grouped-query attention: q/k/v (with biases when present), optional q/k
 * RMSNorms (per head or over the whole projection), RoPE on the first
 * eng_rope_dim values of each head (all of it, or GLM-4.5's partial rotary) in the
 * "rotate_half" layout, and a causal softmax, optionally limited to a sliding
 * window and with GPT-OSS's per-head sink logit. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"
#include "linalg.h"

/* RMSNorm over each head (len = head_dim) or over each whole row. */
static void qk_norm(const mp_engine *e, float *x, int64_t n, int64_t width, const float *w, int64_t len)
{
    mp_rmsnorm_rows(x, n * (width / len), len, w, (float)e->cfg->rms_eps, x);
}

/* Softmax over row[lo .. hi) with an optional sink logit that takes its share of
 * the denominator but attends to nothing (HF appends it as a column, softmaxes,
 * then drops it); everything outside the range is zeroed. */
static void masked_softmax(float *row, int n, int lo, int hi, const float *sink)
{
    float max = sink ? *sink : row[lo];
    for (int j = lo; j < hi; j++)
        max = row[j] > max ? row[j] : max;
    float sum = sink ? expf(*sink - max) : 0;
    for (int j = lo; j < hi; j++) {
        row[j] = expf(row[j] - max);
        sum += row[j];
    }
    for (int j = lo; j < hi; j++)
        row[j] /= sum;
    memset(row, 0, (size_t)lo * sizeof *row);
    memset(row + hi, 0, (size_t)(n - hi) * sizeof *row);
}

/* One sequence, one head: out rows (stride heads * v_dim) = softmax(q k^T) v. */
static void attend_head(const eng_attn_shape *a, const float *q, const float *k, const float *v, int n_ctx, int h,
                        float *scores, float *out)
{
    int kv_h = h / (a->heads / a->kv_heads);
    int qs = a->heads * a->qk_dim, ks = a->kv_heads * a->qk_dim, vs = a->kv_heads * a->v_dim;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n_ctx, n_ctx, a->qk_dim, a->scale, q + h * a->qk_dim, qs,
                k + kv_h * a->qk_dim, ks, 0.0f, scores, n_ctx);
    for (int i = 0; i < n_ctx; i++) {
        int lo = a->window > 0 && i - a->window + 1 > 0 ? i - a->window + 1 : 0;
        masked_softmax(scores + (int64_t)i * n_ctx, n_ctx, lo, i + 1, a->sinks ? &a->sinks[h] : NULL);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n_ctx, a->v_dim, n_ctx, 1.0f, scores, n_ctx,
                v + kv_h * a->v_dim, vs, 0.0f, out + h * a->v_dim, a->heads * a->v_dim);
}

/* Every (sequence, head) pair is an independent job writing its own output
 * columns, so the result does not depend on the thread count. */
int eng_attend(const eng_attn_shape *a, const float *q, const float *k, const float *v, int n_seq, int n_ctx,
               float *out)
{
    float *scores = malloc((size_t)omp_get_max_threads() * (size_t)n_ctx * (size_t)n_ctx * sizeof *scores);
    if (!scores)
        return MP_EXIT_IO;
    int64_t qs = (int64_t)a->heads * a->qk_dim, ks = (int64_t)a->kv_heads * a->qk_dim;
    int64_t vs = (int64_t)a->kv_heads * a->v_dim, os = (int64_t)a->heads * a->v_dim;
    #pragma omp parallel for schedule(dynamic)
    for (int job = 0; job < n_seq * a->heads; job++) {
        int s = job / a->heads, h = job % a->heads;
        int64_t row0 = (int64_t)s * n_ctx;
        float *mine = scores + (int64_t)omp_get_thread_num() * n_ctx * n_ctx;
        attend_head(a, q + row0 * qs, k + row0 * ks, v + row0 * vs, n_ctx, h, mine, out + row0 * os);
    }
    free(scores);
    return MP_OK;
}

static eng_attn_shape gqa_shape(const mp_engine *e, const eng_layer *L, int li)
{
    const mp_config *c = e->cfg;
    bool sliding = c->sliding && c->sliding[li] && c->sliding_window > 0;
    return (eng_attn_shape){.heads = c->n_heads, .kv_heads = c->n_kv_heads, .qk_dim = c->head_dim,
                            .v_dim = c->head_dim, .scale = 1.0f / sqrtf((float)c->head_dim),
                            .window = sliding ? c->sliding_window : 0, .sinks = L->sinks};
}

int eng_attention(mp_engine *e, int li, const float *h, int n_seq, int n_ctx, float *out,
                  const mp_engine_hooks *hooks, mp_error *err)
{
    const mp_config *c = e->cfg;
    const eng_layer *L = &e->layers[li];
    if (L->kv_a.w)
        return eng_mla_attention(e, L, h, n_seq, n_ctx, out, hooks, err);
    int64_t n = (int64_t)n_seq * n_ctx, qw = L->q.rows, kw = L->k.rows;
    float *q = malloc((size_t)(n * qw) * sizeof *q), *k = malloc((size_t)(n * kw) * sizeof *k);
    float *v = malloc((size_t)(n * kw) * sizeof *v), *ctx = malloc((size_t)(n * qw) * sizeof *ctx);
    int rc = !q || !k || !v || !ctx ? MP_EXIT_IO : MP_OK;
    if (!rc) {
        eng_linear_apply(e, &L->q, h, n, q, hooks);
        eng_linear_apply(e, &L->k, h, n, k, hooks);
        eng_linear_apply(e, &L->v, h, n, v, hooks);
        if (L->q_norm)
            qk_norm(e, q, n, qw, L->q_norm, L->q_norm_len);
        if (L->k_norm)
            qk_norm(e, k, n, kw, L->k_norm, L->k_norm_len);
        eng_rope_apply(e, q, n, n_ctx, c->n_heads, c->head_dim, 0, false);
        eng_rope_apply(e, k, n, n_ctx, c->n_kv_heads, c->head_dim, 0, false);
        eng_attn_shape shape = gqa_shape(e, L, li);
        rc = eng_attend(&shape, q, k, v, n_seq, n_ctx, ctx);
    }
    if (!rc)
        eng_linear_apply(e, &L->o, ctx, n, out, hooks);
    free(q);
    free(k);
    free(v);
    free(ctx);
    if (rc)
        return mp_fail(err, MP_EXIT_IO, "out of memory for attention over %lld tokens", (long long)n);
    return MP_OK;
}
