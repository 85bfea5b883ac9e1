/* The MLP blocks: dense SwiGLU (GPT-OSS: its clamped variant), and the MoE block
 * (router, top-k, routed experts added in expert order as HF's index_add_ does,
 * shared experts with their gate, or always added when they have none). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"
#include "linalg.h"

/* GPT-OSS: gate <= limit, up in [-limit, limit], out = (up + 1) * gate * sigmoid(1.702 gate). */
static void clamped_swiglu(float *gate, const float *up, int64_t n, float limit)
{
    for (int64_t i = 0; i < n; i++) {
        float g = fminf(gate[i], limit), u = fmaxf(fminf(up[i], limit), -limit);
        gate[i] = (u + 1.0f) * (g / (1.0f + expf(-1.702f * g)));
    }
}

int eng_mlp_act(const mp_engine *e, const eng_mlp *m, const float *x, int64_t n, float *act,
                const mp_engine_hooks *hooks)
{
    int64_t width = m->gate.rows;
    float *up = malloc((size_t)(n * width) * sizeof *up);
    if (!up)
        return MP_EXIT_IO;
    eng_linear_apply(e, &m->gate, x, n, act, hooks);
    eng_linear_apply(e, &m->up, x, n, up, hooks);
    if (e->cfg->family == MP_FAMILY_GPT_OSS)
        clamped_swiglu(act, up, n * width, (float)e->cfg->swiglu_limit);
    else
        for (int64_t i = 0; i < n * width; i++)
            act[i] = mp_silu(act[i]) * up[i];
    free(up);
    return MP_OK;
}

int eng_mlp_apply(const mp_engine *e, const eng_mlp *m, const float *x, int64_t n, float *out, float *keep_act,
                  const mp_engine_hooks *hooks)
{
    int64_t width = m->gate.rows;
    float *act = malloc((size_t)(n * width) * sizeof *act);
    if (!act || eng_mlp_act(e, m, x, n, act, hooks) != MP_OK) {
        free(act);
        return MP_EXIT_IO;
    }
    if (keep_act)
        memcpy(keep_act, act, (size_t)(n * width) * sizeof *keep_act);
    eng_linear_apply(e, &m->down, act, n, out, hooks);
    free(act);
    return MP_OK;
}

/* Tokens grouped by expert: rows[start[x] .. start[x + 1]) went to expert x. */
typedef struct {
    int64_t *start, *token;
    float *weight;
} expert_groups;

static int group_by_expert(const int *chosen, const float *weights, int64_t n, int k, int n_experts,
                           expert_groups *g)
{
    g->start = calloc((size_t)n_experts + 1, sizeof *g->start);
    g->token = malloc((size_t)(n * k) * sizeof *g->token);
    g->weight = malloc((size_t)(n * k) * sizeof *g->weight);
    int64_t *fill = calloc((size_t)n_experts, sizeof *fill);
    if (!g->start || !g->token || !g->weight || !fill) {
        free(fill);
        return MP_EXIT_IO;
    }
    for (int64_t i = 0; i < n * k; i++)
        g->start[chosen[i] + 1]++;
    for (int x = 0; x < n_experts; x++)
        g->start[x + 1] += g->start[x];
    for (int64_t i = 0; i < n * k; i++) {
        int x = chosen[i];
        int64_t at = g->start[x] + fill[x]++;
        g->token[at] = i / k;
        g->weight[at] = weights[i];
    }
    free(fill);
    return MP_OK;
}

static void free_groups(expert_groups *g)
{
    free(g->start);
    free(g->token);
    free(g->weight);
}

/* Routed experts in parallel (each on its own rows), summed in expert order. */
static int run_experts(const mp_engine *e, const eng_layer *L, const float *h, int64_t n, const expert_groups *g,
                       float *out, const mp_engine_hooks *hooks)
{
    int n_experts = e->cfg->routing.n_experts;
    int64_t d = e->cfg->hidden, rows = g->start[n_experts], width = e->cfg->moe_intermediate;
    bool observe = hooks && hooks->linear_input;
    float *x = malloc((size_t)(rows * d) * sizeof *x), *y = malloc((size_t)(rows * d) * sizeof *y);
    float *act = observe ? malloc((size_t)(rows * width) * sizeof *act) : NULL;
    if (!x || !y || (observe && !act)) {
        free(x);
        free(y);
        free(act);
        return MP_EXIT_IO;
    }
    for (int64_t r = 0; r < rows; r++)
        memcpy(x + r * d, h + g->token[r] * d, (size_t)d * sizeof *x);
    int failed = 0;
    #pragma omp parallel for schedule(dynamic) reduction(| : failed)
    for (int xi = 0; xi < n_experts; xi++) {
        int64_t r0 = g->start[xi], count = g->start[xi + 1] - r0;
        if (count > 0)
            failed |= eng_mlp_apply(e, &L->experts[xi], x + r0 * d, count, y + r0 * d,
                                    act ? act + r0 * width : NULL, NULL) != MP_OK;
    }
    for (int xi = 0; observe && xi < n_experts; xi++) {
        int64_t r0 = g->start[xi], count = g->start[xi + 1] - r0;
        hooks->linear_input(hooks->user, L->experts[xi].gate.name, x + r0 * d, count, d);
        hooks->linear_input(hooks->user, L->experts[xi].up.name, x + r0 * d, count, d);
        hooks->linear_input(hooks->user, L->experts[xi].down.name, act + r0 * width, count, width);
    }
    memset(out, 0, (size_t)(n * d) * sizeof *out);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < d; i++)
            out[g->token[r] * d + i] += g->weight[r] * y[r * d + i];
    free(x);
    free(y);
    free(act);
    return failed ? MP_EXIT_IO : MP_OK;
}

