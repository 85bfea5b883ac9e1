/* Pre-tokenizers: cut normalized text into the words the model sees, rewriting them
 * on the way (Metaspace's ▁, ByteLevel's byte alphabet). Mirrors HF's
 * PreTokenizedString: every step maps each word to new words; empty words vanish
 * (pre_tokenizers/split.rs, byte_level.rs, metaspace.rs, digits.rs, punctuation.rs,
 * whitespace.rs, delimiter.rs; a Sequence is flattened into its steps). */
#ifndef MP_TOKENIZER_PRETOK_H
#define MP_TOKENIZER_PRETOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"
#include "tokenizer_split.h"

typedef enum {
    MP_PRETOK_SPLIT,            /* a Regex or String pattern, any behavior, invert */
    MP_PRETOK_BYTE_LEVEL,
    MP_PRETOK_METASPACE,
    MP_PRETOK_CHARS,            /* Digits, Punctuation, WhitespaceSplit, CharDelimiterSplit */
    MP_PRETOK_WHITESPACE        /* \w+|[^\w\s]+ kept, the rest removed */
} mp_pretok_kind;

typedef enum { MP_PREPEND_ALWAYS, MP_PREPEND_FIRST, MP_PREPEND_NEVER } mp_prepend_scheme;

typedef struct {
    mp_pretok_kind kind;
    mp_regex *regex;            /* SPLIT with a Regex pattern, BYTE_LEVEL (GPT-2's), WHITESPACE */
    char *literal;              /* SPLIT with a String pattern (non-empty) */
    size_t literal_len;
    mp_char_test test;          /* CHARS: which characters match */
    mp_split_behavior behavior; /* SPLIT, CHARS */
    bool invert;                /* SPLIT */
    bool add_prefix_space;      /* BYTE_LEVEL: a space before words not starting with one */
    bool use_regex;             /* BYTE_LEVEL: split with the GPT-2 regex first */
    char replacement[5];        /* METASPACE: the character spaces become (UTF-8) */
    mp_prepend_scheme prepend;  /* METASPACE: when a word gets a leading replacement */
    bool split;                 /* METASPACE: cut before every replacement character */
} mp_pretok_step;

/* Steps with their patterns compiled; errors name `where` and the pattern. */
int mp_pretok_split_init(mp_pretok_step *st, const char *regex, const char *literal, mp_split_behavior behavior,
                         bool invert, const char *where, mp_error *err);
int mp_pretok_byte_level_init(mp_pretok_step *st, bool add_prefix_space, bool use_regex, mp_error *err);
int mp_pretok_whitespace_init(mp_pretok_step *st, mp_error *err);
void mp_pretok_step_free(mp_pretok_step *st);

/* Words as spans of one text buffer. at_start: the word begins the original text
 * (Metaspace's prepend_scheme "first" only prepends there). */
typedef struct {
    size_t off, len;
    bool at_start;
} mp_word;

typedef struct {
    char *text;
    size_t len, cap;
    mp_word *w;
    size_t n, cap_w;
} mp_words;

/* Scratch space reused across the calls of one encode. */
typedef struct {
    mp_words buf[2];
    mp_spans matches, pieces;
} mp_pretok_work;

/* Runs the steps over text[0..len) (valid UTF-8); *words points into work afterwards,
 * valid until the next call. Returns 0, or -1 when out of memory or a regex fails. */
int mp_pretokenize(const mp_pretok_step *steps, size_t n_steps, const char *text, size_t len,
                   bool at_start, mp_pretok_work *work, const mp_words **words);

void mp_pretok_work_free(mp_pretok_work *work);

#endif
