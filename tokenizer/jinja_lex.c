/* Template text -> tokens, as @huggingface/jinja reads a chat template: first the
 * whitespace rules HF renders with (one trailing newline dropped; lstrip_blocks: spaces
 * and tabs before a block tag at the start of a line removed; trim_blocks: the newline
 * after a block tag removed; transformers' {% generation %} tags dropped), applied to the
 * text as a whole, then tokens, with `-` whitespace control on tags.
 *
 * Every byte keeps the line it had in the template as given, so that errors can name it. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_internal.h"

/* Text being preprocessed: bytes and, for each, its line in the original. */
typedef struct {
    char *s;
    int *line;
    size_t len;
} lined_text;

static int lined_alloc(lined_text *t, size_t cap)
{
    t->s = malloc(cap + 1);
    t->line = malloc((cap + 1) * sizeof *t->line);
    t->len = 0;
    return t->s && t->line ? 0 : -1;
}

static void lined_free(lined_text *t)
{
    free(t->s);
    free(t->line);
}

static void lined_copy(lined_text *to, const lined_text *from, size_t i)
{
    to->s[to->len] = from->s[i];
    to->line[to->len++] = from->line[i];
}

/* Is s[i] the first byte after a JS line terminator (\n, \r, U+2028, U+2029)? */
static int at_line_start(const lined_text *t, size_t i)
{
    if (i == 0)
        return 1;
    char c = t->s[i - 1];
    if (c == '\n' || c == '\r')
        return 1;
    return i >= 3 && memcmp(t->s + i - 3, "\xe2\x80", 2) == 0 &&
           (t->s[i - 1] == '\xa8' || t->s[i - 1] == '\xa9');
}

/* lstrip_blocks: /^[ \t]*({[#%-])/gm -> "$1" */
static void strip_block_indent(const lined_text *in, lined_text *out)
{
    for (size_t i = 0; i < in->len;) {
        if (at_line_start(in, i)) {
            size_t j = i;
            while (j < in->len && (in->s[j] == ' ' || in->s[j] == '\t'))
                j++;
            if (j + 1 < in->len && in->s[j] == '{' && in->s[j + 1] && strchr("#%-", in->s[j + 1]))
                i = j;
        }
        if (i < in->len)
            lined_copy(out, in, i++);
    }
}

/* trim_blocks: /([#%-]})\n/g -> "$1" */
static void drop_newline_after_blocks(const lined_text *in, lined_text *out)
{
    for (size_t i = 0; i < in->len; i++) {
        lined_copy(out, in, i);
        if (i + 2 < in->len && in->s[i] && strchr("#%-", in->s[i]) && in->s[i + 1] == '}' &&
            in->s[i + 2] == '\n') {
            lined_copy(out, in, ++i);
            i++; /* skip the newline */
        }
    }
}

static size_t skip_spaces(const lined_text *t, size_t i)
{
    size_t n;
    while (i < t->len && (n = jj_space_at(t->s + i, t->len - i)) > 0)
        i += n;
    return i;
}

/* Matches /{%(-?)\s*(?:end)?generation\s*(-?)%}/ at i; returns its end or 0. */
static size_t match_generation_tag(const lined_text *t, size_t i, int *strip_before, int *strip_after)
{
    if (i + 2 > t->len || memcmp(t->s + i, "{%", 2) != 0)
        return 0;
    i += 2;
    *strip_before = i < t->len && t->s[i] == '-';
    i = skip_spaces(t, i + (size_t)*strip_before);
    if (i + 3 <= t->len && memcmp(t->s + i, "end", 3) == 0)
        i += 3;
    if (i + 10 > t->len || memcmp(t->s + i, "generation", 10) != 0)
        return 0;
    i = skip_spaces(t, i + 10);
    *strip_after = i < t->len && t->s[i] == '-';
    i += (size_t)*strip_after;
    if (i + 2 > t->len || memcmp(t->s + i, "%}", 2) != 0)
        return 0;
    return i + 2;
}

/* transformers' {% generation %} / {% endgeneration %} mark the assistant's tokens for
 * training masks; rendering drops them, honouring their `-`. */
