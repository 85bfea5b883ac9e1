/* Reading tokenizer.json's "decoder" into a list of steps, with the fields and
 * defaults HF tokenizers deserializes (decoders/mod.rs and each decoder's file), and
 * the tables decoding looks ids up in.
 *
 * A decoder moepack cannot read does not fail the load: the ids do not depend on it,
 * so encoding (calibration, evaluation, `tokenize`) keeps working, and decoding
 * reports the field instead (t->decoder_error). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/fileio.h"
#include "tokenizer_load.h"
#include "utf8.h"

static mp_dec_step *add_step(mp_loader *l, mp_dec_kind kind)
{
    mp_tokenizer *t = l->t;
    mp_dec_step *steps = realloc(t->dec, (t->n_dec + 1) * sizeof *steps);
    if (!steps) {
        mp_load_oom(l);
        return NULL;
    }
    t->dec = steps;
    mp_dec_step *st = &t->dec[t->n_dec++];
    *st = (mp_dec_step){.kind = kind};
    return st;
}

/* key of d as one character (Rust's char): a string of exactly one code point. */
static int load_char(mp_loader *l, json_t *d, const char *where, const char *key, uint32_t *cp)
{
    const char *s = mp_load_string(l, d, where, key, false);
    if (!s)
        return l->err->code;
    if (!*s || s[mp_utf8_decode(s, cp)] != '\0')
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: %s.%s: expected one character", l->path, where, key);
    return MP_OK;
}

/* key of d as a count (Rust's usize). */
static int load_count(mp_loader *l, json_t *d, const char *where, const char *key, size_t *n)
{
    json_t *v = json_object_get(d, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: %s.%s: expected a count (0 or more)", l->path, where, key);
    *n = (size_t)json_integer_value(v);
    return MP_OK;
}

/* key of d as a string, dflt when missing or null, into a malloc'd *out. */
static int load_text(mp_loader *l, json_t *d, const char *where, const char *key, const char *dflt, char **out)
{
    const char *s = mp_load_string(l, d, where, key, true);
    if (l->err->code != MP_OK)
        return l->err->code;
    return (*out = mp_strdup(s ? s : dflt)) ? MP_OK : mp_load_oom(l);
}

/* prepend_scheme (default always), overridden by a legacy add_prefix_space false,
 * which HF accepts only beside never. */
static int load_metaspace(mp_loader *l, json_t *d, const char *where)
{
    uint32_t cp;
    if (load_char(l, d, where, "replacement", &cp) != MP_OK)
        return l->err->code;
    const char *scheme = mp_load_string(l, d, where, "prepend_scheme", true);
    bool add_prefix_space;
    if (l->err->code != MP_OK || mp_load_bool(l, d, where, "add_prefix_space", true, &add_prefix_space) != MP_OK)
        return l->err->code;
    if (scheme && strcmp(scheme, "first") != 0 && strcmp(scheme, "always") != 0 && strcmp(scheme, "never") != 0)
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: %s.prepend_scheme: \"%s\", expected first, always or never",
                       l->path, where, scheme);
    bool never = scheme && strcmp(scheme, "never") == 0;
    if (!add_prefix_space && !never)
        return mp_fail(l->err, MP_EXIT_INPUT,
                       "%s: %s.add_prefix_space: false does not match prepend_scheme \"%s\" (expected never)", l->path,
                       where, scheme ? scheme : "always");
    mp_dec_step *st = add_step(l, MP_DEC_METASPACE);
    if (!st)
        return l->err->code;
    st->cp = cp;
    st->prepend = !never;
    return MP_OK;
}

static int load_replace(mp_loader *l, json_t *d, const char *where)
{
    const char *string, *regex;
    if (mp_load_pattern(l, d, where, &string, &regex) != MP_OK)
        return l->err->code;
    const char *content = mp_load_string(l, d, where, "content", false);
    mp_dec_step *st = content ? add_step(l, MP_DEC_REPLACE) : NULL;
    if (!st)
        return l->err->code;
    mp_norm_step *r = &st->replace;
    r->kind = MP_NORM_REPLACE;
    if (!(r->with = mp_strdup(content)) || (string && !(r->text = mp_strdup(string))))
        return mp_load_oom(l);
    char why[128];
    if (regex && mp_regex_compile(regex, &r->regex, why, sizeof why) != 0)
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: %s.pattern: the regex %.80s does not compile: %s", l->path, where,
                       regex, why);
    return MP_OK;
}

static int load_strip(mp_loader *l, json_t *d, const char *where)
{
    uint32_t cp;
    size_t start, stop;
    if (load_char(l, d, where, "content", &cp) != MP_OK || load_count(l, d, where, "start", &start) != MP_OK ||
        load_count(l, d, where, "stop", &stop) != MP_OK)
        return l->err->code;
    mp_dec_step *st = add_step(l, MP_DEC_STRIP);
    if (!st)
        return l->err->code;
    st->cp = cp;
    st->start = start;
    st->stop = stop;
    return MP_OK;
}

/* WordPiece, BPEDecoder and CTC, with HF's defaults for missing fields. */
static int load_texts(mp_loader *l, json_t *d, const char *where, mp_dec_kind kind)
{
    bool cleanup = true;
    if ((kind != MP_DEC_BPE && mp_load_bool(l, d, where, "cleanup", true, &cleanup) != MP_OK))
        return l->err->code;
    mp_dec_step *st = add_step(l, kind);
    if (!st)
        return l->err->code;
    st->cleanup = cleanup;
    if (kind == MP_DEC_WORDPIECE)
        return load_text(l, d, where, "prefix", "##", &st->text);
    if (kind == MP_DEC_BPE)
        return load_text(l, d, where, "suffix", "</w>", &st->text);
    if (load_text(l, d, where, "pad_token", "<pad>", &st->text) != MP_OK)
        return l->err->code;
    return load_text(l, d, where, "word_delimiter_token", "|", &st->word);
}

