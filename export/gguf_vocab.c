/* tokenizer.ggml.* from the pack's tokenizer files, as convert_hf_to_gguf.py writes them
 * (conversion/base.py _set_vocab_sentencepiece, _set_vocab_llama_hf, _set_vocab_gpt2):
 *   - tokenizer.model present: model "llama", pieces, scores and types read from the
 *     SentencePiece protobuf, tokenizer_config.json's added tokens laid over them;
 *   - tokenizer.json BPE with byte_fallback: model "llama" (SentencePiece-style BPE);
 *     scores from the merge ranks (docs/export.md: the converter's -1000 for all would
 *     make llama.cpp merge left to right);
 *   - tokenizer.json Unigram: model "llama" with the Unigram scores;
 *   - tokenizer.json byte-level BPE: model "gpt2", merges, and a pre-tokenizer name
 *     (gguf_vocab_pre.c).
 * Ids up to the model's vocab_size the tokenizer does not define are "[PAD<id>]",
 * UNUSED, as the converter pads them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/fileio.h"
#include "../core/json.h"
#include "../tokenizer/sp_model.h"
#include "gguf_export.h"
#include "gguf_vocab.h"

#define MAX_TOKENIZER_BYTES (1u << 30)

static int set_token(gg_vocab *v, int id, const char *text, int type, float score, mp_error *err)
{
    if (id < 0 || id >= v->n)
        return mp_fail(err, MP_EXIT_INPUT, "%s/%s: token %d (\"%.40s\") is beyond the model's %d embeddings", v->dir,
                       v->source, id, text, v->n);
    char *copy = mp_strdup(text);
    if (!copy)
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    free(v->tokens[id]);
    v->tokens[id] = copy;
    v->types[id] = type;
    v->scores[id] = score;
    if (id >= v->from_tokenizer)
        v->from_tokenizer = id + 1;
    return MP_OK;
}

/* "▁" in a non-special added token is a space to llama.cpp (the converter's pre-normalizing). */
static void spaces_for_metaspace(char *s)
{
    char *out = s;
    for (char *in = s; *in;)
        if (strncmp(in, "\xe2\x96\x81", 3) == 0) {
            *out++ = ' ';
            in += 3;
        } else {
            *out++ = *in++;
        }
    *out = '\0';
}

/* tokenizer.json's added tokens: CONTROL when special (or looking special), else
 * USER_DEFINED. score: what the converter gives them. */
static int added_tokens(gg_vocab *v, float score, mp_error *err)
{
    size_t i;
    json_t *a;
    int rc = MP_OK;
    json_array_foreach(json_object_get(v->tokenizer, "added_tokens"), i, a)
    {
        const char *content = json_string_value(json_object_get(a, "content"));
        json_t *id = json_object_get(a, "id");
        if (!content || !json_is_integer(id) || rc)
            continue;
        bool control = json_is_true(json_object_get(a, "special")) || gg_token_looks_special(content);
        rc = set_token(v, (int)json_integer_value(id), content, control ? MP_SP_CONTROL : MP_SP_USER_DEFINED,
                       score, err);
        if (!rc && !control)
            spaces_for_metaspace(v->tokens[json_integer_value(id)]);
    }
    return rc;
}

/* tokenizer_config.json's added_tokens_decoder over SentencePiece pieces, as
 * _create_vocab_sentencepiece lays it. */
static int config_added_tokens(gg_vocab *v, mp_error *err)
{
    const char *key;
    json_t *e;
    int rc = MP_OK;
    json_object_foreach(json_object_get(v->tok_config, "added_tokens_decoder"), key, e)
    {
        const char *content = json_string_value(json_object_get(e, "content"));
        int id = atoi(key);
        if (!content || rc || id >= v->n)
            continue;
        bool control = json_is_true(json_object_get(e, "special")) || gg_token_looks_special(content);
        rc = set_token(v, id, content, control ? MP_SP_CONTROL : MP_SP_USER_DEFINED, -1000.0f, err);
        if (!rc && !control)
            spaces_for_metaspace(v->tokens[id]);
    }
    return rc;
}

