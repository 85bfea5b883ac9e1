/* Strict UTF-8: checking, decoding and encoding one character. */
#ifndef MP_UTF8_H
#define MP_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Returns len when s[0..len) is valid UTF-8 (no overlong forms, no surrogates, nothing
 * above U+10FFFF), else the offset of the first byte of the first invalid sequence. */
size_t mp_utf8_check(const char *s, size_t len);

/* Decodes the character at s, which must be valid UTF-8 with at least one byte left;
 * returns its length in bytes. */
size_t mp_utf8_decode(const char *s, uint32_t *cp);

/* Writes cp as UTF-8 into out (at least 4 bytes) and returns the byte count. */
size_t mp_utf8_encode(uint32_t cp, char *out);

#endif
