#include "chunks.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "../core/fileio.h"
#include "../model/model.h"
#include "../tokenizer/tokenizer.h"

static int tokenize_text(mp_chunks *c, const mp_tokenizer *tok, const char *path, int32_t **ids, size_t *n,
                         mp_error *err)
{
    char *text;
    size_t len;
    int rc = mp_read_small_file(path, 1ull << 32, &text, &len, err);
    if (rc)
        return rc;
    c->text_xxh3 = XXH3_64bits(text, len);
    c->text_bytes = len;
    rc = mp_tokenizer_encode(tok, text, len, ids, n, err);
    free(text);
    return rc;
}

static int read_ids(mp_chunks *c, const char *path, int32_t **ids, size_t *n, mp_error *err)
{
    int rc = mp_tokens_read_file(path, ids, n, err);
    if (!rc) {
        c->text_xxh3 = XXH3_64bits(*ids, *n * sizeof **ids);
        c->text_bytes = *n * sizeof **ids;
    }
    return rc;
}

static bool has_tokenizer(const char *model_dir)
{
    char *path = mp_path_join(model_dir, "tokenizer.json");
    bool found = path && access(path, F_OK) == 0;
    free(path);
    return found;
}

/* Every id must index the model's embedding: a tokenizer.json whose ids pass
 * config.json's vocab_size, or an ids file with such ids, is named here rather than
 * failing in the engine without a file. */
static int check_vocab(const char *model_dir, const char *text_path, const char *tokens_path, int32_t bos,
                       const int32_t *ids, size_t n, mp_error *err)
{
    char *path = mp_path_join(model_dir, "config.json");
    mp_config cfg = {0};
    int rc = path ? mp_config_read(&cfg, path, err) : mp_fail(err, MP_EXIT_IO, "out of memory");
    for (size_t i = 0; rc == MP_OK && i < n; i++)
        if (ids[i] < 0 || ids[i] >= cfg.vocab)
            rc = text_path ? mp_fail(err, MP_EXIT_INPUT, "%s/tokenizer.json: token %d (token %zu of %s) is outside "
                                     "config.json's vocab_size %d", model_dir, ids[i], i, text_path, cfg.vocab)
                           : mp_fail(err, MP_EXIT_INPUT, "%s: id %d (token %zu) is outside the model's vocab_size %d",
                                     tokens_path, ids[i], i, cfg.vocab);
    if (rc == MP_OK && bos >= cfg.vocab)
        rc = mp_fail(err, MP_EXIT_INPUT, "%s/tokenizer.json: the BOS token %d is outside config.json's vocab_size %d",
                     model_dir, bos, cfg.vocab);
    mp_config_free(&cfg);
    free(path);
    return rc;
}

int mp_chunks_load(mp_chunks *c, const char *model_dir, const char *text_path, const char *tokens_path, int ctx,
                   int64_t max_chunks, mp_error *err)
{
    memset(c, 0, sizeof *c);
    mp_tokenizer *tok = NULL;
    int rc = MP_OK;
    /* Token ids need no tokenizer; when there is one it still says whether BOS leads,
     * and when it cannot be read the ids run as they are. */
    if (text_path) {
        rc = mp_tokenizer_load(model_dir, &tok, err);
    } else if (has_tokenizer(model_dir)) {
        mp_error why = {0};
        if (mp_tokenizer_load(model_dir, &tok, &why) != MP_OK)
            fprintf(stderr, "moepack: warning: %s; the ids of %s run as given, without a BOS token\n", why.msg,
                    tokens_path);
    }
    if (rc)
        return rc;
    int32_t *ids = NULL;
    size_t n = 0;
    rc = text_path ? tokenize_text(c, tok, text_path, &ids, &n, err) : read_ids(c, tokens_path, &ids, &n, err);
    c->bos = tok ? mp_tokenizer_bos(tok) : -1;
    mp_tokenizer_free(tok);
    if (!rc) rc = check_vocab(model_dir, text_path, tokens_path, c->bos, ids, n, err);
    if (rc) {
        free(ids);
        return rc;
    }
    int extra = c->bos >= 0;
    c->tokens = malloc((n + 1) * sizeof *c->tokens);
    if (!c->tokens) {
        free(ids);
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    }
    if (extra)
        c->tokens[0] = c->bos;
    memcpy(c->tokens + extra, ids, n * sizeof *ids);
    free(ids);
    c->n_tokens = (int64_t)n + extra;
    c->ctx = ctx;
    c->first = ctx / 2;
    c->last = ctx - 1;
    c->n_chunks = c->n_tokens / ctx;
    if (max_chunks > 0 && c->n_chunks > max_chunks)
        c->n_chunks = max_chunks;
    if (c->n_chunks == 0) {
        rc = mp_fail(err, MP_EXIT_INPUT, "%s: %lld tokens, fewer than one context of %d", text_path ? text_path : tokens_path,
                     (long long)c->n_tokens, ctx);
        mp_chunks_free(c);
    }
    return rc;
}

void mp_chunks_free(mp_chunks *c)
{
    free(c->tokens);
    memset(c, 0, sizeof *c);
}

void mp_chunks_get(const mp_chunks *c, int64_t i, int32_t *out)
{
    memcpy(out, c->tokens + i * c->ctx, (size_t)c->ctx * sizeof *out);
    if (c->bos >= 0)
        out[0] = c->bos;
}

int mp_chunks_scored(const mp_chunks *c)
{
    return c->last - c->first;
}