static void drop_generation_tags(const lined_text *in, lined_text *out)
{
    size_t kept_from = 0; /* in->s before this was handled by an earlier match */
    for (size_t i = 0; i < in->len; i++) {
        int strip_before, strip_after;
        size_t end = match_generation_tag(in, i, &strip_before, &strip_after);
        if (!end)
            continue;
        size_t text_end = i;
        while (strip_before && text_end > kept_from && jj_space_before(in->s, text_end) > 0)
            text_end -= jj_space_before(in->s, text_end);
        for (size_t k = kept_from; k < text_end; k++)
            lined_copy(out, in, k);
        size_t after = skip_spaces(in, end);
        for (size_t k = end; !strip_after && k < after; k++)
            lined_copy(out, in, k);
        kept_from = after;
        i = after - 1;
    }
    for (size_t k = kept_from; k < in->len; k++)
        lined_copy(out, in, k);
}

/* ---- tokens ---- */

typedef struct {
    const lined_text *src;
    size_t pos;
    jj_token *tokens;
    size_t n, cap;
    int brace_depth; /* inside a dict literal "}}" closes braces, not the expression */
    jj_arena *arena;
    const char *origin;
    mp_error *err;
} lexer;

static int lex_fail(lexer *lx, size_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int lex_fail(lexer *lx, size_t at, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int line = lx->src->len == 0 ? 1 : lx->src->line[at < lx->src->len ? at : lx->src->len - 1];
    return mp_fail(lx->err, MP_EXIT_INPUT, "%s line %d: %s", lx->origin, line, msg);
}

static char peek(const lexer *lx, size_t ahead)
{
    size_t i = lx->pos + ahead;
    return i < lx->src->len ? lx->src->s[i] : '\0';
}

static jj_token_kind last_kind(const lexer *lx)
{
    return lx->n ? lx->tokens[lx->n - 1].kind : JT_TEXT;
}

static int push(lexer *lx, jj_token_kind kind, const char *text, size_t len, size_t at)
{
    if (lx->n == lx->cap) {
        size_t cap = lx->cap ? 2 * lx->cap : 256;
        jj_token *grown = realloc(lx->tokens, cap * sizeof *grown);
        if (!grown)
            return mp_fail(lx->err, MP_EXIT_IO, "%s: out of memory", lx->origin);
        lx->tokens = grown;
        lx->cap = cap;
    }
    lx->tokens[lx->n++] = (jj_token){kind, {text, len}, lx->src->line[at]};
    return MP_OK;
}

/* {%- {{- {#-: the text before loses its trailing whitespace (and is dropped if empty) */
static void strip_text_before(lexer *lx)
{
    if (lx->n == 0 || lx->tokens[lx->n - 1].kind != JT_TEXT)
        return;
    jj_token *t = &lx->tokens[lx->n - 1];
    t->text = jj_trim_end(t->text);
    if (t->text.len == 0)
        lx->n--;
}

static void skip_whitespace(lexer *lx)
{
    lx->pos = skip_spaces(lx->src, lx->pos);
}

static int lex_comment(lexer *lx)
{
    size_t start = lx->pos;
    lx->pos += 2;
    int strip_before = peek(lx, 0) == '-';
    lx->pos += (size_t)strip_before;
    const char *body = lx->src->s + lx->pos;
    const char *end = NULL;
    for (size_t i = lx->pos; i + 1 < lx->src->len && !end; i++)
        if (lx->src->s[i] == '#' && lx->src->s[i + 1] == '}')
            end = lx->src->s + i;
    if (!end)
        return lex_fail(lx, start, "comment {# is never closed with #}");
    size_t len = (size_t)(end - body);
    int strip_after = len > 0 && body[len - 1] == '-';
    if (strip_before)
        strip_text_before(lx);
    int rc = push(lx, JT_COMMENT, body, len - (size_t)strip_after, start);
    lx->pos = (size_t)(end - lx->src->s) + 2;
    if (strip_after)
        skip_whitespace(lx);
    return rc;
}

/* Plain text up to the next {% {{ {# (or the end). */
static size_t text_end(const lexer *lx)
{
    const lined_text *t = lx->src;
    for (size_t i = lx->pos; i + 1 < t->len; i++)
        if (t->s[i] == '{' && (t->s[i + 1] == '%' || t->s[i + 1] == '{' || t->s[i + 1] == '#'))
            return i;
    return t->len;
}

static int hex_value(const char *s, size_t n, uint32_t *v)
{
    *v = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return -1;
        *v = *v << 4 | (uint32_t)d;
    }
    return 0;
}