static int from_sp_model(gg_vocab *v, const char *path, mp_error *err)
{
    mp_sp_model m;
    int rc = mp_sp_model_load(path, &m, err);
    v->source = "tokenizer.model";
    v->model = "llama";
    for (int i = 0; !rc && i < m.n && i < v->n; i++) {
        int type = m.pieces[i].type;
        if (type == MP_SP_USER_DEFINED || type < MP_SP_NORMAL || type > MP_SP_BYTE)
            type = MP_SP_NORMAL; /* the converter checks unknown, control, unused and byte only */
        rc = set_token(v, i, m.pieces[i].piece, type, m.pieces[i].score, err);
    }
    mp_sp_model_free(&m);
    return rc ? rc : config_added_tokens(v, err);
}

/* A merge "a b" (or ["a", "b"]) as its two parts. */
static bool merge_parts(json_t *m, char *a, char *b, size_t cap)
{
    if (json_is_string(m)) {
        const char *s = json_string_value(m), *space = strchr(s, ' ');
        if (!space || (size_t)(space - s) >= cap || strlen(space + 1) >= cap)
            return false;
        snprintf(a, cap, "%.*s", (int)(space - s), s);
        snprintf(b, cap, "%s", space + 1);
        return true;
    }
    const char *x = json_string_value(json_array_get(m, 0)), *y = json_string_value(json_array_get(m, 1));
    if (!x || !y || strlen(x) >= cap || strlen(y) >= cap)
        return false;
    snprintf(a, cap, "%s", x);
    snprintf(b, cap, "%s", y);
    return true;
}

/* SentencePiece BPE merges the pair whose merged piece scores highest; HF BPE the pair
 * of lowest merge rank: a merged token scores minus the rank of its first merge. */
static void scores_from_merges(gg_vocab *v, json_t *model)
{
    json_t *vocab = json_object_get(model, "vocab"), *m;
    size_t rank;
    char a[512], b[512], ab[1024];
    bool *seen = calloc((size_t)v->n, 1);
    json_array_foreach(json_object_get(model, "merges"), rank, m)
    {
        if (!seen || !merge_parts(m, a, b, sizeof a))
            continue;
        snprintf(ab, sizeof ab, "%s%s", a, b);
        json_t *id = json_object_get(vocab, ab);
        json_int_t i = json_is_integer(id) ? json_integer_value(id) : -1;
        if (i >= 0 && i < v->n && !seen[i]) {
            seen[i] = true;
            v->scores[i] = -(float)rank;
        }
    }
    free(seen);
}

static bool is_byte_piece(const char *t)
{
    return strlen(t) == 6 && strncmp(t, "<0x", 3) == 0 && t[5] == '>';
}

/* BPE with byte_fallback (a SentencePiece BPE in tokenizer.json form). */
static int from_json_spm_bpe(gg_vocab *v, json_t *model, mp_error *err)
{
    const char *unk = json_string_value(json_object_get(model, "unk_token"));
    const char *text;
    json_t *id;
    int rc = MP_OK;
    json_object_foreach(json_object_get(model, "vocab"), text, id)
    {
        int type = is_byte_piece(text) ? MP_SP_BYTE : unk && strcmp(text, unk) == 0 ? MP_SP_UNKNOWN : MP_SP_NORMAL;
        if (!rc)
            rc = set_token(v, json_is_integer(id) ? (int)json_integer_value(id) : -1, text, type, 0.0f, err);
    }
    if (!rc)
        scores_from_merges(v, model);
    return rc ? rc : added_tokens(v, 0.0f, err);
}

static int from_json_unigram(gg_vocab *v, json_t *model, mp_error *err)
{
    json_t *unk = json_object_get(model, "unk_id"), *e;
    size_t i;
    int rc = MP_OK;
    json_array_foreach(json_object_get(model, "vocab"), i, e)
    {
        const char *text = json_string_value(json_array_get(e, 0));
        int type = json_is_integer(unk) && (size_t)json_integer_value(unk) == i ? MP_SP_UNKNOWN
                   : text && is_byte_piece(text)                                ? MP_SP_BYTE
                                                                                : MP_SP_NORMAL;
        if (!rc)
            rc = text ? set_token(v, (int)i, text, type, (float)json_number_value(json_array_get(e, 1)), err)
                      : mp_fail(err, MP_EXIT_INPUT, "%s/tokenizer.json: Unigram vocab entry %zu", v->dir, i);
    }
    return rc ? rc : added_tokens(v, 0.0f, err);
}

