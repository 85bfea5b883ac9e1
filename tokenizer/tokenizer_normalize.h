/* Normalizers of tokenizer.json (normalizers/unicode.rs, utils.rs, strip.rs,
 * replace.rs, prepend.rs; a Sequence is flattened into its steps). Unicode
 * normalization and case mapping come from utf8proc. */
#ifndef MP_TOKENIZER_NORMALIZE_H
#define MP_TOKENIZER_NORMALIZE_H

#include <stdbool.h>
#include <stddef.h>

#include "../core/regex.h"
#include "unicode_class.h"

typedef enum {
    MP_NORM_NFC,
    MP_NORM_NFD,
    MP_NORM_NFKC,
    MP_NORM_NFKD,
    MP_NORM_LOWERCASE,
    MP_NORM_STRIP,         /* white space at the left and/or right end */
    MP_NORM_STRIP_ACCENTS, /* every combining mark */
    MP_NORM_REPLACE,
    MP_NORM_PREPEND
} mp_norm_kind;

typedef struct {
    mp_norm_kind kind;
    char *text;                 /* PREPEND: what goes before the text; REPLACE: the string replaced */
    mp_regex *regex;            /* REPLACE with a Regex pattern instead of a string */
    char *with;                 /* REPLACE: the replacement */
    bool left, right;           /* STRIP: which ends */
    const mp_uclasses *classes; /* STRIP, STRIP_ACCENTS */
} mp_norm_step;

void mp_norm_step_free(mp_norm_step *st);

/* Applies the steps in order to s[0..len) (valid UTF-8) into a new malloc'd,
 * NUL-terminated buffer. Returns 0, or -1 when out of memory or a regex fails. */
int mp_normalize(const mp_norm_step *steps, size_t n_steps, const char *s, size_t len, char **out,
                 size_t *out_len);

#endif
