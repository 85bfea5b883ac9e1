/* The MLP block of the decoder: the dense MLP, or the router, the routed experts
 * (fetched from the expert source, summed in expert order as the engine does) and
 * the shared experts; and the prediction of the next layer's experts for prefetch. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "decoder_internal.h"
#include "linalg.h"

/* GPT-OSS: gate <= limit, up in [-limit, limit], out = (up + 1) * gate * sigmoid(1.702 gate). */
static void swiglu(const mp_config *c, float *gate, const float *up, int64_t n)
{
    if (c->family != MP_FAMILY_GPT_OSS) {
        for (int64_t i = 0; i < n; i++)
            gate[i] = mp_silu(gate[i]) * up[i];
        return;
    }
    float limit = (float)c->swiglu_limit;
    for (int64_t i = 0; i < n; i++) {
        float g = fminf(gate[i], limit), u = fmaxf(fminf(up[i], limit), -limit);
        gate[i] = (u + 1.0f) * (g / (1.0f + expf(-1.702f * g)));
    }
}

/* out[n, hidden] = down(swiglu(gate(x), up(x))). */
static int mlp_apply(mp_decoder *d, const dec_mlp *m, const float *x, int64_t n, float *out)
{
    int64_t width = m->gate.w.rows;
    float *act = malloc((size_t)(n * width) * sizeof *act), *up = malloc((size_t)(n * width) * sizeof *up);
    int rc = act && up ? MP_OK : MP_EXIT_IO;
    if (!rc) {
        dec_linear_apply(d, &m->gate, x, n, act);
        dec_linear_apply(d, &m->up, x, n, up);
        swiglu(d->cfg, act, up, n * width);
        dec_linear_apply(d, &m->down, act, n, out);
    }
    free(act);
    free(up);
    return rc;
}

/* Router logits in exact f32 whatever the kernels: a rounded activation must not
 * change which experts are chosen. */
static void router_logits(mp_decoder *d, const dec_layer *L, const float *h, int n, float *logits)
{
    dec_linear_apply_in(d, &L->router, h, n, logits, MP_KERN_EXACT);
}

static int route(mp_decoder *d, const dec_layer *L, const float *h, int n, int *chosen, float *weights)
{
    const mp_routing *r = &d->cfg->routing;
    float *logits = malloc((size_t)n * r->n_experts * sizeof *logits);
    float *scratch = malloc(2 * (size_t)r->n_experts * sizeof *scratch);
    bool *flags = malloc(2 * (size_t)r->n_experts * sizeof *flags);
    int rc = logits && scratch && flags ? MP_OK : MP_EXIT_IO;
    if (!rc) {
        router_logits(d, L, h, n, logits);
        for (int t = 0; t < n; t++)
            eng_route_token(d->cfg, L->correction_bias, logits + (int64_t)t * r->n_experts, scratch, flags,
                            chosen + t * r->top_k, weights + t * r->top_k);
    }
    free(logits);
    free(scratch);
    free(flags);
    return rc;
}

/* A tensor of an expert's record as a packed matrix (or NULL bias). */
static mp_packed expert_tensor(const mp_decoder *d, int tensor, const uint8_t *raw)
{
    if (tensor < 0)
        return (mp_packed){0};
    const mp_pack_tensor *t = &d->pack->tensors[tensor];
    return (mp_packed){.enc = t->enc, .rows = t->rows, .cols = t->cols,
                       .raw = raw + d->pack->records[t->record].parts[t->part].offset};
}

/* A routed expert over the rows x[n] routed to it: gate, up and down straight from
 * the record; biases (GPT-OSS) decoded into bias[3 * width]. */
