/* The GGUF tensors of a pack: one per pack tensor, except routed experts (stacked per
 * layer and projection into [cols, rows, experts], as the converter's torch.stack),
 * MLA's kv_b (split into k_b, transposed, and v_b) and what llama.cpp does not load
 * (DeepSeek's MTP layers, which its converter skips). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/fileio.h"
#include "gguf_export.h"

int gg_plan_warn(gg_plan *p, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    return mp_lines_appendf(&p->warnings, &p->n_warnings, "%s", line);
}

void gg_plan_free(gg_plan *p)
{
    for (int i = 0; i < p->n; i++)
        free(p->t[i].src);
    free(p->t);
    for (int i = 0; i < p->n_warnings; i++)
        free(p->warnings[i]);
    free(p->warnings);
    memset(p, 0, sizeof *p);
}

static gg_tensor *add(gg_plan *p, const char *name, int block, int n_src, mp_error *err)
{
    if (p->n == p->cap) {
        int cap = p->cap ? 2 * p->cap : 128;
        gg_tensor *grown = realloc(p->t, (size_t)cap * sizeof *grown);
        if (!grown)
            return mp_fail(err, MP_EXIT_IO, "out of memory"), NULL;
        p->t = grown;
        p->cap = cap;
    }
    gg_tensor *t = &p->t[p->n];
    memset(t, 0, sizeof *t);
    t->src = malloc((size_t)n_src * sizeof *t->src);
    if (!t->src)
        return mp_fail(err, MP_EXIT_IO, "out of memory"), NULL;
    for (int i = 0; i < n_src; i++)
        t->src[i] = -1;
    p->n++;
    snprintf(t->name, sizeof t->name, "%s", name);
    t->block = block;
    t->n_src = n_src;
    return t;
}

static int find(const gg_plan *p, const char *name)
{
    for (int i = p->n - 1; i >= 0; i--)
        if (strcmp(p->t[i].name, name) == 0)
            return i;
    return -1;
}

/* ne of a pack tensor: {cols, rows} for a matrix, {n} for a vector. */
static int shape_ne(const mp_pack_tensor *pt, int64_t *ne)
{
    if (pt->ndim == 1) {
        ne[0] = pt->cols;
        return 1;
    }
    ne[0] = pt->cols;
    ne[1] = pt->rows;
    return 2;
}

static int block_of(const gg_plan *p, const char *gguf_name)
{
    if (strncmp(gguf_name, "blk.", 4) == 0)
        return atoi(gguf_name + 4);
    return strncmp(gguf_name, "token_embd", 10) == 0 ? -1 : p->n_blocks;
}

static int add_single(gg_plan *p, int i, const char *name, gg_transform transform, mp_error *err)
{
    const mp_pack_tensor *pt = &p->pack->tensors[i];
    gg_tensor *t = add(p, name, block_of(p, name), 1, err);
    if (!t)
        return err->code;
    t->src[0] = i;
    t->transform = transform;
    t->n_dims = shape_ne(pt, t->ne);
    if (strstr(name, "ffn_gate_inp_shexp")) /* Qwen2-MoE's [1, hidden]: llama.cpp wants {hidden} */
        t->n_dims = 1;
    if (transform == GG_ROPE) {
        bool k = strstr(pt->name, "attn.k") != NULL;
        t->heads = k ? p->cfg->n_kv_heads : p->cfg->n_heads;
        int64_t units = pt->ndim == 1 ? pt->cols : pt->rows;
        if (t->heads <= 0 || units % (2 * t->heads) != 0)
            return mp_fail(err, MP_EXIT_INPUT, "%s: %lld rows do not split into %d heads of even size", pt->name,
                           (long long)units, t->heads);
    }
    return MP_OK;
}

