/* Which GGUF type a tensor is written in (docs/export.md, "What is copied, what is
 * re-encoded"):
 *   - f32, f16, bf16 and llama.cpp's grids (q8_0 ... iq4_xs) keep their bytes;
 *   - vectors (norms, biases, sinks, the shared-expert gate) are F32, as the converter
 *     writes them: widening bf16/f16 is exact;
 *   - w4 symmetric is Q4_0: a w4 group of 32, 64 or 128 is 1, 2 or 4 Q4_0 blocks with
 *     the group's scale as d and the same codes, so every value decodes the same;
 *   - w4 asymmetric is Q4_1 with d = s and m = f16(-z s) (exact but for m's rounding);
 *   - fp8 is BF16 of the decoded values (8 significant bits against fp8's 4);
 *   - MLA's k_b (kv_b transposed) is re-encoded from the decoded values: floats stay
 *     as they are, others take their own GGUF type when its blocks fit the transposed
 *     rows, else Q8_0 (k-quants) or IQ4_NL (iq4_xs), else F32. */
#include <stdio.h>
#include <string.h>

#include "../core/dtype.h"
#include "../formats/ggml_blocks.h"
#include "../quant/grid.h"
#include "gguf_export.h"

static bool is_float(mp_enc_kind k)
{
    return k == MP_ENC_F32 || k == MP_ENC_F16 || k == MP_ENC_BF16;
}

static bool ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), m = strlen(tail);
    return n >= m && strcmp(s + n - m, tail) == 0;
}

/* The converter writes 1-D tensors, norms and biases as F32. */
static bool is_f32_tensor(const gg_tensor *t)
{
    return t->n_dims == 1 || ends_with(t->name, ".bias") || ends_with(t->name, "_norm.weight");
}

/* The GGUF kind a source encoding maps to (rows unchanged). */
static mp_enc_kind kind_for(const mp_encoding *e)
{
    switch (e->kind) {
    case MP_ENC_W4:
        return e->sym ? MP_ENC_Q4_0 : MP_ENC_Q4_1;
    case MP_ENC_FP8:
        return MP_ENC_BF16;
    default:
        return e->kind;
    }
}

static bool fits(mp_enc_kind k, int64_t row)
{
    return row % mp_ggml_block_values(k) == 0;
}

/* k_b's kind: its rows are kv_b's columns, so a grid must fit them anew. */
static mp_enc_kind kind_for_transposed(const mp_encoding *e, int64_t row)
{
    mp_enc_kind k = kind_for(e);
    if (is_float(k) || fits(k, row))
        return k;
    k = k == MP_ENC_IQ4_XS ? MP_ENC_IQ4_NL : MP_ENC_Q8_0;
    return fits(k, row) ? k : MP_ENC_F32;
}

static void describe_mix(const gg_plan *p, const gg_tensor *t, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int e = 0; e < t->n_src && n + 40 < cap; e++) {
        const mp_encoding *enc = &p->pack->tensors[t->src[e]].enc;
        bool seen = false;
        for (int f = 0; f < e && !seen; f++)
            seen = kind_for(&p->pack->tensors[t->src[f]].enc) == kind_for(enc) &&
                   memcmp(&p->pack->tensors[t->src[f]].enc, enc, sizeof *enc) == 0;
        if (seen)
            continue;
        char name[32];
        mp_encoding_format(enc, name, sizeof name);
        n += (size_t)snprintf(buf + n, cap - n, "%s%s (expert %d)", n ? ", " : "", name, e);
    }
}

/* llama.cpp multiplies a layer's stacked experts as one tensor of one type. */
static int check_one_kind(const gg_plan *p, const gg_tensor *t, mp_error *err)
{
    mp_enc_kind first = kind_for(&p->pack->tensors[t->src[0]].enc);
    for (int e = 1; e < t->n_src; e++)
        if (kind_for(&p->pack->tensors[t->src[e]].enc) != first) {
            char mix[400], proj[16] = "?";
            int layer = -1;
            sscanf(t->name, "blk.%d.ffn_%15[a-z]_exps", &layer, proj);
            describe_mix(p, t, mix, sizeof mix);
            return mp_fail(err, MP_EXIT_INPUT,
                           "%s: layer %d, projection %s: the experts have encodings %s, but llama.cpp stacks a "
                           "layer's experts into one tensor of one type; make the pack with one encoding per "
                           "layer and projection (e.g. --encode 'experts\\.[0-9]+\\.%s=q8_0')",
                           t->name, layer, proj, mix, proj);
        }
    return MP_OK;
}

int gg_choose_type(gg_plan *p, gg_tensor *t, mp_error *err)
{
    if (t->n_src > 1) {
        int rc = check_one_kind(p, t, err);
        if (rc)
            return rc;
    }
    const mp_encoding *src = &p->pack->tensors[t->src[0]].enc;
    memset(&t->target, 0, sizeof t->target);
    if (is_f32_tensor(t)) {
        t->target.kind = MP_ENC_F32;
        t->copied = is_float(src->kind);
        t->lossless = true;
    } else if (t->transform == GG_MLA_KB) {
        t->target.kind = kind_for_transposed(src, t->ne[0]);
        t->copied = is_float(src->kind) && t->target.kind == src->kind;
        t->lossless = t->copied || t->target.kind == MP_ENC_F32;
    } else {
        t->target.kind = kind_for(src);
        t->copied = t->target.kind == src->kind;
        t->lossless = t->copied || (src->kind == MP_ENC_W4 && src->sym);
    }
    if (mp_ggml_type(t->target.kind) < 0)
        return mp_fail(err, MP_EXIT_INPUT, "%s: no GGUF type for its encoding", t->name);
    return MP_OK;
}

uint64_t gg_row_bytes(mp_enc_kind target, int64_t cols)
{
    if (mp_ggml_is_grid(target))
        return (uint64_t)(cols / mp_ggml_block_values(target)) * (uint64_t)mp_ggml_block_bytes(target);
    return (uint64_t)cols * (target == MP_ENC_F32 ? 4 : 2);
}

void gg_encode_rows(mp_enc_kind target, int64_t rows, int64_t cols, const float *in, uint8_t *out)
{
    size_t n = (size_t)(rows * cols);
    switch (target) {
    case MP_ENC_F32:
        memcpy(out, in, n * 4);
        break;
    case MP_ENC_BF16:
        mp_f32_to_bf16_n(in, (uint16_t *)(void *)out, n);
        break;
    case MP_ENC_F16:
        mp_f32_to_f16_n(in, (uint16_t *)(void *)out, n);
        break;
    default: /* with the search: the best grid fit of the decoded values */
        mp_grid_quantize_rows(target, rows, cols, in, NULL, true, out);
        break;
    }
}
