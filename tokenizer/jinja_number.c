/* JavaScript numbers as text: how @huggingface/jinja prints a number (JS's
 * Number.prototype.toString, shortest round-trip digits) and how it reads one from a
 * string (Number(), parseInt(s, 10), parseFloat()). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_internal.h"

/* The shortest decimal digits that read back as d (> 0, finite), and the exponent e
 * such that d = 0.DIGITS * 10^e. */
static void shortest_digits(double d, char *digits, int *point)
{
    char text[40];
    for (int precision = 1; precision <= 17; precision++) {
        snprintf(text, sizeof text, "%.*e", precision - 1, d);
        if (strtod(text, NULL) == d)
            break;
    }
    /* text is "D.DDDDe+XX" or "De+XX" */
    size_t n = 0;
    const char *p = text;
    for (; *p != 'e'; p++)
        if (*p != '.')
            digits[n++] = *p;
    while (n > 1 && digits[n - 1] == '0')
        n--;
    digits[n] = '\0';
    *point = atoi(p + 1) + 1;
}

void jj_number_format(double d, char *out)
{
    if (isnan(d)) {
        strcpy(out, "NaN");
        return;
    }
    if (d == 0) {
        strcpy(out, "0"); /* -0 too */
        return;
    }
    if (d < 0)
        *out++ = '-';
    d = fabs(d);
    if (isinf(d)) {
        strcpy(out, "Infinity");
        return;
    }
    char digits[24];
    int n;
    shortest_digits(d, digits, &n);
    int k = (int)strlen(digits);
    if (k <= n && n <= 21) {
        sprintf(out, "%s%.*s", digits, n - k, "000000000000000000000");
    } else if (0 < n && n <= 21) {
        sprintf(out, "%.*s.%s", n, digits, digits + n);
    } else if (-6 < n && n <= 0) {
        sprintf(out, "0.%.*s%s", -n, "000000", digits);
    } else {
        int e = n - 1;
        if (k == 1)
            sprintf(out, "%se%c%d", digits, e < 0 ? '-' : '+', abs(e));
        else
            sprintf(out, "%c.%se%c%d", digits[0], digits + 1, e < 0 ? '-' : '+', abs(e));
    }
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Length of the longest prefix of s that is a JS StrUnsignedDecimalLiteral without
 * "Infinity": digits [. digits] [exponent], or . digits [exponent]. */
static size_t decimal_prefix(const char *s, size_t len)
{
    size_t i = 0, int_digits = 0, frac_digits = 0;
    while (i < len && is_digit(s[i]))
        i++, int_digits++;
    if (i < len && s[i] == '.') {
        size_t j = i + 1;
        while (j < len && is_digit(s[j]))
            j++, frac_digits++;
        if (int_digits > 0 || frac_digits > 0)
            i = j;
    }
    if (int_digits == 0 && frac_digits == 0)
        return 0;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        size_t j = i + 1;
        if (j < len && (s[j] == '+' || s[j] == '-'))
            j++;
        size_t exp_start = j;
        while (j < len && is_digit(s[j]))
            j++;
        if (j > exp_start)
            i = j;
    }
    return i;
}

/* strtod of s[0..len), which holds a decimal literal. */
static double read_decimal(const char *s, size_t len)
{
    char buf[512];
    if (len >= sizeof buf) {
        char *copy = malloc(len + 1);
        if (!copy)
            return NAN;
        memcpy(copy, s, len);
        copy[len] = '\0';
        double d = strtod(copy, NULL);
        free(copy);
        return d;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    return strtod(buf, NULL);
}

static double read_radix(const char *s, size_t len, int radix)
{
    if (len == 0)
        return NAN;
    double d = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        int v = is_digit(c) ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : 99;
        if (v >= radix)
            return NAN;
        d = d * radix + v;
    }
    return d;
}

double jj_string_to_number(const char *s, size_t len)
{
    jj_str t = jj_trim_end(jj_trim_start((jj_str){s, len}));
    if (t.len == 0)
        return 0;
    if (t.len > 2 && t.s[0] == '0') {
        char x = t.s[1];
        int radix = x == 'x' || x == 'X' ? 16 : x == 'o' || x == 'O' ? 8 : x == 'b' || x == 'B' ? 2 : 0;
        if (radix)
            return read_radix(t.s + 2, t.len - 2, radix);
    }
    size_t sign = t.s[0] == '+' || t.s[0] == '-';
    double negate = t.s[0] == '-' ? -1 : 1;
    if (t.len - sign == 8 && memcmp(t.s + sign, "Infinity", 8) == 0)
        return negate * INFINITY;
    if (decimal_prefix(t.s + sign, t.len - sign) != t.len - sign)
        return NAN;
    return negate * read_decimal(t.s + sign, t.len - sign);
}

double jj_parse_int(const char *s, size_t len)
{
    jj_str t = jj_trim_start((jj_str){s, len});
    size_t sign = t.len > 0 && (t.s[0] == '+' || t.s[0] == '-');
    size_t digits = 0;
    while (sign + digits < t.len && is_digit(t.s[sign + digits]))
        digits++;
    if (digits == 0)
        return NAN;
    double d = read_decimal(t.s + sign, digits);
    return sign && t.s[0] == '-' ? -d : d;
}

double jj_parse_float(const char *s, size_t len)
{
    jj_str t = jj_trim_start((jj_str){s, len});
    size_t sign = t.len > 0 && (t.s[0] == '+' || t.s[0] == '-');
    double negate = sign && t.s[0] == '-' ? -1 : 1;
    if (t.len - sign >= 8 && memcmp(t.s + sign, "Infinity", 8) == 0)
        return negate * INFINITY;
    size_t n = decimal_prefix(t.s + sign, t.len - sign);
    if (n == 0)
        return NAN;
    return negate * read_decimal(t.s + sign, n);
}
