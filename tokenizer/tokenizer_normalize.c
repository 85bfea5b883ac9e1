/* Normalizer steps, each from one whole buffer to a new one. */
#include "tokenizer_normalize.h"

#include <stdlib.h>
#include <string.h>

#include "unicode.h"

static int copy(const char *s, size_t len, char **out, size_t *out_len)
{
    char *d = malloc(len + 1);
    if (!d)
        return -1;
    memcpy(d, s, len);
    d[len] = '\0';
    *out = d;
    *out_len = len;
    return 0;
}

/* HF prepends only to non-empty text. */
static int prepend(const char *what, const char *s, size_t len, char **out, size_t *out_len)
{
    if (len == 0)
        return copy(s, len, out, out_len);
    size_t n = strlen(what);
    char *d = malloc(n + len + 1);
    if (!d)
        return -1;
    memcpy(d, what, n);
    memcpy(d + n, s, len);
    d[n + len] = '\0';
    *out = d;
    *out_len = n + len;
    return 0;
}

/* Every occurrence of pattern (non-empty), left to right, without overlaps. */
static int replace(const char *pattern, const char *with, const char *s, size_t len, char **out,
                   size_t *out_len)
{
    size_t np = strlen(pattern), nw = strlen(with), count = 0;
    for (size_t i = 0; i + np <= len;)
        if (memcmp(s + i, pattern, np) == 0) {
            count++;
            i += np;
        } else {
            i++;
        }
    size_t n = len - count * np + count * nw;
    char *d = malloc(n + 1);
    if (!d)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        if (i + np <= len && memcmp(s + i, pattern, np) == 0) {
            memcpy(d + o, with, nw);
            o += nw;
            i += np;
        } else {
            d[o++] = s[i++];
        }
    }
    d[o] = '\0';
    *out = d;
    *out_len = o;
    return 0;
}

static int apply(const mp_norm_step *st, const char *s, size_t len, char **out, size_t *out_len)
{
    switch (st->kind) {
    case MP_NORM_NFC: return mp_nfc(s, len, out, out_len);
    case MP_NORM_PREPEND: return prepend(st->text, s, len, out, out_len);
    case MP_NORM_REPLACE: return replace(st->text, st->with, s, len, out, out_len);
    }
    return -1;
}

int mp_normalize(const mp_norm_step *steps, size_t n_steps, const char *s, size_t len, char **out,
                 size_t *out_len)
{
    if (copy(s, len, out, out_len) != 0)
        return -1;
    for (size_t i = 0; i < n_steps; i++) {
        char *next;
        size_t next_len;
        int rc = apply(&steps[i], *out, *out_len, &next, &next_len);
        free(*out);
        *out = NULL;
        if (rc != 0)
            return -1;
        *out = next;
        *out_len = next_len;
    }
    return 0;
}
