/* Added tokens (tokenizer/added_vocabulary.rs): strings found in the text before the
 * model sees it, leftmost then longest, each becoming its id. Those with normalized
 * false are searched in the raw text, the others, in their normalized form, in the
 * normalized text. lstrip and rstrip take the white space beside a match into it;
 * single_word keeps only matches not inside a word. */
#ifndef MP_TOKENIZER_ADDED_H
#define MP_TOKENIZER_ADDED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "unicode_class.h"
#include "tokenizer_trie.h"

typedef struct {
    char *content;  /* as tokenizer.json writes it */
    char *match;    /* what is searched for: content, normalized when normalized is true */
    size_t match_len;
    int32_t id;
    bool normalized, special, lstrip, rstrip, single_word;
} mp_added_token;

/* The tokens searched in one kind of text (raw or normalized). */
typedef struct {
    mp_trie trie; /* match bytes -> index into the token list */
    bool empty;
} mp_added_set;

/* Builds the set of the tokens whose normalized flag equals normalized. */
int mp_added_set_build(mp_added_set *set, const mp_added_token *tokens, size_t n, bool normalized);
void mp_added_set_free(mp_added_set *set);

/* A stretch of text: an added token (token >= 0, its index in the token list; start
 * and end include the white space it strips) or plain text (token -1). */
typedef struct {
    size_t start, end;
    long token;
} mp_added_run;

typedef struct {
    mp_added_run *v;
    size_t n, cap;
} mp_added_runs;

void mp_added_runs_free(mp_added_runs *r);

/* Cuts s[0..len) (valid UTF-8) into runs covering it, in order; an empty s gives one
 * empty text run. Returns 0, or -1 when out of memory. */
int mp_added_split(const mp_added_set *set, const mp_added_token *tokens, const mp_uclasses *u, const char *s,
                   size_t len, mp_added_runs *out);

#endif
