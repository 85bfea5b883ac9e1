/* The normalizer and pre-tokenizer of tokenizer.json, each flattened into a list of
 * steps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/fileio.h"
#include "tokenizer_load.h"
#include "utf8.h"

/* ---- normalizer ---- */

static mp_norm_step *add_norm(mp_loader *l, mp_norm_kind kind)
{
    mp_tokenizer *t = l->t;
    mp_norm_step *steps = realloc(t->norm, (t->n_norm + 1) * sizeof *steps);
    if (!steps) {
        mp_load_oom(l);
        return NULL;
    }
    t->norm = steps;
    mp_norm_step *st = &t->norm[t->n_norm++];
    *st = (mp_norm_step){.kind = kind, .classes = &t->classes};
    return st;
}

static int compile(mp_loader *l, const char *pattern, mp_regex **re, const char *where)
{
    char why[128];
    if (mp_regex_compile(pattern, re, why, sizeof why) != 0)
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: %s.pattern: the regex %.80s%s does not compile: %s", l->path,
                       where, pattern, strlen(pattern) > 80 ? "..." : "", why);
    return MP_OK;
}

int mp_load_pattern(mp_loader *l, json_t *obj, const char *where, const char **string, const char **regex)
{
    json_t *pattern = json_object_get(obj, "pattern");
    *string = json_is_object(pattern) ? mp_load_string(l, pattern, where, "String", true) : NULL;
    *regex = json_is_object(pattern) ? mp_load_string(l, pattern, where, "Regex", true) : NULL;
    if (l->err->code != MP_OK)
        return l->err->code;
    if (!*string == !*regex || (*string && !**string))
        return mp_fail(l->err, MP_EXIT_INPUT,
                       "%s: %s.pattern: expected {\"String\": a non-empty string} or {\"Regex\": a regex}", l->path,
                       where);
    return MP_OK;
}

static int load_replace(mp_loader *l, json_t *n, const char *where)
{
    const char *string, *regex;
    if (mp_load_pattern(l, n, where, &string, &regex) != MP_OK)
        return l->err->code;
    const char *content = mp_load_string(l, n, where, "content", false);
    if (!content)
        return l->err->code;
    mp_norm_step *st = add_norm(l, MP_NORM_REPLACE);
    if (!st)
        return l->err->code;
    if (!(st->with = mp_strdup(content)) || (string && !(st->text = mp_strdup(string))))
        return mp_load_oom(l);
    return regex ? compile(l, regex, &st->regex, where) : MP_OK;
}

static int load_strip(mp_loader *l, json_t *n, const char *where)
{
    bool left, right;
    if (mp_load_bool(l, n, where, "strip_left", true, &left) != MP_OK ||
        mp_load_bool(l, n, where, "strip_right", true, &right) != MP_OK)
        return l->err->code;
    mp_norm_step *st = add_norm(l, MP_NORM_STRIP);
    if (!st)
        return l->err->code;
    st->left = left;
    st->right = right;
    return MP_OK;
}

static int load_prepend(mp_loader *l, json_t *n, const char *where)
{
    const char *s = mp_load_string(l, n, where, "prepend", false);
    mp_norm_step *st = s ? add_norm(l, MP_NORM_PREPEND) : NULL;
    if (!st)
        return l->err->code;
    return (st->text = mp_strdup(s)) ? MP_OK : mp_load_oom(l);
}

static int load_norm_sequence(mp_loader *l, json_t *n, const char *where)
{
    json_t *list = json_object_get(n, "normalizers");
    if (!json_is_array(list))
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: %s.normalizers: expected an array", l->path, where);
    for (size_t i = 0; i < json_array_size(list); i++) {
        char sub[256];
        snprintf(sub, sizeof sub, "%s.normalizers[%zu]", where, i);
        if (mp_load_normalizer(l, json_array_get(list, i), sub) != MP_OK)
            return l->err->code;
    }
    return MP_OK;
}

/* Normalizers without options. */
static const struct {
    const char *type;
    mp_norm_kind kind;
} plain_norms[] = {
    {"NFC", MP_NORM_NFC},   {"NFD", MP_NORM_NFD},   {"NFKC", MP_NORM_NFKC},
    {"NFKD", MP_NORM_NFKD}, {"Lowercase", MP_NORM_LOWERCASE}, {"StripAccents", MP_NORM_STRIP_ACCENTS},
};

