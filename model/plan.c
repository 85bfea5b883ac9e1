#include "plan.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weights.h"

typedef struct {
    mp_plan *plan;
    const mp_model *m;
    int failed;
} walker;

static mp_plan_part *new_part(walker *w)
{
    mp_plan *p = w->plan;
    if (p->n_parts == p->cap_parts) {
        int cap = p->cap_parts ? 2 * p->cap_parts : 256;
        mp_plan_part *grown = realloc(p->parts, (size_t)cap * sizeof *grown);
        if (!grown) {
            w->failed = 1;
            return NULL;
        }
        p->parts = grown;
        p->cap_parts = cap;
    }
    mp_plan_part *part = &p->parts[p->n_parts++];
    memset(part, 0, sizeof *part);
    return part;
}

static void begin_record(walker *w, int tier, int layer, int expert)
{
    mp_plan *p = w->plan;
    if (p->n_records == p->cap_records) {
        int cap = p->cap_records ? 2 * p->cap_records : 256;
        mp_plan_record *grown = realloc(p->records, (size_t)cap * sizeof *grown);
        if (!grown) {
            w->failed = 1;
            return;
        }
        p->records = grown;
        p->cap_records = cap;
    }
    p->records[p->n_records++] = (mp_plan_record){tier, layer, expert, p->n_parts, 0};
}

static void end_record(walker *w)
{
    mp_plan *p = w->plan;
    if (!w->failed)
        p->records[p->n_records - 1].n_parts = p->n_parts - p->records[p->n_records - 1].first_part;
}

static void source_name(const mp_model *m, const mp_linear *lin, bool bias, char *buf, size_t cap)
{
    const char *base = m->st->tensors[bias ? lin->bias : lin->weight].info->name;
    if (lin->expert < 0)
        snprintf(buf, cap, "%s", base);
    else
        snprintf(buf, cap, "%s[expert %d, rows %d::%d]", base, lin->expert, lin->row_offset, lin->row_stride);
}

static void add_part(walker *w, mp_tensor_class cls, const mp_linear *lin, bool bias, const char *fmt, ...)
{
    mp_plan_part *part = new_part(w);
    if (!part)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(part->name, sizeof part->name, fmt, ap);
    va_end(ap);
    if (bias)
        strncat(part->name, ".bias", sizeof part->name - strlen(part->name) - 1);
    source_name(w->m, lin, bias, part->source, sizeof part->source);
    part->cls = cls;
    part->lin = *lin;
    part->is_bias = bias;
    const mp_st_tensor *t = w->m->st->tensors[lin->weight].info;
    part->ndim = bias || (lin->expert < 0 && t->ndim == 1) ? 1 : 2;
    part->rows = bias || part->ndim == 1 ? 1 : lin->rows;
    part->cols = bias ? lin->rows : (part->ndim == 1 ? lin->cols : lin->cols);
}

/* A whole tier-0 tensor (and its bias) as its own record(s). */
static void tier0_linear(walker *w, mp_tensor_class cls, int layer, const mp_linear *lin, const char *name)
{
    if (lin->weight < 0)
        return;
    begin_record(w, 0, layer, -1);
    add_part(w, cls, lin, false, "%s", name);
    end_record(w);
    if (lin->bias < 0)
        return;
    begin_record(w, 0, layer, -1);
    add_part(w, MP_CLASS_NORM, lin, true, "%s", name);
    end_record(w);
}

static void tier0_tensor(walker *w, mp_tensor_class cls, int layer, int tensor, const char *fmt, ...)
{
    if (tensor < 0)
        return;
    char name[96];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    mp_linear lin = mp_linear_of_tensor(w->m, tensor);
    tier0_linear(w, cls, layer, &lin, name);
}

static void mlp(walker *w, mp_tensor_class cls, int layer, const mp_mlp *mlp, const char *prefix)
{
    char name[96];
    const mp_linear *lins[3] = {&mlp->gate, &mlp->up, &mlp->down};
    const char *roles[3] = {"gate", "up", "down"};
    for (int k = 0; k < 3; k++) {
        snprintf(name, sizeof name, "%s.%s", prefix, roles[k]);
        tier0_linear(w, cls, layer, lins[k], name);
    }
}

static void attention(walker *w, int layer, const mp_attention *a, const char *p)
{
    const mp_linear *lins[] = {&a->q, &a->q_a, &a->q_b, &a->kv_a, &a->kv_b, &a->k, &a->v, &a->o};
    const char *roles[] = {"q", "q_a", "q_b", "kv_a", "kv_b", "k", "v", "o"};
    char name[96];
    for (size_t k = 0; k < sizeof lins / sizeof *lins; k++) {
        snprintf(name, sizeof name, "%s.attn.%s", p, roles[k]);
        tier0_linear(w, MP_CLASS_ATTN, layer, lins[k], name);
    }
    tier0_tensor(w, MP_CLASS_NORM, layer, a->q_a_norm, "%s.attn.q_a_norm", p);
    tier0_tensor(w, MP_CLASS_NORM, layer, a->kv_a_norm, "%s.attn.kv_a_norm", p);
    tier0_tensor(w, MP_CLASS_NORM, layer, a->q_norm, "%s.attn.q_norm", p);
    tier0_tensor(w, MP_CLASS_NORM, layer, a->k_norm, "%s.attn.k_norm", p);
    tier0_tensor(w, MP_CLASS_NORM, layer, a->sinks, "%s.attn.sinks", p);
}

