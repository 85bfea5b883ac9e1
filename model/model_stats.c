#include "model_stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* MTP layers are stored as model.layers.{n_layers + j}. */
static bool is_mtp_tensor(const char *name, int n_layers)
{
    int layer;
    return sscanf(name, "model.layers.%d.", &layer) == 1 && layer >= n_layers;
}

static uint64_t linear_params(const mp_linear *l)
{
    if (l->weight < 0)
        return 0;
    return (uint64_t)(l->rows * l->cols) + (l->bias >= 0 ? (uint64_t)l->rows : 0);
}

static void count_layer(mp_layer_stats *ls, const mp_layer *L, int n_experts)
{
    if (!L->is_moe || !L->experts)
        return;
    uint64_t sum = 0;
    for (int e = 0; e < n_experts; e++) {
        const mp_linear *lin[3] = {&L->experts[e].gate, &L->experts[e].up, &L->experts[e].down};
        for (int k = 0; k < 3; k++) {
            ls->expert_linears_expected++;
            ls->expert_linears_found += lin[k]->weight >= 0;
            sum += linear_params(lin[k]);
        }
    }
    ls->expert_params = sum / (uint64_t)n_experts;
}

int mp_model_stats_compute(mp_model_stats *s, const mp_model *m, mp_error *err)
{
    const mp_config *c = &m->cfg;
    memset(s, 0, sizeof *s);
    s->layers = calloc((size_t)c->n_layers, sizeof *s->layers);
    if (!s->layers)
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    for (int t = 0; t < m->st->n_tensors; t++) {
        const mp_st_tensor *info = m->st->tensors[t].info;
        uint64_t params = mp_model_tensor_params(m, t);
        s->total_params += params;
        if (is_mtp_tensor(info->name, c->n_layers))
            s->mtp_params += params;
        s->total_bytes += mp_st_nbytes(info);
        s->dtype_tensors[info->dtype]++;
        s->dtype_bytes[info->dtype] += mp_st_nbytes(info);
        s->unused_tensors += !m->claimed[t];
    }
    s->active_params = s->total_params - s->mtp_params;
    for (int i = 0; i < c->n_layers; i++) {
        const mp_layer *L = &m->layers[i];
        count_layer(&s->layers[i], L, c->routing.n_experts);
        if (L->is_moe) {
            s->moe_layers++;
            s->active_params -= (uint64_t)(c->routing.n_experts - c->routing.top_k) * s->layers[i].expert_params;
        } else {
            s->dense_layers++;
        }
    }
    return MP_OK;
}

void mp_model_stats_free(mp_model_stats *s)
{
    free(s->layers);
    s->layers = NULL;
}
