/* The decoder: tier 0 read into memory, each layer's tensors located in it, and the
 * token loop of one step (embedding, layers, final norm, output head). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decoder_internal.h"
#include "linalg.h"

static int read_tier0(mp_decoder *d, mp_error *err)
{
    const mp_pack *p = d->pack;
    d->tier0 = calloc((size_t)p->n_records, sizeof *d->tier0);
    if (!d->tier0)
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    for (int r = 0; r < p->n_records; r++) {
        if (p->records[r].expert >= 0)
            continue;
        d->tier0[r] = malloc(p->records[r].raw_length ? p->records[r].raw_length : 1);
        if (!d->tier0[r])
            return mp_fail(err, MP_EXIT_IO, "%s: out of memory reading tier 0", p->dir);
        int rc = mp_pack_read_record(p, r, d->tier0[r], err);
        if (rc)
            return rc;
        d->tier0_bytes += p->records[r].raw_length;
    }
    return MP_OK;
}

/* The pack tensor index of name with shape [rows, cols] (a vector: rows 1), or -1
 * when absent; a tensor of another shape or in an expert record is an error. */
static int find_tensor(const mp_decoder *d, const char *name, int64_t rows, int64_t cols, int *out, mp_error *err)
{
    int i = mp_pack_find(d->pack, name);
    *out = i;
    if (i < 0)
        return MP_OK;
    const mp_pack_tensor *t = &d->pack->tensors[i];
    if (t->rows * t->cols != rows * cols || (rows > 1 && t->rows != rows))
        return mp_fail(err, MP_EXIT_INPUT, "%s: tensor %s: shape [%lld, %lld], expected [%lld, %lld]", d->pack->dir,
                       name, (long long)t->rows, (long long)t->cols, (long long)rows, (long long)cols);
    return MP_OK;
}

static const uint8_t *tier0_bytes(const mp_decoder *d, int tensor)
{
    const mp_pack_tensor *t = &d->pack->tensors[tensor];
    return d->tier0[t->record] + d->pack->records[t->record].parts[t->part].offset;
}

static int load_vector(mp_decoder *d, const char *name, int64_t n, bool required, float **out, mp_error *err)
{
    int i, rc = find_tensor(d, name, 1, n, &i, err);
    if (rc || i < 0)
        return rc ? rc : required ? mp_fail(err, MP_EXIT_INPUT, "%s: tensor %s: not found", d->pack->dir, name) : MP_OK;
    const mp_pack_tensor *t = &d->pack->tensors[i];
    if (!d->tier0[t->record])
        return mp_fail(err, MP_EXIT_INPUT, "%s: tensor %s is stored in an expert record", d->pack->dir, name);
    *out = malloc((size_t)n * sizeof **out);
    if (!*out)
        return mp_fail(err, MP_EXIT_IO, "out of memory loading %s", name);
    mp_encoding_decode_rows(&t->enc, t->rows, t->cols, tier0_bytes(d, i), 0, t->rows, *out);
    return MP_OK;
}

static int load_linear(mp_decoder *d, dec_linear *l, const char *name, int64_t rows, int64_t cols, bool required,
                       mp_error *err)
{
    memset(l, 0, sizeof *l);
    int i, rc = find_tensor(d, name, rows, cols, &i, err);
    if (rc || i < 0)
        return rc ? rc : required ? mp_fail(err, MP_EXIT_INPUT, "%s: tensor %s: not found", d->pack->dir, name) : MP_OK;
    const mp_pack_tensor *t = &d->pack->tensors[i];
    if (!d->tier0[t->record])
        return mp_fail(err, MP_EXIT_INPUT, "%s: tensor %s is stored in an expert record", d->pack->dir, name);
    l->w = (mp_packed){.enc = t->enc, .rows = rows, .cols = cols, .raw = tier0_bytes(d, i)};
    char bias[112];
    snprintf(bias, sizeof bias, "%s.bias", name);
    return load_vector(d, bias, rows, false, &l->bias, err);
}

static int load_mlp(mp_decoder *d, dec_mlp *m, const char *prefix, int64_t width, mp_error *err)
{
    int64_t hidden = d->cfg->hidden;
    char name[96];
    snprintf(name, sizeof name, "%s.gate", prefix);
    int rc = load_linear(d, &m->gate, name, width, hidden, true, err);
    snprintf(name, sizeof name, "%s.up", prefix);
    if (!rc) rc = load_linear(d, &m->up, name, width, hidden, true, err);
    snprintf(name, sizeof name, "%s.down", prefix);
    if (!rc) rc = load_linear(d, &m->down, name, hidden, width, true, err);
    return rc;
}