int mp_load_normalizer(mp_loader *l, json_t *n, const char *where)
{
    if (!n || json_is_null(n))
        return MP_OK;
    const char *type = mp_load_type(l, n, where);
    if (!type)
        return l->err->code;
    for (size_t i = 0; i < sizeof plain_norms / sizeof *plain_norms; i++)
        if (strcmp(type, plain_norms[i].type) == 0)
            return add_norm(l, plain_norms[i].kind) ? MP_OK : l->err->code;
    if (strcmp(type, "Strip") == 0)
        return load_strip(l, n, where);
    if (strcmp(type, "Prepend") == 0)
        return load_prepend(l, n, where);
    if (strcmp(type, "Replace") == 0)
        return load_replace(l, n, where);
    if (strcmp(type, "Sequence") == 0)
        return load_norm_sequence(l, n, where);
    return mp_fail(l->err, MP_EXIT_INPUT,
                   "%s: %s.type: \"%s\" is not supported, expected NFC, NFD, NFKC, NFKD, Lowercase, Strip, "
                   "StripAccents, Replace, Prepend or Sequence",
                   l->path, where, type);
}

/* ---- pre-tokenizer ---- */

static mp_pretok_step *add_pretok(mp_loader *l)
{
    mp_tokenizer *t = l->t;
    mp_pretok_step *steps = realloc(t->pretok, (t->n_pretok + 1) * sizeof *steps);
    if (!steps) {
        mp_load_oom(l);
        return NULL;
    }
    t->pretok = steps;
    mp_pretok_step *st = &t->pretok[t->n_pretok++];
    memset(st, 0, sizeof *st);
    return st;
}

static int load_behavior(mp_loader *l, json_t *p, const char *where, const char *dflt, mp_split_behavior *out)
{
    const char *name = mp_load_string(l, p, where, "behavior", dflt != NULL);
    if (l->err->code != MP_OK)
        return l->err->code;
    if (mp_split_behavior_parse(name ? name : dflt, out) != 0)
        return mp_fail(l->err, MP_EXIT_INPUT,
                       "%s: %s.behavior: \"%s\", expected Removed, Isolated, MergedWithPrevious, MergedWithNext or "
                       "Contiguous",
                       l->path, where, name);
    return MP_OK;
}

/* prepend_scheme, or the add_prefix_space of files written before it existed. */
static int load_prepend_scheme(mp_loader *l, json_t *p, const char *where, mp_prepend_scheme *out)
{
    const char *scheme = mp_load_string(l, p, where, "prepend_scheme", true);
    if (l->err->code != MP_OK)
        return l->err->code;
    if (!scheme) {
        bool add;
        if (mp_load_bool(l, p, where, "add_prefix_space", true, &add) != MP_OK)
            return l->err->code;
        *out = add ? MP_PREPEND_ALWAYS : MP_PREPEND_NEVER;
        return MP_OK;
    }
    if (strcmp(scheme, "always") == 0)
        *out = MP_PREPEND_ALWAYS;
    else if (strcmp(scheme, "first") == 0)
        *out = MP_PREPEND_FIRST;
    else if (strcmp(scheme, "never") == 0)
        *out = MP_PREPEND_NEVER;
    else
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: %s.prepend_scheme: \"%s\", expected always, first or never",
                       l->path, where, scheme);
    return MP_OK;
}

static int load_metaspace(mp_loader *l, json_t *p, const char *where)
{
    mp_pretok_step st = {.kind = MP_PRETOK_METASPACE};
    const char *rep = mp_load_string(l, p, where, "replacement", false);
    if (!rep)
        return l->err->code;
    size_t n = strlen(rep);
    uint32_t cp;
    if (n == 0 || n >= sizeof st.replacement || mp_utf8_check(rep, n) != n || mp_utf8_decode(rep, &cp) != n)
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: %s.replacement: expected one character", l->path, where);
    memcpy(st.replacement, rep, n + 1);
    if (load_prepend_scheme(l, p, where, &st.prepend) != MP_OK ||
        mp_load_bool(l, p, where, "split", true, &st.split) != MP_OK)
        return l->err->code;
    mp_pretok_step *slot = add_pretok(l);
    if (!slot)
        return l->err->code;
    *slot = st;
    return MP_OK;
}

static int load_byte_level(mp_loader *l, json_t *p, const char *where)
{
    bool prefix, use_regex;
    if (mp_load_bool(l, p, where, "add_prefix_space", true, &prefix) != MP_OK ||
        mp_load_bool(l, p, where, "use_regex", true, &use_regex) != MP_OK)
        return l->err->code;
    mp_pretok_step *st = add_pretok(l);
    return st ? mp_pretok_byte_level_init(st, prefix, use_regex, l->err) : l->err->code;
}

