/* Loading the engine's weights, layer by layer, as f32 through the weight source. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"

static int read_vector(mp_engine *e, const char *name, int64_t n, float **out, mp_error *err)
{
    *out = malloc((size_t)n * sizeof **out);
    if (!*out)
        return mp_fail(err, MP_EXIT_IO, "out of memory loading %s", name);
    return mp_wsrc_read(e->src, name, 1, n, *out, err);
}

/* Reads name (and name.bias when present) with the shape [rows, cols]; an absent
 * optional linear is left empty. */
static int load_linear(mp_engine *e, eng_linear *l, const char *name, int64_t rows, int64_t cols, bool required,
                       mp_error *err)
{
    memset(l, 0, sizeof *l);
    if (!mp_wsrc_has(e->src, name)) {
        if (required)
            return mp_fail(err, MP_EXIT_INPUT, "%s: tensor %s: not found", e->src->path, name);
        return MP_OK;
    }
    snprintf(l->name, sizeof l->name, "%s", name);
    l->rows = rows;
    l->cols = cols;
    l->w = malloc((size_t)(rows * cols) * sizeof *l->w);
    if (!l->w)
        return mp_fail(err, MP_EXIT_IO, "out of memory loading %s", name);
    int rc = mp_wsrc_read(e->src, name, rows, cols, l->w, err);
    char bias[112];
    snprintf(bias, sizeof bias, "%s.bias", name);
    if (!rc && mp_wsrc_has(e->src, bias))
        rc = read_vector(e, bias, rows, &l->bias, err);
    return rc;
}

void eng_free_linear(eng_linear *l)
{
    free(l->w);
    free(l->bias);
    memset(l, 0, sizeof *l);
}

static int load_mlp(mp_engine *e, eng_mlp *m, const char *prefix, int64_t width, mp_error *err)
{
    int64_t d = e->cfg->hidden;
    char name[96];
    snprintf(name, sizeof name, "%s.gate", prefix);
    int rc = load_linear(e, &m->gate, name, width, d, true, err);
    snprintf(name, sizeof name, "%s.up", prefix);
    if (!rc) rc = load_linear(e, &m->up, name, width, d, true, err);
    snprintf(name, sizeof name, "%s.down", prefix);
    if (!rc) rc = load_linear(e, &m->down, name, d, width, true, err);
    return rc;
}

static void free_mlp(eng_mlp *m)
{
    eng_free_linear(&m->gate);
    eng_free_linear(&m->up);
    eng_free_linear(&m->down);
}

/* q/k norms are per head (Qwen3: [head_dim]) or over the whole projection (OLMoE). */
static int load_qk_norm(mp_engine *e, const char *name, float **out, int64_t *len, mp_error *err)
{
    int64_t rows, cols;
    if (mp_wsrc_shape(e->src, name, &rows, &cols) != 0)
        return MP_OK;
    *len = rows * cols;
    return read_vector(e, name, *len, out, err);
}

/* An optional vector of exactly n values (absent: left NULL). */
static int load_optional_vector(mp_engine *e, const char *name, int64_t n, float **out, mp_error *err)
{
    return mp_wsrc_has(e->src, name) ? read_vector(e, name, n, out, err) : MP_OK;
}