static int add_shared(const mp_engine *e, const eng_layer *L, const float *h, int64_t n, float *out,
                      const mp_engine_hooks *hooks)
{
    int64_t d = e->cfg->hidden;
    float *s = malloc((size_t)(n * d) * sizeof *s), *gate = malloc((size_t)n * sizeof *gate);
    int rc = !s || !gate ? MP_EXIT_IO : eng_mlp_apply(e, &L->shared, h, n, s, NULL, hooks);
    if (!rc && L->shared_gate.w)
        eng_linear_apply(e, &L->shared_gate, h, n, gate, hooks);
    for (int64_t t = 0; !rc && t < n; t++) {
        float g = L->shared_gate.w ? 1.0f / (1.0f + expf(-gate[t])) : 1.0f;
        for (int64_t i = 0; i < d; i++)
            out[t * d + i] += g * s[t * d + i];
    }
    free(s);
    free(gate);
    return rc;
}

/* Router logits, then per token its top_k experts and their weights. */
static int route_rows(const mp_engine *e, const eng_layer *L, const float *h, int64_t n, int *chosen, float *weights,
                      const mp_engine_hooks *hooks)
{
    const mp_routing *r = &e->cfg->routing;
    float *logits = malloc((size_t)(n * r->n_experts) * sizeof *logits);
    float *scratch = malloc(2 * (size_t)r->n_experts * sizeof *scratch);
    bool *flags = malloc(2 * (size_t)r->n_experts * sizeof *flags);
    int rc = !logits || !scratch || !flags ? MP_EXIT_IO : MP_OK;
    if (!rc) {
        eng_linear_apply(e, &L->router, h, n, logits, hooks);
        for (int64_t t = 0; t < n; t++)
            eng_route_token(e->cfg, L->correction_bias, logits + t * r->n_experts, scratch, flags, chosen + t * r->top_k,
                            weights + t * r->top_k);
    }
    free(logits);
    free(scratch);
    free(flags);
    return rc;
}

int mp_engine_route(mp_engine *e, int li, const float *h, int64_t n, int *chosen, float *weights, mp_error *err)
{
    int rc = eng_load_layer(e, li, err);
    if (rc)
        return rc;
    if (!e->layers[li].is_moe)
        return mp_fail(err, MP_EXIT_INPUT, "layer %d has no router", li);
    if (route_rows(e, &e->layers[li], h, n, chosen, weights, NULL) != MP_OK)
        return mp_fail(err, MP_EXIT_IO, "out of memory routing layer %d (%lld tokens)", li, (long long)n);
    return MP_OK;
}

int eng_moe(mp_engine *e, int li, const float *h, int64_t n, float *out, const mp_engine_hooks *hooks,
            mp_error *err)
{
    const eng_layer *L = &e->layers[li];
    const mp_routing *r = &e->cfg->routing;
    int *chosen = malloc((size_t)(n * r->top_k) * sizeof *chosen);
    float *weights = malloc((size_t)(n * r->top_k) * sizeof *weights);
    expert_groups g = {0};
    int rc = !chosen || !weights ? MP_EXIT_IO : route_rows(e, L, h, n, chosen, weights, hooks);
    if (!rc) {
        if (hooks && hooks->routing)
            hooks->routing(hooks->user, li, chosen, weights, n, r->top_k);
        rc = group_by_expert(chosen, weights, n, r->top_k, r->n_experts, &g);
    }
    if (!rc)
        rc = run_experts(e, L, h, n, &g, out, hooks);
    if (!rc && L->has_shared)
        rc = add_shared(e, L, h, n, out, hooks);
    free_groups(&g);
    free(chosen);
    free(weights);
    if (rc)
        return mp_fail(err, MP_EXIT_IO, "out of memory in layer %d's experts (%lld tokens)", li, (long long)n);
    return MP_OK;
}
