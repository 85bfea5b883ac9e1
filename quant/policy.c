#include "policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../formats/ggml_blocks.h"

static const char *const scheme_names[] = {"bf16", "fp8", "w4a16", "mixed"};

static mp_enc_kind scheme_grid(mp_scheme s)
{
    return (mp_enc_kind)(MP_ENC_Q8_0 + (s - MP_SCHEME_Q8_0));
}

const char *mp_scheme_name(mp_scheme s)
{
    if (s >= MP_SCHEME_Q8_0 && s <= MP_SCHEME_IQ4_XS)
        return mp_encoding_kind_name(scheme_grid(s));
    return (unsigned)s <= MP_SCHEME_MIXED ? scheme_names[s] : "?";
}

int mp_scheme_parse(const char *text, mp_scheme *s)
{
    for (int i = 0; i <= MP_SCHEME_IQ4_XS; i++)
        if (strcmp(text, mp_scheme_name((mp_scheme)i)) == 0) {
            *s = (mp_scheme)i;
            return 0;
        }
    return -1;
}

void mp_policy_init(mp_policy *p, mp_scheme scheme, int group, bool sym)
{
    memset(p, 0, sizeof *p);
    p->scheme = scheme;
    p->group = group;
    p->sym = sym;
}

int mp_policy_add_rule(mp_policy *p, const char *arg, bool keep, mp_error *err)
{
    mp_policy_rule rule = {.keep = keep};
    snprintf(rule.text, sizeof rule.text, "%s", arg);
    char *eq = keep ? NULL : strrchr(rule.text, '=');
    if (!keep && (!eq || mp_encoding_parse(eq + 1, &rule.enc) != 0))
        return mp_fail(err, MP_EXIT_INPUT,
                       "--encode \"%s\": expected REGEX=ENC with ENC one of f32, bf16, f16, fp8, fp8-tensor, "
                       "fp8-channel, fp8-block, w4g32, w4g64, w4g128 (optionally -sym), q8_0, q4_0, q4_1, "
                       "q4_k, q5_k, q6_k, iq4_nl, iq4_xs", arg);
    if (eq)
        *eq = '\0';
    char why[128];
    if (mp_regex_compile(rule.text, &rule.re, why, sizeof why) != 0)
        return mp_fail(err, MP_EXIT_INPUT, "%s \"%s\": not a valid regular expression: %s",
                       keep ? "--keep" : "--encode", arg, why);
    mp_policy_rule *grown = realloc(p->rules, (size_t)(p->n_rules + 1) * sizeof *grown);
    if (!grown) {
        mp_regex_free(rule.re);
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    }
    p->rules = grown;
    p->rules[p->n_rules++] = rule;
    return MP_OK;
}

void mp_policy_free(mp_policy *p)
{
    for (int i = 0; i < p->n_rules; i++)
        mp_regex_free(p->rules[i].re);
    free(p->rules);
    for (int i = 0; i < p->n_planned; i++)
        free(p->planned_names[i]);
    free(p->planned_names);
    free(p->planned);
    mp_name_index_free(&p->planned_index);
    memset(p, 0, sizeof *p);
}

/* Small vectors keep the checkpoint's precision (DeepSeek's f32 correction bias
 * decides routing); other unquantized tensors become bf16. */
static mp_encoding kept(mp_dtype source, mp_tensor_class cls)
{
    mp_encoding e = {.kind = MP_ENC_BF16};
    if (cls == MP_CLASS_NORM && source == MP_DT_F32)
        e.kind = MP_ENC_F32;
    else if (cls == MP_CLASS_NORM && source == MP_DT_F16)
        e.kind = MP_ENC_F16;
    return e;
}

static bool scheme_quantizes(mp_scheme s, mp_tensor_class c, bool *as_w4)
{
    bool linear = c == MP_CLASS_ATTN || c == MP_CLASS_DENSE || c == MP_CLASS_SHARED || c == MP_CLASS_EXPERT;
    *as_w4 = s == MP_SCHEME_W4A16 || (s == MP_SCHEME_MIXED && c == MP_CLASS_EXPERT);
    return linear && s != MP_SCHEME_BF16;
}