/* One record per routed expert: gate, up, down, then their biases. */
static void expert_record(walker *w, int tier, int layer, int e, const mp_mlp *x, const char *p)
{
    const mp_linear *lins[3] = {&x->gate, &x->up, &x->down};
    const char *roles[3] = {"gate", "up", "down"};
    begin_record(w, tier, layer, e);
    for (int k = 0; k < 3; k++)
        add_part(w, MP_CLASS_EXPERT, lins[k], false, "%s.experts.%d.%s", p, e, roles[k]);
    for (int k = 0; k < 3; k++)
        if (lins[k]->bias >= 0)
            add_part(w, MP_CLASS_NORM, lins[k], true, "%s.experts.%d.%s", p, e, roles[k]);
    end_record(w);
}

static void layer(walker *w, const mp_layer *L, int index, const char *p, const int *expert_tier)
{
    const mp_model *m = w->m;
    char name[96];
    tier0_tensor(w, MP_CLASS_NORM, index, L->input_norm, "%s.input_norm", p);
    tier0_tensor(w, MP_CLASS_NORM, index, L->post_attn_norm, "%s.post_attn_norm", p);
    attention(w, index, &L->attn, p);
    if (!L->is_moe) {
        snprintf(name, sizeof name, "%s.mlp", p);
        mlp(w, MP_CLASS_DENSE, index, &L->dense, name);
        return;
    }
    snprintf(name, sizeof name, "%s.router", p);
    tier0_linear(w, MP_CLASS_ROUTER, index, &L->router, name);
    tier0_tensor(w, MP_CLASS_NORM, index, L->correction_bias, "%s.correction_bias", p);
    if (L->has_shared) {
        snprintf(name, sizeof name, "%s.shared", p);
        mlp(w, MP_CLASS_SHARED, index, &L->shared, name);
        tier0_tensor(w, MP_CLASS_ROUTER, index, L->shared_gate, "%s.shared_gate", p);
    }
    int n = m->cfg.routing.n_experts;
    for (int e = 0; e < n && L->experts; e++)
        expert_record(w, expert_tier ? expert_tier[index * n + e] : 1, index, e, &L->experts[e], p);
}

static void mtp_layer(walker *w, int j, const int *expert_tier)
{
    const mp_mtp *t = &w->m->mtp[j];
    int index = w->m->cfg.n_layers + j;
    char p[32];
    snprintf(p, sizeof p, "mtp.%d", j);
    tier0_tensor(w, MP_CLASS_EMBED, index, t->embed, "%s.embed", p);
    tier0_tensor(w, MP_CLASS_NORM, index, t->enorm, "%s.enorm", p);
    tier0_tensor(w, MP_CLASS_NORM, index, t->hnorm, "%s.hnorm", p);
    char name[64];
    snprintf(name, sizeof name, "%s.eh_proj", p);
    tier0_linear(w, MP_CLASS_DENSE, index, &t->eh_proj, name);
    layer(w, &t->layer, index, p, expert_tier);
    tier0_tensor(w, MP_CLASS_NORM, index, t->head_norm, "%s.head_norm", p);
    tier0_tensor(w, MP_CLASS_HEAD, index, t->head, "%s.head", p);
}

int mp_plan_build(mp_plan *plan, const mp_model *m, const int *expert_tier, mp_error *err)
{
    memset(plan, 0, sizeof *plan);
    walker w = {plan, m, 0};
    tier0_tensor(&w, MP_CLASS_EMBED, -1, m->embed, "embed");
    for (int i = 0; i < m->cfg.n_layers; i++) {
        char p[32];
        snprintf(p, sizeof p, "layers.%d", i);
        layer(&w, &m->layers[i], i, p, expert_tier);
    }
    for (int j = 0; j < m->cfg.n_mtp; j++)
        mtp_layer(&w, j, expert_tier);
    tier0_tensor(&w, MP_CLASS_NORM, -1, m->final_norm, "final_norm");
    tier0_tensor(&w, MP_CLASS_HEAD, -1, m->lm_head, "lm_head");
    if (w.failed) {
        mp_plan_free(plan);
        return mp_fail(err, MP_EXIT_IO, "out of memory while planning the pack");
    }
    return MP_OK;
}

void mp_plan_free(mp_plan *plan)
{
    free(plan->parts);
    free(plan->records);
    memset(plan, 0, sizeof *plan);
}

mp_dtype mp_plan_source_dtype(const mp_model *m, const mp_plan_part *part)
{
    return m->st->tensors[part->is_bias ? part->lin.bias : part->lin.weight].info->dtype;
}