static int load_split(mp_loader *l, json_t *p, const char *where)
{
    const char *string, *regex;
    mp_split_behavior behavior;
    bool invert;
    if (mp_load_pattern(l, p, where, &string, &regex) != MP_OK || load_behavior(l, p, where, NULL, &behavior) != MP_OK ||
        mp_load_bool(l, p, where, "invert", false, &invert) != MP_OK)
        return l->err->code;
    mp_pretok_step *st = add_pretok(l);
    if (!st)
        return l->err->code;
    char label[320];
    snprintf(label, sizeof label, "%s: %s.pattern", l->path, where);
    return mp_pretok_split_init(st, regex, string, behavior, invert, label, l->err);
}

/* Pre-tokenizers that split at characters of a class: Digits, Punctuation,
 * WhitespaceSplit, CharDelimiterSplit (and the two halves of BertPreTokenizer). */
static int add_char_split(mp_loader *l, int cls, bool ascii_punct, uint32_t cp, mp_split_behavior behavior)
{
    mp_pretok_step *st = add_pretok(l);
    if (!st)
        return l->err->code;
    st->kind = MP_PRETOK_CHARS;
    st->test = (mp_char_test){&l->t->classes, cls, ascii_punct, cp};
    st->behavior = behavior;
    return MP_OK;
}

static int load_digits(mp_loader *l, json_t *p, const char *where)
{
    bool individual;
    if (mp_load_bool(l, p, where, "individual_digits", false, &individual) != MP_OK)
        return l->err->code;
    return add_char_split(l, MP_UCLASS_NUMERIC, false, 0, individual ? MP_SPLIT_ISOLATED : MP_SPLIT_CONTIGUOUS);
}

static int load_punctuation(mp_loader *l, json_t *p, const char *where)
{
    mp_split_behavior behavior;
    if (load_behavior(l, p, where, "Isolated", &behavior) != MP_OK)
        return l->err->code;
    return add_char_split(l, MP_UCLASS_PUNCT, true, 0, behavior);
}

static int load_delimiter(mp_loader *l, json_t *p, const char *where)
{
    const char *d = mp_load_string(l, p, where, "delimiter", false);
    uint32_t cp;
    if (!d)
        return l->err->code;
    if (!*d || mp_utf8_check(d, strlen(d)) != strlen(d) || mp_utf8_decode(d, &cp) != strlen(d))
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: %s.delimiter: expected one character", l->path, where);
    return add_char_split(l, -1, false, cp, MP_SPLIT_REMOVED);
}

static int load_pretok_sequence(mp_loader *l, json_t *p, const char *where)
{
    json_t *list = json_object_get(p, "pretokenizers");
    if (!json_is_array(list))
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: %s.pretokenizers: expected an array", l->path, where);
    for (size_t i = 0; i < json_array_size(list); i++) {
        char sub[256];
        snprintf(sub, sizeof sub, "%s.pretokenizers[%zu]", where, i);
        if (mp_load_pretokenizer(l, json_array_get(list, i), sub) != MP_OK)
            return l->err->code;
    }
    return MP_OK;
}

int mp_load_pretokenizer(mp_loader *l, json_t *p, const char *where)
{
    if (!p || json_is_null(p))
        return MP_OK;
    const char *type = mp_load_type(l, p, where);
    if (!type)
        return l->err->code;
    if (strcmp(type, "Metaspace") == 0)
        return load_metaspace(l, p, where);
    if (strcmp(type, "ByteLevel") == 0)
        return load_byte_level(l, p, where);
    if (strcmp(type, "Split") == 0)
        return load_split(l, p, where);
    if (strcmp(type, "Digits") == 0)
        return load_digits(l, p, where);
    if (strcmp(type, "Punctuation") == 0)
        return load_punctuation(l, p, where);
    if (strcmp(type, "WhitespaceSplit") == 0)
        return add_char_split(l, MP_UCLASS_WHITE_SPACE, false, 0, MP_SPLIT_REMOVED);
    if (strcmp(type, "BertPreTokenizer") == 0)
        return add_char_split(l, MP_UCLASS_WHITE_SPACE, false, 0, MP_SPLIT_REMOVED) != MP_OK
                   ? l->err->code
                   : add_char_split(l, MP_UCLASS_PUNCT, true, 0, MP_SPLIT_ISOLATED);
    if (strcmp(type, "CharDelimiterSplit") == 0)
        return load_delimiter(l, p, where);
    if (strcmp(type, "Whitespace") == 0) {
        mp_pretok_step *st = add_pretok(l);
        return st ? mp_pretok_whitespace_init(st, l->err) : l->err->code;
    }
    if (strcmp(type, "Sequence") == 0)
        return load_pretok_sequence(l, p, where);
    return mp_fail(l->err, MP_EXIT_INPUT,
                   "%s: %s.type: \"%s\" is not supported, expected Split, ByteLevel, Metaspace, Digits, Punctuation, "
                   "Whitespace, WhitespaceSplit, BertPreTokenizer, CharDelimiterSplit or Sequence",
                   l->path, where, type);
}