/* One escape after a backslash at s[i]: appends its UTF-8 to out, returns the bytes
 * it spans (without the backslash), 0 when invalid. \uD83D\uDE00 pairs combine; a
 * lone surrogate becomes U+FFFD, as it does when JS writes it out as UTF-8. */
static size_t unescape(const lined_text *t, size_t i, char *out, size_t *out_len)
{
    static const char escaped[] = "ntrbfv'\"\\", meaning[] = "\n\t\r\b\f\v'\"\\";
    char c = i < t->len ? t->s[i] : '\0';
    const char *simple = c ? strchr(escaped, c) : NULL;
    if (simple) {
        out[(*out_len)++] = meaning[simple - escaped];
        return 1;
    }
    size_t digits = c == 'x' ? 2 : c == 'u' ? 4 : 0;
    uint32_t cp;
    if (!digits || i + 1 + digits > t->len || hex_value(t->s + i + 1, digits, &cp) != 0)
        return 0;
    size_t used = 1 + digits;
    if (cp >= 0xd800 && cp < 0xdc00 && i + used + 6 <= t->len && t->s[i + used] == '\\' &&
        t->s[i + used + 1] == 'u') {
        uint32_t low;
        if (hex_value(t->s + i + used + 2, 4, &low) == 0 && low >= 0xdc00 && low < 0xe000) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
            used += 6;
        }
    }
    if (cp >= 0xd800 && cp < 0xe000)
        cp = 0xfffd;
    *out_len += jj_utf8_put(cp, out + *out_len);
    return used;
}

static int lex_string(lexer *lx)
{
    const lined_text *t = lx->src;
    size_t start = lx->pos;
    char quote = t->s[lx->pos++];
    /* the value is never longer than the literal */
    size_t end = lx->pos;
    while (end < t->len && t->s[end] != quote)
        end += t->s[end] == '\\' ? 2 : 1;
    char *value = jj_alloc(lx->arena, end - lx->pos + 1);
    if (!value)
        return mp_fail(lx->err, MP_EXIT_IO, "%s: out of memory", lx->origin);
    size_t len = 0;
    while (lx->pos < t->len && t->s[lx->pos] != quote) {
        char c = t->s[lx->pos++];
        if (c != '\\') {
            value[len++] = c;
            continue;
        }
        size_t used = unescape(t, lx->pos, value, &len);
        if (!used)
            return lex_fail(lx, lx->pos - 1, "invalid escape \\%c in a string", peek(lx, 0));
        lx->pos += used;
    }
    if (lx->pos >= t->len)
        return lex_fail(lx, start, "string starting here is never closed");
    lx->pos++;
    return push(lx, JT_STRING, value, len, start);
}

static int is_word_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Digits, then ".digits" when allow_fraction; returns the end. */
static size_t number_end(const lexer *lx, size_t i, int allow_fraction)
{
    const lined_text *t = lx->src;
    while (i < t->len && is_digit(t->s[i]))
        i++;
    if (allow_fraction && i + 1 < t->len && t->s[i] == '.' && is_digit(t->s[i + 1])) {
        i++;
        while (i < t->len && is_digit(t->s[i]))
            i++;
    }
    return i;
}

/* A + or - where no operand precedes: a sign. Followed by digits it is part of the
 * number token ("-1"), as HF lexes it. */
static int lex_sign(lexer *lx)
{
    size_t start = lx->pos++;
    size_t end = number_end(lx, lx->pos, 1);
    if (end > lx->pos && end == lx->src->len)
        return lex_fail(lx, start, "unexpected end of template");
    jj_token_kind kind = end > lx->pos ? JT_NUMBER : JT_UNARY;
    lx->pos = end;
    return push(lx, kind, lx->src->s + start, end - start, start);
}

