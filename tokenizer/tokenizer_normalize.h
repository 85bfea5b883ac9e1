/* Normalizers of tokenizer.json that the tokenizer supports: NFC, Prepend and Replace
 * with a string pattern (normalizers/unicode.rs, prepend.rs, replace.rs). */
#ifndef MP_TOKENIZER_NORMALIZE_H
#define MP_TOKENIZER_NORMALIZE_H

#include <stddef.h>

typedef enum { MP_NORM_NFC, MP_NORM_PREPEND, MP_NORM_REPLACE } mp_norm_kind;

typedef struct {
    mp_norm_kind kind;
    char *text; /* PREPEND: what goes before the text; REPLACE: the string replaced */
    char *with; /* REPLACE: its replacement */
} mp_norm_step;

/* Applies the steps in order to s[0..len) (valid UTF-8) into a new malloc'd,
 * NUL-terminated buffer. Returns 0, or -1 when out of memory. */
int mp_normalize(const mp_norm_step *steps, size_t n_steps, const char *s, size_t len, char **out,
                 size_t *out_len);

#endif