static int load_gqa(mp_engine *e, eng_layer *L, const char *p, mp_error *err)
{
    const mp_config *c = e->cfg;
    int64_t d = c->hidden, q_width = (int64_t)c->n_heads * c->head_dim, kv_width = (int64_t)c->n_kv_heads * c->head_dim;
    char name[96];
    snprintf(name, sizeof name, "%s.attn.q", p);
    int rc = load_linear(e, &L->q, name, q_width, d, true, err);
    snprintf(name, sizeof name, "%s.attn.k", p);
    if (!rc) rc = load_linear(e, &L->k, name, kv_width, d, true, err);
    snprintf(name, sizeof name, "%s.attn.v", p);
    if (!rc) rc = load_linear(e, &L->v, name, kv_width, d, true, err);
    snprintf(name, sizeof name, "%s.attn.o", p);
    if (!rc) rc = load_linear(e, &L->o, name, d, q_width, true, err);
    snprintf(name, sizeof name, "%s.attn.q_norm", p);
    if (!rc) rc = load_qk_norm(e, name, &L->q_norm, &L->q_norm_len, err);
    snprintf(name, sizeof name, "%s.attn.k_norm", p);
    if (!rc) rc = load_qk_norm(e, name, &L->k_norm, &L->k_norm_len, err);
    snprintf(name, sizeof name, "%s.attn.sinks", p);
    if (!rc) rc = load_optional_vector(e, name, c->n_heads, &L->sinks, err);
    if (!rc && L->q_norm && L->q_norm_len != c->head_dim && L->q_norm_len != q_width)
        rc = mp_fail(err, MP_EXIT_INPUT, "%s: tensor %s.attn.q_norm: %lld values, expected %d or %lld",
                     e->src->path, p, (long long)L->q_norm_len, c->head_dim, (long long)q_width);
    if (!rc && L->k_norm && L->k_norm_len != c->head_dim && L->k_norm_len != kv_width)
        rc = mp_fail(err, MP_EXIT_INPUT, "%s: tensor %s.attn.k_norm: %lld values, expected %d or %lld",
                     e->src->path, p, (long long)L->k_norm_len, c->head_dim, (long long)kv_width);
    return rc;
}

/* MLA: q (q_lora_rank 0) or q_a, q_a_norm, q_b; kv_a, kv_a_norm, kv_b; o. */
static int load_mla(mp_engine *e, eng_layer *L, const char *p, mp_error *err)
{
    const mp_config *c = e->cfg;
    int64_t d = c->hidden, H = c->n_heads, qk = c->qk_nope_dim + c->qk_rope_dim;
    char name[96];
    int rc = MP_OK;
    if (c->q_lora_rank > 0) {
        snprintf(name, sizeof name, "%s.attn.q_a", p);
        rc = load_linear(e, &L->q_a, name, c->q_lora_rank, d, true, err);
        snprintf(name, sizeof name, "%s.attn.q_a_norm", p);
        if (!rc) rc = read_vector(e, name, c->q_lora_rank, &L->q_a_norm, err);
        snprintf(name, sizeof name, "%s.attn.q_b", p);
        if (!rc) rc = load_linear(e, &L->q_b, name, H * qk, c->q_lora_rank, true, err);
    } else {
        snprintf(name, sizeof name, "%s.attn.q", p);
        rc = load_linear(e, &L->q, name, H * qk, d, true, err);
    }
    snprintf(name, sizeof name, "%s.attn.kv_a", p);
    if (!rc) rc = load_linear(e, &L->kv_a, name, c->kv_lora_rank + c->qk_rope_dim, d, true, err);
    snprintf(name, sizeof name, "%s.attn.kv_a_norm", p);
    if (!rc) rc = read_vector(e, name, c->kv_lora_rank, &L->kv_a_norm, err);
    snprintf(name, sizeof name, "%s.attn.kv_b", p);
    if (!rc) rc = load_linear(e, &L->kv_b, name, H * (c->qk_nope_dim + c->v_head_dim), c->kv_lora_rank, true, err);
    snprintf(name, sizeof name, "%s.attn.o", p);
    if (!rc) rc = load_linear(e, &L->o, name, d, H * c->v_head_dim, true, err);
    return rc;
}

static int load_attention(mp_engine *e, eng_layer *L, const char *p, mp_error *err)
{
    bool mla = e->cfg->family == MP_FAMILY_DEEPSEEK_V2 || e->cfg->family == MP_FAMILY_DEEPSEEK_V3;
    return mla ? load_mla(e, L, p, err) : load_gqa(e, L, p, err);
}

