/* DeepSeek-V2/V3 multi-head latent attention, as HF's DeepseekV3Attention:
 *   q = q_b(rmsnorm(q_a(h))) (or q(h) without q_lora_rank), per head [nope | rope];
 *   kv_a(h) = [c_kv (kv_lora_rank) | k_rope (one rope slice shared by all heads)];
 *   kv_b(rmsnorm(c_kv)) per head [k_nope | v];
 *   RoPE on the rope slices only (interleaved pairs with rope_interleave);
 *   scale 1/sqrt(nope + rope), times mscale^2 under YaRN. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"
#include "linalg.h"

/* 1/sqrt(qk_head_dim), and with YaRN mscale(factor, mscale_all_dim)^2: the
 * logits' growth with context that YaRN corrects for (DeepSeek's softmax_scale). */
float eng_mla_scale(const mp_config *c)
{
    double scale = 1.0 / sqrt((double)(c->qk_nope_dim + c->qk_rope_dim));
    if (eng_rope_is_yarn(c) && c->rope_mscale_all_dim != 0) {
        double m = eng_yarn_mscale(c->rope_factor, c->rope_mscale_all_dim);
        scale *= m * m;
    }
    return (float)scale;
}

/* q[n, heads * (nope + rope)] from the normed input. */
static int mla_query(mp_engine *e, const eng_layer *L, const float *h, int64_t n, float *q,
                     const mp_engine_hooks *hooks)
{
    if (!L->q_a.w) {
        eng_linear_apply(e, &L->q, h, n, q, hooks);
        return MP_OK;
    }
    float *qa = malloc((size_t)(n * L->q_a.rows) * sizeof *qa);
    if (!qa)
        return MP_EXIT_IO;
    eng_linear_apply(e, &L->q_a, h, n, qa, hooks);
    mp_rmsnorm_rows(qa, n, L->q_a.rows, L->q_a_norm, (float)e->cfg->rms_eps, qa);
    eng_linear_apply(e, &L->q_b, qa, n, q, hooks);
    free(qa);
    return MP_OK;
}

/* From kv_a's output: k[n, heads, nope + rope] = [k_nope | shared k_rope] and
 * v[n, heads, v_dim], through kv_b over the normed latent. */
static int mla_keys_values(mp_engine *e, const eng_layer *L, const float *kva, int64_t n, float *k, float *v,
                           const mp_engine_hooks *hooks)
{
    const mp_config *c = e->cfg;
    int rank = c->kv_lora_rank, rope = c->qk_rope_dim, nope = c->qk_nope_dim, vd = c->v_head_dim;
    int64_t kb_row = (int64_t)c->n_heads * (nope + vd);
    float *latent = malloc((size_t)(n * rank) * sizeof *latent), *kb = malloc((size_t)(n * kb_row) * sizeof *kb);
    if (!latent || !kb) {
        free(latent);
        free(kb);
        return MP_EXIT_IO;
    }
    for (int64_t t = 0; t < n; t++)
        memcpy(latent + t * rank, kva + t * (rank + rope), (size_t)rank * sizeof *latent);
    mp_rmsnorm_rows(latent, n, rank, L->kv_a_norm, (float)c->rms_eps, latent);
    eng_linear_apply(e, &L->kv_b, latent, n, kb, hooks);
    for (int64_t t = 0; t < n; t++)
        for (int hd = 0; hd < c->n_heads; hd++) {
            const float *src = kb + t * kb_row + (int64_t)hd * (nope + vd);
            float *kdst = k + (t * c->n_heads + hd) * (nope + rope);
            memcpy(kdst, src, (size_t)nope * sizeof *k);
            memcpy(kdst + nope, kva + t * (rank + rope) + rank, (size_t)rope * sizeof *k);
            memcpy(v + (t * c->n_heads + hd) * vd, src + nope, (size_t)vd * sizeof *v);
        }
    free(latent);
    free(kb);
    return MP_OK;
}

int eng_mla_attention(mp_engine *e, const eng_layer *L, const float *h, int n_seq, int n_ctx, float *out,
                      const mp_engine_hooks *hooks, mp_error *err)
{
    const mp_config *c = e->cfg;
    int H = c->n_heads, qk = c->qk_nope_dim + c->qk_rope_dim;
    int64_t n = (int64_t)n_seq * n_ctx;
    float *q = malloc((size_t)(n * H * qk) * sizeof *q), *k = malloc((size_t)(n * H * qk) * sizeof *k);
    float *v = malloc((size_t)(n * H * c->v_head_dim) * sizeof *v);
    float *ctx = malloc((size_t)(n * H * c->v_head_dim) * sizeof *ctx);
    float *kva = malloc((size_t)(n * L->kv_a.rows) * sizeof *kva);
    int rc = !q || !k || !v || !ctx || !kva ? MP_EXIT_IO : MP_OK;
    if (!rc)
        rc = mla_query(e, L, h, n, q, hooks);
    if (!rc) {
        eng_linear_apply(e, &L->kv_a, h, n, kva, hooks);
        rc = mla_keys_values(e, L, kva, n, k, v, hooks);
    }
    if (!rc) {
        /* k's rope slice is the same for every head, so rotating each copy equals
         * rotating the shared slice once */
        eng_rope_apply(e, q, n, n_ctx, H, qk, c->qk_nope_dim, c->rope_interleave);
        eng_rope_apply(e, k, n, n_ctx, H, qk, c->qk_nope_dim, c->rope_interleave);
        eng_attn_shape shape = {.heads = H, .kv_heads = H, .qk_dim = qk, .v_dim = c->v_head_dim,
                                .scale = eng_mla_scale(c)};
        rc = eng_attend(&shape, q, k, v, n_seq, n_ctx, ctx);
    }
    if (!rc)
        eng_linear_apply(e, &L->o, ctx, n, out, hooks);
    free(q);
    free(k);
    free(v);
    free(ctx);
    free(kva);
    if (rc)
        return mp_fail(err, MP_EXIT_IO, "out of memory for attention over %lld tokens", (long long)n);
    return MP_OK;
}
