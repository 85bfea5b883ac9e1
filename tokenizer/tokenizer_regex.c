/* Hand-written matchers for the split regexes in tokenizer_regex.h. Each follows its
 * pattern's alternatives in order, with the backtracking outcomes worked out:
 *   \s+(?!\S)    a run of spaces less its last one when a non-space follows (the last
 *                space then leads the next word), the whole run at the end of the text;
 *   \s*[\r\n]+   a run of spaces up to and including its last line break.
 * \s, \p{L}, \p{N} are the classes of unicode.h, as the Oniguruma engine HF tokenizers
 * uses defines them. */
#include <stdbool.h>
#include <string.h>

#include "tokenizer_regex.h"
#include "unicode.h"

static const char GPT2_PATTERN[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
static const char QWEN2_PATTERN[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char LLAMA3_PATTERN[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

int mp_regex_from_pattern(const char *pattern)
{
    if (strcmp(pattern, GPT2_PATTERN) == 0)
        return MP_REGEX_GPT2;
    if (strcmp(pattern, QWEN2_PATTERN) == 0)
        return MP_REGEX_QWEN2;
    if (strcmp(pattern, LLAMA3_PATTERN) == 0)
        return MP_REGEX_LLAMA3;
    return -1;
}

static bool is_line_break(uint32_t c)
{
    return c == '\r' || c == '\n';
}

/* c matches the lowercase ASCII letter want; under (?i) also its uppercase and, for s,
 * U+017F LATIN SMALL LETTER LONG S, which case-folds to s. */
static bool letter_is(uint32_t c, char want, bool ignore_case)
{
    if (c == (uint32_t)want)
        return true;
    if (!ignore_case)
        return false;
    return c == (uint32_t)(want - 'a' + 'A') || (want == 's' && c == 0x17F);
}

/* 's|'t|'re|'ve|'m|'ll|'d at i: the length matched, or 0. */
static size_t contraction(const uint32_t *cp, size_t n, size_t i, bool ignore_case)
{
    static const char *const endings[] = {"s", "t", "re", "ve", "m", "ll", "d"};
    if (cp[i] != '\'')
        return 0;
    for (size_t k = 0; k < sizeof endings / sizeof endings[0]; k++) {
        size_t len = strlen(endings[k]), j = 0;
        while (j < len && i + 1 + j < n && letter_is(cp[i + 1 + j], endings[k][j], ignore_case))
            j++;
        if (j == len)
            return 1 + len;
    }
    return 0;
}

static size_t run_end(const uint8_t *cls, size_t n, size_t i, mp_char_class c)
{
    while (i < n && cls[i] == c)
        i++;
    return i;
}

/* \s+(?!\S)|\s+ at a space. */
static size_t spaces(const uint8_t *cls, size_t n, size_t i)
{
    size_t end = run_end(cls, n, i, MP_CH_SPACE);
    if (end < n && end - i >= 2)
        return end - 1 - i;
    return end - i;
}

static size_t match_gpt2(const uint32_t *cp, const uint8_t *cls, size_t n, size_t i)
{
    size_t len = contraction(cp, n, i, false);
    if (len)
        return len;
    /*  ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+ : an optional space, then a run of one class */
    size_t start = i;
    if (cp[i] == ' ' && i + 1 < n && cls[i + 1] != MP_CH_SPACE)
        start = i + 1;
    if (cls[start] != MP_CH_SPACE)
        return run_end(cls, n, start, cls[start]) - i;
    return spaces(cls, n, i);
}

static size_t match_qwen2(const uint32_t *cp, const uint8_t *cls, size_t n, size_t i, size_t max_digits)
{
    size_t len = contraction(cp, n, i, true);
    if (len)
        return len;
    /* [^\r\n\p{L}\p{N}]?\p{L}+ */
    if (cls[i] == MP_CH_LETTER)
        return run_end(cls, n, i, MP_CH_LETTER) - i;
    if (!is_line_break(cp[i]) && cls[i] != MP_CH_NUMBER && i + 1 < n && cls[i + 1] == MP_CH_LETTER)
        return run_end(cls, n, i + 1, MP_CH_LETTER) - i;
    /* \p{N} or \p{N}{1,3} */
    if (cls[i] == MP_CH_NUMBER) {
        size_t end = i;
        while (end < n && end - i < max_digits && cls[end] == MP_CH_NUMBER)
            end++;
        return end - i;
    }
    /*  ?[^\s\p{L}\p{N}]+[\r\n]* */
    size_t start = cp[i] == ' ' && i + 1 < n && cls[i + 1] == MP_CH_OTHER ? i + 1 : i;
    if (cls[start] == MP_CH_OTHER) {
        size_t end = run_end(cls, n, start, MP_CH_OTHER);
        while (end < n && is_line_break(cp[end]))
            end++;
        return end - i;
    }
    /* \s*[\r\n]+ */
    for (size_t end = run_end(cls, n, i, MP_CH_SPACE); end > i; end--)
        if (is_line_break(cp[end - 1]))
            return end - i;
    return spaces(cls, n, i);
}

size_t mp_regex_match(mp_regex re, const uint32_t *cp, const uint8_t *cls, size_t n, size_t i)
{
    switch (re) {
    case MP_REGEX_GPT2: return match_gpt2(cp, cls, n, i);
    case MP_REGEX_QWEN2: return match_qwen2(cp, cls, n, i, 1);
    case MP_REGEX_LLAMA3: return match_qwen2(cp, cls, n, i, 3);
    }
    return 1;
}
