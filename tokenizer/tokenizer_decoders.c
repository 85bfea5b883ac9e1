/* The decoders of tokenizer.json applied to a list of token strings, each as HF
 * tokenizers' decode_chain does it (the files of decoders/, pre_tokenizers/byte_level.rs and
 * metaspace.rs, normalizers/replace.rs). */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_decoders.h"
#include "utf8.h"

static const char REPLACEMENT_CHAR[] = "\xef\xbf\xbd"; /* U+FFFD */

/* ---- the list of strings ---- */

static void put(mp_pieces *p, const char *s, size_t len)
{
    if (p->oom || len == 0)
        return;
    if (p->used + len > p->cap) {
        size_t cap = p->cap ? p->cap : 256;
        while (cap < p->used + len)
            cap *= 2;
        char *buf = realloc(p->buf, cap);
        if (!buf) {
            p->oom = true;
            return;
        }
        p->buf = buf;
        p->cap = cap;
    }
    memcpy(p->buf + p->used, s, len);
    p->used += len;
}

/* Ends the string that began at byte start of the buffer. */
static void end_piece(mp_pieces *p, size_t start)
{
    if (p->oom)
        return;
    if (p->n == p->cap_n) {
        size_t cap = p->cap_n ? p->cap_n * 2 : 64;
        size_t *off = realloc(p->off, cap * sizeof *off);
        if (off)
            p->off = off;
        size_t *len = off ? realloc(p->len, cap * sizeof *len) : NULL;
        if (!len) {
            p->oom = true;
            return;
        }
        p->len = len;
        p->cap_n = cap;
    }
    p->off[p->n] = start;
    p->len[p->n++] = p->used - start;
}

void mp_pieces_append(mp_pieces *p, const char *s, size_t len)
{
    put(p, s, len);
}

void mp_pieces_push(mp_pieces *p, const char *s, size_t len)
{
    size_t start = p->used;
    put(p, s, len);
    end_piece(p, start);
}

void mp_pieces_clear(mp_pieces *p)
{
    p->used = p->n = 0;
    p->oom = false;
}

void mp_pieces_free(mp_pieces *p)
{
    free(p->buf);
    free(p->off);
    free(p->len);
    memset(p, 0, sizeof *p);
}

const char *mp_pieces_at(const mp_pieces *p, size_t i)
{
    /* a list of empty strings has no buffer: NULL + 0 is undefined */
    return p->buf ? p->buf + p->off[i] : "";
}

/* Appends s with every pat replaced by with, as Rust's str::replace does: an empty
 * pattern matches at every character boundary, both ends included. */
static void put_replaced(mp_pieces *out, const char *s, size_t len, const char *pat, size_t pat_len, const char *with,
                         size_t with_len)
{
    size_t i = 0;
    while (i < len) {
        if (pat_len == 0) {
            put(out, with, with_len);
            uint32_t cp;
            size_t n = mp_utf8_decode(s + i, &cp);
            put(out, s + i, n);
            i += n;
        } else if (len - i >= pat_len && memcmp(s + i, pat, pat_len) == 0) {
            put(out, with, with_len);
            i += pat_len;
        } else {
            put(out, s + i, 1);
            i++;
        }
    }
    if (pat_len == 0)
        put(out, with, with_len);
}

/* ---- bytes ---- */

/* The length of the valid UTF-8 sequence at s[0..len), or 0 with *bad the length of
 * its maximal invalid prefix (one U+FFFD for it), as Rust's from_utf8_lossy cuts. */
