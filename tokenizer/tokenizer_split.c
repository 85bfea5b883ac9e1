#include "tokenizer_split.h"

#include <stdlib.h>
#include <string.h>

#include "utf8.h"

void mp_spans_free(mp_spans *s)
{
    free(s->v);
    memset(s, 0, sizeof *s);
}

static int push(mp_spans *s, size_t start, size_t end, bool is_match)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        mp_span *v = realloc(s->v, cap * sizeof *v);
        if (!v)
            return -1;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = (mp_span){start, end, is_match};
    return 0;
}

/* A match, with the non-match before it when there is a gap. */
static int push_match(mp_spans *s, size_t *prev, size_t start, size_t end)
{
    if (*prev != start && push(s, *prev, start, false) != 0)
        return -1;
    *prev = end;
    return push(s, start, end, true);
}

static int push_tail(mp_spans *s, size_t prev, size_t len)
{
    return prev != len ? push(s, prev, len, false) : 0;
}

int mp_split_behavior_parse(const char *name, mp_split_behavior *out)
{
    static const char *const names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext",
                                        "Contiguous"};
    for (int i = 0; i < 5; i++)
        if (strcmp(name, names[i]) == 0) {
            *out = (mp_split_behavior)i;
            return 0;
        }
    return -1;
}

int mp_find_regex(const mp_regex *re, const char *s, size_t len, mp_spans *out)
{
    out->n = 0;
    if (len == 0)
        return push(out, 0, 0, false);
    size_t prev = 0, from = 0, start, end;
    bool matched = false;
    size_t last_match_end = 0;
    while (from <= len) {
        int rc = mp_regex_search(re, s, len, from, &start, &end);
        if (rc < 0)
            return -1;
        if (rc == 0)
            break;
        if (start == end && matched && last_match_end == end) {
            uint32_t cp;
            from += from < len ? mp_utf8_decode(s + from, &cp) : 1;
            continue;
        }
        from = end;
        matched = true;
        last_match_end = end;
        if (push_match(out, &prev, start, end) != 0)
            return -1;
    }
    return push_tail(out, prev, len);
}

int mp_find_literal(const char *lit, size_t lit_len, const char *s, size_t len, mp_spans *out)
{
    out->n = 0;
    if (len == 0)
        return push(out, 0, 0, false);
    size_t prev = 0;
    for (size_t i = 0; lit_len > 0 && i + lit_len <= len;) {
        if (memcmp(s + i, lit, lit_len) != 0) {
            i++;
            continue;
        }
        if (push_match(out, &prev, i, i + lit_len) != 0)
            return -1;
        i += lit_len;
    }
    return push_tail(out, prev, len);
}

bool mp_char_test_matches(const mp_char_test *t, uint32_t cp)
{
    if (t->cls < 0)
        return cp == t->cp;
    if (t->ascii_punct && cp < 0x80 && cp > ' ' && cp < 0x7F &&
        !((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') && !(cp >= '0' && cp <= '9'))
        return true;
    return mp_uclass_has(t->classes, (mp_uclass)t->cls, cp);
}

int mp_find_chars(const mp_char_test *t, const char *s, size_t len, mp_spans *out)
{
    out->n = 0;
    if (len == 0)
        return push(out, 0, 0, false);
    size_t prev = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = mp_utf8_decode(s + i, &cp);
        if (mp_char_test_matches(t, cp) && push_match(out, &prev, i, i + n) != 0)
            return -1;
        i += n;
    }
    return push_tail(out, prev, len);
}

void mp_spans_invert(mp_spans *s)
{
    for (size_t i = 0; i < s->n; i++)
        s->v[i].is_match = !s->v[i].is_match;
}

/* Contiguous, MergedWithPrevious and MergedWithNext fold a span into the piece before
 * it (for MergedWithNext, walking backwards: into the piece after it). */
static bool folds(mp_split_behavior b, bool is_match, bool previous_match)
{
    if (b == MP_SPLIT_CONTIGUOUS)
        return is_match == previous_match;
    return is_match && !previous_match;
}

static int merge_forward(const mp_spans *m, mp_split_behavior b, mp_spans *out)
{
    bool previous = false;
    for (size_t i = 0; i < m->n; i++) {
        const mp_span *sp = &m->v[i];
        if (folds(b, sp->is_match, previous) && out->n > 0)
            out->v[out->n - 1].end = sp->end;
        else if (push(out, sp->start, sp->end, false) != 0)
            return -1;
        previous = sp->is_match;
    }
    return 0;
}

static int merge_with_next(const mp_spans *m, mp_spans *out)
{
    bool previous = false;
    for (size_t i = m->n; i-- > 0;) {
        const mp_span *sp = &m->v[i];
        if (folds(MP_SPLIT_MERGED_WITH_NEXT, sp->is_match, previous) && out->n > 0)
            out->v[out->n - 1].start = sp->start;
        else if (push(out, sp->start, sp->end, false) != 0)
            return -1;
        previous = sp->is_match;
    }
    for (size_t i = 0; i < out->n / 2; i++) {
        mp_span t = out->v[i];
        out->v[i] = out->v[out->n - 1 - i];
        out->v[out->n - 1 - i] = t;
    }
    return 0;
}

int mp_split_pieces(const mp_spans *matches, mp_split_behavior behavior, mp_spans *pieces)
{
    pieces->n = 0;
    switch (behavior) {
    case MP_SPLIT_ISOLATED:
    case MP_SPLIT_REMOVED:
        for (size_t i = 0; i < matches->n; i++) {
            const mp_span *sp = &matches->v[i];
            if (!(behavior == MP_SPLIT_REMOVED && sp->is_match) && push(pieces, sp->start, sp->end, false) != 0)
                return -1;
        }
        return 0;
    case MP_SPLIT_MERGED_WITH_NEXT:
        return merge_with_next(matches, pieces);
    default:
        return merge_forward(matches, behavior, pieces);
    }
}
