/* Encoding, as HF's Tokenizer::encode(text, add_special_tokens=false) does it
 * (tokenizer/added_vocabulary.rs extract_and_normalize, then pre-tokenizer and model):
 *   1. added tokens are found in the raw text;
 *   2. each piece between them is normalized and searched for normalized added tokens;
 *   3. the pieces left are pre-tokenized into words;
 *   4. each word goes through the model (BPE or Unigram).
 * Loading is in tokenizer_load*.c. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_types.h"
#include "utf8.h"

/* BPE symbol positions are 32-bit, and byte-level words have one symbol per byte. */
#define MAX_TEXT_BYTES ((size_t)UINT32_MAX / 2)

typedef struct {
    const mp_tokenizer *t;
    mp_id_list ids;
    mp_bpe_work *bpe;
    mp_unigram_work *unigram;
    mp_pretok_work pretok;
    mp_added_runs runs[2]; /* [0] of the raw text, [1] of a normalized piece */
    int status;            /* -1 out of memory or a regex failed, -2 a character without piece or unk */
} encoder;

static int encode_words(encoder *e, const char *s, size_t len, bool at_start)
{
    const mp_words *words;
    if (mp_pretokenize(e->t->pretok, e->t->n_pretok, s, len, at_start, &e->pretok, &words) != 0)
        return -1;
    for (size_t i = 0; i < words->n; i++) {
        const mp_word *w = &words->w[i];
        const char *text = words->text + w->off;
        int rc = e->t->model == MP_MODEL_BPE ? mp_bpe_encode_word(&e->t->bpe, text, w->len, e->bpe, &e->ids)
                                             : mp_unigram_encode_word(&e->t->unigram, text, w->len, e->unigram, &e->ids);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* A piece of raw text between added tokens: normalized, then split on the normalized
 * added tokens. at_start: the piece begins the text. */
static int encode_piece(encoder *e, const char *s, size_t len, bool at_start)
{
    if (len == 0)
        return 0;
    const mp_tokenizer *t = e->t;
    char *norm;
    size_t n;
    if (mp_normalize(t->norm, t->n_norm, s, len, &norm, &n) != 0)
        return -1;
    mp_added_runs *runs = &e->runs[1];
    int rc = mp_added_split(&t->added_normalized, t->added, &t->classes, norm, n, runs);
    for (size_t i = 0; rc == 0 && i < runs->n; i++) {
        const mp_added_run *r = &runs->v[i];
        if (r->token >= 0)
            rc = mp_id_list_push(&e->ids, t->added[r->token].id);
        else if (r->end > r->start)
            rc = encode_words(e, norm + r->start, r->end - r->start, at_start && r->start == 0);
    }
    free(norm);
    return rc;
}

static int encode_text(encoder *e, const char *text, size_t len)
{
    const mp_tokenizer *t = e->t;
    mp_added_runs *runs = &e->runs[0];
    int rc = mp_added_split(&t->added_raw, t->added, &t->classes, text, len, runs);
    for (size_t i = 0; rc == 0 && i < runs->n; i++) {
        const mp_added_run *r = &runs->v[i];
        if (r->token >= 0)
            rc = mp_id_list_push(&e->ids, t->added[r->token].id);
        else
            rc = encode_piece(e, text + r->start, r->end - r->start, r->start == 0);
    }
    return rc;
}

static void free_encoder(encoder *e)
{
    mp_bpe_work_free(e->bpe);
    mp_unigram_work_free(e->unigram);
    mp_pretok_work_free(&e->pretok);
    mp_added_runs_free(&e->runs[0]);
    mp_added_runs_free(&e->runs[1]);
}

int mp_tokenizer_encode(const mp_tokenizer *t, const char *text, size_t len, int32_t **ids,
                        size_t *n_ids, mp_error *err)
{
    *ids = NULL;
    *n_ids = 0;
    size_t bad = mp_utf8_check(text, len);
    if (bad != len)
        return mp_fail(err, MP_EXIT_INPUT, "text: invalid UTF-8 at byte offset %zu", bad);
    if (len > MAX_TEXT_BYTES)
        return mp_fail(err, MP_EXIT_INPUT, "text: %zu bytes, expected at most %zu", len, MAX_TEXT_BYTES);
    encoder e = {.t = t, .bpe = mp_bpe_work_new(), .unigram = mp_unigram_work_new()};
    int rc = e.bpe && e.unigram ? encode_text(&e, text, len) : -1;
    if (rc == 0 && !e.ids.v) /* give the caller an array even for no ids */
        e.ids.v = malloc(sizeof *e.ids.v);
    free_encoder(&e);
    if (rc != 0 || !e.ids.v) {
        free(e.ids.v);
        if (rc == -2)
            return mp_fail(err, MP_EXIT_INPUT, "text: a character has no piece in the Unigram model, which has no unk_id");
        return mp_fail(err, MP_EXIT_IO, "tokenizer: out of memory (or a regex hit Oniguruma's limits)");
    }
    *ids = e.ids.v;
    *n_ids = e.ids.n;
    return MP_OK;
}

int32_t mp_tokenizer_bos(const mp_tokenizer *t)
{
    return t->post.n_before > 0 ? t->post.before[0] : -1;
}

void mp_tokenizer_specials(const mp_tokenizer *t, const int32_t **before, size_t *n_before, const int32_t **after,
                           size_t *n_after)
{
    *before = t->post.before;
    *n_before = t->post.n_before;
    *after = t->post.after;
    *n_after = t->post.n_after;
}

const mp_vocab *mp_tokenizer_vocab(const mp_tokenizer *t)
{
    return t->model == MP_MODEL_BPE ? &t->bpe.vocab : &t->unigram.vocab;
}

size_t mp_tokenizer_vocab_size(const mp_tokenizer *t)
{
    return mp_tokenizer_vocab(t)->n_ids;
}

const char *mp_tokenizer_piece(const mp_tokenizer *t, int32_t id)
{
    const mp_vocab *v = mp_tokenizer_vocab(t);
    if (id < 0 || (size_t)id >= v->n_ids)
        return NULL;
    return v->piece[id];
}

void mp_tokenizer_free(mp_tokenizer *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_norm; i++)
        mp_norm_step_free(&t->norm[i]);
    free(t->norm);
    for (size_t i = 0; i < t->n_pretok; i++)
        mp_pretok_step_free(&t->pretok[i]);
    free(t->pretok);
    mp_bpe_free(&t->bpe);
    mp_unigram_free(&t->unigram);
    for (size_t i = 0; i < t->n_added; i++) {
        free(t->added[i].content);
        free(t->added[i].match);
    }
    free(t->added);
    mp_added_set_free(&t->added_raw);
    mp_added_set_free(&t->added_normalized);
    free(t->post.before);
    free(t->post.after);
    for (size_t i = 0; i < t->n_dec; i++)
        mp_dec_step_free(&t->dec[i]);
    free(t->dec);
    free(t->decoder_error);
    free(t->added_of_id);
    free(t->special_of_id);
    free(t);
}
