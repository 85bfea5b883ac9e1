/* Reading tokenizer.json into an mp_tokenizer. Every setting the encoder does not
 * implement is refused with the file, the field and what was expected; settings that
 * do not change the ids of plain encoding (decoder, truncation, padding, trim_offsets)
 * are not read. The post-processor and tokenizer_config.json give the BOS id. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../core/fileio.h"
#include "../core/json.h"
#include "tokenizer_types.h"
#include "unicode.h"

#define MAX_JSON_BYTES (1024ull << 20)
#define MAX_CONFIG_BYTES (64ull << 20)
#define MAX_IDS (1 << 24)

typedef struct {
    const char *path; /* the tokenizer.json, for messages */
    mp_tokenizer *t;
    mp_error *err;
} loader;

static int oom(loader *l)
{
    return mp_fail(l->err, MP_EXIT_IO, "%s: out of memory", l->path);
}

/* key of obj as a string: NULL, with an error naming where.key, when it is missing or
 * not a string; when optional, missing or null is NULL without an error. */
static const char *get_string(loader *l, json_t *obj, const char *where, const char *key, bool optional)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_string(v))
        return json_string_value(v);
    if (!optional || (v && !json_is_null(v)))
        mp_fail(l->err, MP_EXIT_INPUT, "%s: %s.%s: expected a string", l->path, where, key);
    return NULL;
}

/* key of obj as a boolean, dflt when missing or null. */
static int get_bool(loader *l, json_t *obj, const char *where, const char *key, bool dflt, bool *out)
{
    json_t *v = json_object_get(obj, key);
    *out = dflt;
    if (!v || json_is_null(v))
        return MP_OK;
    if (!json_is_boolean(v))
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: %s.%s: expected true or false", l->path, where, key);
    *out = json_is_true(v);
    return MP_OK;
}

static const char *get_type(loader *l, json_t *obj, const char *where)
{
    if (!json_is_object(obj)) {
        mp_fail(l->err, MP_EXIT_INPUT, "%s: %s: expected an object", l->path, where);
        return NULL;
    }
    return get_string(l, obj, where, "type", false);
}

static int get_id(loader *l, json_t *v, const char *where, int32_t *id)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= MAX_IDS)
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: %s: expected an id in 0..%d", l->path, where, MAX_IDS - 1);
    *id = (int32_t)json_integer_value(v);
    return MP_OK;
}

/* ---- added tokens ---- */

static int load_added_token(loader *l, json_t *tok, size_t i)
{
    char where[64];
    snprintf(where, sizeof where, "added_tokens[%zu]", i);
    mp_added_token *a = &l->t->added[i];
    const char *content = json_is_object(tok) ? get_string(l, tok, where, "content", false) : NULL;
    if (!content)
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: %s: expected an object with a content string", l->path, where);
    if (!*content)
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: %s.content: expected a non-empty string", l->path, where);
    char id_where[80];
    snprintf(id_where, sizeof id_where, "%s.id", where);
    bool special, flag;
    if (get_id(l, json_object_get(tok, "id"), id_where, &a->id) != MP_OK ||
        get_bool(l, tok, where, "special", false, &special) != MP_OK ||
        get_bool(l, tok, where, "normalized", !special, &a->normalized) != MP_OK)
        return l->err->code;
    static const char *const unsupported[] = {"single_word", "lstrip", "rstrip"};
    for (size_t k = 0; k < 3; k++) {
        if (get_bool(l, tok, where, unsupported[k], false, &flag) != MP_OK)
            return l->err->code;
        if (flag)
            return mp_fail(l->err, MP_EXIT_INPUT, "%s: %s.%s: true is not supported, expected false", l->path,
                           where, unsupported[k]);
    }
    a->len = strlen(content);
    a->content = mp_strdup(content);
    if (!a->content)
        return oom(l);
    l->t->added_starts[a->normalized][(unsigned char)content[0]] = true;
    return MP_OK;
}

static int load_added(loader *l, json_t *root)
{
    json_t *list = json_object_get(root, "added_tokens");
    if (!list || json_is_null(list))
        return MP_OK;
    if (!json_is_array(list))
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: added_tokens: expected an array", l->path);
    l->t->added = calloc(json_array_size(list) + 1, sizeof *l->t->added);
    if (!l->t->added)
        return oom(l);
    for (size_t i = 0; i < json_array_size(list); i++) {
        l->t->n_added = i + 1; /* so a failure frees what was read */
        if (load_added_token(l, json_array_get(list, i), i) != MP_OK)
            return l->err->code;
    }
    return MP_OK;
}

