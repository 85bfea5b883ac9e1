/* Calibration's view into a loaded layer: the activations of an MLP and every
 * tensor's f32 values by canonical name (which calibration overwrites with their
 * quantized values). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"

static const eng_mlp *mlp_of(const mp_engine *e, const eng_layer *L, int expert)
{
    if (expert == MP_ENGINE_DENSE)
        return L->is_moe ? NULL : &L->dense;
    if (expert == MP_ENGINE_SHARED)
        return L->has_shared ? &L->shared : NULL;
    return L->is_moe && expert < e->cfg->routing.n_experts ? &L->experts[expert] : NULL;
}

int mp_engine_mlp_act(mp_engine *e, int li, int expert, const float *h, int64_t n, float *act, mp_error *err)
{
    int rc = eng_load_layer(e, li, err);
    if (rc)
        return rc;
    const eng_mlp *m = mlp_of(e, &e->layers[li], expert);
    if (!m)
        return mp_fail(err, MP_EXIT_INPUT, "layer %d has no MLP %d", li, expert);
    if (n > 0 && eng_mlp_act(e, m, h, n, act, NULL) != MP_OK)
        return mp_fail(err, MP_EXIT_IO, "out of memory in layer %d's MLP %d", li, expert);
    return MP_OK;
}

static float *linear_values(eng_linear *l, const char *name, int64_t *rows, int64_t *cols)
{
    if (l->w && strcmp(l->name, name) == 0) {
        *rows = l->rows;
        *cols = l->cols;
        return l->w;
    }
    size_t len = strlen(l->name);
    if (l->bias && len > 0 && strncmp(name, l->name, len) == 0 && strcmp(name + len, ".bias") == 0) {
        *rows = 1;
        *cols = l->rows;
        return l->bias;
    }
    return NULL;
}

static float *mlp_values(eng_mlp *m, const char *name, int64_t *rows, int64_t *cols)
{
    float *v = linear_values(&m->gate, name, rows, cols);
    if (!v)
        v = linear_values(&m->up, name, rows, cols);
    return v ? v : linear_values(&m->down, name, rows, cols);
}

/* The layer's vectors, by their name after "layers.N.". */
static float *vector_values(const mp_engine *e, eng_layer *L, const char *suffix, int64_t *cols)
{
    struct {
        const char *name;
        float *v;
        int64_t n;
    } vectors[] = {
        {"input_norm", L->input_norm, e->cfg->hidden},
        {"post_attn_norm", L->post_attn_norm, e->cfg->hidden},
        {"attn.q_norm", L->q_norm, L->q_norm_len},
        {"attn.k_norm", L->k_norm, L->k_norm_len},
        {"attn.sinks", L->sinks, e->cfg->n_heads},
        {"attn.q_a_norm", L->q_a_norm, e->cfg->q_lora_rank},
        {"attn.kv_a_norm", L->kv_a_norm, e->cfg->kv_lora_rank},
        {"correction_bias", L->correction_bias, e->cfg->routing.n_experts},
    };
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++)
        if (vectors[i].v && strcmp(suffix, vectors[i].name) == 0) {
            *cols = vectors[i].n;
            return vectors[i].v;
        }
    return NULL;
}

static float *layer_values(const mp_engine *e, eng_layer *L, const char *name, const char *suffix, int64_t *rows,
                           int64_t *cols)
{
    eng_linear *linears[] = {&L->q, &L->k, &L->v, &L->o, &L->q_a, &L->q_b, &L->kv_a, &L->kv_b, &L->router,
                             &L->shared_gate};
    for (size_t i = 0; i < sizeof linears / sizeof linears[0]; i++) {
        float *v = linear_values(linears[i], name, rows, cols);
        if (v)
            return v;
    }
    float *v = mlp_values(&L->dense, name, rows, cols);
    if (!v)
        v = mlp_values(&L->shared, name, rows, cols);
    int expert;
    if (!v && L->experts && sscanf(suffix, "experts.%d.", &expert) == 1 && expert >= 0 &&
        expert < e->cfg->routing.n_experts)
        v = mlp_values(&L->experts[expert], name, rows, cols);
    if (!v && (v = vector_values(e, L, suffix, cols)) != NULL)
        *rows = 1;
    return v;
}

float *mp_engine_weight(mp_engine *e, const char *name, int64_t *rows, int64_t *cols)
{
    int li, used = 0;
    if (sscanf(name, "layers.%d.%n", &li, &used) == 1 && used > 0) {
        if (li < 0 || li >= e->cfg->n_layers || !e->layers[li].loaded)
            return NULL;
        return layer_values(e, &e->layers[li], name, name + used, rows, cols);
    }
    if (strcmp(name, "final_norm") == 0) {
        *rows = 1;
        *cols = e->cfg->hidden;
        return e->final_norm;
    }
    if (strcmp(name, "embed") == 0) {
        *rows = e->cfg->vocab;
        *cols = e->cfg->hidden;
        return e->embed;
    }
    return e->lm_head.w && strcmp(name, e->lm_head.name) == 0 ? linear_values(&e->lm_head, name, rows, cols) : NULL;
}