/* q/k norms are per head or over the whole projection (OLMoE): their length says. */
static int load_qk_norm(mp_decoder *d, const char *name, float **out, int64_t *len, int64_t head, int64_t width,
                        mp_error *err)
{
    int i = mp_pack_find(d->pack, name);
    if (i < 0)
        return MP_OK;
    *len = d->pack->tensors[i].rows * d->pack->tensors[i].cols;
    if (*len != head && *len != width)
        return mp_fail(err, MP_EXIT_INPUT, "%s: tensor %s: %lld values, expected %lld or %lld", d->pack->dir, name,
                       (long long)*len, (long long)head, (long long)width);
    return load_vector(d, name, *len, true, out, err);
}

static int load_gqa(mp_decoder *d, dec_layer *L, const char *p, mp_error *err)
{
    const mp_config *c = d->cfg;
    int64_t hidden = c->hidden, qw = (int64_t)c->n_heads * c->head_dim, kw = (int64_t)c->n_kv_heads * c->head_dim;
    char name[96];
    snprintf(name, sizeof name, "%s.attn.q", p);
    int rc = load_linear(d, &L->q, name, qw, hidden, true, err);
    snprintf(name, sizeof name, "%s.attn.k", p);
    if (!rc) rc = load_linear(d, &L->k, name, kw, hidden, true, err);
    snprintf(name, sizeof name, "%s.attn.v", p);
    if (!rc) rc = load_linear(d, &L->v, name, kw, hidden, true, err);
    snprintf(name, sizeof name, "%s.attn.o", p);
    if (!rc) rc = load_linear(d, &L->o, name, hidden, qw, true, err);
    snprintf(name, sizeof name, "%s.attn.q_norm", p);
    if (!rc) rc = load_qk_norm(d, name, &L->q_norm, &L->q_norm_len, c->head_dim, qw, err);
    snprintf(name, sizeof name, "%s.attn.k_norm", p);
    if (!rc) rc = load_qk_norm(d, name, &L->k_norm, &L->k_norm_len, c->head_dim, kw, err);
    snprintf(name, sizeof name, "%s.attn.sinks", p);
    if (!rc) rc = load_vector(d, name, c->n_heads, false, &L->sinks, err);
    return rc;
}

/* kv_b decoded to f32: the absorbed attention multiplies by its transpose. */
static int load_kv_b(mp_decoder *d, dec_layer *L, const char *name, int64_t rows, int64_t cols, mp_error *err)
{
    dec_linear kv_b;
    int rc = load_linear(d, &kv_b, name, rows, cols, true, err);
    free(kv_b.bias);
    if (rc)
        return rc;
    L->kv_b = malloc((size_t)(rows * cols) * sizeof *L->kv_b);
    if (!L->kv_b)
        return mp_fail(err, MP_EXIT_IO, "out of memory loading %s", name);
    mp_encoding_decode_rows(&kv_b.w.enc, rows, cols, kv_b.w.raw, 0, rows, L->kv_b);
    d->tier0_bytes += (uint64_t)(rows * cols) * sizeof *L->kv_b;
    return MP_OK;
}

static int load_mla(mp_decoder *d, dec_layer *L, const char *p, mp_error *err)
{
    const mp_config *c = d->cfg;
    int64_t hidden = c->hidden, H = c->n_heads, qk = c->qk_nope_dim + c->qk_rope_dim;
    char name[96];
    int rc;
    if (c->q_lora_rank > 0) {
        snprintf(name, sizeof name, "%s.attn.q_a", p);
        rc = load_linear(d, &L->q_a, name, c->q_lora_rank, hidden, true, err);
        snprintf(name, sizeof name, "%s.attn.q_a_norm", p);
        if (!rc) rc = load_vector(d, name, c->q_lora_rank, true, &L->q_a_norm, err);
        snprintf(name, sizeof name, "%s.attn.q_b", p);
        if (!rc) rc = load_linear(d, &L->q_b, name, H * qk, c->q_lora_rank, true, err);
    } else {
        snprintf(name, sizeof name, "%s.attn.q", p);
        rc = load_linear(d, &L->q, name, H * qk, hidden, true, err);
    }
    snprintf(name, sizeof name, "%s.attn.kv_a", p);
    if (!rc) rc = load_linear(d, &L->kv_a, name, c->kv_lora_rank + c->qk_rope_dim, hidden, true, err);
    snprintf(name, sizeof name, "%s.attn.kv_a_norm", p);
    if (!rc) rc = load_vector(d, name, c->kv_lora_rank, true, &L->kv_a_norm, err);
    snprintf(name, sizeof name, "%s.attn.kv_b", p);
    if (!rc) rc = load_kv_b(d, L, name, H * (c->qk_nope_dim + c->v_head_dim), c->kv_lora_rank, err);
    snprintf(name, sizeof name, "%s.attn.o", p);
    if (!rc) rc = load_linear(d, &L->o, name, hidden, H * c->v_head_dim, true, err);
    return rc;
}

