/* The model of tokenizer.json: BPE (vocab and ranked merges) or Unigram (pieces with
 * scores). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/fileio.h"
#include "tokenizer_load.h"

/* ---- BPE ---- */

static int check_model_options(mp_loader *l, json_t *model)
{
    const char *type = mp_load_type(l, model, "model");
    if (!type)
        return l->err->code;
    json_t *dropout = json_object_get(model, "dropout");
    if (dropout && !json_is_null(dropout) && !(json_is_number(dropout) && json_number_value(dropout) == 0))
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: model.dropout: expected null (dropout makes ids random)",
                       l->path);
    mp_bpe *m = &l->t->bpe;
    const char *prefix = mp_load_string(l, model, "model", "continuing_subword_prefix", true);
    const char *suffix = mp_load_string(l, model, "model", "end_of_word_suffix", true);
    if (l->err->code != MP_OK || mp_load_bool(l, model, "model", "fuse_unk", false, &m->fuse_unk) != MP_OK ||
        mp_load_bool(l, model, "model", "byte_fallback", false, &m->byte_fallback) != MP_OK ||
        mp_load_bool(l, model, "model", "ignore_merges", false, &m->ignore_merges) != MP_OK)
        return l->err->code;
    if ((prefix && *prefix && !(m->prefix = mp_strdup(prefix))) || (suffix && *suffix && !(m->suffix = mp_strdup(suffix))))
        return mp_load_oom(l);
    return MP_OK;
}

/* Sizes the id table: the highest id of the vocabulary and the added tokens, + 1. */
static int count_ids(mp_loader *l, json_t *vocab, size_t *n_ids)
{
    size_t n = 0;
    const char *key;
    json_t *v;
    json_object_foreach(vocab, key, v) {
        char where[64];
        snprintf(where, sizeof where, "model.vocab[\"%.24s\"]", key);
        int32_t id;
        if (mp_load_id(l, v, where, &id) != MP_OK)
            return l->err->code;
        if ((size_t)id + 1 > n)
            n = (size_t)id + 1;
    }
    *n_ids = n;
    return MP_OK;
}

/* Added tokens take their ids as HF's AddedVocabulary::add_tokens gives them, whatever
 * ids the file writes: a string the model (or an earlier added token) has keeps that
 * id; the others are numbered on from the model's entry count, in file order. Their
 * strings join the vocabulary unindexed. v has room for n_entries + n_added ids. */
static int assign_added_ids(mp_loader *l, mp_vocab *v, size_t n_entries)
{
    mp_tokenizer *t = l->t;
    int32_t next = (int32_t)n_entries;
    size_t n_ids = v->n_ids;
    for (size_t i = 0; i < t->n_added; i++) {
        mp_added_token *a = &t->added[i];
        a->id = mp_vocab_find(v, a->content, strlen(a->content));
        for (size_t k = 0; k < i && a->id < 0; k++)
            if (strcmp(t->added[k].content, a->content) == 0)
                a->id = t->added[k].id;
        if (a->id < 0)
            a->id = next++;
        if ((size_t)a->id + 1 > n_ids)
            n_ids = (size_t)a->id + 1;
        if (!v->piece[a->id] && mp_vocab_set(v, a->id, a->content, strlen(a->content), false) != 0)
            return mp_load_oom(l);
    }
    v->n_ids = n_ids;
    return MP_OK;
}

static int load_vocab(mp_loader *l, json_t *model)
{
    json_t *vocab = json_object_get(model, "vocab");
    if (!json_is_object(vocab))
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: model.vocab: expected an object of piece: id", l->path);
    size_t n_ids = 0;
    mp_vocab *v = &l->t->bpe.vocab;
    if (count_ids(l, vocab, &n_ids) != MP_OK)
        return l->err->code;
    size_t room = (n_ids > json_object_size(vocab) ? n_ids : json_object_size(vocab)) + l->t->n_added;
    if (mp_vocab_init(v, room, json_object_size(vocab)) != 0)
        return mp_load_oom(l);
    const char *key;
    json_t *val;
    json_object_foreach(vocab, key, val) {
        int32_t id = (int32_t)json_integer_value(val);
        if (v->piece[id])
            return mp_fail(l->err, MP_EXIT_INPUT, "%s: model.vocab: id %d is given to both \"%s\" and \"%s\"",
                           l->path, id, v->piece[id], key);
        if (mp_vocab_set(v, id, key, strlen(key), true) != 0)
            return mp_load_oom(l); /* keys are unique, so only memory can fail */
    }
    v->n_ids = n_ids;
    return assign_added_ids(l, v, json_object_size(vocab));
}

/* A merge as "left right" (one space) or ["left", "right"], copied into *left and
 * *right (malloc'd). */
static int merge_parts(mp_loader *l, json_t *m, size_t i, char **left, char **right)
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
    return *left && *right ? MP_OK : mp_load_oom(l);
}

