/* Encoding, as HF's Tokenizer::encode(text, add_special_tokens=false) does it
 * (tokenizer/added_vocabulary.rs extract_and_normalize, then pre-tokenizer and model):
 *   1. added tokens are found in the raw text, leftmost then longest;
 *   2. each piece between them is normalized and searched for normalized added tokens;
 *   3. the pieces left are pre-tokenized into words;
 *   4. each word goes through BPE.
 * Loading is in tokenizer_load.c. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_types.h"
#include "unicode.h"

/* BPE symbol positions are 32-bit, and byte-level words have one symbol per byte. */
#define MAX_TEXT_BYTES ((size_t)UINT32_MAX / 2)

typedef struct {
    const mp_tokenizer *t;
    mp_id_list ids;
    mp_bpe_work *bpe;
    mp_pretok_work pretok;
} encoder;

/* The leftmost, then longest, added token (normalized or not) in s[from..len): its
 * index, with its position in *at; or -1. */
static long find_added(const mp_tokenizer *t, bool normalized, const char *s, size_t len, size_t from,
                       size_t *at)
{
    for (size_t p = from; p < len; p++) {
        if (!t->added_starts[normalized][(unsigned char)s[p]])
            continue;
        long best = -1;
        for (size_t k = 0; k < t->n_added; k++) {
            const mp_added_token *a = &t->added[k];
            if (a->normalized == normalized && a->len <= len - p && (best < 0 || a->len > t->added[best].len) &&
                memcmp(s + p, a->content, a->len) == 0)
                best = (long)k;
        }
        if (best >= 0) {
            *at = p;
            return best;
        }
    }
    return -1;
}

static int encode_words(encoder *e, const char *s, size_t len, bool at_start)
{
    const mp_words *words;
    if (mp_pretokenize(e->t->pretok, e->t->n_pretok, s, len, at_start, &e->pretok, &words) != 0)
        return -1;
    for (size_t i = 0; i < words->n; i++) {
        const mp_word *w = &words->w[i];
        if (mp_bpe_encode_word(&e->t->bpe, words->text + w->off, w->len, e->bpe, &e->ids) != 0)
            return -1;
    }
    return 0;
}

/* A piece of raw text between added tokens: normalized, then split on the normalized
 * added tokens. at_start: the piece begins the text. */
static int encode_piece(encoder *e, const char *s, size_t len, bool at_start)
{
    if (len == 0)
        return 0;
    char *norm;
    size_t n;
    if (mp_normalize(e->t->norm, e->t->n_norm, s, len, &norm, &n) != 0)
        return -1;
    int rc = 0;
    size_t pos = 0, at;
    long k;
    while (rc == 0 && (k = find_added(e->t, true, norm, n, pos, &at)) >= 0) {
        rc = encode_words(e, norm + pos, at - pos, at_start && pos == 0);
        if (rc == 0)
            rc = mp_id_list_push(&e->ids, e->t->added[k].id);
        pos = at + e->t->added[k].len;
    }
    if (rc == 0)
        rc = encode_words(e, norm + pos, n - pos, at_start && pos == 0);
    free(norm);
    return rc;
}

static int encode_text(encoder *e, const char *text, size_t len)
{
    size_t pos = 0, at;
    long k;
    while ((k = find_added(e->t, false, text, len, pos, &at)) >= 0) {
        if (encode_piece(e, text + pos, at - pos, pos == 0) != 0 ||
            mp_id_list_push(&e->ids, e->t->added[k].id) != 0)
            return -1;
        pos = at + e->t->added[k].len;
    }
    return encode_piece(e, text + pos, len - pos, pos == 0);
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
    encoder e = {.t = t, .bpe = mp_bpe_work_new()};
    int rc = e.bpe ? encode_text(&e, text, len) : -1;
    if (rc == 0 && !e.ids.v) /* give the caller an array even for no ids */
        e.ids.v = malloc(sizeof *e.ids.v);
    mp_bpe_work_free(e.bpe);
    mp_pretok_work_free(&e.pretok);
    if (rc != 0 || !e.ids.v) {
        free(e.ids.v);
        return mp_fail(err, MP_EXIT_IO, "tokenizer: out of memory");
    }
    *ids = e.ids.v;
    *n_ids = e.ids.n;
    return MP_OK;
}

int32_t mp_tokenizer_bos(const mp_tokenizer *t)
{
    return t->bos;
}

size_t mp_tokenizer_vocab_size(const mp_tokenizer *t)
{
    return t->bpe.vocab.n_ids;
}

const char *mp_tokenizer_piece(const mp_tokenizer *t, int32_t id)
{
    if (id < 0 || (size_t)id >= t->bpe.vocab.n_ids)
        return NULL;
    return t->bpe.vocab.piece[id];
}

void mp_tokenizer_free(mp_tokenizer *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_norm; i++) {
        free(t->norm[i].text);
        free(t->norm[i].with);
    }
    free(t->norm);
    free(t->pretok);
    mp_bpe_free(&t->bpe);
    for (size_t i = 0; i < t->n_added; i++)
        free(t->added[i].content);
    free(t->added);
    free(t);
}