/* A routed expert's tensors: each must lie in that expert's own record. */
static int locate_expert(mp_decoder *d, dec_expert *x, const char *prefix, int li, int xi, mp_error *err)
{
    static const char *const parts[6] = {"gate", "up", "down", "gate.bias", "up.bias", "down.bias"};
    for (int k = 0; k < 6; k++) {
        char name[112];
        snprintf(name, sizeof name, "%s.%s", prefix, parts[k]);
        x->tensor[k] = mp_pack_find(d->pack, name);
        if (x->tensor[k] < 0 && k < 3)
            return mp_fail(err, MP_EXIT_INPUT, "%s: tensor %s: not found", d->pack->dir, name);
        const mp_pack_record *r = x->tensor[k] < 0 ? NULL : &d->pack->records[d->pack->tensors[x->tensor[k]].record];
        if (r && (r->layer != li || r->expert != xi))
            return mp_fail(err, MP_EXIT_INPUT, "%s: tensor %s is not in the record of layer %d expert %d", d->pack->dir,
                           name, li, xi);
    }
    const mp_pack_tensor *gate = &d->pack->tensors[x->tensor[0]], *down = &d->pack->tensors[x->tensor[2]];
    if (gate->rows != d->cfg->moe_intermediate || gate->cols != d->cfg->hidden || down->rows != d->cfg->hidden ||
        down->cols != d->cfg->moe_intermediate)
        return mp_fail(err, MP_EXIT_INPUT, "%s: %s: shapes do not match moe_intermediate_size %d and hidden_size %d",
                       d->pack->dir, prefix, d->cfg->moe_intermediate, d->cfg->hidden);
    return MP_OK;
}

static int load_moe(mp_decoder *d, dec_layer *L, int li, const char *p, mp_error *err)
{
    const mp_config *c = d->cfg;
    int n = c->routing.n_experts;
    char name[96];
    snprintf(name, sizeof name, "%s.router", p);
    int rc = load_linear(d, &L->router, name, n, c->hidden, true, err);
    snprintf(name, sizeof name, "%s.correction_bias", p);
    if (!rc) rc = load_vector(d, name, n, false, &L->correction_bias, err);
    L->experts = calloc((size_t)n, sizeof *L->experts);
    if (!rc && !L->experts)
        rc = mp_fail(err, MP_EXIT_IO, "out of memory");
    for (int x = 0; x < n && !rc; x++) {
        snprintf(name, sizeof name, "%s.experts.%d", p, x);
        rc = locate_expert(d, &L->experts[x], name, li, x, err);
    }
    snprintf(name, sizeof name, "%s.shared.gate", p);
    L->has_shared = mp_pack_find(d->pack, name) >= 0;
    snprintf(name, sizeof name, "%s.shared", p);
    if (!rc && L->has_shared)
        rc = load_mlp(d, &L->shared, name, c->shared_intermediate, err);
    snprintf(name, sizeof name, "%s.shared_gate", p);
    if (!rc) rc = load_linear(d, &L->shared_gate, name, 1, c->hidden, false, err);
    return rc;
}

static int alloc_kv(mp_decoder *d, dec_layer *L, mp_error *err)
{
    const mp_config *c = d->cfg;
    bool mla = L->kv_a.w.raw != NULL;
    int64_t kw = mla ? c->kv_lora_rank : (int64_t)c->n_kv_heads * c->head_dim;
    int64_t vw = mla ? c->qk_rope_dim : kw;
    L->k_cache = malloc((size_t)(d->opts.max_ctx * kw) * sizeof *L->k_cache);
    L->v_cache = malloc((size_t)(d->opts.max_ctx * vw) * sizeof *L->v_cache);
    if (!L->k_cache || !L->v_cache)
        return mp_fail(err, MP_EXIT_IO, "out of memory for a KV cache of %d positions", d->opts.max_ctx);
    d->kv_bytes += (uint64_t)(d->opts.max_ctx * (kw + vw)) * sizeof(float);
    return MP_OK;
}

