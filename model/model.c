/* The canonical model: lookups shared by the family adapters, the top-level
 * build, and parameter accounting. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/fileio.h"
#include "model_build.h"

void model_problem(mp_model *m, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    mp_lines_appendf(&m->problems, &m->n_problems, "%s", line);
}

static void format_shape(char *buf, size_t cap, int ndim, const int64_t *shape)
{
    size_t used = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (used < cap)
        snprintf(buf + used, cap - used, "]");
}

static int lookup(mp_model *m, bool required, int ndim, const int64_t *shape, const char *name)
{
    int id = mp_st_set_find(m->st, name);
    if (id < 0) {
        if (required)
            model_problem(m, "%s: missing", name);
        return -1;
    }
    m->claimed[id] = true;
    const mp_st_tensor *t = m->st->tensors[id].info;
    if (shape && (t->ndim != ndim || memcmp(t->shape, shape, (size_t)ndim * sizeof *shape) != 0)) {
        char got[128], want[128];
        format_shape(got, sizeof got, t->ndim, t->shape);
        format_shape(want, sizeof want, ndim, shape);
        model_problem(m, "%s: shape %s, expected %s", name, got, want);
        return -1;
    }
    return id;
}

int model_tensor(mp_model *m, bool required, int ndim, const int64_t *shape, const char *fmt, ...)
{
    char name[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return lookup(m, required, ndim, shape, name);
}

int model_vector(mp_model *m, int64_t n, const char *fmt, ...)
{
    char name[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return lookup(m, true, 1, &n, name);
}

mp_linear model_no_linear(void)
{
    return (mp_linear){.weight = -1, .scale = -1, .bias = -1, .expert = -1, .row_stride = 1};
}

static bool is_float_weight(mp_dtype dt)
{
    return dt == MP_DT_F32 || dt == MP_DT_BF16 || dt == MP_DT_F16 || dt == MP_DT_F8_E4M3;
}

/* FP8 weights carry their block scales in a sibling "<name>_scale_inv". */
static void linear_scale(mp_model *m, mp_linear *lin, const char *weight_name)
{
    const mp_config *c = &m->cfg;
    if (c->fp8_block_rows == 0) {
        model_problem(m, "%s: F8_E4M3 weight but config.json has no quantization_config.weight_block_size",
                      weight_name);
        return;
    }
    int64_t shape[2] = {(lin->rows + c->fp8_block_rows - 1) / c->fp8_block_rows,
                        (lin->cols + c->fp8_block_cols - 1) / c->fp8_block_cols};
    lin->scale = model_tensor(m, true, 2, shape, "%s_scale_inv", weight_name);
    if (lin->scale >= 0 && m->st->tensors[lin->scale].info->dtype != MP_DT_F32)
        model_problem(m, "%s_scale_inv: dtype %s, expected F32", weight_name,
                      mp_dtype_name(m->st->tensors[lin->scale].info->dtype));
}