static int from_json_gpt2(gg_vocab *v, json_t *model, mp_error *err)
{
    const char *text;
    json_t *id;
    int rc = MP_OK;
    json_object_foreach(json_object_get(model, "vocab"), text, id)
    {
        if (!rc)
            rc = set_token(v, json_is_integer(id) ? (int)json_integer_value(id) : -1, text, MP_SP_NORMAL, 0.0f, err);
    }
    return rc ? rc : added_tokens(v, 0.0f, err);
}

/* One merge line "a b"; a space inside a part of the list form is U+0120 (SpecialVocab). */
static char *merge_line(const char *a, const char *b, bool pairs)
{
    char *line = malloc(2 * (strlen(a) + strlen(b)) + 2), *o = line;
    for (int k = 0; line && k < 2; k++) {
        if (k)
            *o++ = ' ';
        for (const char *c = k ? b : a; *c; c++) {
            if (*c == ' ' && pairs) {
                memcpy(o, "\xc4\xa0", 2);
                o += 2;
            } else {
                *o++ = *c;
            }
        }
    }
    if (line)
        *o = '\0';
    return line;
}

static int put_merges(mp_gguf *g, json_t *model, int *count, mp_error *err)
{
    json_t *merges = json_object_get(model, "merges"), *m;
    size_t n = json_array_size(merges), i;
    char **lines = calloc(n ? n : 1, sizeof *lines);
    int rc = lines ? MP_OK : mp_fail(err, MP_EXIT_IO, "out of memory");
    char a[512], b[512];
    json_array_foreach(merges, i, m)
    {
        if (rc)
            break;
        if (!merge_parts(m, a, b, sizeof a))
            rc = mp_fail(err, MP_EXIT_INPUT, "tokenizer.json: merge %zu is not a pair", i);
        else if (!(lines[i] = merge_line(a, b, json_is_array(m))))
            rc = mp_fail(err, MP_EXIT_IO, "out of memory");
    }
    if (!rc && mp_gguf_set_arr_str(g, "tokenizer.ggml.merges", (const char *const *)lines, n) != 0)
        rc = mp_fail(err, MP_EXIT_IO, "out of memory");
    for (size_t k = 0; lines && k < n; k++)
        free(lines[k]);
    free(lines);
    *count = (int)n;
    return rc;
}

static int pad_tokens(gg_vocab *v, float score, mp_error *err)
{
    char pad[32];
    for (int i = 0; i < v->n; i++)
        if (!v->tokens[i]) {
            snprintf(pad, sizeof pad, "[PAD%d]", i);
            if (!(v->tokens[i] = mp_strdup(pad)))
                return mp_fail(err, MP_EXIT_IO, "out of memory");
            v->types[i] = MP_SP_UNUSED;
            v->scores[i] = score;
        }
    return MP_OK;
}

static int load_files(gg_vocab *v, mp_error *err)
{
    char *path = mp_path_join(v->dir, "tokenizer.json");
    if (!path)
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    int rc = MP_OK;
    if (access(path, F_OK) != 0)
        rc = mp_fail(err, MP_EXIT_INPUT, "%s has no tokenizer.json: a GGUF needs the vocabulary (llama.cpp reads "
                     "tokenizer.ggml.*); make the pack from a checkpoint that has its tokenizer files", v->dir);
    if (!rc)
        rc = mp_json_load_file(path, MAX_TOKENIZER_BYTES, &v->tokenizer, err);
    free(path);
    path = mp_path_join(v->dir, "tokenizer_config.json");
    if (!rc && path && access(path, F_OK) == 0)
        rc = mp_json_load_file_tolerant(path, 64u << 20, &v->tok_config, err);
    free(path);
    v->tokens = calloc((size_t)v->n, sizeof *v->tokens);
    v->types = calloc((size_t)v->n, sizeof *v->types);
    v->scores = calloc((size_t)v->n, sizeof *v->scores);
    if (!rc && (!v->tokens || !v->types || !v->scores))
        rc = mp_fail(err, MP_EXIT_IO, "out of memory");
    return rc;
}

