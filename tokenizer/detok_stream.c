/* Streaming decoding: the text of each new id, final once given.
 *
 * Decoding is not per token (a Strip or Metaspace decoder treats the first token
 * apart, ByteFallback and ByteLevel join bytes across tokens, the clean-up looks at
 * the next token), so, as HF's DecodeStream does, each push decodes a window of
 * recent ids and gives out what its text has grown by. Unlike DecodeStream, it also
 * holds back what a later id could still change:
 *   - trailing U+FFFD: an incomplete UTF-8 character that later bytes may complete;
 *   - the text of a trailing run of <0xXX> tokens (ByteFallback): HF turns a whole run
 *     into U+FFFD when any byte of it is invalid, so even valid characters in it are
 *     final only once a token that is not a byte ends the run;
 *   - a tail the clean-up could rewrite (" " before ".", " n" before "'t");
 *   - with a BPEDecoder, the last token's text (its suffix becomes "" while it is the
 *     last token, " " once another follows).
 * Once the window's text has all been given out and the window is long, it is cut to
 * its last few ids, which stay as context: their text is decoded again but not given
 * out again, so the cost per id stays bounded. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_types.h"

#define WINDOW_MAX 32 /* ids decoded at most before the window is cut (unless text is held) */
#define CONTEXT 4     /* ids kept as context when it is cut */

struct mp_detok {
    const mp_tokenizer *t;
    int skip_special;
    bool byte_fallback;    /* the decoder has a ByteFallback step */
    bool bpe_suffix;       /* the decoder has a BPEDecoder step */
    mp_id_list win;        /* the ids of the window */
    size_t done;           /* bytes of the window's text given out */
    mp_pieces text;        /* the window's text */
    mp_pieces head;        /* the text of the ids before the first open one */
    mp_pieces list, spare; /* scratch of decoding */
};

int mp_detok_new(const mp_tokenizer *t, int skip_special, mp_detok **out, mp_error *err)
{
    *out = NULL;
    if (t->decoder_error)
        return mp_fail(err, MP_EXIT_INPUT, "%s", t->decoder_error);
    mp_detok *d = calloc(1, sizeof *d);
    if (!d)
        return mp_fail(err, MP_EXIT_IO, "streaming decoder: out of memory");
    d->t = t;
    d->skip_special = skip_special;
    for (size_t i = 0; i < t->n_dec; i++) {
        d->byte_fallback |= t->dec[i].kind == MP_DEC_BYTE_FALLBACK;
        d->bpe_suffix |= t->dec[i].kind == MP_DEC_BPE;
    }
    *out = d;
    return MP_OK;
}

void mp_detok_free(mp_detok *d)
{
    if (!d)
        return;
    free(d->win.v);
    mp_pieces_free(&d->text);
    mp_pieces_free(&d->head);
    mp_pieces_free(&d->list);
    mp_pieces_free(&d->spare);
    free(d);
}

static int decode(mp_detok *d, size_t n, mp_pieces *into, mp_error *err)
{
    return mp_decode_text(d->t, d->win.v, n, d->skip_special, &d->list, &d->spare, into, err);
}

/* The first id of the window whose text a later id could still change: the start
 * of the trailing run of byte tokens (ids the decoder does not see do not end it),
 * with a BPEDecoder the last id the decoder sees; the window's length when none. */
static size_t first_open_id(const mp_detok *d)
{
    size_t open = d->win.n;
    bool in_run = d->byte_fallback, last_seen = false;
    for (size_t i = d->win.n; i-- > 0 && (in_run || (d->bpe_suffix && !last_seen));) {
        size_t len;
        int32_t id = d->win.v[i];
        const char *s = mp_decode_string(d->t, id, &len);
        if (!s || (d->skip_special && d->t->special_of_id[id]))
            continue;
        if (d->bpe_suffix && !last_seen)
            open = i;
        last_seen = true;
        in_run = in_run && mp_dec_byte_token(s, len) >= 0;
        if (in_run)
            open = i;
    }
    return open;
}

static size_t common_prefix(const mp_pieces *a, const mp_pieces *b)
{
    size_t n = a->used < b->used ? a->used : b->used, i = 0;
    while (i < n && a->buf[i] == b->buf[i])
        i++;
    return i;
}

/* How much of the window's text is final. */
static int final_length(mp_detok *d, size_t *out, mp_error *err)
{
    const char *s = d->text.buf;
    size_t n = d->text.used;
    size_t open = first_open_id(d);
    if (open < d->win.n) {
        int rc = decode(d, open, &d->head, err);
        if (rc != MP_OK)
            return rc;
        size_t same = common_prefix(&d->head, &d->text);
        n = same < n ? same : n;
    }
    while (n >= 3 && memcmp(s + n - 3, "\xef\xbf\xbd", 3) == 0)
        n -= 3;
    if (d->t->cleanup_spaces)
        n -= mp_cleanup_pending(s, n);
    while (n > 0 && n < d->text.used && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--; /* a common prefix may end inside a character */
    *out = n;
    return MP_OK;
}

/* Cuts the window to its last CONTEXT ids once everything has been given out. */
static int cut_window(mp_detok *d, mp_error *err)
{
    if (d->win.n < WINDOW_MAX || d->done != d->text.used)
        return MP_OK;
    memmove(d->win.v, d->win.v + d->win.n - CONTEXT, CONTEXT * sizeof *d->win.v);
    d->win.n = CONTEXT;
    int rc = decode(d, d->win.n, &d->text, err);
    d->done = d->text.used;
    return rc;
}

int mp_detok_push(mp_detok *d, int32_t id, const char **out, size_t *out_len, mp_error *err)
{
    *out = "";
    *out_len = 0;
    int rc = cut_window(d, err);
    if (rc != MP_OK)
        return rc;
    if (mp_id_list_push(&d->win, id) != 0)
        return mp_fail(err, MP_EXIT_IO, "streaming decoder: out of memory");
    size_t final;
    rc = decode(d, d->win.n, &d->text, err);
    if (rc == MP_OK)
        rc = final_length(d, &final, err);
    if (rc != MP_OK)
        return rc;
    if (final > d->done) {
        *out = d->text.buf + d->done;
        *out_len = final - d->done;
        d->done = final;
    }
    return MP_OK;
}

int mp_detok_finish(mp_detok *d, const char **out, size_t *out_len, mp_error *err)
{
    (void)err;
    *out = "";
    *out_len = 0;
    if (d->text.used > d->done) {
        *out = d->text.buf + d->done;
        *out_len = d->text.used - d->done;
    }
    d->win.n = 0;
    d->done = 0;
    d->text.used = 0; /* *out stays readable: the buffer is only reused by the next push */
    return MP_OK;
}