void model_linear(mp_model *m, mp_linear *lin, int64_t rows, int64_t cols, int bias, const char *fmt, ...)
{
    char prefix[448], name[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    *lin = model_no_linear();
    lin->rows = rows;
    lin->cols = cols;
    int64_t shape[2] = {rows, cols};
    snprintf(name, sizeof name, "%s.weight", prefix);
    lin->weight = lookup(m, true, 2, shape, name);
    if (lin->weight >= 0) {
        mp_dtype dt = m->st->tensors[lin->weight].info->dtype;
        if (!is_float_weight(dt))
            model_problem(m, "%s: dtype %s, expected F32, BF16, F16 or F8_E4M3", name, mp_dtype_name(dt));
        else if (dt == MP_DT_F8_E4M3)
            linear_scale(m, lin, name);
    }
    if (bias == LIN_BIAS)
        lin->bias = model_tensor(m, true, 1, &rows, "%s.bias", prefix);
}

void model_mlp(mp_model *m, mp_mlp *mlp, int64_t inter, const char *gate, const char *up,
               const char *down, const char *prefix)
{
    int64_t hidden = m->cfg.hidden;
    model_linear(m, &mlp->gate, inter, hidden, LIN_NO_BIAS, "%s.%s", prefix, gate);
    model_linear(m, &mlp->up, inter, hidden, LIN_NO_BIAS, "%s.%s", prefix, up);
    model_linear(m, &mlp->down, hidden, inter, LIN_NO_BIAS, "%s.%s", prefix, down);
}

void model_layer_norms(mp_model *m, mp_layer *L, const char *p)
{
    L->input_norm = model_vector(m, m->cfg.hidden, "%s.input_layernorm.weight", p);
    L->post_attn_norm = model_vector(m, m->cfg.hidden, "%s.post_attention_layernorm.weight", p);
}

static void init_layer(mp_layer *L)
{
    mp_linear none = model_no_linear();
    memset(L, 0, sizeof *L);
    L->input_norm = L->post_attn_norm = -1;
    L->attn.q = L->attn.k = L->attn.v = L->attn.o = none;
    L->attn.q_a = L->attn.q_b = L->attn.kv_a = L->attn.kv_b = none;
    L->attn.q_a_norm = L->attn.kv_a_norm = L->attn.q_norm = L->attn.k_norm = L->attn.sinks = -1;
    L->dense.gate = L->dense.up = L->dense.down = none;
    L->router = none;
    L->correction_bias = L->shared_gate = -1;
    L->shared.gate = L->shared.up = L->shared.down = none;
}

static void build_globals(mp_model *m)
{
    const mp_config *c = &m->cfg;
    int64_t embed_shape[2] = {c->vocab, c->hidden};
    m->embed = model_tensor(m, true, 2, embed_shape, "model.embed_tokens.weight");
    m->final_norm = model_vector(m, c->hidden, "model.norm.weight");
    m->lm_head = model_tensor(m, !c->tie_embeddings, 2, embed_shape, "lm_head.weight");
}

static int allocate(mp_model *m, mp_error *err)
{
    const mp_config *c = &m->cfg;
    m->claimed = calloc((size_t)m->st->n_tensors + 1, sizeof *m->claimed);
    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    m->mtp = calloc((size_t)c->n_mtp + 1, sizeof *m->mtp);
    if (!m->claimed || !m->layers || !m->mtp)
        return mp_fail(err, MP_EXIT_IO, "%s: out of memory", m->st->dir);
    for (int i = 0; i < c->n_layers; i++)
        init_layer(&m->layers[i]);
    for (int j = 0; j < c->n_mtp; j++)
        init_layer(&m->mtp[j].layer);
    return MP_OK;
}

/* The fewest tensors decoder layer i can be stored in: two norms, four attention
 * tensors (q, k, v, o; MLA has as many), then a dense MLP's three, or a router and
 * the experts: three each, or two stacked tensors when the family fuses them. */
static uint64_t layer_min_tensors(const mp_config *c, int i)
{
    if (!mp_config_is_moe_layer(c, i))
        return 2 + 4 + 3;
    if (c->family == MP_FAMILY_GPT_OSS)
        return 2 + 4 + 1 + 2;
    return 2 + 4 + 1 + 3 * (uint64_t)c->routing.n_experts;
}

/* The declared counts size every loop and allocation of the build: a config.json
 * claiming more layers or experts than the checkpoint holds tensors for is refused
 * here, so the cost stays bounded by the checkpoint rather than by the claim. */
static int check_counts(const mp_config *c, const mp_st_set *st, mp_error *err)
{
    uint64_t need = 2; /* embeddings and the final norm */
    for (int i = 0; i < c->n_layers + c->n_mtp; i++)
        need += layer_min_tensors(c, i);
    if (need <= (uint64_t)st->n_tensors)
        return MP_OK;
    if (c->n_mtp > 0)
        return mp_fail(err, MP_EXIT_INPUT,
                       "%s/config.json: num_hidden_layers %d + num_nextn_predict_layers %d with %d experts need at least %llu tensors, the checkpoint holds %d",
                       st->dir, c->n_layers, c->n_mtp, c->routing.n_experts, (unsigned long long)need, st->n_tensors);
    return mp_fail(err, MP_EXIT_INPUT,
                   "%s/config.json: num_hidden_layers %d with %d experts need at least %llu tensors, the checkpoint holds %d",
                   st->dir, c->n_layers, c->routing.n_experts, (unsigned long long)need, st->n_tensors);
}

int mp_model_build(mp_model *m, const mp_config *cfg, const mp_st_set *st, mp_error *err)
{
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    m->st = st;
    int rc = check_counts(cfg, st, err);
    if (rc == MP_OK)
        rc = allocate(m, err);
    if (rc != MP_OK) {
        mp_model_free(m);
        return rc;
    }
    build_globals(m);
    for (int i = 0; i < cfg->n_layers; i++) {
        switch (cfg->family) {
        case MP_FAMILY_DEEPSEEK_V2:
        case MP_FAMILY_DEEPSEEK_V3:
        case MP_FAMILY_GLM4_MOE:
            build_deepseek_layer(m, &m->layers[i], i);
            break;
        case MP_FAMILY_GPT_OSS:
            build_gpt_oss_layer(m, i);
            break;
        default:
            build_llama_moe_layer(m, i);
        }
    }
    for (int j = 0; j < cfg->n_mtp; j++)
        build_deepseek_mtp(m, j);
    return MP_OK;
}

void mp_model_free(mp_model *m)
{
    if (m->layers)
        for (int i = 0; i < m->cfg.n_layers; i++)
            free(m->layers[i].experts);
    if (m->mtp)
        for (int j = 0; j < m->cfg.n_mtp; j++)
            free(m->mtp[j].layer.experts);
    for (int i = 0; i < m->n_problems; i++)
        free(m->problems[i]);
    free(m->problems);
    free(m->layers);
    free(m->mtp);
    free(m->claimed);
    mp_config_free(&m->cfg);
    memset(m, 0, sizeof *m);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

uint64_t mp_model_tensor_params(const mp_model *m, int tensor)
{
    const mp_st_tensor *t = m->st->tensors[tensor].info;
    if (ends_with(t->name, "_scale_inv") || ends_with(t->name, "_scales"))
        return 0;
    if (ends_with(t->name, "_blocks")) /* MXFP4: two 4-bit weights per byte */
        return 2 * mp_st_nbytes(t);
    return mp_st_nelem(t);
}