static int expert_apply(mp_decoder *d, const dec_expert *ex, const uint8_t *raw, const float *x, int64_t n,
                        float *bias, float *out)
{
    dec_mlp m;
    dec_linear *lin[3] = {&m.gate, &m.up, &m.down};
    for (int k = 0; k < 3; k++) {
        lin[k]->w = expert_tensor(d, ex->tensor[k], raw);
        mp_packed b = expert_tensor(d, ex->tensor[k + 3], raw);
        lin[k]->bias = b.raw ? bias + k * d->cfg->moe_intermediate : NULL;
        if (b.raw)
            mp_encoding_decode_rows(&b.enc, b.rows, b.cols, b.raw, 0, b.rows, lin[k]->bias);
    }
    return mlp_apply(d, &m, x, n, out);
}

/* The tokens routed to expert xi and their weights, in token order. */
static int64_t rows_of_expert(const int *chosen, const float *weights, int n, int k, int xi, int64_t *token,
                              float *weight)
{
    int64_t count = 0;
    for (int64_t i = 0; i < (int64_t)n * k; i++)
        if (chosen[i] == xi) {
            token[count] = i / k;
            weight[count++] = weights[i];
        }
    return count;
}

static void hint_chosen(const mp_decoder *d, int li, const int *chosen, int n_chosen, int *list)
{
    if (!d->experts.prefetch)
        return;
    int n = 0;
    for (int i = 0; i < n_chosen; i++) {
        bool seen = false;
        for (int j = 0; j < n && !seen; j++)
            seen = list[j] == chosen[i];
        if (!seen)
            list[n++] = chosen[i];
    }
    d->experts.prefetch(d->experts.user, li, list, n);
}

typedef struct {
    int64_t *token;
    float *weight, *x, *y, *bias;
} expert_scratch;

static int run_expert(mp_decoder *d, int li, int xi, const float *h, int64_t count, expert_scratch *s, float *out,
                      mp_error *err)
{
    int64_t hidden = d->cfg->hidden;
    const uint8_t *raw;
    int rc = d->experts.acquire(d->experts.user, li, xi, &raw, err);
    if (rc)
        return rc;
    for (int64_t r = 0; r < count; r++)
        memcpy(s->x + r * hidden, h + s->token[r] * hidden, (size_t)hidden * sizeof *s->x);
    rc = expert_apply(d, &d->layers[li].experts[xi], raw, s->x, count, s->bias, s->y);
    d->experts.release(d->experts.user, li, xi);
    if (rc)
        return mp_fail(err, MP_EXIT_IO, "out of memory in layer %d expert %d", li, xi);
    for (int64_t r = 0; r < count; r++)
        for (int64_t i = 0; i < hidden; i++)
            out[s->token[r] * hidden + i] += s->weight[r] * s->y[r * hidden + i];
    return MP_OK;
}

static int routed_experts(mp_decoder *d, int li, const float *h, int n, const int *chosen, const float *weights,
                          float *out, mp_error *err)
{
    const mp_config *c = d->cfg;
    int k = c->routing.top_k;
    int64_t hidden = c->hidden;
    expert_scratch s = {malloc((size_t)n * sizeof *s.token), malloc((size_t)n * sizeof *s.weight),
                        malloc((size_t)n * hidden * sizeof *s.x), malloc((size_t)n * hidden * sizeof *s.y),
                        malloc(3 * (size_t)(c->moe_intermediate > hidden ? c->moe_intermediate : hidden) * sizeof *s.bias)};
    int *list = malloc((size_t)n * k * sizeof *list);
    int rc = s.token && s.weight && s.x && s.y && s.bias && list ? MP_OK : mp_fail(err, MP_EXIT_IO, "out of memory");
    if (!rc)
        hint_chosen(d, li, chosen, n * k, list);
    memset(out, 0, (size_t)n * hidden * sizeof *out);
    for (int xi = 0; xi < c->routing.n_experts && !rc; xi++) {
        int64_t count = rows_of_expert(chosen, weights, n, k, xi, s.token, s.weight);
        if (count > 0)
            rc = run_expert(d, li, xi, h, count, &s, out, err);
    }
    free(s.token);
    free(s.weight);
    free(s.x);
    free(s.y);
    free(s.bias);
    free(list);
    return rc;
}

