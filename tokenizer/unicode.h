/* The Unicode the tokenizer needs: strict UTF-8, the character classes its
 * pre-tokenizer regexes test (\p{L}, \p{N}, \s) and NFC normalization.
 * Tables come from tools/gen_unicode.py (see tokenizer/unicode_tables.c). */
#ifndef MP_UNICODE_H
#define MP_UNICODE_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    MP_CH_OTHER = 0,
    MP_CH_LETTER, /* \p{L}: general category L* */
    MP_CH_NUMBER, /* \p{N}: general category N* */
    MP_CH_SPACE   /* \s as Oniguruma and Rust regex define it (White_Space) */
} mp_char_class;

/* Returns len when s[0..len) is valid UTF-8 (no overlong forms, no surrogates, nothing
 * above U+10FFFF), else the offset of the first byte of the first invalid sequence. */
size_t mp_utf8_check(const char *s, size_t len);

/* Decodes the character at s, which must be valid UTF-8 with at least one byte left;
 * returns its length in bytes. */
size_t mp_utf8_decode(const char *s, uint32_t *cp);

/* Writes cp as UTF-8 into out (at least 4 bytes) and returns the byte count. */
size_t mp_utf8_encode(uint32_t cp, char *out);

mp_char_class mp_char_class_of(uint32_t cp);

/* The canonical combining class (0 for starters). */
uint8_t mp_combining_class(uint32_t cp);

/* NFC of the valid UTF-8 text s[0..len) into a new malloc'd, NUL-terminated buffer.
 * Returns 0, or -1 when out of memory. */
int mp_nfc(const char *s, size_t len, char **out, size_t *out_len);

#endif
