/* Normalizer steps, each from one whole buffer to a new one. */
#include "tokenizer_normalize.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer_split.h"
#include "utf8.h"

/* A growing output buffer; NULL text after a failed allocation. */
typedef struct {
    char *text;
    size_t len, cap;
    bool failed;
} buffer;

static void put(buffer *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *t = realloc(b->text, cap);
        if (!t) {
            b->failed = true;
            return;
        }
        b->text = t;
        b->cap = cap;
    }
    memcpy(b->text + b->len, s, n);
    b->len += n;
    b->text[b->len] = '\0';
}

static void put_char(buffer *b, uint32_t cp)
{
    char c[4];
    put(b, c, mp_utf8_encode(cp, c));
}

static int finish(buffer *b, char **out, size_t *out_len)
{
    put(b, "", 0); /* an empty result still gets its terminator */
    if (b->failed || !b->text) {
        free(b->text);
        return -1;
    }
    *out = b->text;
    *out_len = b->len;
    return 0;
}

static int unicode_form(utf8proc_option_t form, const char *s, size_t len, char **out, size_t *out_len)
{
    utf8proc_uint8_t *dst = NULL;
    utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)len, &dst,
                                      UTF8PROC_STABLE | form);
    if (n < 0)
        return -1;
    *out = (char *)dst;
    *out_len = (size_t)n;
    return 0;
}

/* Rust's char::to_lowercase per character: the simple mapping, but for U+0130, whose
 * lowercase is two characters. */
static int lowercase(const char *s, size_t len, char **out, size_t *out_len)
{
    buffer b = {0};
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        i += mp_utf8_decode(s + i, &cp);
        if (cp == 0x130) {
            put_char(&b, 'i');
            put_char(&b, 0x307);
        } else {
            put_char(&b, (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp));
        }
    }
    return finish(&b, out, out_len);
}

static bool is_space(const mp_norm_step *st, uint32_t cp)
{
    return mp_uclass_has(st->classes, MP_UCLASS_WHITE_SPACE, cp);
}

static int strip(const mp_norm_step *st, const char *s, size_t len, char **out, size_t *out_len)
{
    size_t from = 0, to = len;
    uint32_t cp;
    while (st->left && from < to) {
        size_t n = mp_utf8_decode(s + from, &cp);
        if (!is_space(st, cp))
            break;
        from += n;
    }
    while (st->right && to > from) {
        size_t at = to - 1;
        while (at > from && ((unsigned char)s[at] & 0xC0) == 0x80)
            at--;
        mp_utf8_decode(s + at, &cp);
        if (!is_space(st, cp))
            break;
        to = at;
    }
    buffer b = {0};
    put(&b, s + from, to - from);
    return finish(&b, out, out_len);
}

static int strip_accents(const mp_norm_step *st, const char *s, size_t len, char **out, size_t *out_len)
{
    buffer b = {0};
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = mp_utf8_decode(s + i, &cp);
        if (!mp_uclass_has(st->classes, MP_UCLASS_MARK, cp))
            put(&b, s + i, n);
        i += n;
    }
    return finish(&b, out, out_len);
}

/* Every match of the pattern (empty ones too) becomes the replacement. */
static int replace(const mp_norm_step *st, const char *s, size_t len, char **out, size_t *out_len)
{
    mp_spans spans = {0};
    int rc = st->regex ? mp_find_regex(st->regex, s, len, &spans)
                       : mp_find_literal(st->text, strlen(st->text), s, len, &spans);
    buffer b = {0};
    for (size_t i = 0; rc == 0 && i < spans.n; i++) {
        const mp_span *sp = &spans.v[i];
        if (sp->is_match)
            put(&b, st->with, strlen(st->with));
        else
            put(&b, s + sp->start, sp->end - sp->start);
    }
    mp_spans_free(&spans);
    if (rc != 0) {
        free(b.text);
        return -1;
    }
    return finish(&b, out, out_len);
}

/* HF prepends only to non-empty text. */
static int prepend(const char *what, const char *s, size_t len, char **out, size_t *out_len)
{
    buffer b = {0};
    if (len > 0)
        put(&b, what, strlen(what));
    put(&b, s, len);
    return finish(&b, out, out_len);
}

static int apply(const mp_norm_step *st, const char *s, size_t len, char **out, size_t *out_len)
{
    switch (st->kind) {
    case MP_NORM_NFC: return unicode_form(UTF8PROC_COMPOSE, s, len, out, out_len);
    case MP_NORM_NFD: return unicode_form(UTF8PROC_DECOMPOSE, s, len, out, out_len);
    case MP_NORM_NFKC: return unicode_form(UTF8PROC_COMPOSE | UTF8PROC_COMPAT, s, len, out, out_len);
    case MP_NORM_NFKD: return unicode_form(UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT, s, len, out, out_len);
    case MP_NORM_LOWERCASE: return lowercase(s, len, out, out_len);
    case MP_NORM_STRIP: return strip(st, s, len, out, out_len);
    case MP_NORM_STRIP_ACCENTS: return strip_accents(st, s, len, out, out_len);
    case MP_NORM_REPLACE: return replace(st, s, len, out, out_len);
    case MP_NORM_PREPEND: return prepend(st->text, s, len, out, out_len);
    }
    return -1;
}

int mp_normalize(const mp_norm_step *steps, size_t n_steps, const char *s, size_t len, char **out,
                 size_t *out_len)
{
    buffer b = {0};
    put(&b, s, len);
    if (finish(&b, out, out_len) != 0)
        return -1;
    for (size_t i = 0; i < n_steps; i++) {
        char *next;
        size_t next_len;
        int rc = apply(&steps[i], *out, *out_len, &next, &next_len);
        free(*out);
        *out = NULL;
        if (rc != 0)
            return -1;
        *out = next;
        *out_len = next_len;
    }
    return 0;
}

void mp_norm_step_free(mp_norm_step *st)
{
    free(st->text);
    free(st->with);
    mp_regex_free(st->regex);
    st->text = st->with = NULL;
    st->regex = NULL;
}