static int load_layer(mp_decoder *d, int li, mp_error *err)
{
    dec_layer *L = &d->layers[li];
    bool mla = d->cfg->family == MP_FAMILY_DEEPSEEK_V2 || d->cfg->family == MP_FAMILY_DEEPSEEK_V3;
    char p[32], name[96];
    snprintf(p, sizeof p, "layers.%d", li);
    snprintf(name, sizeof name, "%s.input_norm", p);
    int rc = load_vector(d, name, d->cfg->hidden, true, &L->input_norm, err);
    snprintf(name, sizeof name, "%s.post_attn_norm", p);
    if (!rc) rc = load_vector(d, name, d->cfg->hidden, true, &L->post_attn_norm, err);
    if (!rc) rc = mla ? load_mla(d, L, p, err) : load_gqa(d, L, p, err);
    snprintf(name, sizeof name, "%s.router", p);
    L->is_moe = mp_pack_find(d->pack, name) >= 0;
    snprintf(name, sizeof name, "%s.mlp", p);
    if (!rc) rc = L->is_moe ? load_moe(d, L, li, p, err) : load_mlp(d, &L->dense, name, d->cfg->intermediate, err);
    return rc ? rc : alloc_kv(d, L, err);
}

static int load_globals(mp_decoder *d, mp_error *err)
{
    const mp_config *c = d->cfg;
    int rc = load_vector(d, "final_norm", c->hidden, true, &d->final_norm, err);
    dec_linear embed;
    if (!rc) rc = load_linear(d, &embed, "embed", c->vocab, c->hidden, true, err);
    if (rc)
        return rc;
    free(embed.bias);
    d->embed = embed.w;
    /* Tied embeddings: the output head is the embedding matrix. */
    if (mp_pack_find(d->pack, "lm_head") >= 0)
        return load_linear(d, &d->lm_head, "lm_head", c->vocab, c->hidden, true, err);
    d->lm_head = (dec_linear){.w = d->embed};
    return MP_OK;
}

int mp_decoder_new(mp_decoder **out, const mp_pack *pack, const mp_config *cfg, const mp_expert_source *experts,
                   const mp_decoder_opts *o, mp_error *err)
{
    *out = NULL;
    mp_decoder *d = calloc(1, sizeof *d);
    if (!d)
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    d->pack = pack;
    d->cfg = cfg;
    d->experts = *experts;
    d->opts = *o;
    d->layers = calloc((size_t)cfg->n_layers, sizeof *d->layers);
    /* OpenBLAS's own threads would spin beside the kernels' OpenMP team */
    mp_linalg_init();
    int rc = d->layers ? read_tier0(d, err) : mp_fail(err, MP_EXIT_IO, "out of memory");
    if (!rc) rc = eng_rope_init(&d->rope, cfg, o->max_ctx, err);
    if (!rc) rc = load_globals(d, err);
    for (int li = 0; li < cfg->n_layers && !rc; li++)
        rc = load_layer(d, li, err);
    if (rc) {
        mp_decoder_free(d);
        return rc;
    }
    *out = d;
    return MP_OK;
}

static void free_linear(dec_linear *l)
{
    free(l->bias);
}

static void free_mlp(dec_mlp *m)
{
    free_linear(&m->gate);
    free_linear(&m->up);
    free_linear(&m->down);
}

static void free_layer(dec_layer *L)
{
    float *vectors[] = {L->input_norm, L->post_attn_norm, L->q_norm,   L->k_norm, L->sinks,
                        L->q_a_norm,   L->kv_a_norm,      L->correction_bias, L->kv_b, L->k_cache, L->v_cache};
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++)
        free(vectors[i]);
    dec_linear *linears[] = {&L->q, &L->k, &L->v, &L->o, &L->q_a, &L->q_b, &L->kv_a, &L->router, &L->shared_gate};
    for (size_t i = 0; i < sizeof linears / sizeof linears[0]; i++)
        free_linear(linears[i]);
    free_mlp(&L->dense);
    free_mlp(&L->shared);
    free(L->experts);
}

void mp_decoder_free(mp_decoder *d)
{
    if (!d)
        return;
    for (int li = 0; d->layers && li < d->cfg->n_layers; li++)
        free_layer(&d->layers[li]);
    free(d->layers);
    for (int r = 0; d->tier0 && r < d->pack->n_records; r++)
        free(d->tier0[r]);
    free(d->tier0);
    free(d->final_norm);
    if (d->lm_head.w.raw != d->embed.raw)
        free_linear(&d->lm_head);
    eng_rope_free(&d->rope);
    free(d);
}