/* layers.L.experts.E.PROJ[.bias] (or mtp.J....): stacked into blk.B.ffn_PROJ_exps. */
static int add_expert(gg_plan *p, int i, mp_error *err)
{
    const mp_pack_tensor *pt = &p->pack->tensors[i];
    const char *e = strstr(pt->name, ".experts.");
    bool mtp = strncmp(pt->name, "mtp.", 4) == 0;
    int block = atoi(pt->name + (mtp ? 4 : 7)) + (mtp ? p->cfg->n_layers : 0);
    char *end;
    long expert = strtol(e + 9, &end, 10);
    if (block >= p->n_blocks) {
        p->n_dropped++;
        return MP_OK;
    }
    char proj[16];
    bool bias = strstr(end, ".bias") != NULL;
    if (*end != '.' || sscanf(end + 1, "%15[a-z]", proj) != 1 || expert < 0 || expert >= p->cfg->routing.n_experts)
        return mp_fail(err, MP_EXIT_INPUT, "%s: not a routed expert name the export knows", pt->name);
    char name[MP_GGUF_MAX_NAME];
    snprintf(name, sizeof name, "blk.%d.ffn_%s_exps.%s", block, proj, bias ? "bias" : "weight");
    int at = find(p, name);
    gg_tensor *t = at >= 0 ? &p->t[at] : add(p, name, block, p->cfg->routing.n_experts, err);
    if (!t)
        return err->code;
    if (at < 0) {
        t->n_dims = shape_ne(pt, t->ne) + 1;
        t->ne[t->n_dims - 1] = p->cfg->routing.n_experts;
    }
    t->src[expert] = i;
    if (!bias && strcmp(proj, "gate") == 0 && p->expert_width == 0)
        p->expert_width = pt->rows;
    return MP_OK;
}

/* MLA kv_b [heads * (nope + v), kv_lora] -> k_b {nope, kv_lora, heads}, v_b {kv_lora, v, heads}. */
static int add_kv_b(gg_plan *p, int i, int block, mp_error *err)
{
    const mp_pack_tensor *pt = &p->pack->tensors[i];
    const mp_config *c = p->cfg;
    if (pt->rows != (int64_t)c->n_heads * (c->qk_nope_dim + c->v_head_dim))
        return mp_fail(err, MP_EXIT_INPUT, "%s: %lld rows, expected heads x (qk_nope + v_head) = %d", pt->name,
                       (long long)pt->rows, c->n_heads * (c->qk_nope_dim + c->v_head_dim));
    char name[MP_GGUF_MAX_NAME];
    snprintf(name, sizeof name, "blk.%d.attn_k_b.weight", block);
    gg_tensor *k = add(p, name, block, 1, err);
    if (!k)
        return err->code;
    *k = (gg_tensor){.n_dims = 3, .ne = {c->qk_nope_dim, pt->cols, c->n_heads}, .block = block,
                     .transform = GG_MLA_KB, .heads = c->n_heads, .n_src = 1, .src = k->src};
    snprintf(k->name, sizeof k->name, "%s", name);
    k->src[0] = i;
    snprintf(name, sizeof name, "blk.%d.attn_v_b.weight", block);
    gg_tensor *v = add(p, name, block, 1, err);
    if (!v)
        return err->code;
    *v = (gg_tensor){.n_dims = 3, .ne = {pt->cols, c->v_head_dim, c->n_heads}, .block = block,
                     .transform = GG_MLA_VB, .heads = c->n_heads, .n_src = 1, .src = v->src};
    snprintf(v->name, sizeof v->name, "%s", name);
    v->src[0] = i;
    return MP_OK;
}

static bool ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), m = strlen(tail);
    return n >= m && strcmp(s + n - m, tail) == 0;
}

static int add_pack_tensor(gg_plan *p, int i, mp_error *err)
{
    const char *canon = p->pack->tensors[i].name;
    if (strstr(canon, ".experts."))
        return add_expert(p, i, err);
    char name[MP_GGUF_MAX_NAME];
    gg_transform transform;
    if (ends_with(canon, ".attn.kv_b")) {
        bool mtp = strncmp(canon, "mtp.", 4) == 0;
        int block = atoi(canon + (mtp ? 4 : 7)) + (mtp ? p->cfg->n_layers : 0);
        if (block >= p->n_blocks) {
            p->n_dropped++;
            return MP_OK;
        }
        return add_kv_b(p, i, block, err);
    }
    if (gg_name_of(p, canon, name, sizeof name, &transform))
        return add_single(p, i, name, transform, err);
    if (strncmp(canon, "mtp.", 4) == 0) {
        p->n_dropped++;
        return MP_OK;
    }
    return mp_fail(err, MP_EXIT_INPUT, "pack tensor %s has no counterpart in llama.cpp's %s", canon, p->arch);
}

