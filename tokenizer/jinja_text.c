/* Text as JavaScript sees it, over UTF-8: what counts as whitespace for trim, strip,
 * split and the template's whitespace control (JS \s), and lengths in UTF-16 code
 * units (JS string length). Invalid UTF-8 is taken one byte at a time. */
#include "jinja_internal.h"

size_t jj_utf8_get(const char *s, size_t len, uint32_t *cp)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = u[0] < 0x80 ? 1 : u[0] >= 0xf0 ? 4 : u[0] >= 0xe0 ? 3 : u[0] >= 0xc0 ? 2 : 0;
    if (n == 0 || n > len) {
        *cp = u[0];
        return 1;
    }
    uint32_t c = n == 1 ? u[0] : n == 2 ? u[0] & 0x1f : n == 3 ? u[0] & 0x0f : u[0] & 0x07;
    for (size_t i = 1; i < n; i++) {
        if ((u[i] & 0xc0) != 0x80) {
            *cp = u[0];
            return 1;
        }
        c = c << 6 | (u[i] & 0x3f);
    }
    *cp = c;
    return n;
}

size_t jj_char_len(const char *s, size_t len)
{
    uint32_t cp;
    return jj_utf8_get(s, len, &cp);
}

size_t jj_utf8_put(uint32_t cp, char *out)
{
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xc0 | cp >> 6);
        o[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xe0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
        o[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (unsigned char)(0xf0 | cp >> 18);
    o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
    o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
    o[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

/* JavaScript's WhiteSpace and LineTerminator characters. */
static int is_js_space(uint32_t cp)
{
    if (cp <= 32)
        return cp == 32 || (cp >= 9 && cp <= 13);
    return cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 ||
           cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000 || cp == 0xfeff;
}

size_t jj_space_at(const char *s, size_t len)
{
    if (len == 0)
        return 0;
    uint32_t cp;
    size_t n = jj_utf8_get(s, len, &cp);
    if (n == 1 && (unsigned char)s[0] >= 0x80)
        return 0; /* an invalid byte is no character */
    return is_js_space(cp) ? n : 0;
}

size_t jj_space_before(const char *s, size_t end)
{
    /* every JS space is at most 3 bytes long: try each start */
    for (size_t n = 1; n <= 3 && n <= end; n++)
        if (jj_space_at(s + end - n, n) == n)
            return n;
    return 0;
}

jj_str jj_trim_start(jj_str s)
{
    size_t n;
    while ((n = jj_space_at(s.s, s.len)) > 0) {
        s.s += n;
        s.len -= n;
    }
    return s;
}

jj_str jj_trim_end(jj_str s)
{
    size_t n;
    while ((n = jj_space_before(s.s, s.len)) > 0)
        s.len -= n;
    return s;
}

size_t jj_utf16_length(jj_str s)
{
    size_t units = 0;
    for (size_t i = 0; i < s.len;) {
        uint32_t cp;
        i += jj_utf8_get(s.s + i, s.len - i, &cp);
        units += cp >= 0x10000 ? 2 : 1;
    }
    return units;
}

size_t jj_char_count(jj_str s)
{
    size_t count = 0;
    for (size_t i = 0; i < s.len; count++)
        i += jj_char_len(s.s + i, s.len - i);
    return count;
}
