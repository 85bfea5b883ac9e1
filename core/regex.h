/* Regular expressions through Oniguruma, the engine HF tokenizers compiles the
 * patterns of tokenizer.json with (the onig crate: default syntax, UTF-8, no
 * options), so any pattern such a file holds matches as there. convert's --keep and
 * --encode rules use it too: one regex syntax in the whole tool. */
#ifndef MP_REGEX_H
#define MP_REGEX_H

#include <stddef.h>

typedef struct mp_regex mp_regex;

/* Oniguruma initializes itself lazily and without a lock; compiling calls this first,
 * so that searches from several threads later do not race. A no-op once done.
 * Returns 0, or -1 when it fails. */
int mp_regex_initialize(void);

/* Compiles pattern (UTF-8, NUL-terminated). On failure returns -1 and writes
 * Oniguruma's message into why. */
int mp_regex_compile(const char *pattern, mp_regex **out, char *why, size_t why_cap);
void mp_regex_free(mp_regex *re);

/* The first match in s[0..len) at or after byte from: 1 with [*start, *end), 0 when
 * there is none, -1 when Oniguruma fails (out of memory, match limits). Lookarounds
 * see the whole of s[0..len). */
int mp_regex_search(const mp_regex *re, const char *s, size_t len, size_t from, size_t *start, size_t *end);

#endif