/* ---- model ---- */

static int check_model_options(loader *l, json_t *model)
{
    const char *type = get_type(l, model, "model");
    if (!type)
        return l->err->code;
    if (strcmp(type, "BPE") != 0)
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: model.type: \"%s\" is not supported, expected \"BPE\"", l->path,
                       type);
    json_t *dropout = json_object_get(model, "dropout");
    if (dropout && !json_is_null(dropout) && !(json_is_number(dropout) && json_number_value(dropout) == 0))
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: model.dropout: expected null (dropout makes ids random)",
                       l->path);
    mp_bpe *m = &l->t->bpe;
    const char *prefix = get_string(l, model, "model", "continuing_subword_prefix", true);
    const char *suffix = get_string(l, model, "model", "end_of_word_suffix", true);
    if (l->err->code != MP_OK || get_bool(l, model, "model", "fuse_unk", false, &m->fuse_unk) != MP_OK ||
        get_bool(l, model, "model", "byte_fallback", false, &m->byte_fallback) != MP_OK ||
        get_bool(l, model, "model", "ignore_merges", false, &m->ignore_merges) != MP_OK)
        return l->err->code;
    if ((prefix && *prefix && !(m->prefix = mp_strdup(prefix))) || (suffix && *suffix && !(m->suffix = mp_strdup(suffix))))
        return oom(l);
    return MP_OK;
}

/* Sizes the id table: the highest id of the vocabulary and the added tokens, + 1. */
static int count_ids(loader *l, json_t *vocab, size_t *n_ids)
{
    size_t n = 0;
    const char *key;
    json_t *v;
    json_object_foreach(vocab, key, v) {
        char where[64];
        snprintf(where, sizeof where, "model.vocab[\"%.24s\"]", key);
        int32_t id;
        if (get_id(l, v, where, &id) != MP_OK)
            return l->err->code;
        if ((size_t)id + 1 > n)
            n = (size_t)id + 1;
    }
    for (size_t i = 0; i < l->t->n_added; i++)
        if ((size_t)l->t->added[i].id + 1 > n)
            n = (size_t)l->t->added[i].id + 1;
    *n_ids = n;
    return MP_OK;
}

static int load_vocab(loader *l, json_t *model)
{
    json_t *vocab = json_object_get(model, "vocab");
    if (!json_is_object(vocab))
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: model.vocab: expected an object of piece: id", l->path);
    size_t n_ids = 0;
    mp_vocab *v = &l->t->bpe.vocab;
    if (count_ids(l, vocab, &n_ids) != MP_OK)
        return l->err->code;
    if (mp_vocab_init(v, n_ids, json_object_size(vocab)) != 0)
        return oom(l);
    const char *key;
    json_t *val;
    json_object_foreach(vocab, key, val) {
        int32_t id = (int32_t)json_integer_value(val);
        if (v->piece[id])
            return mp_fail(l->err, MP_EXIT_INPUT, "%s: model.vocab: id %d is given to both \"%s\" and \"%s\"",
                           l->path, id, v->piece[id], key);
        if (mp_vocab_set(v, id, key, strlen(key), true) != 0)
            return oom(l); /* keys are unique, so only memory can fail */
    }
    for (size_t i = 0; i < l->t->n_added; i++) {
        const mp_added_token *a = &l->t->added[i];
        if (v->piece[a->id] && strcmp(v->piece[a->id], a->content) != 0)
            return mp_fail(l->err, MP_EXIT_INPUT, "%s: added_tokens[%zu]: id %d is \"%s\" in model.vocab, not \"%s\"",
                           l->path, i, a->id, v->piece[a->id], a->content);
        if (mp_vocab_set(v, a->id, a->content, a->len, false) != 0)
            return oom(l);
    }
    return MP_OK;
}

/* A merge as "left right" (one space) or ["left", "right"], copied into *left and
 * *right (malloc'd). */
static int merge_parts(loader *l, json_t *m, size_t i, char **left, char **right)
{
    const char *a = NULL, *b = NULL, *s = json_string_value(m), *space = s ? strchr(s, ' ') : NULL;
    if (json_is_array(m) && json_array_size(m) == 2) {
        a = json_string_value(json_array_get(m, 0));
        b = json_string_value(json_array_get(m, 1));
    }
    if (space && !strchr(space + 1, ' ')) {
        *left = strndup(s, (size_t)(space - s));
        *right = mp_strdup(space + 1);
    } else if (a && b) {
        *left = mp_strdup(a);
        *right = mp_strdup(b);
    } else {
        return mp_fail(l->err, MP_EXIT_INPUT,
                       "%s: model.merges[%zu]: expected \"left right\" (one space) or [\"left\", \"right\"]", l->path, i);
    }
    return *left && *right ? MP_OK : oom(l);
}

