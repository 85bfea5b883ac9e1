/* JSON in and out of templates: tojson (and how lists and dicts print), written as
 * @huggingface/jinja writes it with JS's JSON.stringify underneath, and the context
 * given as jansson values turned into template values. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_internal.h"

/* JSON.stringify of a string; with ensure_ascii everything from 0x7f up becomes
 * \uXXXX (astral characters as two surrogates), as HF post-processes it. */
static void write_json_string(jj_buf *b, jj_str s, int ensure_ascii)
{
    char esc[16];
    jj_buf_putc(b, '"');
    for (size_t i = 0; i < s.len;) {
        unsigned char c = (unsigned char)s.s[i];
        const char *short_escape = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\b' ? "\\b" : c == '\f' ? "\\f"
                                 : c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
        if (short_escape) {
            jj_buf_puts(b, short_escape);
            i++;
        } else if (c < 0x20 || (ensure_ascii && c == 0x7f)) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            jj_buf_puts(b, esc);
            i++;
        } else if (c < 0x80 || !ensure_ascii) {
            jj_buf_putc(b, (char)c);
            i++;
        } else {
            uint32_t cp;
            i += jj_utf8_get(s.s + i, s.len - i, &cp);
            if (cp >= 0x10000)
                snprintf(esc, sizeof esc, "\\u%04x\\u%04x", 0xd800 + ((cp - 0x10000) >> 10),
                         0xdc00 + ((cp - 0x10000) & 0x3ff));
            else
                snprintf(esc, sizeof esc, "\\u%04x", cp);
            jj_buf_puts(b, esc);
        }
    }
    jj_buf_putc(b, '"');
}

/* "\n" and the indentation of one level of depth. */
static void write_padding(jj_buf *b, const jj_json_style *style, int depth)
{
    jj_buf_putc(b, '\n');
    for (long i = 0; i < (long)style->indent * depth; i++)
        jj_buf_putc(b, ' ');
}

static int write_array(jj_buf *b, const jj_array *a, const jj_json_style *style, int depth)
{
    jj_buf_putc(b, '[');
    for (size_t i = 0; i < a->len; i++) {
        if (i)
            jj_buf_puts(b, style->item_sep);
        if (style->indent)
            write_padding(b, style, depth + 1);
        if (jj_write_json(b, a->items[i], style, depth + 1) != 0)
            return -1;
    }
    if (style->indent && a->len)
        write_padding(b, style, depth);
    jj_buf_putc(b, ']');
    return 0;
}

/* The weight of a byte in ICU's root collation, which sort_keys follows (HF sorts keys
 * with JS's localeCompare): spaces and punctuation, then digits, then letters regardless
 * of case. Other bytes (non-ASCII) come after, in byte order: an approximation. */
static int primary_weight(unsigned char c)
{
    static const char order[] = " _-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$0123456789abcdefghijklmnopqrstuvwxyz";
    if (c >= 'A' && c <= 'Z')
        c = (unsigned char)(c + 32);
    const char *p = c ? strchr(order, c) : NULL;
    return p ? (int)(p - order) : 128 + c;
}

/* localeCompare on ASCII: letters compare without case first; among keys equal so, the
 * first lowercase letter where they differ orders first ("a" < "A" < "ab"). */
static int compare_keys(const void *x, const void *y)
{
    const jj_str *a = *(const jj_str *const *)x, *b = *(const jj_str *const *)y;
    size_t n = a->len < b->len ? a->len : b->len;
    for (size_t i = 0; i < n; i++) {
        int wa = primary_weight((unsigned char)a->s[i]), wb = primary_weight((unsigned char)b->s[i]);
        if (wa != wb)
            return wa < wb ? -1 : 1;
    }
    if (a->len != b->len)
        return a->len < b->len ? -1 : 1;
    for (size_t i = 0; i < n; i++)
        if (a->s[i] != b->s[i])
            return (unsigned char)a->s[i] > (unsigned char)b->s[i] ? -1 : 1; /* 'a' > 'A' in bytes */
    return 0;
}

static int write_object(jj_buf *b, const jj_object *o, const jj_json_style *style, int depth)
{
    /* the order to write the entries in: as set, or sorted by key */
    size_t *order = malloc((o->len ? o->len : 1) * sizeof *order);
    if (!order)
        return -1;
    for (size_t i = 0; i < o->len; i++)
        order[i] = i;
    if (style->sort_keys && o->len > 1) {
        const jj_str **keys = malloc(o->len * sizeof *keys);
        if (!keys) {
            free(order);
            return -1;
        }
        for (size_t i = 0; i < o->len; i++)
            keys[i] = &o->keys[i];
        qsort(keys, o->len, sizeof *keys, compare_keys);
        for (size_t i = 0; i < o->len; i++)
            order[i] = (size_t)(keys[i] - o->keys);
        free(keys);
    }
    int rc = 0;
    jj_buf_putc(b, '{');
    for (size_t k = 0; k < o->len && rc == 0; k++) {
        if (k)
            jj_buf_puts(b, style->item_sep);
        if (style->indent)
            write_padding(b, style, depth + 1);
        write_json_string(b, o->keys[order[k]], style->ensure_ascii);
        jj_buf_puts(b, style->key_sep);
        rc = jj_write_json(b, o->values[order[k]], style, depth + 1);
    }
    if (style->indent && o->len)
        write_padding(b, style, depth);
    jj_buf_putc(b, '}');
    free(order);
    return rc;
}