static int load_one(mp_loader *l, json_t *d, const char *where);

static int load_sequence(mp_loader *l, json_t *d, const char *where)
{
    json_t *list = json_object_get(d, "decoders");
    if (!json_is_array(list))
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: %s.decoders: expected an array", l->path, where);
    for (size_t i = 0; i < json_array_size(list); i++) {
        char sub[256];
        snprintf(sub, sizeof sub, "%s.decoders[%zu]", where, i);
        if (load_one(l, json_array_get(list, i), sub) != MP_OK)
            return l->err->code;
    }
    return MP_OK;
}

static int load_one(mp_loader *l, json_t *d, const char *where)
{
    const char *type = mp_load_type(l, d, where);
    if (!type)
        return l->err->code;
    if (strcmp(type, "ByteLevel") == 0)
        return add_step(l, MP_DEC_BYTE_LEVEL) ? MP_OK : l->err->code;
    if (strcmp(type, "ByteFallback") == 0)
        return add_step(l, MP_DEC_BYTE_FALLBACK) ? MP_OK : l->err->code;
    if (strcmp(type, "Fuse") == 0)
        return add_step(l, MP_DEC_FUSE) ? MP_OK : l->err->code;
    if (strcmp(type, "Metaspace") == 0)
        return load_metaspace(l, d, where);
    if (strcmp(type, "Replace") == 0)
        return load_replace(l, d, where);
    if (strcmp(type, "Strip") == 0)
        return load_strip(l, d, where);
    if (strcmp(type, "WordPiece") == 0)
        return load_texts(l, d, where, MP_DEC_WORDPIECE);
    if (strcmp(type, "BPEDecoder") == 0)
        return load_texts(l, d, where, MP_DEC_BPE);
    if (strcmp(type, "CTC") == 0)
        return load_texts(l, d, where, MP_DEC_CTC);
    if (strcmp(type, "Sequence") == 0)
        return load_sequence(l, d, where);
    return mp_fail(l->err, MP_EXIT_INPUT,
                   "%s: %s.type: \"%s\" is not supported, expected ByteLevel, Metaspace, Replace, ByteFallback, Fuse, "
                   "Strip, WordPiece, BPEDecoder, CTC or Sequence",
                   l->path, where, type);
}

int mp_load_decoder(mp_loader *l, json_t *d)
{
    mp_tokenizer *t = l->t;
    if (!d || json_is_null(d))
        return MP_OK;
    t->has_decoder = true;
    mp_error derr = {0};
    mp_loader dl = {l->path, t, &derr};
    if (load_one(&dl, d, "decoder") == MP_OK)
        return MP_OK;
    for (size_t i = 0; i < t->n_dec; i++)
        mp_dec_step_free(&t->dec[i]);
    t->n_dec = 0;
    if (derr.code == MP_EXIT_IO)
        return mp_fail(l->err, derr.code, "%s", derr.msg);
    return (t->decoder_error = mp_strdup(derr.msg)) ? MP_OK : mp_load_oom(l);
}

/* ---- lookup tables ---- */

/* The string decoding sees for added token a: its normalized form when it is
 * normalized, as HF's added vocabulary caches it. */
static const char *added_string(const mp_added_token *a)
{
    return a->normalized ? a->match : a->content;
}

/* Whether s is the content of a special added token (HF's is_special_token). */
static bool is_special_content(const mp_tokenizer *t, const char *s)
{
    for (size_t i = 0; i < t->n_added; i++)
        if (t->added[i].special && strcmp(t->added[i].content, s) == 0)
            return true;
    return false;
}

int mp_load_decode_tables(mp_loader *l)
{
    mp_tokenizer *t = l->t;
    const mp_vocab *v = mp_tokenizer_vocab(t);
    size_t n = v->n_ids ? v->n_ids : 1;
    t->added_of_id = malloc(n * sizeof *t->added_of_id);
    t->special_of_id = calloc(n, 1);
    if (!t->added_of_id || !t->special_of_id)
        return mp_load_oom(l);
    for (size_t id = 0; id < n; id++)
        t->added_of_id[id] = -1;
    for (size_t i = 0; i < t->n_added; i++)
        if ((size_t)t->added[i].id < v->n_ids)
            t->added_of_id[t->added[i].id] = (int32_t)i; /* a later entry for an id wins, as in HF's map */
    for (size_t i = 0; i < t->n_added; i++) {
        const mp_added_token *a = &t->added[i];
        if ((size_t)a->id >= v->n_ids || t->added_of_id[a->id] != (int32_t)i)
            continue;
        const char *s = added_string(a);
        t->special_of_id[a->id] = strcmp(s, a->content) == 0 ? a->special : is_special_content(t, s);
    }
    /* A model piece spelled like a special token is skipped too. */
    for (size_t i = 0; i < t->n_added; i++) {
        if (!t->added[i].special)
            continue;
        int32_t id = mp_vocab_find(v, t->added[i].content, strlen(t->added[i].content));
        if (id >= 0 && t->added_of_id[id] < 0)
            t->special_of_id[id] = 1;
    }
    return MP_OK;
}