static int piece_id(loader *l, const char *piece, size_t i, int32_t *id)
{
    *id = mp_vocab_find(&l->t->bpe.vocab, piece, strlen(piece));
    if (*id < 0)
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: model.merges[%zu]: \"%s\" is not in model.vocab", l->path, i,
                       piece);
    return MP_OK;
}

/* The merged piece is left + right less the subword prefix right starts with. */
static int load_merge(loader *l, json_t *m, size_t i)
{
    char *left = NULL, *right = NULL, *joined = NULL;
    const char *prefix = l->t->bpe.prefix ? l->t->bpe.prefix : "";
    size_t np = strlen(prefix);
    int32_t a, b, merged;
    int rc = merge_parts(l, m, i, &left, &right);
    if (rc == MP_OK && strncmp(right, prefix, np) != 0)
        rc = mp_fail(l->err, MP_EXIT_INPUT, "%s: model.merges[%zu]: \"%s\" should start with \"%s\"", l->path, i,
                     right, prefix);
    if (rc == MP_OK && !(joined = malloc(strlen(left) + strlen(right) + 1)))
        rc = oom(l);
    if (rc == MP_OK) {
        strcpy(joined, left);
        strcat(joined, right + np);
        if (piece_id(l, left, i, &a) == MP_OK && piece_id(l, right, i, &b) == MP_OK &&
            piece_id(l, joined, i, &merged) == MP_OK)
            mp_merge_map_put(&l->t->bpe.merges, a, b, (uint32_t)i, merged);
        rc = l->err->code;
    }
    free(left);
    free(right);
    free(joined);
    return rc;
}

static int load_merges(loader *l, json_t *model)
{
    json_t *merges = json_object_get(model, "merges");
    if (!json_is_array(merges))
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: model.merges: expected an array", l->path);
    if (mp_merge_map_init(&l->t->bpe.merges, json_array_size(merges)) != 0)
        return oom(l);
    for (size_t i = 0; i < json_array_size(merges); i++)
        if (load_merge(l, json_array_get(merges, i), i) != MP_OK)
            return l->err->code;
    return MP_OK;
}

static int load_special_ids(loader *l, json_t *model)
{
    mp_bpe *m = &l->t->bpe;
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        m->byte_id[b] = mp_vocab_find(&m->vocab, name, strlen(name));
    }
    m->unk_id = -1;
    const char *unk = get_string(l, model, "model", "unk_token", true);
    if (l->err->code != MP_OK || !unk)
        return l->err->code;
    m->unk_id = mp_vocab_find(&m->vocab, unk, strlen(unk));
    if (m->unk_id < 0)
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: model.unk_token: \"%s\" is not in model.vocab", l->path, unk);
    return MP_OK;
}

static int load_model(loader *l, json_t *root)
{
    json_t *model = json_object_get(root, "model");
    if (check_model_options(l, model) != MP_OK || load_vocab(l, model) != MP_OK || load_merges(l, model) != MP_OK)
        return l->err->code;
    return load_special_ids(l, model);
}

/* ---- normalizer ---- */

static int add_norm(loader *l, mp_norm_kind kind, const char *text, const char *with)
{
    mp_tokenizer *t = l->t;
    mp_norm_step *steps = realloc(t->norm, (t->n_norm + 1) * sizeof *steps);
    if (!steps)
        return oom(l);
    t->norm = steps;
    mp_norm_step *st = &t->norm[t->n_norm++];
    *st = (mp_norm_step){kind, text ? mp_strdup(text) : NULL, with ? mp_strdup(with) : NULL};
    if ((text && !st->text) || (with && !st->with))
        return oom(l);
    return MP_OK;
}

static int load_normalizer(loader *l, json_t *n, const char *where);

static int load_replace(loader *l, json_t *n, const char *where)
{
    json_t *pattern = json_object_get(n, "pattern");
    const char *s = json_is_object(pattern) ? get_string(l, pattern, where, "String", true) : NULL;
    if (!s || !*s)
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: %s.pattern: expected {\"String\": a non-empty string} (Regex patterns are not supported)",
                       l->path, where);
    const char *content = get_string(l, n, where, "content", false);
    return content ? add_norm(l, MP_NORM_REPLACE, s, content) : l->err->code;
}

