/* The pre-tokenizer split regexes of the byte-level tokenizers, matched by hand (no
 * regex library): the patterns are fixed, so each is a few lines of code. */
#ifndef MP_TOKENIZER_REGEX_H
#define MP_TOKENIZER_REGEX_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    /* GPT-2, ByteLevel's own (use_regex): 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+|
     * ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
    MP_REGEX_GPT2,
    /* Qwen2: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|
     * ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
    MP_REGEX_QWEN2,
    /* Llama-3: as Qwen2 with \p{N}{1,3} */
    MP_REGEX_LLAMA3
} mp_regex;

/* The regex whose source text (as written in tokenizer.json) is pattern; -1 if none. */
int mp_regex_from_pattern(const char *pattern);

/* Each of these regexes matches at every character, so a text splits into consecutive
 * matches. Returns the length, in characters, of the match at character i of the text
 * cp[0..n) (i < n), whose classes (mp_char_class) are cls[0..n). Always >= 1. */
size_t mp_regex_match(mp_regex re, const uint32_t *cp, const uint8_t *cls, size_t n, size_t i);

#endif
