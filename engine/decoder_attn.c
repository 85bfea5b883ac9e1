/* Attention of new tokens over the KV cache. GQA as engine_attn.c (q/k norms,
 * RoPE, sliding window, sinks); DeepSeek's MLA in its absorbed form: the cache
 * holds per position only the normed latent c (kv_lora_rank) and the rotated rope
 * key (qk_rope_dim), and per head
 *     score_j = scale * ((W_k^T q_nope) . c_j + q_rope . k_rope_j)
 *     out     = W_v (sum_j p_j c_j)
 * with W_k, W_v the head's k and v rows of kv_b: the same products as expanding
 * every cached latent through kv_b, without doing so. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "decoder_internal.h"
#include "linalg.h"

/* Eight running sums the compiler can keep in one vector register (a single sum
 * would have to stay scalar: float addition is not reassociated). */
static float dot(const float *restrict a, const float *restrict b, int n)
{
    float lane[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            lane[k] += a[i + k] * b[i + k];
    float s = ((lane[0] + lane[4]) + (lane[1] + lane[5])) + ((lane[2] + lane[6]) + (lane[3] + lane[7]));
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* Softmax over s[0..n) with an optional sink logit that takes its share of the
 * denominator but attends to nothing (GPT-OSS). */
static void softmax_with_sink(float *s, int n, const float *sink)
{
    float max = sink ? *sink : s[0];
    for (int j = 0; j < n; j++)
        max = s[j] > max ? s[j] : max;
    float sum = sink ? expf(*sink - max) : 0;
    for (int j = 0; j < n; j++) {
        s[j] = expf(s[j] - max);
        sum += s[j];
    }
    for (int j = 0; j < n; j++)
        s[j] /= sum;
}

/* out += s·v, in steps of 8 that the compiler vectorizes at -O2 (each out[i] still
 * sums in position order). */
static void add_scaled(float *restrict out, float s, const float *restrict v, int n)
{
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            out[i + k] += s * v[i + k];
    for (; i < n; i++)
        out[i] += s * v[i];
}

/* The first cached position a query at position t sees. */
static int window_start(int t, int window)
{
    return window > 0 && t - window + 1 > 0 ? t - window + 1 : 0;
}

/* The group of query heads that share one KV head, for one new token against the
 * cache: out[g][dim] = softmax(q_g K^T) V. Each cached row is loaded once for the
 * whole group; every head's sums run in position order as they would alone. */
static void gqa_group(const float *q, const float *kc, const float *vc, int lo, int hi, int stride, int dim,
                      int group, float scale, const float *sinks, float *scores, float *out)
{
    int len = hi - lo;
    for (int j = lo; j < hi; j++)
        for (int g = 0; g < group; g++)
            scores[g * len + j - lo] = scale * dot(q + g * dim, kc + (int64_t)j * stride, dim);
    for (int g = 0; g < group; g++)
        softmax_with_sink(scores + g * len, len, sinks ? sinks + g : NULL);
    memset(out, 0, (size_t)(group * dim) * sizeof *out);
    for (int j = lo; j < hi; j++)
        for (int g = 0; g < group; g++)
            add_scaled(out + g * dim, scores[g * len + j - lo], vc + (int64_t)j * stride, dim);
}

static void store_rows(float *cache, const float *rows, int pos0, int n, int64_t width)
{
    memcpy(cache + (int64_t)pos0 * width, rows, (size_t)(n * width) * sizeof *cache);
}

/* Every (token, KV head) pair writes its own outputs, so the result does not depend
 * on the thread count; pairs alternate between threads, which balances the causal
 * triangle of a prompt. */
static int gqa_attend(const mp_decoder *d, const dec_layer *L, int li, const float *q, int n, float *ctx)
{
    const mp_config *c = d->cfg;
    int hd = c->head_dim, group = c->n_heads / c->n_kv_heads, stride = c->n_kv_heads * hd;
    int window = c->sliding && c->sliding[li] && c->sliding_window > 0 ? c->sliding_window : 0;
    float scale = 1.0f / sqrtf((float)hd);
    int64_t per_thread = (int64_t)group * (d->pos + n);
    float *scores = malloc((size_t)omp_get_max_threads() * (size_t)per_thread * sizeof *scores);
    if (!scores)
        return MP_EXIT_IO;
    #pragma omp parallel for schedule(static, 1)
    for (int job = 0; job < n * c->n_kv_heads; job++) {
        int i = job / c->n_kv_heads, kvh = job % c->n_kv_heads, t = d->pos + i;
        int64_t first = ((int64_t)i * c->n_heads + kvh * group) * hd;
        gqa_group(q + first, L->k_cache + kvh * hd, L->v_cache + kvh * hd, window_start(t, window), t + 1, stride,
                  hd, group, scale, L->sinks ? &L->sinks[kvh * group] : NULL,
                  scores + omp_get_thread_num() * per_thread, ctx + first);
    }
    free(scores);
    return MP_OK;
}

static int gqa(mp_decoder *d, int li, const float *h, int n, float *out)
{
    const mp_config *c = d->cfg;
    const dec_layer *L = &d->layers[li];
    int64_t qw = L->q.w.rows, kw = L->k.w.rows;
    float *q = malloc((size_t)(n * qw) * sizeof *q), *k = malloc((size_t)(n * kw) * sizeof *k);
    float *v = malloc((size_t)(n * kw) * sizeof *v), *ctx = malloc((size_t)(n * qw) * sizeof *ctx);
    int rc = q && k && v && ctx ? MP_OK : MP_EXIT_IO;
    if (!rc) {
        dec_linear_apply(d, &L->q, h, n, q);
        dec_linear_apply(d, &L->k, h, n, k);
        dec_linear_apply(d, &L->v, h, n, v);
        if (L->q_norm)
            mp_rmsnorm_rows(q, n * (qw / L->q_norm_len), L->q_norm_len, L->q_norm, (float)c->rms_eps, q);
        if (L->k_norm)
            mp_rmsnorm_rows(k, n * (kw / L->k_norm_len), L->k_norm_len, L->k_norm, (float)c->rms_eps, k);
        eng_rope_rotate(&d->rope, c, q, n, d->pos, c->n_heads, c->head_dim, 0, false);
        eng_rope_rotate(&d->rope, c, k, n, d->pos, c->n_kv_heads, c->head_dim, 0, false);
        store_rows(L->k_cache, k, d->pos, n, kw);
        store_rows(L->v_cache, v, d->pos, n, kw);
        rc = gqa_attend(d, L, li, q, n, ctx);
    }
    if (!rc) {
        dec_linear_apply(d, &L->o, ctx, n, out);
    }
    free(q);
    free(k);
    free(v);
    free(ctx);
    return rc;
}

/* One head of one new token: q is [nope | rope]; scratch holds rank + positions floats. */
static void mla_head(const mp_decoder *d, const dec_layer *L, int head, const float *q, int t, float *scratch,
                     float *out)
{
    const mp_config *c = d->cfg;
    int rank = c->kv_lora_rank, nope = c->qk_nope_dim, rope = c->qk_rope_dim, vd = c->v_head_dim;
    const float *wk = L->kv_b + (int64_t)head * (nope + vd) * rank, *wv = wk + (int64_t)nope * rank;
    float *lat = scratch, *scores = scratch + rank;
    memset(lat, 0, (size_t)rank * sizeof *lat);
    for (int a = 0; a < nope; a++)
        for (int r = 0; r < rank; r++)
            lat[r] += wk[(int64_t)a * rank + r] * q[a];
    float scale = eng_mla_scale(c);
    for (int j = 0; j <= t; j++)
        scores[j] = scale * (dot(lat, L->k_cache + (int64_t)j * rank, rank) +
                             dot(q + nope, L->v_cache + (int64_t)j * rope, rope));
    softmax_with_sink(scores, t + 1, NULL);
    memset(lat, 0, (size_t)rank * sizeof *lat);
    for (int j = 0; j <= t; j++)
        add_scaled(lat, scores[j], L->k_cache + (int64_t)j * rank, rank);
    for (int b = 0; b < vd; b++)
        out[b] = dot(wv + (int64_t)b * rank, lat, rank);
}

/* q[n, heads * (nope + rope)] from the normed input. */
static int mla_query(mp_decoder *d, const dec_layer *L, const float *h, int n, float *q)
{
    if (!L->q_a.w.raw) {
        dec_linear_apply(d, &L->q, h, n, q);
        return MP_OK;
    }
    float *qa = malloc((size_t)(n * L->q_a.w.rows) * sizeof *qa);
    if (!qa)
        return MP_EXIT_IO;
    dec_linear_apply(d, &L->q_a, h, n, qa);
    mp_rmsnorm_rows(qa, n, L->q_a.w.rows, L->q_a_norm, (float)d->cfg->rms_eps, qa);
    dec_linear_apply(d, &L->q_b, qa, n, q);
    free(qa);
    return MP_OK;
}

/* The new tokens' latent (normed) and rotated rope key, into the cache. */
static void mla_cache(mp_decoder *d, const dec_layer *L, float *kva, int n)
{
    const mp_config *c = d->cfg;
    int rank = c->kv_lora_rank, rope = c->qk_rope_dim;
    for (int i = 0; i < n; i++) {
        float *row = kva + (int64_t)i * (rank + rope);
        mp_rmsnorm_rows(row, 1, rank, L->kv_a_norm, (float)c->rms_eps, L->k_cache + (int64_t)(d->pos + i) * rank);
        memcpy(L->v_cache + (int64_t)(d->pos + i) * rope, row + rank, (size_t)rope * sizeof *row);
    }
    eng_rope_rotate(&d->rope, c, L->v_cache + (int64_t)d->pos * rope, n, d->pos, 1, rope, 0, c->rope_interleave);
}

static int mla(mp_decoder *d, int li, const float *h, int n, float *out)
{
    const mp_config *c = d->cfg;
    const dec_layer *L = &d->layers[li];
    int H = c->n_heads, qk = c->qk_nope_dim + c->qk_rope_dim, vd = c->v_head_dim;
    float *q = malloc((size_t)n * H * qk * sizeof *q), *ctx = malloc((size_t)n * H * vd * sizeof *ctx);
    float *kva = malloc((size_t)(n * L->kv_a.w.rows) * sizeof *kva);
    int rc = q && ctx && kva ? mla_query(d, L, h, n, q) : MP_EXIT_IO;
    if (!rc) {
        eng_rope_rotate(&d->rope, c, q, n, d->pos, H, qk, c->qk_nope_dim, c->rope_interleave);
        dec_linear_apply(d, &L->kv_a, h, n, kva);
        mla_cache(d, L, kva, n);
        int64_t per_thread = c->kv_lora_rank + d->pos + n;
        float *scratch = malloc((size_t)omp_get_max_threads() * (size_t)per_thread * sizeof *scratch);
        rc = scratch ? MP_OK : MP_EXIT_IO;
        #pragma omp parallel for schedule(static)
        for (int job = 0; job < (scratch ? n * H : 0); job++)
            mla_head(d, L, job % H, q + (int64_t)job * qk, d->pos + job / H, scratch + omp_get_thread_num() * per_thread,
                     ctx + (int64_t)job * vd);
        free(scratch);
    }
    if (!rc)
        dec_linear_apply(d, &L->o, ctx, n, out);
    free(q);
    free(ctx);
    free(kva);
    return rc;
}

int dec_attention(mp_decoder *d, int li, const float *h, int n, float *out, mp_error *err)
{
    int rc = d->layers[li].kv_a.w.raw ? mla(d, li, h, n, out) : gqa(d, li, h, n, out);
    if (rc)
        return mp_fail(err, MP_EXIT_IO, "out of memory for layer %d's attention (%d tokens)", li, n);
    return MP_OK;
}