static int load_norm_sequence(loader *l, json_t *n, const char *where)
{
    json_t *list = json_object_get(n, "normalizers");
    if (!json_is_array(list))
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: %s.normalizers: expected an array", l->path, where);
    for (size_t i = 0; i < json_array_size(list); i++) {
        char sub[256];
        snprintf(sub, sizeof sub, "%s.normalizers[%zu]", where, i);
        if (load_normalizer(l, json_array_get(list, i), sub) != MP_OK)
            return l->err->code;
    }
    return MP_OK;
}

static int load_normalizer(loader *l, json_t *n, const char *where)
{
    if (!n || json_is_null(n))
        return MP_OK;
    const char *type = get_type(l, n, where);
    if (!type)
        return l->err->code;
    if (strcmp(type, "NFC") == 0)
        return add_norm(l, MP_NORM_NFC, NULL, NULL);
    if (strcmp(type, "Prepend") == 0) {
        const char *s = get_string(l, n, where, "prepend", false);
        return s ? add_norm(l, MP_NORM_PREPEND, s, NULL) : l->err->code;
    }
    if (strcmp(type, "Replace") == 0)
        return load_replace(l, n, where);
    if (strcmp(type, "Sequence") == 0)
        return load_norm_sequence(l, n, where);
    return mp_fail(l->err, MP_EXIT_INPUT, "%s: %s.type: \"%s\" is not supported, expected NFC, Prepend, Replace or Sequence",
                   l->path, where, type);
}

/* ---- pre-tokenizer ---- */

static int add_pretok(loader *l, mp_pretok_step step)
{
    mp_tokenizer *t = l->t;
    mp_pretok_step *steps = realloc(t->pretok, (t->n_pretok + 1) * sizeof *steps);
    if (!steps)
        return oom(l);
    t->pretok = steps;
    t->pretok[t->n_pretok++] = step;
    return MP_OK;
}