/* The scheme's w4 with the largest group <= the asked one that divides cols. */
static mp_encoding w4_fitting(const mp_policy *p, int64_t cols, bool *fell_back)
{
    for (int g = p->group; g >= 32; g /= 2)
        if (cols % g == 0) {
            *fell_back = g != p->group;
            return (mp_encoding){.kind = MP_ENC_W4, .group = g, .sym = p->sym};
        }
    *fell_back = true;
    return (mp_encoding){.kind = MP_ENC_BF16};
}

/* The scheme's grid, or the 32-value grid that stands in for it when cols is not a
 * multiple of 256, or bf16. */
static mp_encoding grid_fitting(mp_scheme s, int64_t cols, bool *fell_back)
{
    mp_enc_kind k = scheme_grid(s);
    if (cols % 256 != 0) {
        static const mp_enc_kind small[][2] = {{MP_ENC_Q4_K, MP_ENC_Q4_1}, {MP_ENC_Q5_K, MP_ENC_Q8_0},
                                               {MP_ENC_Q6_K, MP_ENC_Q8_0}, {MP_ENC_IQ4_XS, MP_ENC_IQ4_NL}};
        for (int i = 0; i < 4; i++)
            if (small[i][0] == k) {
                k = small[i][1];
                *fell_back = true;
            }
    }
    if (cols % 32 != 0) {
        *fell_back = true;
        return (mp_encoding){.kind = MP_ENC_BF16};
    }
    return (mp_encoding){.kind = k};
}

void mp_policy_fallback_text(const mp_policy *p, char *buf, size_t cap)
{
    if (p->scheme < MP_SCHEME_Q8_0) {
        snprintf(buf, cap, "took a smaller w4 group or bf16: their input width is not a multiple of %d", p->group);
        return;
    }
    int block = mp_ggml_block_values(scheme_grid(p->scheme));
    snprintf(buf, cap, "took %s in place of %s: their input width is not a multiple of %d",
             block == 256 ? "a 32-value grid or bf16" : "bf16", mp_scheme_name(p->scheme), block);
}

/* The rule's regex is found in the canonical name or in the checkpoint name. */
static bool rule_matches(const mp_policy_rule *r, const char *name, const char *source)
{
    size_t start, end;
    return mp_regex_search(r->re, name, strlen(name), 0, &start, &end) == 1 ||
           mp_regex_search(r->re, source, strlen(source), 0, &start, &end) == 1;
}

bool mp_policy_has_rule(const mp_policy *p, const char *name, const char *source)
{
    for (int i = 0; i < p->n_rules; i++)
        if (rule_matches(&p->rules[i], name, source))
            return true;
    return false;
}

int mp_policy_set_planned(mp_policy *p, char **names, mp_encoding *encs, int n, mp_error *err)
{
    p->planned_names = names;
    p->planned = encs;
    p->n_planned = n;
    if (mp_name_index_build(&p->planned_index, (const char *const *)names, n) != 0)
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    return MP_OK;
}

int mp_policy_choose(const mp_policy *p, const char *name, const char *source, mp_tensor_class cls,
                     mp_dtype source_dtype, int64_t rows, int64_t cols, mp_encoding *out, bool *fell_back,
                     mp_error *err)
{
    *fell_back = false;
    for (int i = 0; i < p->n_rules; i++) {
        const mp_policy_rule *r = &p->rules[i];
        if (!rule_matches(r, name, source))
            continue;
        *out = r->keep ? kept(source_dtype, cls) : r->enc;
        char why[128];
        if (mp_encoding_unfit(out, rows, cols, why, sizeof why))
            return mp_fail(err, MP_EXIT_INPUT, "tensor '%s' (%s): rule \"%s\": %s", name, source, r->text, why);
        return MP_OK;
    }
    int planned = p->n_planned ? mp_name_index_find(&p->planned_index, (const char *const *)p->planned_names, name) : -1;
    if (planned >= 0) {
        *out = p->planned[planned];
        return MP_OK;
    }
    bool as_w4;
    if (!scheme_quantizes(p->scheme, cls, &as_w4))
        *out = kept(source_dtype, cls);
    else if (p->scheme >= MP_SCHEME_Q8_0)
        *out = grid_fitting(p->scheme, cols, fell_back);
    else if (as_w4)
        *out = w4_fitting(p, cols, fell_back);
    else
        *out = (mp_encoding){.kind = MP_ENC_FP8, .fp8_scale = MP_FP8_BLOCK};
    out->nm24 = p->nm24 && (out->kind == MP_ENC_W4 || out->kind == MP_ENC_FP8) && cols % 4 == 0;
    return MP_OK;
}