/* Which of the converter's vocabularies the files make, and its tokens. */
static int fill_tokens(gg_vocab *v, const gg_plan *p, mp_gguf *g, int *n_merges, mp_error *err)
{
    json_t *model = json_object_get(v->tokenizer, "model");
    const char *type = json_string_value(json_object_get(model, "type"));
    char *sp = mp_path_join(v->dir, "tokenizer.model");
    bool has_sp = sp && access(sp, F_OK) == 0;
    int rc;
    v->pre = "default";
    v->source = "tokenizer.json";
    if (has_sp)
        rc = from_sp_model(v, sp, err);
    else if (type && strcmp(type, "BPE") == 0 && json_is_true(json_object_get(model, "byte_fallback")))
        v->model = "llama", rc = from_json_spm_bpe(v, model, err);
    else if (type && strcmp(type, "Unigram") == 0)
        v->model = "llama", rc = from_json_unigram(v, model, err);
    else if (type && strcmp(type, "BPE") == 0) {
        v->model = "gpt2";
        rc = gg_vocab_pre(v, p->family, &v->pre, err);
        if (!rc)
            rc = from_json_gpt2(v, model, err);
        if (!rc)
            rc = put_merges(g, model, n_merges, err);
    } else
        rc = mp_fail(err, MP_EXIT_INPUT, "%s/tokenizer.json: model type %s has no llama.cpp vocabulary here", v->dir,
                     type ? type : "(none)");
    free(sp);
    return rc ? rc : pad_tokens(v, has_sp ? -10000.0f : -1000.0f, err);
}

static int put_tokens(mp_gguf *g, const gg_vocab *v, mp_error *err)
{
    int rc = mp_gguf_set_str(g, "tokenizer.ggml.model", v->model);
    rc |= mp_gguf_set_str(g, "tokenizer.ggml.pre", v->pre);
    rc |= mp_gguf_set_arr_str(g, "tokenizer.ggml.tokens", (const char *const *)v->tokens, (uint64_t)v->n);
    rc |= mp_gguf_set_arr(g, "tokenizer.ggml.token_type", MP_GGUF_I32, v->types, (uint64_t)v->n);
    if (strcmp(v->model, "llama") == 0)
        rc |= mp_gguf_set_arr(g, "tokenizer.ggml.scores", MP_GGUF_F32, v->scores, (uint64_t)v->n);
    return rc ? mp_fail(err, MP_EXIT_IO, "out of memory") : MP_OK;
}

static void free_vocab(gg_vocab *v)
{
    for (int i = 0; v->tokens && i < v->n; i++)
        free(v->tokens[i]);
    free(v->tokens);
    free(v->types);
    free(v->scores);
    json_decref(v->tokenizer);
    json_decref(v->tok_config);
}

int gg_vocab_metadata(mp_gguf *g, const gg_plan *p, json_t *config, json_t **summary, mp_error *err)
{
    int embed = mp_pack_find(p->pack, "embed");
    gg_vocab v = {.dir = p->pack->dir, .config = config,
                  .n = embed >= 0 ? (int)p->pack->tensors[embed].rows : p->cfg->vocab};
    int n_merges = 0;
    *summary = NULL;
    int rc = load_files(&v, err);
    if (!rc)
        rc = fill_tokens(&v, p, g, &n_merges, err);
    if (!rc)
        rc = put_tokens(g, &v, err);
    json_t *s = json_pack("{s:s, s:s, s:s, s:i, s:i, s:i, s:b}", "model", v.model ? v.model : "", "pre",
                          v.pre ? v.pre : "", "source", v.source ? v.source : "", "tokens", v.n, "defined",
                          v.from_tokenizer, "merges", n_merges, "scores", v.model && strcmp(v.model, "llama") == 0);
    if (!rc)
        rc = gg_vocab_special(g, &v, s, err);
    free_vocab(&v);
    if (rc)
        json_decref(s);
    else
        *summary = s;
    return rc;
}
