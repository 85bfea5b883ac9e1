/* Pre-tokenizers: cut normalized text into the words the BPE model sees, rewriting
 * them on the way (Metaspace's ▁, ByteLevel's byte alphabet). Mirrors HF's
 * PreTokenizedString: every step maps each word to new words; empty words vanish. */
#ifndef MP_TOKENIZER_PRETOK_H
#define MP_TOKENIZER_PRETOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenizer_regex.h"

typedef enum { MP_PRETOK_SPLIT, MP_PRETOK_BYTE_LEVEL, MP_PRETOK_METASPACE } mp_pretok_kind;

typedef enum { MP_PREPEND_ALWAYS, MP_PREPEND_FIRST, MP_PREPEND_NEVER } mp_prepend_scheme;

typedef struct {
    mp_pretok_kind kind;
    mp_regex regex;             /* SPLIT: matches become words (behavior Isolated) */
    bool add_prefix_space;      /* BYTE_LEVEL: a space before words not starting with one */
    bool use_regex;             /* BYTE_LEVEL: split with the GPT-2 regex first */
    char replacement[5];        /* METASPACE: the character spaces become (UTF-8) */
    mp_prepend_scheme prepend;  /* METASPACE: when a word gets a leading replacement */
    bool split;                 /* METASPACE: cut before every replacement character */
} mp_pretok_step;

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
    uint32_t *cp;
    uint8_t *cls;
    size_t cap_cp;
} mp_pretok_work;

/* Runs the steps over text[0..len) (valid UTF-8); *words points into work afterwards,
 * valid until the next call. Returns 0, or -1 when out of memory. */
int mp_pretokenize(const mp_pretok_step *steps, size_t n_steps, const char *text, size_t len,
                   bool at_start, mp_pretok_work *work, const mp_words **words);

void mp_pretok_work_free(mp_pretok_work *work);

#endif
