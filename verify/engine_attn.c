/* Grouped-query attention with RoPE in the HF "rotate_half" layout, optional
 * q/k RMSNorms (per head or over the whole projection), causal softmax. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"
#include "linalg.h"

/* cos/sin tables computed the way HF does in f32: inv_freq = 1 / theta^(2i/d),
 * angle = position * inv_freq. */
int eng_rope_init(mp_engine *e, int positions, mp_error *err)
{
    if (positions <= e->rope_positions)
        return MP_OK;
    int half = e->cfg->head_dim / 2;
    float *c = realloc(e->rope_cos, (size_t)positions * (size_t)half * sizeof *c);
    if (c)
        e->rope_cos = c;
    float *s = realloc(e->rope_sin, (size_t)positions * (size_t)half * sizeof *s);
    if (s)
        e->rope_sin = s;
    if (!c || !s)
        return mp_fail(err, MP_EXIT_IO, "out of memory for rope tables");
    for (int i = 0; i < half; i++) {
        float inv_freq = 1.0f / powf((float)e->cfg->rope_theta, (float)(2 * i) / (float)e->cfg->head_dim);
        for (int p = 0; p < positions; p++) {
            float angle = (float)p * inv_freq;
            e->rope_cos[p * half + i] = cosf(angle);
            e->rope_sin[p * half + i] = sinf(angle);
        }
    }
    e->rope_positions = positions;
    return MP_OK;
}

/* Rotates each head of each row (row t sits at position t % n_ctx). */
static void apply_rope(const mp_engine *e, float *x, int64_t n, int n_ctx, int heads)
{
    int hd = e->cfg->head_dim, half = hd / 2;
    for (int64_t t = 0; t < n; t++) {
        const float *c = e->rope_cos + (t % n_ctx) * half, *s = e->rope_sin + (t % n_ctx) * half;
        for (int h = 0; h < heads; h++) {
            float *v = x + (t * heads + h) * hd;
            for (int i = 0; i < half; i++) {
                float a = v[i], b = v[i + half];
                v[i] = a * c[i] - b * s[i];
                v[i + half] = b * c[i] + a * s[i];
            }
        }
    }
}

/* RMSNorm over each head (len = head_dim) or over each whole row. */
static void qk_norm(const mp_engine *e, float *x, int64_t n, int64_t width, const float *w, int64_t len)
{
    mp_rmsnorm_rows(x, n * (width / len), len, w, (float)e->cfg->rms_eps, x);
}

/* out[n_ctx, heads * hd] for one sequence and one head: softmax(q k^T / sqrt(hd)) v. */
static void attend_head(const mp_engine *e, const float *q, const float *k, const float *v, int n_ctx, int h,
                        int kv_h, float *scores, float *out)
{
    const mp_config *c = e->cfg;
    int hd = c->head_dim, qs = c->n_heads * hd, ks = c->n_kv_heads * hd;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n_ctx, n_ctx, hd, 1.0f / sqrtf((float)hd), q + h * hd, qs,
                k + kv_h * hd, ks, 0.0f, scores, n_ctx);
    for (int i = 0; i < n_ctx; i++) {
        float *row = scores + (int64_t)i * n_ctx;
        mp_softmax(row, i + 1);
        memset(row + i + 1, 0, (size_t)(n_ctx - i - 1) * sizeof *row);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n_ctx, hd, n_ctx, 1.0f, scores, n_ctx, v + kv_h * hd, ks,
                0.0f, out + h * hd, qs);
}

/* scores: one n_ctx x n_ctx buffer per thread. */
static void attend_all(const mp_engine *e, const float *q, const float *k, const float *v, int n_seq, int n_ctx,
                       float *scores, float *out)
{
    const mp_config *c = e->cfg;
    int group = c->n_heads / c->n_kv_heads;
    int64_t qs = (int64_t)c->n_heads * c->head_dim, ks = (int64_t)c->n_kv_heads * c->head_dim;
    #pragma omp parallel for schedule(dynamic)
    for (int job = 0; job < n_seq * c->n_heads; job++) {
        int s = job / c->n_heads, h = job % c->n_heads;
        int64_t row0 = (int64_t)s * n_ctx;
        float *mine = scores + (int64_t)omp_get_thread_num() * n_ctx * n_ctx;
        attend_head(e, q + row0 * qs, k + row0 * ks, v + row0 * ks, n_ctx, h, h / group, mine, out + row0 * qs);
    }
}

int eng_attention(mp_engine *e, const eng_layer *L, const float *h, int n_seq, int n_ctx, float *out,
                  const mp_engine_hooks *hooks, mp_error *err)
{
    const mp_config *c = e->cfg;
    int64_t n = (int64_t)n_seq * n_ctx, qw = L->q.rows, kw = L->k.rows;
    float *q = malloc((size_t)(n * qw) * sizeof *q), *k = malloc((size_t)(n * kw) * sizeof *k);
    float *v = malloc((size_t)(n * kw) * sizeof *v), *ctx = malloc((size_t)(n * qw) * sizeof *ctx);
    float *scores = malloc((size_t)omp_get_max_threads() * (size_t)n_ctx * (size_t)n_ctx * sizeof *scores);
    int rc = MP_OK;
    if (!q || !k || !v || !ctx || !scores) {
        rc = mp_fail(err, MP_EXIT_IO, "out of memory for attention over %lld tokens", (long long)n);
    } else {
        eng_linear_apply(e, &L->q, h, n, q, hooks);
        eng_linear_apply(e, &L->k, h, n, k, hooks);
        eng_linear_apply(e, &L->v, h, n, v, hooks);
        if (L->q_norm)
            qk_norm(e, q, n, qw, L->q_norm, L->q_norm_len);
        if (L->k_norm)
            qk_norm(e, k, n, kw, L->k_norm, L->k_norm_len);
        apply_rope(e, q, n, n_ctx, c->n_heads);
        apply_rope(e, k, n, n_ctx, c->n_kv_heads);
        attend_all(e, q, k, v, n_seq, n_ctx, scores, ctx);
        eng_linear_apply(e, &L->o, ctx, n, out, hooks);
    }
    free(q);
    free(k);
    free(v);
    free(ctx);
    free(scores);
    return rc;
}