static const struct {
    const char *text;
    jj_token_kind kind;
} OPERATORS[] = {
    {"{%", JT_OPEN_STATEMENT}, {"%}", JT_CLOSE_STATEMENT}, {"{{", JT_OPEN_EXPRESSION},
    {"}}", JT_CLOSE_EXPRESSION}, {"(", JT_LPAREN}, {")", JT_RPAREN}, {"{", JT_LBRACE},
    {"}", JT_RBRACE}, {"[", JT_LBRACKET}, {"]", JT_RBRACKET}, {",", JT_COMMA}, {".", JT_DOT},
    {":", JT_COLON}, {"|", JT_PIPE}, {"<=", JT_COMPARISON}, {">=", JT_COMPARISON},
    {"==", JT_COMPARISON}, {"!=", JT_COMPARISON}, {"<", JT_COMPARISON}, {">", JT_COMPARISON},
    {"+", JT_ADDITIVE}, {"-", JT_ADDITIVE}, {"~", JT_ADDITIVE}, {"**", JT_POWER},
    {"*", JT_MULTIPLICATIVE}, {"//", JT_MULTIPLICATIVE}, {"/", JT_MULTIPLICATIVE},
    {"%", JT_MULTIPLICATIVE}, {"=", JT_EQUALS},
};

/* Operators and punctuation, first match in OPERATORS order; 0 when none matches. */
static int lex_operator(lexer *lx, int *matched)
{
    const lined_text *t = lx->src;
    for (size_t k = 0; k < sizeof OPERATORS / sizeof OPERATORS[0]; k++) {
        size_t n = strlen(OPERATORS[k].text);
        if (lx->pos + n > t->len || memcmp(t->s + lx->pos, OPERATORS[k].text, n) != 0)
            continue;
        if (OPERATORS[k].kind == JT_CLOSE_EXPRESSION && lx->brace_depth > 0)
            continue;
        if (OPERATORS[k].kind == JT_OPEN_EXPRESSION)
            lx->brace_depth = 0;
        else if (OPERATORS[k].kind == JT_LBRACE)
            lx->brace_depth++;
        else if (OPERATORS[k].kind == JT_RBRACE)
            lx->brace_depth--;
        *matched = 1;
        lx->pos += n;
        return push(lx, OPERATORS[k].kind, t->s + lx->pos - n, n, lx->pos - n);
    }
    *matched = 0;
    return MP_OK;
}

/* One token inside {% %} or {{ }} (after whitespace). */
static int lex_in_tag(lexer *lx)
{
    const lined_text *t = lx->src;
    char c = peek(lx, 0);
    jj_token_kind last = last_kind(lx);
    if (c == '-' && peek(lx, 2) == '}' && (peek(lx, 1) == '%' || peek(lx, 1) == '}')) {
        int rc = push(lx, peek(lx, 1) == '%' ? JT_CLOSE_STATEMENT : JT_CLOSE_EXPRESSION, t->s + lx->pos + 1, 2,
                      lx->pos);
        lx->pos += 3;
        skip_whitespace(lx);
        return rc;
    }
    if (c == '-' || c == '+') {
        if (lx->n == 0 || last == JT_TEXT)
            return lex_fail(lx, lx->pos, "unexpected character '%c'", c);
        if (last != JT_NAME && last != JT_NUMBER && last != JT_STRING && last != JT_RPAREN &&
            last != JT_RBRACKET)
            return lex_sign(lx);
    }
    int matched, rc = lex_operator(lx, &matched);
    if (rc != MP_OK || matched)
        return rc;
    size_t start = lx->pos;
    if (c == '\'' || c == '"')
        return lex_string(lx);
    if (is_digit(c)) {
        size_t end = number_end(lx, lx->pos, last != JT_DOT);
        if (end == t->len)
            return lex_fail(lx, start, "unexpected end of template");
        lx->pos = end;
        return push(lx, JT_NUMBER, t->s + start, end - start, start);
    }
    if (is_word_char(c)) {
        while (lx->pos < t->len && is_word_char(t->s[lx->pos]))
            lx->pos++;
        if (lx->pos == t->len)
            return lex_fail(lx, start, "unexpected end of template");
        return push(lx, JT_NAME, t->s + start, lx->pos - start, start);
    }
    if ((unsigned char)c >= 0x80)
        return lex_fail(lx, lx->pos, "unexpected character '%.*s'", (int)jj_char_len(t->s + lx->pos, t->len - lx->pos),
                        t->s + lx->pos);
    return lex_fail(lx, lx->pos, "unexpected character '%c'", c);
}

