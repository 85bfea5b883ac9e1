/* Special tokens, add_bos/add_eos and the chat template, as gguf-py's SpecialVocab
 * finds them: ids from tokenizer_config.json's {bos,eos,unk,sep,pad,mask}_token looked up
 * among tokenizer.json's added tokens, then config.json's *_token_id; the chat template
 * from tokenizer_config.json, else chat_template.jinja. add_bos_token / add_eos_token
 * are what our tokenizer (HF's rules) puts around a sequence, always written, so
 * llama.cpp does not fall back to its per-vocabulary defaults. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/fileio.h"
#include "../tokenizer/tokenizer.h"
#include "gguf_vocab.h"

static const struct {
    const char *type, *key;
} special_keys[] = {
    {"bos", "tokenizer.ggml.bos_token_id"},     {"eos", "tokenizer.ggml.eos_token_id"},
    {"unk", "tokenizer.ggml.unknown_token_id"}, {"sep", "tokenizer.ggml.seperator_token_id"},
    {"pad", "tokenizer.ggml.padding_token_id"}, {"mask", "tokenizer.ggml.mask_token_id"},
};
enum { N_SPECIAL = sizeof special_keys / sizeof special_keys[0] };

bool gg_token_looks_special(const char *t)
{
    size_t n = strlen(t);
    if (strcmp(t, "<pad>") == 0 || strcmp(t, "<mask>") == 0 || strcmp(t, "<2mass>") == 0 || strcmp(t, "[@BOS@]") == 0)
        return true;
    if (n >= 4 && strncmp(t, "<|", 2) == 0 && strcmp(t + n - 2, "|>") == 0)
        return true;
    if (n >= 8 && strncmp(t, "<\xef\xbd\x9c", 4) == 0 && strcmp(t + n - 4, "\xef\xbd\x9c>") == 0) /* <｜...｜> */
        return true;
    return strncmp(t, "<unused", 7) == 0 && t[n - 1] == '>';
}

/* The id of an added token by its content, or -1. */
static int added_id(const gg_vocab *v, const char *content)
{
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(v->tokenizer, "added_tokens"), i, a)
    {
        const char *c = json_string_value(json_object_get(a, "content"));
        json_t *id = json_object_get(a, "id");
        if (c && strcmp(c, content) == 0 && json_is_integer(id))
            return (int)json_integer_value(id);
    }
    return -1;
}

static int config_token(const gg_vocab *v, const char *type)
{
    char name[32];
    snprintf(name, sizeof name, "%s_token", type);
    json_t *e = json_object_get(v->tok_config, name);
    const char *content = json_is_string(e) ? json_string_value(e) : json_string_value(json_object_get(e, "content"));
    int id = content ? added_id(v, content) : -1;
    if (id < 0) {
        snprintf(name, sizeof name, "%s_token_id", type);
        json_t *j = json_object_get(v->config, name);
        double x = json_number_value(j); /* read tolerantly: integers as reals */
        id = json_is_number(j) && x >= 0 && x < INT32_MAX && x == (int)x ? (int)x : -1;
    }
    return id >= 0 && id < v->n ? id : -1;
}

/* add_bos / add_eos: does the tokenizer put the BOS (EOS) id around one sequence? */
static int add_flags(const gg_vocab *v, int *bos, int eos, bool *add_bos, bool *add_eos, mp_error *err)
{
    mp_tokenizer *tok;
    int rc = mp_tokenizer_load(v->dir, &tok, err);
    if (rc)
        return rc;
    const int32_t *before, *after;
    size_t n_before, n_after;
    mp_tokenizer_specials(tok, &before, &n_before, &after, &n_after);
    if (*bos < 0 && n_before > 0 && before[0] < v->n) /* no bos_token named: the one it adds */
        *bos = before[0];
    *add_bos = n_before > 0 && before[0] == *bos;
    *add_eos = n_after > 0 && after[n_after - 1] == eos;
    mp_tokenizer_free(tok);
    return MP_OK;
}

static int read_template(const gg_vocab *v, char **out, mp_error *err)
{
    *out = NULL;
    json_t *t = json_object_get(v->tok_config, "chat_template");
    if (json_is_string(t))
        return (*out = mp_strdup(json_string_value(t))) ? MP_OK : mp_fail(err, MP_EXIT_IO, "out of memory");
    char *path = mp_path_join(v->dir, "chat_template.jinja");
    size_t len;
    int rc = MP_OK;
    if (path && access(path, F_OK) == 0)
        rc = mp_read_small_file(path, 64u << 20, out, &len, err);
    free(path);
    return rc;
}

/* A list of {name, template} (tokenizer_config.json's multi-template form): "default"
 * as tokenizer.chat_template, the others as tokenizer.chat_template.NAME. */
static int named_templates(mp_gguf *g, json_t *list)
{
    size_t i;
    json_t *e;
    const char *names[64];
    int n = 0, rc = 0;
    json_array_foreach(list, i, e)
    {
        const char *name = json_string_value(json_object_get(e, "name"));
        const char *tmpl = json_string_value(json_object_get(e, "template"));
        if (!name || !tmpl)
            continue;
        char key[160];
        if (strcmp(name, "default") == 0) {
            rc |= mp_gguf_set_str(g, "tokenizer.chat_template", tmpl);
        } else if (n < 64 && strlen(name) < 100) {
            snprintf(key, sizeof key, "tokenizer.chat_template.%s", name);
            rc |= mp_gguf_set_str(g, key, tmpl);
            names[n++] = name;
        }
    }
    if (n > 0)
        rc |= mp_gguf_set_arr_str(g, "tokenizer.chat_templates", names, (uint64_t)n);
    return rc;
}

static int put_template(mp_gguf *g, const gg_vocab *v, json_t *summary, mp_error *err)
{
    json_t *list = json_object_get(v->tok_config, "chat_template");
    if (json_is_array(list)) {
        json_object_set_new(summary, "chat_template", json_true());
        return named_templates(g, list) ? mp_fail(err, MP_EXIT_IO, "out of memory") : MP_OK;
    }
    char *tmpl;
    int rc = read_template(v, &tmpl, err);
    if (rc == MP_OK && tmpl && mp_gguf_set_str(g, "tokenizer.chat_template", tmpl) != 0)
        rc = mp_fail(err, MP_EXIT_IO, "out of memory");
    json_object_set_new(summary, "chat_template", json_boolean(tmpl != NULL));
    free(tmpl);
    return rc;
}

int gg_vocab_special(mp_gguf *g, gg_vocab *v, json_t *summary, mp_error *err)
{
    int ids[N_SPECIAL];
    for (int i = 0; i < N_SPECIAL; i++)
        ids[i] = config_token(v, special_keys[i].type);
    bool add_bos, add_eos;
    int rc = add_flags(v, &ids[0], ids[1], &add_bos, &add_eos, err);
    if (rc)
        return rc;
    for (int i = 0; i < N_SPECIAL; i++)
        if (ids[i] >= 0) {
            rc |= mp_gguf_set_u32(g, special_keys[i].key, (uint32_t)ids[i]);
            json_object_set_new(summary, special_keys[i].type, json_integer(ids[i]));
        }
    if (rc || mp_gguf_set_bool(g, "tokenizer.ggml.add_bos_token", add_bos) ||
        mp_gguf_set_bool(g, "tokenizer.ggml.add_eos_token", add_eos))
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    json_object_set_new(summary, "add_bos", json_boolean(add_bos));
    json_object_set_new(summary, "add_eos", json_boolean(add_eos));
    return put_template(g, v, summary, err);
}
