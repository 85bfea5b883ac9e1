#include "tokenizer_added.h"

#include <stdlib.h>
#include <string.h>

#include "utf8.h"

int mp_added_set_build(mp_added_set *set, const mp_added_token *tokens, size_t n, bool normalized)
{
    size_t total = 0, count = 0;
    for (size_t i = 0; i < n; i++)
        if (tokens[i].normalized == normalized && tokens[i].match_len > 0) {
            total += tokens[i].match_len;
            count++;
        }
    set->empty = count == 0;
    if (mp_trie_init(&set->trie, total) != 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (tokens[i].normalized == normalized && tokens[i].match_len > 0)
            mp_trie_insert(&set->trie, tokens[i].match, tokens[i].match_len, (int32_t)i);
    return 0;
}

void mp_added_set_free(mp_added_set *set)
{
    mp_trie_free(&set->trie);
}

void mp_added_runs_free(mp_added_runs *r)
{
    free(r->v);
    memset(r, 0, sizeof *r);
}

static int push(mp_added_runs *r, size_t start, size_t end, long token)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 32;
        mp_added_run *v = realloc(r->v, cap * sizeof *v);
        if (!v)
            return -1;
        r->v = v;
        r->cap = cap;
    }
    r->v[r->n++] = (mp_added_run){start, end, token};
    return 0;
}

/* The leftmost, then longest, match at or after from: its token index, with its
 * place in [*start, *end); or -1. */
static long find_match(const mp_added_set *set, const char *s, size_t len, size_t from, size_t *start,
                       size_t *end)
{
    for (size_t i = from; i < len; i++) {
        long best = -1;
        int32_t node = 0;
        for (size_t k = i; k < len && (node = mp_trie_step(&set->trie, node, (unsigned char)s[k])) >= 0; k++)
            if (set->trie.value[node] >= 0) {
                best = set->trie.value[node];
                *end = k + 1;
            }
        if (best >= 0) {
            *start = i;
            return best;
        }
    }
    return -1;
}

/* The character ending just before byte at (at > 0). */
static uint32_t char_before(const char *s, size_t at, size_t *start)
{
    size_t i = at - 1;
    while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80)
        i--;
    uint32_t cp;
    mp_utf8_decode(s + i, &cp);
    *start = i;
    return cp;
}

/* Rust regex \w on each side: a match inside a word is not a single word. */
static bool is_single_word(const mp_uclasses *u, const char *s, size_t len, size_t start, size_t end)
{
    size_t unused;
    uint32_t cp;
    if (start > 0 && mp_uclass_is_word(u, char_before(s, start, &unused)))
        return false;
    if (end < len) {
        mp_utf8_decode(s + end, &cp);
        if (mp_uclass_is_word(u, cp))
            return false;
    }
    return true;
}

/* Where the white space that ends s[0..at) begins. */
static size_t space_before(const mp_uclasses *u, const char *s, size_t at)
{
    size_t start;
    while (at > 0 && mp_uclass_has(u, MP_UCLASS_WHITE_SPACE, char_before(s, at, &start)))
        at = start;
    return at;
}

/* Where the white space that starts s[at..len) ends. */
static size_t space_after(const mp_uclasses *u, const char *s, size_t len, size_t at)
{
    uint32_t cp;
    while (at < len) {
        size_t n = mp_utf8_decode(s + at, &cp);
        if (!mp_uclass_has(u, MP_UCLASS_WHITE_SPACE, cp))
            break;
        at += n;
    }
    return at;
}

int mp_added_split(const mp_added_set *set, const mp_added_token *tokens, const mp_uclasses *u, const char *s,
                   size_t len, mp_added_runs *out)
{
    out->n = 0;
    if (len == 0 || set->empty)
        return push(out, 0, len, -1);
    size_t done = 0, from = 0, start, end;
    long k;
    /* as daachorse's leftmost iterator: the search goes on after every match, taken or not */
    while ((k = find_match(set, s, len, from, &start, &end)) >= 0) {
        from = end;
        const mp_added_token *t = &tokens[k];
        if (t->single_word && !is_single_word(u, s, len, start, end))
            continue;
        if (t->lstrip) {
            size_t lead = space_before(u, s, start);
            start = lead > done ? lead : done;
        }
        if (t->rstrip)
            end = space_after(u, s, len, end);
        if (done < start && push(out, done, start, -1) != 0)
            return -1;
        if (push(out, start, end, k) != 0)
            return -1;
        done = end;
    }
    return done != len ? push(out, done, len, -1) : 0;
}
