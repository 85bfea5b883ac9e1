#include "engine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/dtype.h"
#include "engine_internal.h"
#include "linalg.h"

/* Above this many bytes of f32 weights, layers are loaded for each batch and
 * released after it, so memory stays bounded by one layer. */
#define MP_ENGINE_RESIDENT_BYTES (4ull << 30)

int mp_act_parse(const char *text, mp_act_mode *out)
{
    if (strcmp(text, "f32") == 0)
        *out = MP_ACT_F32;
    else if (strcmp(text, "bf16") == 0)
        *out = MP_ACT_BF16;
    else if (strcmp(text, "fp8") == 0)
        *out = MP_ACT_FP8;
    else
        return -1;
    return 0;
}

/* What the engine runs: every family; the rest (RoPE scalings other than YaRN)
 * fails with a clear message. MTP layers are not run: they are not part of the
 * next-token model. */
static int check_supported(const mp_config *c, const char *path, mp_error *err)
{
    if (c->rope_type[0] && strcmp(c->rope_type, "default") != 0 && strcmp(c->rope_type, "yarn") != 0)
        return mp_fail(err, MP_EXIT_INPUT,
                       "%s: the engine does not run rope_scaling type \"%s\" yet (it runs default and yarn)", path,
                       c->rope_type);
    if (eng_rope_dim(c) % 2 != 0 || eng_rope_dim(c) <= 0)
        return mp_fail(err, MP_EXIT_INPUT, "%s: the engine does not run a rotary width of %d (it must be even)", path,
                       eng_rope_dim(c));
    return MP_OK;
}

int mp_engine_new(mp_engine **out, mp_weight_source *src, mp_act_mode act, mp_error *err)
{
    *out = NULL;
    const mp_config *c = mp_wsrc_config(src);
    int rc = check_supported(c, src->path, err);
    if (rc)
        return rc;
    mp_engine *e = calloc(1, sizeof *e);
    if (!e)
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    e->src = src;
    e->cfg = c;
    e->act = act;
    e->layers = calloc((size_t)c->n_layers, sizeof *e->layers);
    e->resident = mp_wsrc_total_values(src) * sizeof(float) <= MP_ENGINE_RESIDENT_BYTES;
    mp_linalg_init();
    if (!e->layers)
        rc = mp_fail(err, MP_EXIT_IO, "out of memory");
    if (!rc)
        rc = eng_load_globals(e, err);
    if (rc) {
        mp_engine_free(e);
        return rc;
    }
    *out = e;
    return MP_OK;
}

void mp_engine_free(mp_engine *e)
{
    if (!e)
        return;
    for (int i = 0; e->layers && i < e->cfg->n_layers; i++)
        eng_free_layer(e, i);
    free(e->layers);
    if (e->lm_head.w != e->embed)
        eng_free_linear(&e->lm_head);
    free(e->embed);
    free(e->final_norm);
    eng_rope_free(&e->rope);
    free(e);
}

int mp_engine_vocab(const mp_engine *e)
{
    return e->cfg->vocab;
}

/* Rounds each row's values as the deployment would before a linear layer. */
static void simulate_activations(mp_act_mode act, float *x, int64_t n, int64_t cols)
{
    if (act == MP_ACT_BF16) {
        for (int64_t i = 0; i < n * cols; i++)
            x[i] = mp_bf16_to_f32(mp_f32_to_bf16(x[i]));
        return;
    }
    for (int64_t r = 0; r < n; r++)
        for (int64_t c0 = 0; c0 < cols; c0 += 128) {
            float *g = x + r * cols + c0;
            int64_t len = cols - c0 < 128 ? cols - c0 : 128;
            float amax = 0;
            for (int64_t i = 0; i < len; i++)
                amax = fmaxf(amax, fabsf(g[i]));
            if (amax == 0)
                continue;
            float scale = amax / 448.0f;
            for (int64_t i = 0; i < len; i++)
                g[i] = mp_fp8_e4m3_to_f32(mp_f32_to_fp8_e4m3(g[i] / scale)) * scale;
        }
}

void eng_linear_apply(const mp_engine *e, const eng_linear *l, const float *x, int64_t n, float *y,
                      const mp_engine_hooks *hooks)
{
    if (hooks && hooks->linear_input)
        hooks->linear_input(hooks->user, l->name, x, n, l->cols);
    float *rounded = NULL;
    if (e->act != MP_ACT_F32 && n > 0) {
        rounded = malloc((size_t)(n * l->cols) * sizeof *rounded);
        if (rounded) {
            memcpy(rounded, x, (size_t)(n * l->cols) * sizeof *rounded);
            simulate_activations(e->act, rounded, n, l->cols);
            x = rounded;
        }
    }
    mp_matmul_nt(x, n, l->cols, l->w, l->rows, y);
    free(rounded);
    if (l->bias)
        for (int64_t r = 0; r < n; r++)
            for (int64_t i = 0; i < l->rows; i++)
                y[r * l->rows + i] += l->bias[i];
}

int mp_engine_layer_load(mp_engine *e, int li, mp_error *err)
{
    return eng_load_layer(e, li, err);
}

void mp_engine_layer_release(mp_engine *e, int li)
{
    if (!e->resident)
        eng_free_layer(e, li);
}