static int add_shared(mp_decoder *d, const dec_layer *L, const float *h, int n, float *out)
{
    int64_t hidden = d->cfg->hidden;
    float *s = malloc((size_t)n * hidden * sizeof *s), *gate = malloc((size_t)n * sizeof *gate);
    int rc = s && gate ? mlp_apply(d, &L->shared, h, n, s) : MP_EXIT_IO;
    if (!rc && L->shared_gate.w.raw)
        dec_linear_apply(d, &L->shared_gate, h, n, gate);
    for (int t = 0; !rc && t < n; t++) {
        float g = L->shared_gate.w.raw ? 1.0f / (1.0f + expf(-gate[t])) : 1.0f;
        for (int64_t i = 0; i < hidden; i++)
            out[t * hidden + i] += g * s[t * hidden + i];
    }
    free(s);
    free(gate);
    return rc;
}

int dec_mlp_block(mp_decoder *d, int li, const float *h, int n, float *out, mp_error *err)
{
    const dec_layer *L = &d->layers[li];
    if (!L->is_moe)
        return mlp_apply(d, &L->dense, h, n, out) ? mp_fail(err, MP_EXIT_IO, "out of memory in layer %d's MLP", li)
                                                  : MP_OK;
    int k = d->cfg->routing.top_k;
    int *chosen = malloc((size_t)n * k * sizeof *chosen);
    float *weights = malloc((size_t)n * k * sizeof *weights);
    int rc = chosen && weights ? route(d, L, h, n, chosen, weights) : MP_EXIT_IO;
    if (rc)
        rc = mp_fail(err, MP_EXIT_IO, "out of memory routing layer %d", li);
    for (int t = 0; !rc && d->opts.on_routing && t < n; t++)
        d->opts.on_routing(d->opts.user, li, chosen + t * k, k);
    if (!rc)
        rc = routed_experts(d, li, h, n, chosen, weights, out, err);
    if (!rc && L->has_shared && add_shared(d, L, h, n, out))
        rc = mp_fail(err, MP_EXIT_IO, "out of memory in layer %d's shared expert", li);
    free(chosen);
    free(weights);
    return rc;
}

/* The layer's router on x's post-attention norm: its top_k choice, then the
 * prefetch_extra next-highest router logits. Failures only skip the hint. */
void dec_prefetch_next(mp_decoder *d, int li, const float *x)
{
    const mp_config *c = d->cfg;
    const dec_layer *L = &d->layers[li];
    int n_exp = c->routing.n_experts, k = c->routing.top_k;
    int extra = d->opts.prefetch_extra < n_exp - k ? d->opts.prefetch_extra : n_exp - k;
    if (!d->experts.prefetch)
        return;
    float *h = malloc((size_t)c->hidden * sizeof *h), *logits = malloc((size_t)n_exp * sizeof *logits);
    float *weights = malloc((size_t)k * sizeof *weights);
    int *list = malloc((size_t)(k + (extra > 0 ? extra : 0)) * sizeof *list);
    bool *taken = calloc((size_t)n_exp, sizeof *taken);
    if (h && logits && weights && list && taken) {
        mp_rmsnorm_rows(x, 1, c->hidden, L->post_attn_norm, (float)c->rms_eps, h);
        if (route(d, L, h, 1, list, weights) == MP_OK) {
            router_logits(d, L, h, 1, logits);
            for (int j = 0; j < k; j++)
                taken[list[j]] = true;
            int n = k;
            for (; n < k + extra; n++) {
                int best = -1;
                for (int xi = 0; xi < n_exp; xi++)
                    if (!taken[xi] && (best < 0 || logits[xi] > logits[best]))
                        best = xi;
                taken[best] = true;
                list[n] = best;
            }
            d->experts.prefetch(d->experts.user, li, list, n);
        }
    }
    free(h);
    free(logits);
    free(weights);
    free(list);
    free(taken);
}