static int check_stacks(const gg_plan *p, mp_error *err)
{
    for (int i = 0; i < p->n; i++)
        for (int e = 0; e < p->t[i].n_src; e++)
            if (p->t[i].src[e] < 0)
                return mp_fail(err, MP_EXIT_INPUT, "%s: the pack has no expert %d for it", p->t[i].name, e);
    return MP_OK;
}

/* llama.cpp's qwen2moe, olmoe and gpt-oss require output.weight: a tied head is
 * written as a copy of the embeddings there. Elsewhere llama.cpp reuses token_embd. */
static int add_tied_output(gg_plan *p, mp_error *err)
{
    if (mp_pack_find(p->pack, "lm_head") >= 0)
        return MP_OK;
    bool required = p->family == MP_FAMILY_QWEN2_MOE || p->family == MP_FAMILY_OLMOE || p->family == MP_FAMILY_GPT_OSS;
    int embed = mp_pack_find(p->pack, "embed");
    if (!required || embed < 0)
        return MP_OK;
    return add_single(p, embed, "output.weight", GG_ROWS, err);
}

static void count_leading_dense(gg_plan *p)
{
    char name[64];
    int l = 0;
    for (; l < p->cfg->n_layers; l++) {
        snprintf(name, sizeof name, "layers.%d.router", l);
        if (mp_pack_find(p->pack, name) >= 0)
            break;
    }
    p->leading_dense = l;
}

/* Blocks in order (token_embd first, output last), each block's tensors in pack order. */
static int sort_by_block(gg_plan *p, mp_error *err)
{
    gg_tensor *copy = malloc((size_t)(p->n ? p->n : 1) * sizeof *copy);
    if (!copy)
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    int n = 0;
    for (int b = -1; b <= p->n_blocks; b++)
        for (int i = 0; i < p->n; i++)
            if (p->t[i].block == b)
                copy[n++] = p->t[i];
    memcpy(p->t, copy, (size_t)n * sizeof *copy);
    free(copy);
    return MP_OK;
}

static int set_blocks(gg_plan *p, const mp_pack *pack, const mp_config *cfg)
{
    p->n_blocks = cfg->n_layers;
    /* GLM-4.5's converter keeps the NextN layers as the last blocks; DeepSeek's skips them. */
    if (cfg->family == MP_FAMILY_GLM4_MOE && cfg->n_mtp > 0 && mp_pack_find(pack, "mtp.0.eh_proj") >= 0)
        p->n_blocks += cfg->n_mtp;
    return MP_OK;
}

int gg_plan_build(gg_plan *p, const mp_pack *pack, const mp_config *cfg, mp_error *err)
{
    memset(p, 0, sizeof *p);
    p->pack = pack;
    p->cfg = cfg;
    p->family = cfg->family;
    p->arch = gg_arch_name(cfg->family);
    if (!p->arch)
        return mp_fail(err, MP_EXIT_INPUT, "%s: family %s has no llama.cpp architecture", pack->dir,
                       mp_family_name(cfg->family));
    set_blocks(p, pack, cfg);
    int rc = MP_OK;
    for (int i = 0; i < pack->n_tensors && rc == MP_OK; i++)
        rc = add_pack_tensor(p, i, err);
    if (rc == MP_OK)
        rc = check_stacks(p, err);
    if (rc == MP_OK)
        rc = add_tied_output(p, err);
    count_leading_dense(p);
    for (int i = 0; i < p->n && rc == MP_OK; i++) {
        mp_tensor_class cls = MP_CLASS_NORM;
        mp_class_of_name(pack->tensors[p->t[i].src[0]].name, &cls);
        p->t[i].cls = cls;
        rc = gg_choose_type(p, &p->t[i], err);
    }
    return rc ? rc : sort_by_block(p, err);
}