int mp_engine_attention_step(mp_engine *e, int li, float *x, int n_seq, int n_ctx, const mp_engine_hooks *hooks,
                             mp_error *err)
{
    int64_t n = (int64_t)n_seq * n_ctx, d = e->cfg->hidden;
    int rc = eng_rope_init(&e->rope, e->cfg, n_ctx, err);
    if (!rc)
        rc = eng_load_layer(e, li, err);
    if (rc)
        return rc;
    float *h = malloc((size_t)(n * d) * sizeof *h), *out = malloc((size_t)(n * d) * sizeof *out);
    if (!h || !out)
        rc = mp_fail(err, MP_EXIT_IO, "out of memory for layer %d's attention (%lld tokens)", li, (long long)n);
    if (!rc) {
        mp_rmsnorm_rows(x, n, d, e->layers[li].input_norm, (float)e->cfg->rms_eps, h);
        rc = eng_attention(e, li, h, n_seq, n_ctx, out, hooks, err);
    }
    for (int64_t i = 0; !rc && i < n * d; i++)
        x[i] += out[i];
    free(h);
    free(out);
    return rc;
}

int mp_engine_mlp_input(mp_engine *e, int li, const float *x, int64_t n, float *h, mp_error *err)
{
    int rc = eng_load_layer(e, li, err);
    if (!rc)
        mp_rmsnorm_rows(x, n, e->cfg->hidden, e->layers[li].post_attn_norm, (float)e->cfg->rms_eps, h);
    return rc;
}

int mp_engine_mlp_step(mp_engine *e, int li, float *x, int64_t n, const mp_engine_hooks *hooks, mp_error *err)
{
    int64_t d = e->cfg->hidden;
    float *h = malloc((size_t)(n * d) * sizeof *h), *out = malloc((size_t)(n * d) * sizeof *out);
    int rc = h && out ? MP_OK : mp_fail(err, MP_EXIT_IO, "out of memory for layer %d's MLP (%lld tokens)", li, (long long)n);
    if (!rc)
        rc = mp_engine_mlp_input(e, li, x, n, h, err);
    if (!rc) {
        const eng_layer *L = &e->layers[li];
        rc = L->is_moe ? eng_moe(e, li, h, n, out, hooks, err) : eng_mlp_apply(e, &L->dense, h, n, out, NULL, hooks);
        if (rc && !L->is_moe)
            rc = mp_fail(err, MP_EXIT_IO, "out of memory in layer %d's MLP", li);
    }
    for (int64_t i = 0; !rc && i < n * d; i++)
        x[i] += out[i];
    free(h);
    free(out);
    return rc;
}

static int run_layer(mp_engine *e, int li, float *x, int n_seq, int n_ctx, const mp_engine_hooks *hooks, mp_error *err)
{
    int64_t n = (int64_t)n_seq * n_ctx;
    int rc = mp_engine_attention_step(e, li, x, n_seq, n_ctx, hooks, err);
    if (!rc)
        rc = mp_engine_mlp_step(e, li, x, n, hooks, err);
    if (!rc && hooks && hooks->layer_output)
        hooks->layer_output(hooks->user, li, x, n, e->cfg->hidden);
    mp_engine_layer_release(e, li);
    return rc;
}

int mp_engine_embed(const mp_engine *e, const int32_t *tokens, int64_t n, float *x, mp_error *err)
{
    int64_t d = e->cfg->hidden;
    for (int64_t i = 0; i < n; i++) {
        if (tokens[i] < 0 || tokens[i] >= e->cfg->vocab)
            return mp_fail(err, MP_EXIT_INPUT, "token %d at position %lld is outside the model's vocabulary (%d)",
                           tokens[i], (long long)i, e->cfg->vocab);
        memcpy(x + i * d, e->embed + (int64_t)tokens[i] * d, (size_t)d * sizeof *x);
    }
    return MP_OK;
}

static void output_logits(const mp_engine *e, const float *x, int n_seq, int n_ctx, int first, int last, float *h,
                          float *logits, const mp_engine_hooks *hooks)
{
    int64_t d = e->cfg->hidden, per = last - first;
    for (int s = 0; s < n_seq; s++)
        memcpy(h + s * per * d, x + ((int64_t)s * n_ctx + first) * d, (size_t)(per * d) * sizeof *h);
    mp_rmsnorm_rows(h, n_seq * per, d, e->final_norm, (float)e->cfg->rms_eps, h);
    eng_linear_apply(e, &e->lm_head, h, n_seq * per, logits, hooks);
}

int mp_engine_forward(mp_engine *e, const int32_t *tokens, int n_seq, int n_ctx, int first, int last,
                      float *logits, const mp_engine_hooks *hooks, mp_error *err)
{
    if (n_seq <= 0 || n_ctx <= 0 || first < 0 || last > n_ctx || first >= last)
        return mp_fail(err, MP_EXIT_INPUT, "engine: bad batch (%d sequences of %d tokens, positions %d..%d)", n_seq,
                       n_ctx, first, last);
    int rc = eng_rope_init(&e->rope, e->cfg, n_ctx, err);
    if (rc)
        return rc;
    int64_t n = (int64_t)n_seq * n_ctx, d = e->cfg->hidden;
    float *x = malloc((size_t)(n * d) * sizeof *x);
    float *h = malloc((size_t)(n_seq * (last - first) * d) * sizeof *h);
    if (!x || !h)
        rc = mp_fail(err, MP_EXIT_IO, "out of memory for a batch of %lld tokens", (long long)n);
    if (!rc)
        rc = mp_engine_embed(e, tokens, n, x, err);
    for (int li = 0; !rc && li < e->cfg->n_layers; li++)
        rc = run_layer(e, li, x, n_seq, n_ctx, hooks, err);
    if (!rc)
        output_logits(e, x, n_seq, n_ctx, first, last, h, logits, hooks);
    free(x);
    free(h);
    return rc;
}