static int lex_all(lexer *lx)
{
    const lined_text *t = lx->src;
    while (lx->pos < t->len) {
        jj_token_kind last = last_kind(lx);
        int in_text = lx->n == 0 || last == JT_CLOSE_STATEMENT || last == JT_CLOSE_EXPRESSION || last == JT_COMMENT;
        if (in_text) {
            size_t end = text_end(lx);
            if (end > lx->pos) {
                int rc = push(lx, JT_TEXT, t->s + lx->pos, end - lx->pos, lx->pos);
                lx->pos = end;
                if (rc != MP_OK)
                    return rc;
                continue;
            }
        }
        int rc = MP_OK;
        if (peek(lx, 0) == '{' && peek(lx, 1) == '#') {
            rc = lex_comment(lx);
        } else if (peek(lx, 0) == '{' && peek(lx, 2) == '-' && (peek(lx, 1) == '%' || peek(lx, 1) == '{')) {
            strip_text_before(lx);
            if (peek(lx, 1) == '{')
                lx->brace_depth = 0;
            rc = push(lx, peek(lx, 1) == '%' ? JT_OPEN_STATEMENT : JT_OPEN_EXPRESSION, t->s + lx->pos, 2, lx->pos);
            lx->pos += 3;
        } else {
            skip_whitespace(lx);
            if (lx->pos == t->len)
                return lex_fail(lx, t->len, "unexpected end of template inside a tag");
            rc = lex_in_tag(lx);
        }
        if (rc != MP_OK)
            return rc;
    }
    return MP_OK;
}

int jj_tokenize(const char *source, size_t len, const char *origin, jj_arena *arena, jj_token **tokens,
                size_t *n_tokens, mp_error *err)
{
    *tokens = NULL;
    *n_tokens = 0;
    lined_text passes[4] = {{0}};
    int rc = MP_OK;
    for (int k = 0; k < 4 && rc == MP_OK; k++)
        if (lined_alloc(&passes[k], len) != 0)
            rc = mp_fail(err, MP_EXIT_IO, "%s: out of memory", origin);
    if (rc == MP_OK) {
        lined_text *given = &passes[0];
        int line = 1;
        for (size_t i = 0; i < len; i++) {
            given->s[i] = source[i];
            given->line[i] = line;
            line += source[i] == '\n';
        }
        given->len = len > 0 && source[len - 1] == '\n' ? len - 1 : len;
        strip_block_indent(&passes[0], &passes[1]);
        drop_newline_after_blocks(&passes[1], &passes[2]);
        drop_generation_tags(&passes[2], &passes[3]);
    }
    /* tokens point into the final text, which lives as long as the template */
    lined_text src = passes[3];
    char *kept = rc == MP_OK ? jj_alloc(arena, src.len + 1) : NULL;
    if (rc == MP_OK && !kept)
        rc = mp_fail(err, MP_EXIT_IO, "%s: out of memory", origin);
    if (rc == MP_OK) {
        memcpy(kept, src.s, src.len);
        src.s = kept;
        lexer lx = {.src = &src, .arena = arena, .origin = origin, .err = err};
        rc = lex_all(&lx);
        if (rc == MP_OK) {
            *tokens = lx.tokens;
            *n_tokens = lx.n;
        } else {
            free(lx.tokens);
        }
    }
    for (int k = 0; k < 4; k++)
        lined_free(&passes[k]);
    return rc;
}