/* prepend_scheme, or the add_prefix_space of files written before it existed. */
static int load_prepend_scheme(loader *l, json_t *p, const char *where, mp_prepend_scheme *out)
{
    const char *scheme = get_string(l, p, where, "prepend_scheme", true);
    if (l->err->code != MP_OK)
        return l->err->code;
    if (!scheme) {
        bool add;
        if (get_bool(l, p, where, "add_prefix_space", true, &add) != MP_OK)
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

static int load_metaspace(loader *l, json_t *p, const char *where)
{
    mp_pretok_step st = {.kind = MP_PRETOK_METASPACE};
    const char *rep = get_string(l, p, where, "replacement", false);
    if (!rep)
        return l->err->code;
    size_t n = strlen(rep);
    uint32_t cp;
    if (n == 0 || n >= sizeof st.replacement || mp_utf8_decode(rep, &cp) != n)
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: %s.replacement: expected one character", l->path, where);
    memcpy(st.replacement, rep, n + 1);
    if (load_prepend_scheme(l, p, where, &st.prepend) != MP_OK ||
        get_bool(l, p, where, "split", true, &st.split) != MP_OK)
        return l->err->code;
    return add_pretok(l, st);
}

static int load_byte_level(loader *l, json_t *p, const char *where)
{
    mp_pretok_step st = {.kind = MP_PRETOK_BYTE_LEVEL, .regex = MP_REGEX_GPT2};
    if (get_bool(l, p, where, "add_prefix_space", true, &st.add_prefix_space) != MP_OK ||
        get_bool(l, p, where, "use_regex", true, &st.use_regex) != MP_OK)
        return l->err->code;
    return add_pretok(l, st);
}

static int load_split(loader *l, json_t *p, const char *where)
{
    mp_pretok_step st = {.kind = MP_PRETOK_SPLIT};
    json_t *pattern = json_object_get(p, "pattern");
    const char *regex = json_is_object(pattern) ? get_string(l, pattern, where, "Regex", true) : NULL;
    int re = regex ? mp_regex_from_pattern(regex) : -1;
    if (re < 0)
        return mp_fail(l->err, MP_EXIT_INPUT,
                       "%s: %s.pattern: expected {\"Regex\": the GPT-2, Qwen2 or Llama-3 split pattern}, found %.120s%s",
                       l->path, where, regex ? regex : "another pattern", regex && strlen(regex) > 120 ? "..." : "");
    st.regex = (mp_regex)re;
    const char *behavior = get_string(l, p, where, "behavior", false);
    bool invert;
    if (!behavior || get_bool(l, p, where, "invert", false, &invert) != MP_OK)
        return l->err->code;
    if (strcmp(behavior, "Isolated") != 0)
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: %s.behavior: \"%s\" is not supported, expected \"Isolated\"",
                       l->path, where, behavior);
    if (invert)
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: %s.invert: expected false", l->path, where);
    return add_pretok(l, st);
}

static int load_pretokenizer(loader *l, json_t *p, const char *where);

static int load_pretok_sequence(loader *l, json_t *p, const char *where)
{
    json_t *list = json_object_get(p, "pretokenizers");
    if (!json_is_array(list))
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: %s.pretokenizers: expected an array", l->path, where);
    for (size_t i = 0; i < json_array_size(list); i++) {
        char sub[256];
        snprintf(sub, sizeof sub, "%s.pretokenizers[%zu]", where, i);
        if (load_pretokenizer(l, json_array_get(list, i), sub) != MP_OK)
            return l->err->code;
    }
    return MP_OK;
}

static int load_pretokenizer(loader *l, json_t *p, const char *where)
{
    if (!p || json_is_null(p))
        return MP_OK;
    const char *type = get_type(l, p, where);
    if (!type)
        return l->err->code;
    if (strcmp(type, "Metaspace") == 0)
        return load_metaspace(l, p, where);
    if (strcmp(type, "ByteLevel") == 0)
        return load_byte_level(l, p, where);
    if (strcmp(type, "Split") == 0)
        return load_split(l, p, where);
    if (strcmp(type, "Sequence") == 0)
        return load_pretok_sequence(l, p, where);
    return mp_fail(l->err, MP_EXIT_INPUT,
                   "%s: %s.type: \"%s\" is not supported, expected Metaspace, ByteLevel, Split or Sequence", l->path,
                   where, type);
}

/* ---- post-processor: the BOS id ---- */

/* TemplateProcessing: the special token that opens "single", if any. */
static int load_template(loader *l, json_t *p, const char *where)
{
    json_t *single = json_object_get(p, "single");
    json_t *first = json_is_array(single) ? json_array_get(single, 0) : NULL;
    json_t *special = json_object_get(first, "SpecialToken");
    if (!json_is_array(single))
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: %s.single: expected an array", l->path, where);
    if (!special)
        return MP_OK;
    const char *name = get_string(l, special, where, "id", false);
    json_t *entry = name ? json_object_get(json_object_get(p, "special_tokens"), name) : NULL;
    json_t *ids = json_object_get(entry, "ids");
    if (!name)
        return l->err->code;
    if (!json_is_array(ids) || json_array_size(ids) != 1)
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: %s.special_tokens[\"%s\"].ids: expected an array of one id",
                       l->path, where, name);
    return get_id(l, json_array_get(ids, 0), "post_processor.special_tokens ids", &l->t->bos);
}

static int load_post_processor(loader *l, json_t *p, const char *where);

static int load_post_sequence(loader *l, json_t *p, const char *where)
{
    json_t *list = json_object_get(p, "processors");
    if (!json_is_array(list))
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: %s.processors: expected an array", l->path, where);
    for (size_t i = 0; i < json_array_size(list); i++) {
        char sub[256];
        snprintf(sub, sizeof sub, "%s.processors[%zu]", where, i);
        if (load_post_processor(l, json_array_get(list, i), sub) != MP_OK)
            return l->err->code;
    }
    return MP_OK;
}

static int load_post_processor(loader *l, json_t *p, const char *where)
{
    if (!p || json_is_null(p))
        return MP_OK;
    const char *type = get_type(l, p, where);
    if (!type)
        return l->err->code;
    if (strcmp(type, "ByteLevel") == 0)
        return MP_OK;
    if (strcmp(type, "TemplateProcessing") == 0)
        return load_template(l, p, where);
    if (strcmp(type, "BertProcessing") == 0 || strcmp(type, "RobertaProcessing") == 0) {
        json_t *cls = json_object_get(p, "cls");
        return get_id(l, json_array_get(cls, 1), "post_processor.cls[1]", &l->t->bos);
    }
    if (strcmp(type, "Sequence") == 0)
        return load_post_sequence(l, p, where);
    return mp_fail(l->err, MP_EXIT_INPUT,
                   "%s: %s.type: \"%s\" is not supported, expected TemplateProcessing, ByteLevel, BertProcessing, "
                   "RobertaProcessing or Sequence",
                   l->path, where, type);
}

/* The id of a token named in tokenizer_config.json: an added token or a vocabulary piece. */
static int32_t token_id(const mp_tokenizer *t, const char *s)
{
    for (size_t i = 0; i < t->n_added; i++)
        if (strcmp(t->added[i].content, s) == 0)
            return t->added[i].id;
    return mp_vocab_find(&t->bpe.vocab, s, strlen(s));
}

/* tokenizer_config.json's add_bos_token, when present, overrides the post-processor,
 * as transformers' Llama tokenizers rebuild it from that flag. */
static int load_config(loader *l, const char *config_path)
{
    struct stat st;
    if (stat(config_path, &st) != 0)
        return MP_OK;
    json_t *cfg;
    if (mp_json_load_file(config_path, MAX_CONFIG_BYTES, &cfg, l->err) != MP_OK)
        return l->err->code;
    loader cl = {config_path, l->t, l->err};
    bool add = false;
    json_t *flag = json_object_get(cfg, "add_bos_token");
    int rc = json_is_object(cfg) ? MP_OK
                                 : mp_fail(l->err, MP_EXIT_INPUT, "%s: expected a JSON object", config_path);
    if (rc == MP_OK && flag && !json_is_null(flag))
        rc = get_bool(&cl, cfg, "tokenizer_config", "add_bos_token", false, &add);
    if (rc == MP_OK && flag && !json_is_null(flag)) {
        l->t->bos = -1;
        json_t *bos = json_object_get(cfg, "bos_token");
        const char *name = json_is_object(bos) ? json_string_value(json_object_get(bos, "content"))
                                               : json_string_value(bos);
        if (add && (!name || (l->t->bos = token_id(l->t, name)) < 0))
            rc = mp_fail(l->err, MP_EXIT_INPUT,
                         "%s: bos_token: expected a token of the tokenizer (add_bos_token is true), found %s%s%s",
                         config_path, name ? "\"" : "", name ? name : "none", name ? "\"" : "");
    }
    json_decref(cfg);
    return rc;
}

/* ---- the whole file ---- */

/* path is a tokenizer.json or a directory holding one; tokenizer_config.json is
 * looked for beside it. */
static int find_files(const char *path, char **json_path, char **config_path, mp_error *err)
{
    struct stat st;
    bool is_dir = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
    char *dir;
    if (is_dir) {
        dir = mp_strdup(path);
        *json_path = mp_path_join(path, "tokenizer.json");
    } else {
        const char *slash = strrchr(path, '/');
        dir = slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : mp_strdup(".");
        *json_path = mp_strdup(path);
    }
    *config_path = dir ? mp_path_join(dir, "tokenizer_config.json") : NULL;
    free(dir);
    if (!*json_path || !*config_path)
        return mp_fail(err, MP_EXIT_IO, "%s: out of memory", path);
    return MP_OK;
}

static int load_all(loader *l, json_t *root, const char *config_path)
{
    if (!json_is_object(root))
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: expected a JSON object", l->path);
    l->t->bos = -1;
    if (load_added(l, root) != MP_OK || load_model(l, root) != MP_OK ||
        load_normalizer(l, json_object_get(root, "normalizer"), "normalizer") != MP_OK ||
        load_pretokenizer(l, json_object_get(root, "pre_tokenizer"), "pre_tokenizer") != MP_OK ||
        load_post_processor(l, json_object_get(root, "post_processor"), "post_processor") != MP_OK)
        return l->err->code;
    return load_config(l, config_path);
}

int mp_tokenizer_load(const char *path, mp_tokenizer **out, mp_error *err)
{
    *out = NULL;
    char *json_path = NULL, *config_path = NULL;
    json_t *root = NULL;
    mp_tokenizer *t = NULL;
    int rc = find_files(path, &json_path, &config_path, err);
    if (rc == MP_OK)
        rc = mp_json_load_file(json_path, MAX_JSON_BYTES, &root, err);
    if (rc == MP_OK && !(t = calloc(1, sizeof *t)))
        rc = mp_fail(err, MP_EXIT_IO, "%s: out of memory", json_path);
    if (rc == MP_OK) {
        loader l = {json_path, t, err};
        rc = load_all(&l, root, config_path);
    }
    json_decref(root);
    free(json_path);
    free(config_path);
    if (rc != MP_OK) {
        mp_tokenizer_free(t);
        return rc;
    }
    *out = t;
    return MP_OK;
}
