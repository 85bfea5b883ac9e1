/* tok_unicode classes | nfc: exposes tokenizer/unicode.c to an oracle
 * (tests/cli/test_tokenizer_unicode.sh compares with Python's unicodedata).
 *   classes  one letter per code point 0..U+10FFFF: L (\p{L}), N (\p{N}), S (\s), O
 *   nfc      reads lines of hex code points, writes the NFC of each line the same way */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../tokenizer/unicode.h"

static int classes(void)
{
    static const char letter[] = {[MP_CH_OTHER] = 'O', [MP_CH_LETTER] = 'L', [MP_CH_NUMBER] = 'N', [MP_CH_SPACE] = 'S'};
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++)
        putchar(letter[mp_char_class_of(cp)]);
    putchar('\n');
    return 0;
}

/* One input line of hex code points to UTF-8 in text (room for 4 bytes each). */
static size_t line_to_utf8(char *line, char *text)
{
    size_t n = 0;
    for (char *tok = strtok(line, " \n"); tok; tok = strtok(NULL, " \n"))
        n += mp_utf8_encode((uint32_t)strtoul(tok, NULL, 16), text + n);
    return n;
}

static int nfc(void)
{
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, stdin) > 0) {
        char *text = malloc(cap * 4 + 4), *out;
        size_t len = line_to_utf8(line, text), out_len;
        if (!text || mp_utf8_check(text, len) != len || mp_nfc(text, len, &out, &out_len) != 0) {
            fprintf(stderr, "tok_unicode: bad line or out of memory\n");
            return 1;
        }
        for (size_t i = 0; i < out_len;) {
            uint32_t cp;
            i += mp_utf8_decode(out + i, &cp);
            printf(i < out_len ? "%X " : "%X", cp);
        }
        putchar('\n');
        free(out);
        free(text);
    }
    free(line);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "classes") == 0)
        return classes();
    if (argc == 2 && strcmp(argv[1], "nfc") == 0)
        return nfc();
    fprintf(stderr, "usage: tok_unicode classes|nfc\n");
    return 2;
}