static void count_bytes(mp_decoder *d, const mp_packed *w)
{
    mp_enc_layout layout;
    mp_encoding_layout(&w->enc, w->rows, w->cols, &layout);
    d->weight_bytes += layout.total;
}

void dec_linear_apply(mp_decoder *d, const dec_linear *l, const float *x, int64_t n, float *y)
{
    dec_linear_apply_in(d, l, x, n, y, d->opts.mode);
}

void dec_linear_apply_in(mp_decoder *d, const dec_linear *l, const float *x, int64_t n, float *y, mp_kern_mode mode)
{
    count_bytes(d, &l->w);
    mp_kern_matmul(&l->w, x, n, y, mode);
    if (l->bias)
        for (int64_t t = 0; t < n; t++)
            for (int64_t i = 0; i < l->w.rows; i++)
                y[t * l->w.rows + i] += l->bias[i];
}

static int embed_tokens(const mp_decoder *d, const int32_t *tokens, int n, float *x, mp_error *err)
{
    int64_t hidden = d->cfg->hidden;
    for (int i = 0; i < n; i++) {
        if (tokens[i] < 0 || tokens[i] >= d->cfg->vocab)
            return mp_fail(err, MP_EXIT_INPUT, "token %d is outside the model's vocabulary (%d)", tokens[i],
                           d->cfg->vocab);
        mp_encoding_decode_rows(&d->embed.enc, d->embed.rows, d->embed.cols, d->embed.raw, tokens[i], tokens[i] + 1,
                                x + i * hidden);
    }
    return MP_OK;
}

static void add_rows(float *x, const float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        x[i] += y[i];
}

static int run_layer(mp_decoder *d, int li, float *x, int n, float *h, float *out, mp_error *err)
{
    const mp_config *c = d->cfg;
    const dec_layer *L = &d->layers[li];
    int64_t size = (int64_t)n * c->hidden;
    mp_rmsnorm_rows(x, n, c->hidden, L->input_norm, (float)c->rms_eps, h);
    int rc = dec_attention(d, li, h, n, out, err);
    if (rc)
        return rc;
    add_rows(x, out, size);
    /* the next layer's experts are read while this layer's MLP computes */
    if (n == 1 && li + 1 < c->n_layers && d->layers[li + 1].is_moe)
        dec_prefetch_next(d, li + 1, x);
    mp_rmsnorm_rows(x, n, c->hidden, L->post_attn_norm, (float)c->rms_eps, h);
    rc = dec_mlp_block(d, li, h, n, out, err);
    if (!rc)
        add_rows(x, out, size);
    return rc;
}

int mp_decoder_step(mp_decoder *d, const int32_t *tokens, int n, bool all_logits, float *logits, mp_error *err)
{
    const mp_config *c = d->cfg;
    if (n <= 0 || d->pos + n > d->opts.max_ctx)
        return mp_fail(err, MP_EXIT_INPUT, "%d more tokens do not fit the context of %d positions (%d used)", n,
                       d->opts.max_ctx, d->pos);
    int64_t size = (int64_t)n * c->hidden;
    float *x = malloc((size_t)size * sizeof *x), *h = malloc((size_t)size * sizeof *h);
    float *out = malloc((size_t)size * sizeof *out);
    int rc = x && h && out ? embed_tokens(d, tokens, n, x, err) : mp_fail(err, MP_EXIT_IO, "out of memory");
    for (int li = 0; li < c->n_layers && !rc; li++)
        rc = run_layer(d, li, x, n, h, out, err);
    if (!rc) {
        int first = all_logits ? 0 : n - 1;
        mp_rmsnorm_rows(x + (int64_t)first * c->hidden, n - first, c->hidden, d->final_norm, (float)c->rms_eps, h);
        dec_linear_apply(d, &d->lm_head, h, n - first, logits);
        d->pos += n;
    }
    free(x);
    free(h);
    free(out);
    return rc;
}

void mp_decoder_truncate(mp_decoder *d, int n)
{
    d->pos = n < d->pos ? n : d->pos;
}

void mp_decoder_set_experts(mp_decoder *d, const mp_expert_source *experts)
{
    d->experts = *experts;
}

int mp_decoder_position(const mp_decoder *d)
{
    return d->pos;
}

uint64_t mp_decoder_resident_bytes(const mp_decoder *d)
{
    return d->tier0_bytes;
}

uint64_t mp_decoder_kv_bytes(const mp_decoder *d)
{
    return d->kv_bytes;
}

uint64_t mp_decoder_weight_bytes(const mp_decoder *d)
{
    return d->weight_bytes;
}
