/* Pre-tokenizer steps over word lists: each pass reads one mp_words and writes the
 * other of work->buf. */
#include "tokenizer_pretok.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/fileio.h"
#include "utf8.h"

/* pre_tokenizers/byte_level.rs */
#define GPT2_PATTERN "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
/* pre_tokenizers/whitespace.rs: \w+|[^\w\s]+, with the Rust regex crate's \w and \s */
#define WORD_CLASS "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}"
#define WHITESPACE_PATTERN "[" WORD_CLASS "]+|[^" WORD_CLASS "\\p{White_Space}]+"

static int compile(const char *pattern, mp_regex **re, const char *where, mp_error *err)
{
    char why[128];
    if (mp_regex_compile(pattern, re, why, sizeof why) != 0)
        return mp_fail(err, MP_EXIT_INPUT, "%s: the regex %.80s%s does not compile: %s", where, pattern,
                       strlen(pattern) > 80 ? "..." : "", why);
    return MP_OK;
}

int mp_pretok_split_init(mp_pretok_step *st, const char *regex, const char *literal, mp_split_behavior behavior,
                         bool invert, const char *where, mp_error *err)
{
    *st = (mp_pretok_step){.kind = MP_PRETOK_SPLIT, .behavior = behavior, .invert = invert};
    if (regex)
        return compile(regex, &st->regex, where, err);
    st->literal_len = strlen(literal);
    st->literal = mp_strdup(literal);
    return st->literal ? MP_OK : mp_fail(err, MP_EXIT_IO, "%s: out of memory", where);
}

int mp_pretok_byte_level_init(mp_pretok_step *st, bool add_prefix_space, bool use_regex, mp_error *err)
{
    *st = (mp_pretok_step){.kind = MP_PRETOK_BYTE_LEVEL, .add_prefix_space = add_prefix_space,
                           .use_regex = use_regex, .behavior = MP_SPLIT_ISOLATED};
    return use_regex ? compile(GPT2_PATTERN, &st->regex, "ByteLevel", err) : MP_OK;
}

int mp_pretok_whitespace_init(mp_pretok_step *st, mp_error *err)
{
    *st = (mp_pretok_step){.kind = MP_PRETOK_WHITESPACE, .behavior = MP_SPLIT_REMOVED, .invert = true};
    return compile(WHITESPACE_PATTERN, &st->regex, "Whitespace", err);
}

void mp_pretok_step_free(mp_pretok_step *st)
{
    mp_regex_free(st->regex);
    free(st->literal);
    st->regex = NULL;
    st->literal = NULL;
}

/* p grown to hold need elements: the new array (cap updated), p itself when it is
 * large enough, or NULL when out of memory (p is then left as it was). */
static void *reserve(void *p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return p;
    size_t n = *cap ? *cap : 256;
    while (n < need)
        n *= 2;
    void *q = realloc(p, n * elem);
    if (q)
        *cap = n;
    return q;
}

static int append_text(mp_words *out, const char *s, size_t len)
{
    if (len == 0) /* out->text may still be NULL */
        return 0;
    char *text = reserve(out->text, &out->cap, out->len + len, 1);
    if (!text)
        return -1;
    out->text = text;
    memcpy(out->text + out->len, s, len);
    out->len += len;
    return 0;
}

/* Records out->text[off..out->len) as a word; empty words are dropped, as HF drops them. */
static int end_word(mp_words *out, size_t off, bool at_start)
{
    if (out->len == off)
        return 0;
    mp_word *w = reserve(out->w, &out->cap_w, out->n + 1, sizeof *w);
    if (!w)
        return -1;
    out->w = w;
    out->w[out->n++] = (mp_word){off, out->len - off, at_start};
    return 0;
}

static int add_word(mp_words *out, const char *s, size_t len, bool at_start)
{
    size_t off = out->len;
    return append_text(out, s, len) == 0 ? end_word(out, off, at_start) : -1;
}

/* ByteLevel add_prefix_space: a space before every word that does not start with one. */
static int prefix_space(const mp_words *in, mp_words *out)
{
    for (size_t i = 0; i < in->n; i++) {
        const mp_word *w = &in->w[i];
        size_t off = out->len;
        if (in->text[w->off] != ' ' && append_text(out, " ", 1) != 0)
            return -1;
        if (append_text(out, in->text + w->off, w->len) != 0 || end_word(out, off, w->at_start) != 0)
            return -1;
    }
    return 0;
}

/* The spans of word s[0..len) that the step's pattern gives. */
static int find_spans(const mp_pretok_step *st, const char *s, size_t len, mp_spans *out)
{
    int rc;
    if (st->regex)
        rc = mp_find_regex(st->regex, s, len, out);
    else if (st->literal)
        rc = mp_find_literal(st->literal, st->literal_len, s, len, out);
    else
        rc = mp_find_chars(&st->test, s, len, out);
    if (rc == 0 && st->invert)
        mp_spans_invert(out);
    return rc;
}

/* Every word cut into the pieces the step's behavior keeps. */
static int split_words(const mp_pretok_step *st, const mp_words *in, mp_pretok_work *work, mp_words *out)
{
    for (size_t i = 0; i < in->n; i++) {
        const mp_word *w = &in->w[i];
        const char *s = in->text + w->off;
        if (find_spans(st, s, w->len, &work->matches) != 0 ||
            mp_split_pieces(&work->matches, st->behavior, &work->pieces) != 0)
            return -1;
        for (size_t k = 0; k < work->pieces.n; k++) {
            const mp_span *p = &work->pieces.v[k];
            if (add_word(out, s + p->start, p->end - p->start, w->at_start && p->start == 0) != 0)
                return -1;
        }
    }
    return 0;
}

