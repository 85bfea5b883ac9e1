/* Reading tokenizer.json into an mp_tokenizer: the file, its added tokens and
 * post-processor, and tokenizer_config.json beside it; the model, normalizer and
 * pre-tokenizer are in tokenizer_load_model.c and tokenizer_load_steps.c. Every
 * setting the encoder does not implement is refused with the file, the field and what
 * was expected; settings that do not change the ids (truncation, padding, trim_offsets)
 * are not read. The decoder is read in tokenizer_load_decoder.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../core/fileio.h"
#include "../core/json.h"
#include "tokenizer_load.h"

#define MAX_JSON_BYTES (1024ull << 20)
#define MAX_CONFIG_BYTES (64ull << 20)

int mp_load_oom(mp_loader *l)
{
    return mp_fail(l->err, MP_EXIT_IO, "%s: out of memory", l->path);
}

/* key of obj as a string: NULL, with an error naming where.key, when it is missing or
 * not a string; when optional, missing or null is NULL without an error. */
const char *mp_load_string(mp_loader *l, json_t *obj, const char *where, const char *key, bool optional)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_string(v))
        return json_string_value(v);
    if (!optional || (v && !json_is_null(v)))
        mp_fail(l->err, MP_EXIT_INPUT, "%s: %s.%s: expected a string", l->path, where, key);
    return NULL;
}

/* key of obj as a boolean, dflt when missing or null. */
int mp_load_bool(mp_loader *l, json_t *obj, const char *where, const char *key, bool dflt, bool *out)
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

const char *mp_load_type(mp_loader *l, json_t *obj, const char *where)
{
    if (!json_is_object(obj)) {
        mp_fail(l->err, MP_EXIT_INPUT, "%s: %s: expected an object", l->path, where);
        return NULL;
    }
    return mp_load_string(l, obj, where, "type", false);
}

int mp_load_id(mp_loader *l, json_t *v, const char *where, int32_t *id)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= MP_TOKENIZER_MAX_IDS)
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: %s: expected an id in 0..%d", l->path, where, MP_TOKENIZER_MAX_IDS - 1);
    *id = (int32_t)json_integer_value(v);
    return MP_OK;
}

/* ---- added tokens ---- */

static int load_added_token(mp_loader *l, json_t *tok, size_t i)
{
    char where[64];
    snprintf(where, sizeof where, "added_tokens[%zu]", i);
    mp_added_token *a = &l->t->added[i];
    const char *content = json_is_object(tok) ? mp_load_string(l, tok, where, "content", false) : NULL;
    if (!content)
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: %s: expected an object with a content string", l->path, where);
    if (!*content)
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: %s.content: expected a non-empty string", l->path, where);
    char id_where[80];
    snprintf(id_where, sizeof id_where, "%s.id", where);
    if (mp_load_id(l, json_object_get(tok, "id"), id_where, &a->id) != MP_OK ||
        mp_load_bool(l, tok, where, "special", false, &a->special) != MP_OK ||
        mp_load_bool(l, tok, where, "normalized", !a->special, &a->normalized) != MP_OK ||
        mp_load_bool(l, tok, where, "single_word", false, &a->single_word) != MP_OK ||
        mp_load_bool(l, tok, where, "lstrip", false, &a->lstrip) != MP_OK ||
        mp_load_bool(l, tok, where, "rstrip", false, &a->rstrip) != MP_OK)
        return l->err->code;
    return (a->content = mp_strdup(content)) ? MP_OK : mp_load_oom(l);
}

static int load_added(mp_loader *l, json_t *root)
{
    json_t *list = json_object_get(root, "added_tokens");
    if (!list || json_is_null(list))
        return MP_OK;
    if (!json_is_array(list))
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: added_tokens: expected an array", l->path);
    l->t->added = calloc(json_array_size(list) + 1, sizeof *l->t->added);
    if (!l->t->added)
        return mp_load_oom(l);
    for (size_t i = 0; i < json_array_size(list); i++) {
        l->t->n_added = i + 1; /* so a failure frees what was read */
        if (load_added_token(l, json_array_get(list, i), i) != MP_OK)
            return l->err->code;
    }
    return MP_OK;
}

/* What each added token is searched as: normalized tokens in their normalized form,
 * as HF caches them; then the two search sets. */
