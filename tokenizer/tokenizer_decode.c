/* ids -> text, as HF's Tokenizer::decode does it (tokenizer/mod.rs): the strings of
 * the ids, special ones dropped on request, through the decoder and joined; then
 * transformers' clean-up when tokenizer_config.json asks for it. The decoders are in
 * tokenizer_decoders.c, streaming in detok_stream.c. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_types.h"

const char *mp_decode_string(const mp_tokenizer *t, int32_t id, size_t *len)
{
    const mp_vocab *v = mp_tokenizer_vocab(t);
    if (id < 0 || (size_t)id >= v->n_ids)
        return NULL;
    int32_t added = t->added_of_id[id];
    if (added >= 0) {
        const mp_added_token *a = &t->added[added];
        /* a normalized token decodes as its normalized form, as HF caches it */
        *len = a->normalized ? a->match_len : strlen(a->content);
        return a->normalized ? a->match : a->content;
    }
    *len = v->piece_len[id];
    return v->piece[id];
}

int mp_tokenizer_is_special(const mp_tokenizer *t, int32_t id)
{
    if (id < 0 || (size_t)id >= mp_tokenizer_vocab(t)->n_ids || t->added_of_id[id] < 0)
        return 0;
    return t->added[t->added_of_id[id]].special;
}

int32_t mp_tokenizer_id(const mp_tokenizer *t, const char *piece)
{
    for (size_t i = 0; i < t->n_added; i++)
        if (strcmp(t->added[i].content, piece) == 0)
            return t->added[i].id;
    return mp_vocab_find(mp_tokenizer_vocab(t), piece, strlen(piece));
}

/* The strings of list joined with sep into text->buf[0..text->used), NUL-terminated. */
static void join(const mp_pieces *list, const char *sep, mp_pieces *text)
{
    for (size_t i = 0; i < list->n; i++) {
        if (i > 0)
            mp_pieces_append(text, sep, strlen(sep));
        mp_pieces_append(text, mp_pieces_at(list, i), list->len[i]);
    }
    mp_pieces_append(text, "", 1);
    if (!text->oom)
        text->used--;
}

int mp_decode_text(const mp_tokenizer *t, const int32_t *ids, size_t n, int skip_special, mp_pieces *list,
                   mp_pieces *spare, mp_pieces *text, mp_error *err)
{
    if (t->decoder_error)
        return mp_fail(err, MP_EXIT_INPUT, "%s", t->decoder_error);
    mp_pieces_clear(list);
    mp_pieces_clear(text);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *s = mp_decode_string(t, ids[i], &len);
        if (s && !(skip_special && t->special_of_id[ids[i]]))
            mp_pieces_push(list, s, len);
    }
    if (list->oom || (t->has_decoder && mp_decode_steps(t->dec, t->n_dec, list, spare) != 0))
        return mp_fail(err, MP_EXIT_IO, "decoding %zu ids: out of memory (or a Replace regex hit Oniguruma's limits)", n);
    join(list, t->has_decoder ? "" : " ", text);
    if (text->oom)
        return mp_fail(err, MP_EXIT_IO, "decoding %zu ids: out of memory", n);
    if (t->cleanup_spaces)
        text->used = mp_cleanup_spaces(text->buf, text->used);
    text->buf[text->used] = '\0';
    return MP_OK;
}

int mp_tokenizer_decode(const mp_tokenizer *t, const int32_t *ids, size_t n, int skip_special, char **text,
                        size_t *len, mp_error *err)
{
    *text = NULL;
    *len = 0;
    mp_pieces list = {0}, spare = {0}, out = {0};
    int rc = mp_decode_text(t, ids, n, skip_special, &list, &spare, &out, err);
    mp_pieces_free(&list);
    mp_pieces_free(&spare);
    if (rc != MP_OK) {
        mp_pieces_free(&out);
        return rc;
    }
    *text = out.buf; /* join NUL-terminated it */
    *len = out.used;
    free(out.off);
    free(out.len);
    return MP_OK;
}