/* GPT-2's byte alphabet: printable bytes stand for themselves; the 68 others (0x00-0x20,
 * 0x7F-0xA0, 0xAD), in byte order, become U+0100 onwards ("Ġ" for space). */
static uint32_t byte_char(unsigned char b)
{
    if (b <= 0x20)
        return 0x100 + b;
    if (b >= 0x7F && b <= 0xA0)
        return 0x100 + 33 + (b - 0x7F);
    if (b == 0xAD)
        return 0x100 + 33 + 34;
    return b;
}

static int map_bytes(const mp_words *in, mp_words *out)
{
    for (size_t i = 0; i < in->n; i++) {
        const mp_word *w = &in->w[i];
        size_t off = out->len;
        char c[4];
        for (size_t j = 0; j < w->len; j++)
            if (append_text(out, c, mp_utf8_encode(byte_char((unsigned char)in->text[w->off + j]), c)) != 0)
                return -1;
        if (end_word(out, off, w->at_start) != 0)
            return -1;
    }
    return 0;
}

static bool starts_with(const char *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && memcmp(s, prefix, n) == 0;
}

/* Metaspace: spaces become the replacement, which is prepended per the scheme; with
 * split, a word is cut before every replacement (behavior MergedWithNext). */
static int metaspace_word(const mp_pretok_step *st, const char *s, size_t len, bool at_start, mp_words *out)
{
    size_t rep = strlen(st->replacement);
    size_t off = out->len;
    bool prepend = st->prepend == MP_PREPEND_ALWAYS || (st->prepend == MP_PREPEND_FIRST && at_start);
    /* HF replaces spaces first, so a leading space already counts as a replacement */
    if (prepend && !(len > 0 && s[0] == ' ') && !starts_with(s, len, st->replacement) &&
        append_text(out, st->replacement, rep) != 0)
        return -1;
    for (size_t i = 0; i < len; i++)
        if (append_text(out, s[i] == ' ' ? st->replacement : s + i, s[i] == ' ' ? rep : 1) != 0)
            return -1;
    if (!st->split)
        return end_word(out, off, at_start);
    size_t end = out->len, start = off;
    for (size_t i = off + 1; i + rep <= end; i++) {
        if (memcmp(out->text + i, st->replacement, rep) != 0)
            continue;
        out->len = i;
        if (end_word(out, start, at_start && start == off) != 0)
            return -1;
        start = i;
    }
    out->len = end;
    return end_word(out, start, at_start && start == off);
}

static int metaspace(const mp_pretok_step *st, const mp_words *in, mp_words *out)
{
    for (size_t i = 0; i < in->n; i++) {
        const mp_word *w = &in->w[i];
        if (metaspace_word(st, in->text + w->off, w->len, w->at_start, out) != 0)
            return -1;
    }
    return 0;
}

/* One pass from work->buf[*cur] into the other buffer, which becomes current. */
typedef enum { PASS_PREFIX, PASS_SPLIT, PASS_BYTES, PASS_METASPACE } pass_kind;

static int run_pass(pass_kind kind, const mp_pretok_step *st, mp_pretok_work *work, int *cur)
{
    const mp_words *in = &work->buf[*cur];
    mp_words *out = &work->buf[!*cur];
    out->len = out->n = 0;
    int rc = 0;
    switch (kind) {
    case PASS_PREFIX: rc = prefix_space(in, out); break;
    case PASS_SPLIT: rc = split_words(st, in, work, out); break;
    case PASS_BYTES: rc = map_bytes(in, out); break;
    case PASS_METASPACE: rc = metaspace(st, in, out); break;
    }
    *cur = !*cur;
    return rc;
}

static int run_step(const mp_pretok_step *st, mp_pretok_work *work, int *cur)
{
    switch (st->kind) {
    case MP_PRETOK_METASPACE:
        return run_pass(PASS_METASPACE, st, work, cur);
    case MP_PRETOK_BYTE_LEVEL:
        if (st->add_prefix_space && run_pass(PASS_PREFIX, st, work, cur) != 0)
            return -1;
        if (st->use_regex && run_pass(PASS_SPLIT, st, work, cur) != 0)
            return -1;
        return run_pass(PASS_BYTES, st, work, cur);
    default:
        return run_pass(PASS_SPLIT, st, work, cur);
    }
}

int mp_pretokenize(const mp_pretok_step *steps, size_t n_steps, const char *text, size_t len,
                   bool at_start, mp_pretok_work *work, const mp_words **words)
{
    int cur = 0;
    mp_words *first = &work->buf[0];
    first->len = first->n = 0;
    if (add_word(first, text, len, at_start) != 0)
        return -1;
    for (size_t i = 0; i < n_steps; i++)
        if (run_step(&steps[i], work, &cur) != 0)
            return -1;
    *words = &work->buf[cur];
    return 0;
}

void mp_pretok_work_free(mp_pretok_work *work)
{
    for (int i = 0; i < 2; i++) {
        free(work->buf[i].text);
        free(work->buf[i].w);
    }
    mp_spans_free(&work->matches);
    mp_spans_free(&work->pieces);
    memset(work, 0, sizeof *work);
}