int jj_write_json(jj_buf *b, jj_value v, const jj_json_style *style, int depth)
{
    char number[32];
    if (depth > JJ_MAX_VALUE_DEPTH)
        return -1;
    switch (v.kind) {
    case JV_UNDEFINED:
        jj_buf_puts(b, style->undefined_as_null ? "null" : "undefined");
        return 0;
    case JV_NULL:
        jj_buf_puts(b, "null");
        return 0;
    case JV_BOOL:
        jj_buf_puts(b, v.as.boolean ? "true" : "false");
        return 0;
    case JV_INT:
    case JV_FLOAT:
        if (!isfinite(v.as.number)) {
            jj_buf_puts(b, "null");
            return 0;
        }
        jj_number_format(v.as.number, number);
        jj_buf_puts(b, number);
        return 0;
    case JV_STRING:
        write_json_string(b, v.as.str, style->ensure_ascii);
        return 0;
    case JV_ARRAY:
        return write_array(b, v.as.array, style, depth);
    case JV_OBJECT:
    case JV_NAMESPACE:
        return write_object(b, v.as.object, style, depth);
    default:
        return -1;
    }
}

/* ---- JSON in ---- */

/* Is key an array index ("0", "17", up to 2^32 - 2), which JS objects order first? */
static int is_array_index(const char *key, size_t len, double *index)
{
    if (len == 0 || len > 10 || (len > 1 && key[0] == '0'))
        return 0;
    double d = 0;
    for (size_t i = 0; i < len; i++) {
        if (key[i] < '0' || key[i] > '9')
            return 0;
        d = d * 10 + (key[i] - '0');
    }
    *index = d;
    return d <= 4294967294.0;
}

typedef struct {
    const char *key;
    size_t len;
    double index; /* for array-index keys */
    json_t *value;
} json_entry;

static int compare_indexes(const void *x, const void *y)
{
    double a = ((const json_entry *)x)->index, b = ((const json_entry *)y)->index;
    return (a > b) - (a < b);
}

static int object_from_json(jj_arena *a, json_t *j, jj_value *out, int depth)
{
    size_t n = json_object_size(j), n_index = 0, k = 0;
    json_entry *entries = malloc((n ? n : 1) * sizeof *entries);
    if (!entries)
        return -1;
    const char *key;
    size_t len;
    json_t *value;
    double index;
    /* array-index keys first (sorted below), then the others in their order */
    json_object_keylen_foreach(j, key, len, value) {
        if (is_array_index(key, len, &index))
            entries[n_index++] = (json_entry){key, len, index, value};
    }
    k = n_index;
    json_object_keylen_foreach(j, key, len, value) {
        if (!is_array_index(key, len, &index))
            entries[k++] = (json_entry){key, len, 0, value};
    }
    qsort(entries, n_index, sizeof *entries, compare_indexes);
    *out = jj_object_new(a, JV_OBJECT);
    int rc = out->kind == JV_OBJECT ? 0 : -1;
    for (size_t i = 0; i < n && rc == 0; i++) {
        jj_value item, copy = jj_string_copy(a, entries[i].key, entries[i].len);
        rc = jj_from_json(a, entries[i].value, &item, depth + 1);
        if (rc == 0)
            rc = jj_object_set(a, out->as.object, copy.as.str, item);
    }
    free(entries);
    return rc;
}

int jj_from_json(jj_arena *a, const json_t *j, jj_value *out, int depth)
{
    *out = jj_undefined();
    if (depth > JJ_MAX_VALUE_DEPTH)
        return -1;
    switch (json_typeof(j)) {
    case JSON_NULL:
        *out = jj_null();
        return 0;
    case JSON_TRUE:
    case JSON_FALSE:
        *out = jj_bool(json_is_true(j));
        return 0;
    case JSON_INTEGER:
        *out = jj_int((double)json_integer_value(j));
        return 0;
    case JSON_REAL: {
        /* JSON.parse gives 1.0 as the number 1, an integer to the template */
        double d = json_real_value(j);
        *out = isfinite(d) && d == floor(d) ? jj_int(d) : jj_float(d);
        return 0;
    }
    case JSON_STRING:
        *out = jj_string_copy(a, json_string_value(j), json_string_length(j));
        return a->failed ? -1 : 0;
    case JSON_ARRAY: {
        *out = jj_array_new(a, json_array_size(j));
        if (out->kind != JV_ARRAY)
            return -1;
        for (size_t i = 0; i < json_array_size(j); i++)
            if (jj_from_json(a, json_array_get(j, i), &out->as.array->items[i], depth + 1) != 0)
                return -1;
        return 0;
    }
    default:
        return object_from_json(a, (json_t *)j, out, depth);
    }
}