static int piece_id(mp_loader *l, const char *piece, size_t i, int32_t *id)
{
    *id = mp_vocab_find(&l->t->bpe.vocab, piece, strlen(piece));
    if (*id < 0)
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: model.merges[%zu]: \"%s\" is not in model.vocab", l->path, i,
                       piece);
    return MP_OK;
}

/* The merged piece is left + right less the subword prefix right starts with. */
static int load_merge(mp_loader *l, json_t *m, size_t i)
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
        rc = mp_load_oom(l);
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

static int load_merges(mp_loader *l, json_t *model)
{
    json_t *merges = json_object_get(model, "merges");
    if (!json_is_array(merges))
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: model.merges: expected an array", l->path);
    if (mp_merge_map_init(&l->t->bpe.merges, json_array_size(merges)) != 0)
        return mp_load_oom(l);
    for (size_t i = 0; i < json_array_size(merges); i++)
        if (load_merge(l, json_array_get(merges, i), i) != MP_OK)
            return l->err->code;
    return MP_OK;
}

static int load_special_ids(mp_loader *l, json_t *model)
{
    mp_bpe *m = &l->t->bpe;
    mp_vocab_byte_ids(&m->vocab, m->byte_id);
    m->unk_id = -1;
    const char *unk = mp_load_string(l, model, "model", "unk_token", true);
    if (l->err->code != MP_OK || !unk)
        return l->err->code;
    m->unk_id = mp_vocab_find(&m->vocab, unk, strlen(unk));
    if (m->unk_id < 0)
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: model.unk_token: \"%s\" is not in model.vocab", l->path, unk);
    return MP_OK;
}

static int load_bpe(mp_loader *l, json_t *model)
{
    if (check_model_options(l, model) != MP_OK || load_vocab(l, model) != MP_OK || load_merges(l, model) != MP_OK)
        return l->err->code;
    return load_special_ids(l, model);
}

/* ---- Unigram ---- */

/* One [piece, score] entry of the vocab. */
static int load_piece(mp_loader *l, json_t *entry, size_t i)
{
    json_t *piece = json_array_get(entry, 0), *score = json_array_get(entry, 1);
    if (!json_is_array(entry) || json_array_size(entry) != 2 || !json_is_string(piece) || !json_is_number(score))
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: model.vocab[%zu]: expected [piece, score]", l->path, i);
    const char *s = json_string_value(piece);
    if (mp_unigram_add(&l->t->unigram, (int32_t)i, s, json_string_length(piece), json_number_value(score)) != 0)
        return mp_load_oom(l);
    return MP_OK;
}

static int load_unigram(mp_loader *l, json_t *model)
{
    mp_unigram *m = &l->t->unigram;
    json_t *vocab = json_object_get(model, "vocab"), *unk = json_object_get(model, "unk_id");
    if (!json_is_array(vocab) || json_array_size(vocab) == 0 || json_array_size(vocab) > MP_TOKENIZER_MAX_IDS)
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: model.vocab: expected a non-empty array of [piece, score]",
                       l->path);
    size_t n = json_array_size(vocab);
    if (mp_unigram_init(m, n, n + l->t->n_added) != 0)
        return mp_load_oom(l);
    if (mp_load_bool(l, model, "model", "byte_fallback", false, &m->byte_fallback) != MP_OK)
        return l->err->code;
    if (unk && !json_is_null(unk) && (!json_is_integer(unk) || json_integer_value(unk) < 0 ||
                                      (size_t)json_integer_value(unk) >= n))
        return mp_fail(l->err, MP_EXIT_INPUT, "%s: model.unk_id: expected null or an index into model.vocab (0..%zu)",
                       l->path, n - 1);
    m->unk_id = unk && !json_is_null(unk) ? (int32_t)json_integer_value(unk) : -1;
    for (size_t i = 0; i < n; i++)
        if (load_piece(l, json_array_get(vocab, i), i) != MP_OK)
            return l->err->code;
    m->vocab.n_ids = n;
    if (assign_added_ids(l, &m->vocab, n) != MP_OK)
        return l->err->code;
    return mp_unigram_finish(m) == 0 ? MP_OK : mp_load_oom(l);
}

int mp_load_model(mp_loader *l, json_t *model)
{
    const char *type = mp_load_type(l, model, "model");
    if (!type)
        return l->err->code;
    if (strcmp(type, "BPE") == 0) {
        l->t->model = MP_MODEL_BPE;
        return load_bpe(l, model);
    }
    if (strcmp(type, "Unigram") == 0) {
        l->t->model = MP_MODEL_UNIGRAM;
        return load_unigram(l, model);
    }
    return mp_fail(l->err, MP_EXIT_INPUT, "%s: model.type: \"%s\" is not supported, expected BPE or Unigram", l->path,
                   type);
}