static int load_moe(mp_engine *e, eng_layer *L, const char *p, mp_error *err)
{
    const mp_config *c = e->cfg;
    int n = c->routing.n_experts;
    char name[96];
    snprintf(name, sizeof name, "%s.router", p);
    int rc = load_linear(e, &L->router, name, n, c->hidden, true, err);
    snprintf(name, sizeof name, "%s.correction_bias", p);
    if (!rc) rc = load_optional_vector(e, name, n, &L->correction_bias, err);
    L->experts = calloc((size_t)n, sizeof *L->experts);
    if (!L->experts)
        return mp_fail(err, MP_EXIT_IO, "out of memory loading %s experts", p);
    for (int x = 0; x < n && !rc; x++) {
        snprintf(name, sizeof name, "%s.experts.%d", p, x);
        rc = load_mlp(e, &L->experts[x], name, c->moe_intermediate, err);
    }
    snprintf(name, sizeof name, "%s.shared.gate", p);
    L->has_shared = mp_wsrc_has(e->src, name);
    snprintf(name, sizeof name, "%s.shared", p);
    if (!rc && L->has_shared)
        rc = load_mlp(e, &L->shared, name, c->shared_intermediate, err);
    snprintf(name, sizeof name, "%s.shared_gate", p);
    if (!rc)
        rc = load_linear(e, &L->shared_gate, name, 1, c->hidden, false, err);
    return rc;
}

int eng_load_layer(mp_engine *e, int li, mp_error *err)
{
    eng_layer *L = &e->layers[li];
    if (L->loaded)
        return MP_OK;
    char p[32], name[96];
    snprintf(p, sizeof p, "layers.%d", li);
    snprintf(name, sizeof name, "%s.input_norm", p);
    int rc = read_vector(e, name, e->cfg->hidden, &L->input_norm, err);
    snprintf(name, sizeof name, "%s.post_attn_norm", p);
    if (!rc) rc = read_vector(e, name, e->cfg->hidden, &L->post_attn_norm, err);
    if (!rc) rc = load_attention(e, L, p, err);
    snprintf(name, sizeof name, "%s.router", p);
    L->is_moe = mp_wsrc_has(e->src, name);
    snprintf(name, sizeof name, "%s.mlp", p);
    if (!rc) rc = L->is_moe ? load_moe(e, L, p, err) : load_mlp(e, &L->dense, name, e->cfg->intermediate, err);
    L->loaded = rc == MP_OK;
    if (rc)
        eng_free_layer(e, li);
    return rc;
}

void eng_free_layer(mp_engine *e, int li)
{
    eng_layer *L = &e->layers[li];
    free(L->input_norm);
    free(L->post_attn_norm);
    free(L->q_norm);
    free(L->k_norm);
    free(L->sinks);
    free(L->q_a_norm);
    free(L->kv_a_norm);
    free(L->correction_bias);
    eng_free_linear(&L->q_a);
    eng_free_linear(&L->q_b);
    eng_free_linear(&L->kv_a);
    eng_free_linear(&L->kv_b);
    eng_free_linear(&L->q);
    eng_free_linear(&L->k);
    eng_free_linear(&L->v);
    eng_free_linear(&L->o);
    free_mlp(&L->dense);
    eng_free_linear(&L->router);
    for (int x = 0; L->experts && x < e->cfg->routing.n_experts; x++)
        free_mlp(&L->experts[x]);
    free(L->experts);
    free_mlp(&L->shared);
    eng_free_linear(&L->shared_gate);
    memset(L, 0, sizeof *L);
}

int eng_load_globals(mp_engine *e, mp_error *err)
{
    const mp_config *c = e->cfg;
    int rc = read_vector(e, "final_norm", c->hidden, &e->final_norm, err);
    e->embed = malloc((size_t)c->vocab * (size_t)c->hidden * sizeof *e->embed);
    if (!rc && !e->embed)
        rc = mp_fail(err, MP_EXIT_IO, "out of memory loading embed");
    if (!rc) rc = mp_wsrc_read(e->src, "embed", c->vocab, c->hidden, e->embed, err);
    /* Tied embeddings: the output head is the embedding matrix. */
    if (!rc && mp_wsrc_has(e->src, "lm_head"))
        rc = load_linear(e, &e->lm_head, "lm_head", c->vocab, c->hidden, true, err);
    else if (!rc)
        e->lm_head = (eng_linear){.name = "embed", .w = e->embed, .rows = c->vocab, .cols = c->hidden};
    return rc;
}