static int prepare_added(mp_loader *l)
{
    mp_tokenizer *t = l->t;
    for (size_t i = 0; i < t->n_added; i++) {
        mp_added_token *a = &t->added[i];
        size_t n = strlen(a->content);
        int rc = a->normalized ? mp_normalize(t->norm, t->n_norm, a->content, n, &a->match, &a->match_len) : 0;
        if (!a->normalized) {
            a->match = mp_strdup(a->content);
            a->match_len = n;
        }
        if (rc != 0 || !a->match)
            return mp_load_oom(l);
    }
    if (mp_added_set_build(&t->added_raw, t->added, t->n_added, false) != 0 ||
        mp_added_set_build(&t->added_normalized, t->added, t->n_added, true) != 0)
        return mp_load_oom(l);
    return MP_OK;
}

/* ---- post-processor: the special tokens around a sequence ---- */

static int append_ids(mp_loader *l, int32_t **ids, size_t *n, const int32_t *more, size_t n_more)
{
    int32_t *grown = realloc(*ids, (*n + n_more + 1) * sizeof *grown);
    if (!grown)
        return mp_load_oom(l);
    if (n_more > 0) /* more may be NULL then */
        memcpy(grown + *n, more, n_more * sizeof *more);
    *ids = grown;
    *n += n_more;
    return MP_OK;
}

/* A processor's own template wraps what the processors before it made. */
static int wrap(mp_loader *l, const mp_template *inner)
{
    mp_template *post = &l->t->post;
    mp_template outer = {0};
    int rc = append_ids(l, &outer.before, &outer.n_before, inner->before, inner->n_before);
    if (rc == MP_OK)
        rc = append_ids(l, &outer.before, &outer.n_before, post->before, post->n_before);
    if (rc == MP_OK)
        rc = append_ids(l, &outer.after, &outer.n_after, post->after, post->n_after);
    if (rc == MP_OK)
        rc = append_ids(l, &outer.after, &outer.n_after, inner->after, inner->n_after);
    free(rc == MP_OK ? post->before : outer.before);
    free(rc == MP_OK ? post->after : outer.after);
    if (rc == MP_OK)
        *post = outer;
    return rc;
}

/* The ids of special token `name` of a TemplateProcessing. */
static int template_ids(mp_loader *l, json_t *p, const char *where, const char *name, mp_template *tpl, bool before)
{
    json_t *ids = json_object_get(json_object_get(json_object_get(p, "special_tokens"), name), "ids");
    if (!json_is_array(ids) || json_array_size(ids) == 0)
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: %s.special_tokens[\"%s\"].ids: expected an array of ids", l->path,
                       where, name);
    for (size_t i = 0; i < json_array_size(ids); i++) {
        int32_t id;
        if (mp_load_id(l, json_array_get(ids, i), "post_processor.special_tokens ids", &id) != MP_OK ||
            append_ids(l, before ? &tpl->before : &tpl->after, before ? &tpl->n_before : &tpl->n_after, &id, 1) != MP_OK)
            return l->err->code;
    }
    return MP_OK;
}

/* TemplateProcessing: the special tokens of "single" before and after the sequence. */
static int load_template(mp_loader *l, json_t *p, const char *where, mp_template *tpl)
{
    json_t *single = json_object_get(p, "single");
    if (!json_is_array(single))
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: %s.single: expected an array", l->path, where);
    bool seen_sequence = false;
    for (size_t i = 0; i < json_array_size(single); i++) {
        json_t *item = json_array_get(single, i), *special = json_object_get(item, "SpecialToken");
        if (json_object_get(item, "Sequence")) {
            seen_sequence = true;
            continue;
        }
        const char *name = special ? mp_load_string(l, special, where, "id", false) : NULL;
        if (!name)
            return mp_fail(l->err, MP_EXIT_INPUT, "%s: %s.single[%zu]: expected a SpecialToken or a Sequence", l->path,
                           where, i);
        if (template_ids(l, p, where, name, tpl, !seen_sequence) != MP_OK)
            return l->err->code;
    }
    return MP_OK;
}

/* BertProcessing and RobertaProcessing: [cls, id] before, [sep, id] after. */
static int load_cls_sep(mp_loader *l, json_t *p, const char *where, mp_template *tpl)
{
    int32_t cls, sep;
    char w[300];
    snprintf(w, sizeof w, "%s.cls[1]", where);
    if (mp_load_id(l, json_array_get(json_object_get(p, "cls"), 1), w, &cls) != MP_OK)
        return l->err->code;
    snprintf(w, sizeof w, "%s.sep[1]", where);
    if (mp_load_id(l, json_array_get(json_object_get(p, "sep"), 1), w, &sep) != MP_OK)
        return l->err->code;
    if (append_ids(l, &tpl->before, &tpl->n_before, &cls, 1) != MP_OK)
        return l->err->code;
    return append_ids(l, &tpl->after, &tpl->n_after, &sep, 1);
}

static int load_post_processor(mp_loader *l, json_t *p, const char *where);