static size_t utf8_sequence(const unsigned char *s, size_t len, size_t *bad)
{
    unsigned char b = s[0], lo = 0x80, hi = 0xBF;
    size_t need;
    if (b < 0x80)
        return 1;
    if (b >= 0xC2 && b <= 0xDF)
        need = 2;
    else if (b >= 0xE0 && b <= 0xEF)
        need = 3, lo = b == 0xE0 ? 0xA0 : 0x80, hi = b == 0xED ? 0x9F : 0xBF;
    else if (b >= 0xF0 && b <= 0xF4)
        need = 4, lo = b == 0xF0 ? 0x90 : 0x80, hi = b == 0xF4 ? 0x8F : 0xBF;
    else
        need = 0;
    size_t i = 1;
    for (; i < need && i < len; i++) {
        unsigned char lo_i = i == 1 ? lo : 0x80, hi_i = i == 1 ? hi : 0xBF;
        if (s[i] < lo_i || s[i] > hi_i)
            break;
    }
    if (need > 0 && i == need)
        return need;
    *bad = i;
    return 0;
}

static void put_lossy(mp_pieces *out, const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        size_t bad = 0, n = utf8_sequence((const unsigned char *)s + i, len - i, &bad);
        if (n > 0) {
            put(out, s + i, n);
            i += n;
        } else {
            put(out, REPLACEMENT_CHAR, 3);
            i += bad;
        }
    }
}

/* The byte GPT-2's byte-level alphabet writes as cp, or -1: printable Latin-1 stands
 * for itself, the other 68 bytes (0x00-0x20, 0x7F-0xA0, 0xAD) for U+0100.. in order. */
static int byte_of_char(uint32_t cp)
{
    if ((cp >= '!' && cp <= '~') || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF))
        return (int)cp;
    if (cp < 0x100 || cp >= 0x100 + 68)
        return -1;
    int k = (int)(cp - 0x100);
    return k <= 0x20 ? k : k <= 0x20 + 34 ? 0x7F + (k - 0x21) : 0xAD;
}

/* Each token's characters as bytes (a token with a character outside the alphabet
 * is taken as it is), then all of them read as lossy UTF-8 into one string. */
static void byte_level(const mp_pieces *in, mp_pieces *out)
{
    mp_pieces bytes = {0};
    for (size_t t = 0; t < in->n; t++) {
        const char *s = mp_pieces_at(in, t);
        size_t start = bytes.used, i = 0;
        bool outside = false;
        while (i < in->len[t] && !outside) {
            uint32_t cp;
            i += mp_utf8_decode(s + i, &cp);
            int b = byte_of_char(cp);
            char c = (char)b;
            if (b >= 0)
                put(&bytes, &c, 1);
            outside = b < 0;
        }
        if (outside) {
            bytes.used = start;
            put(&bytes, s, in->len[t]);
        }
    }
    size_t start = out->used;
    put_lossy(out, bytes.buf, bytes.used);
    end_piece(out, start);
    out->oom |= bytes.oom;
    mp_pieces_free(&bytes);
}

