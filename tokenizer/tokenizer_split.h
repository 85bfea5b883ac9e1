/* Cutting a string at the matches of a pattern, as HF's NormalizedString::split does
 * (tokenizer/normalizer.rs, pattern.rs): a pattern lists the string as consecutive
 * spans, each a match or not; a behavior then decides what becomes of the matches
 * (removed, isolated, merged with a neighbour, runs joined). Pre-tokenizers and the
 * Replace normalizer stand on it. */
#ifndef MP_TOKENIZER_SPLIT_H
#define MP_TOKENIZER_SPLIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/regex.h"
#include "unicode_class.h"

typedef struct {
    size_t start, end; /* bytes */
    bool is_match;
} mp_span;

typedef struct {
    mp_span *v;
    size_t n, cap;
} mp_spans;

void mp_spans_free(mp_spans *s);

typedef enum {
    MP_SPLIT_REMOVED,
    MP_SPLIT_ISOLATED,
    MP_SPLIT_MERGED_WITH_PREVIOUS,
    MP_SPLIT_MERGED_WITH_NEXT,
    MP_SPLIT_CONTIGUOUS
} mp_split_behavior;

/* "Removed", "Isolated", ... as tokenizer.json spells them; -1 when unknown. */
int mp_split_behavior_parse(const char *name, mp_split_behavior *out);

/* What a pattern matches. Each finder covers s[0..len) (valid UTF-8) with spans in
 * order, replacing what *out held; an empty string gives one empty non-match. They
 * return 0, or -1 when out of memory or when Oniguruma fails. */

/* Every match of re, as the onig crate's find_iter gives them: an empty match right
 * where the previous match ended is skipped by one character. */
int mp_find_regex(const mp_regex *re, const char *s, size_t len, mp_spans *out);
/* Every occurrence of lit[0..lit_len), left to right, not overlapping. An empty lit
 * matches nothing. */
int mp_find_literal(const char *lit, size_t lit_len, const char *s, size_t len, mp_spans *out);

/* A test of one character: a class, or equality with one code point. */
typedef struct {
    const mp_uclasses *classes;
    int cls;         /* an mp_uclass, or -1 to compare with cp */
    bool ascii_punct; /* also match ASCII punctuation (HF's Punctuation pre-tokenizer) */
    uint32_t cp;
} mp_char_test;

bool mp_char_test_matches(const mp_char_test *t, uint32_t cp);
/* Every character that passes the test is a match of its own. */
int mp_find_chars(const mp_char_test *t, const char *s, size_t len, mp_spans *out);

/* Flips every span's is_match (HF's Invert). */
void mp_spans_invert(mp_spans *s);

/* The pieces the behavior keeps from matches, in order, into pieces (is_match unset);
 * empty pieces are kept, so callers drop them as HF does. */
int mp_split_pieces(const mp_spans *matches, mp_split_behavior behavior, mp_spans *pieces);

#endif