static int load_post_sequence(mp_loader *l, json_t *p, const char *where)
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

static int load_post_processor(mp_loader *l, json_t *p, const char *where)
{
    if (!p || json_is_null(p))
        return MP_OK;
    const char *type = mp_load_type(l, p, where);
    if (!type)
        return l->err->code;
    if (strcmp(type, "ByteLevel") == 0)
        return MP_OK;
    if (strcmp(type, "Sequence") == 0)
        return load_post_sequence(l, p, where);
    mp_template tpl = {0};
    int rc;
    if (strcmp(type, "TemplateProcessing") == 0)
        rc = load_template(l, p, where, &tpl);
    else if (strcmp(type, "BertProcessing") == 0 || strcmp(type, "RobertaProcessing") == 0)
        rc = load_cls_sep(l, p, where, &tpl);
    else
        rc = mp_fail(l->err, MP_EXIT_INPUT,
                     "%s: %s.type: \"%s\" is not supported, expected TemplateProcessing, ByteLevel, BertProcessing, "
                     "RobertaProcessing or Sequence",
                     l->path, where, type);
    if (rc == MP_OK)
        rc = wrap(l, &tpl);
    free(tpl.before);
    free(tpl.after);
    return rc;
}

/* ---- tokenizer_config.json ---- */

/* add_bos_token / add_eos_token, when present, replace what the post-processor puts
 * before / after the sequence with bos_token / eos_token or nothing, as transformers'
 * Llama-style tokenizers rebuild their post-processor from these flags. */
static int config_flag(mp_loader *l, json_t *cfg, const char *flag_key, const char *token_key, int32_t **ids,
                       size_t *n)
{
    json_t *flag = json_object_get(cfg, flag_key);
    bool add;
    if (!flag || json_is_null(flag))
        return MP_OK;
    if (mp_load_bool(l, cfg, "tokenizer_config", flag_key, false, &add) != MP_OK)
        return l->err->code;
    *n = 0;
    if (!add)
        return MP_OK;
    json_t *tok = json_object_get(cfg, token_key);
    const char *name = json_is_object(tok) ? json_string_value(json_object_get(tok, "content")) : json_string_value(tok);
    int32_t id = name ? mp_tokenizer_id(l->t, name) : -1;
    if (id < 0)
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: %s: expected a token of the tokenizer (%s is true), found %s%s%s",
                       l->path, token_key, flag_key, name ? "\"" : "", name ? name : "none", name ? "\"" : "");
    return append_ids(l, ids, n, &id, 1);
}

static int load_config(mp_loader *l, const char *config_path)
{
    struct stat st;
    if (stat(config_path, &st) != 0)
        return MP_OK;
    json_t *cfg;
    if (mp_json_load_file_tolerant(config_path, MAX_CONFIG_BYTES, &cfg, l->err) != MP_OK)
        return l->err->code;
    mp_loader cl = {config_path, l->t, l->err};
    mp_template *post = &l->t->post;
    int rc = json_is_object(cfg) ? MP_OK : mp_fail(l->err, MP_EXIT_INPUT, "%s: expected a JSON object", config_path);
    if (rc == MP_OK)
        rc = config_flag(&cl, cfg, "add_bos_token", "bos_token", &post->before, &post->n_before);
    if (rc == MP_OK)
        rc = config_flag(&cl, cfg, "add_eos_token", "eos_token", &post->after, &post->n_after);
    /* read as transformers' decode uses it; anything but a boolean is its default, false */
    if (rc == MP_OK)
        l->t->cleanup_spaces = json_is_true(json_object_get(cfg, "clean_up_tokenization_spaces"));
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

static int load_all(mp_loader *l, json_t *root, const char *config_path)
{
    if (!json_is_object(root))
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: expected a JSON object", l->path);
    if (mp_uclasses_init(&l->t->classes) != 0)
        return mp_fail(l->err, MP_EXIT_IO, "%s: Oniguruma's Unicode tables cannot be read", l->path);
    if (load_added(l, root) != MP_OK || mp_load_model(l, json_object_get(root, "model")) != MP_OK ||
        mp_load_normalizer(l, json_object_get(root, "normalizer"), "normalizer") != MP_OK ||
        mp_load_pretokenizer(l, json_object_get(root, "pre_tokenizer"), "pre_tokenizer") != MP_OK ||
        load_post_processor(l, json_object_get(root, "post_processor"), "post_processor") != MP_OK ||
        prepare_added(l) != MP_OK || mp_load_decoder(l, json_object_get(root, "decoder")) != MP_OK ||
        mp_load_decode_tables(l) != MP_OK)
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
        mp_loader l = {json_path, t, err};
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