/* Rust's u8::from_str_radix, which reads the hex digits, also takes a leading '+'. */
int mp_dec_byte_token(const char *s, size_t len)
{
    if (len != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>')
        return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (c == '+' && i == 3)
            continue;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* The bytes of a run of byte tokens: one string when they are UTF-8, else one U+FFFD
 * string per byte. */
static void flush_bytes(mp_pieces *out, const char *bytes, size_t n)
{
    if (n == 0)
        return;
    if (mp_utf8_check(bytes, n) == n) {
        mp_pieces_push(out, bytes, n);
        return;
    }
    for (size_t i = 0; i < n; i++)
        mp_pieces_push(out, REPLACEMENT_CHAR, 3);
}

static void byte_fallback(const mp_pieces *in, mp_pieces *out)
{
    mp_pieces run = {0};
    for (size_t t = 0; t < in->n; t++) {
        int b = mp_dec_byte_token(mp_pieces_at(in, t), in->len[t]);
        if (b >= 0) {
            char c = (char)b;
            put(&run, &c, 1);
            continue;
        }
        flush_bytes(out, run.buf, run.used);
        run.used = 0;
        mp_pieces_push(out, mp_pieces_at(in, t), in->len[t]);
    }
    flush_bytes(out, run.buf, run.used);
    out->oom |= run.oom;
    mp_pieces_free(&run);
}

/* ---- characters ---- */

static void metaspace(const mp_dec_step *st, const mp_pieces *in, mp_pieces *out)
{
    for (size_t t = 0; t < in->n; t++) {
        const char *s = mp_pieces_at(in, t);
        size_t start = out->used;
        for (size_t i = 0; i < in->len[t];) {
            uint32_t cp;
            size_t n = mp_utf8_decode(s + i, &cp);
            if (cp != st->cp)
                put(out, s + i, n);
            else if (t > 0 || !st->prepend)
                put(out, " ", 1);
            i += n;
        }
        end_piece(out, start);
    }
}

/* s without up to start content characters at its start and up to stop at its end. */
static void strip(const mp_dec_step *st, const char *s, size_t len, mp_pieces *out)
{
    char c[4];
    size_t c_len = mp_utf8_encode(st->cp, c);
    size_t left = 0, right = len;
    for (size_t k = 0; k < st->start && len - left >= c_len && memcmp(s + left, c, c_len) == 0; k++)
        left += c_len;
    for (size_t k = 0; k < st->stop && right >= c_len && memcmp(s + right - c_len, c, c_len) == 0; k++)
        right -= c_len;
    size_t start = out->used;
    if (right > left) /* HF panics when both ends overlap; nothing is left then */
        put(out, s + left, right - left);
    end_piece(out, start);
}

/* WordPiece's cleanup (decoders/wordpiece.rs), in HF's order. */
static const char *const wordpiece_fixes[][2] = {
    {" .", "."},   {" ?", "?"},   {" !", "!"},   {" ,", ","},     {" ' ", "'"},          {" n't", "n't"},
    {" 'm", "'m"}, {" do not", " don't"},        {" 's", "'s"},   {" 've", "'ve"},      {" 're", "'re"},
};

/* transformers' clean_up_tokenization: the same without " do not". */
static const char *const transformers_fixes[][2] = {
    {" .", "."},   {" ?", "?"},   {" !", "!"},   {" ,", ","},    {" ' ", "'"},
    {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
};

/* Each replacement is shorter than its pattern, so it can be done in place. */
static size_t replace_in_place(char *s, size_t len, const char *pat, const char *with)
{
    size_t pat_len = strlen(pat), with_len = strlen(with), r = 0, w = 0;
    while (r < len) {
        if (len - r >= pat_len && memcmp(s + r, pat, pat_len) == 0) {
            memmove(s + w, with, with_len);
            w += with_len;
            r += pat_len;
        } else {
            s[w++] = s[r++];
        }
    }
    return w;
}

size_t mp_cleanup_spaces(char *s, size_t len)
{
    for (size_t i = 0; i < sizeof transformers_fixes / sizeof *transformers_fixes; i++)
        len = replace_in_place(s, len, transformers_fixes[i][0], transformers_fixes[i][1]);
    return len;
}

size_t mp_cleanup_pending(const char *s, size_t len)
{
    static const char *const tails[] = {" n'", " 'v", " 'r", " '", " n", " "};
    for (size_t i = 0; i < sizeof tails / sizeof *tails; i++) {
        size_t n = strlen(tails[i]);
        if (len >= n && memcmp(s + len - n, tails[i], n) == 0)
            return n;
    }
    return 0;
}

/* Cleans up the bytes of p from start on as WordPiece does. */
static void clean_wordpiece(mp_pieces *p, size_t start)
{
    if (p->oom)
        return;
    size_t n = p->used - start;
    for (size_t i = 0; i < sizeof wordpiece_fixes / sizeof *wordpiece_fixes; i++)
        n = replace_in_place(p->buf + start, n, wordpiece_fixes[i][0], wordpiece_fixes[i][1]);
    p->used = start + n;
}

static void wordpiece(const mp_dec_step *st, const mp_pieces *in, mp_pieces *out)
{
    size_t prefix_len = strlen(st->text);
    mp_pieces tmp = {0};
    for (size_t t = 0; t < in->n; t++) {
        const char *s = mp_pieces_at(in, t);
        size_t len = in->len[t];
        mp_pieces_clear(&tmp);
        if (t > 0 && len >= prefix_len && memcmp(s, st->text, prefix_len) == 0) {
            s += prefix_len;
            len -= prefix_len;
        } else if (t > 0) {
            put(&tmp, " ", 1);
        }
        put(&tmp, s, len);
        size_t start = out->used;
        put(out, tmp.buf, tmp.used);
        if (st->cleanup)
            clean_wordpiece(out, start);
        end_piece(out, start);
        out->oom |= tmp.oom;
    }
    mp_pieces_free(&tmp);
}

static void bpe_suffix(const mp_dec_step *st, const mp_pieces *in, mp_pieces *out)
{
    for (size_t t = 0; t < in->n; t++) {
        size_t start = out->used;
        const char *with = t + 1 == in->n ? "" : " ";
        put_replaced(out, mp_pieces_at(in, t), in->len[t], st->text, strlen(st->text), with, strlen(with));
        end_piece(out, start);
    }
}

static void ctc(const mp_dec_step *st, const mp_pieces *in, mp_pieces *out)
{
    mp_pieces a = {0}, b = {0};
    for (size_t t = 0; t < in->n; t++) {
        const char *s = mp_pieces_at(in, t);
        size_t len = in->len[t];
        if (t > 0 && in->len[t - 1] == len && memcmp(mp_pieces_at(in, t - 1), s, len) == 0)
            continue; /* repeats are one token */
        mp_pieces_clear(&a);
        mp_pieces_clear(&b);
        put_replaced(&a, s, len, st->text, strlen(st->text), "", 0);
        const mp_pieces *done = &a;
        if (st->cleanup) {
            clean_wordpiece(&a, 0);
            put_replaced(&b, a.buf, a.used, st->word, strlen(st->word), " ", 1);
            done = &b;
        }
        if (done->used > 0)
            mp_pieces_push(out, done->buf, done->used);
        out->oom |= a.oom || b.oom;
    }
    mp_pieces_free(&a);
    mp_pieces_free(&b);
}

static int replace(const mp_dec_step *st, const mp_pieces *in, mp_pieces *out)
{
    for (size_t t = 0; t < in->n; t++) {
        char *s;
        size_t len;
        if (mp_normalize(&st->replace, 1, mp_pieces_at(in, t), in->len[t], &s, &len) != 0)
            return -1;
        mp_pieces_push(out, s, len);
        free(s);
    }
    return 0;
}

static int apply(const mp_dec_step *st, const mp_pieces *in, mp_pieces *out)
{
    switch (st->kind) {
    case MP_DEC_BYTE_LEVEL: byte_level(in, out); break;
    case MP_DEC_METASPACE: metaspace(st, in, out); break;
    case MP_DEC_REPLACE: return replace(st, in, out);
    case MP_DEC_BYTE_FALLBACK: byte_fallback(in, out); break;
    case MP_DEC_FUSE: {
        size_t start = out->used;
        for (size_t t = 0; t < in->n; t++)
            put(out, mp_pieces_at(in, t), in->len[t]);
        end_piece(out, start);
        break;
    }
    case MP_DEC_STRIP:
        for (size_t t = 0; t < in->n; t++)
            strip(st, mp_pieces_at(in, t), in->len[t], out);
        break;
    case MP_DEC_WORDPIECE: wordpiece(st, in, out); break;
    case MP_DEC_BPE: bpe_suffix(st, in, out); break;
    case MP_DEC_CTC: ctc(st, in, out); break;
    }
    return 0;
}

int mp_decode_steps(const mp_dec_step *steps, size_t n_steps, mp_pieces *list, mp_pieces *spare)
{
    for (size_t i = 0; i < n_steps; i++) {
        mp_pieces_clear(spare);
        if (apply(&steps[i], list, spare) != 0 || spare->oom)
            return -1;
        mp_pieces tmp = *list;
        *list = *spare;
        *spare = tmp;
    }
    return 0;
}

void mp_dec_step_free(mp_dec_step *st)
{
    free(st->text);
    free(st->word);
    mp_norm_step_free(&st->replace);
}
