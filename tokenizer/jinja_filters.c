/* Filters (x | name(args)), as @huggingface/jinja applies them to each type, plus a
 * few of Jinja2's it lacks (count, d, e/escape, select, reject; first, last, list and
 * reverse on strings). A filter that does not apply to its operand's type is an error,
 * as it is in HF; one this file does not know is "not supported". */
#include <math.h>
#include <string.h>

#include "jinja_internal.h"

static jj_value wrong_type(jj_render *r, const jj_node *at, jj_str name, jj_value v)
{
    return jj_fail(r, at, "filter '%.*s' does not apply to %s", (int)name.len, name.s, jj_kind_name(v));
}

jj_value jj_characters(jj_render *r, jj_str s)
{
    jj_value out = jj_array_new(&r->arena, jj_char_count(s));
    for (size_t i = 0, k = 0; out.kind == JV_ARRAY && i < s.len; k++) {
        size_t n = jj_char_len(s.s + i, s.len - i);
        out.as.array->items[k] = jj_string_ref(s.s + i, n);
        i += n;
    }
    return out;
}

jj_value jj_attribute_path(jj_value item, jj_str path)
{
    jj_value v = item;
    size_t start = 0;
    while (start <= path.len) {
        const char *dot = memchr(path.s + start, '.', path.len - start);
        size_t end = dot ? (size_t)(dot - path.s) : path.len;
        jj_str part = {path.s + start, end - start};
        if (v.kind == JV_OBJECT || v.kind == JV_NAMESPACE) {
            jj_value *found = jj_object_get(v.as.object, part.s, part.len);
            v = found ? *found : jj_undefined();
        } else if (v.kind == JV_ARRAY) {
            double i = jj_parse_int(part.s, part.len);
            if (!(i >= 0 && i < (double)v.as.array->len))
                return jj_undefined();
            v = v.as.array->items[(size_t)i];
        } else {
            return jj_undefined();
        }
        start = end + 1;
    }
    return v;
}

/* ---- to text ---- */

static jj_value tojson(jj_render *r, const jj_node *at, jj_value v, const jj_args *args)
{
    jj_json_style style = {0, ", ", ": ", 0, 0, 1};
    if (args->n_pos)
        return jj_fail(r, at, "tojson takes keyword arguments only (indent=, ensure_ascii=, sort_keys=, separators=)");
    const jj_value *indent = jj_arg(args, 0, "indent"), *ascii = jj_arg(args, 0, "ensure_ascii"),
                   *sort = jj_arg(args, 0, "sort_keys"), *seps = jj_arg(args, 0, "separators");
    if (indent && indent->kind == JV_INT && indent->as.number < 0)
        return jj_fail(r, at, "tojson indent must not be negative");
    if (indent && indent->kind == JV_INT && indent->as.number > 0)
        style.indent = indent->as.number > 64 ? 64 : (int)indent->as.number;
    else if (indent && indent->kind != JV_INT && indent->kind != JV_NULL)
        return jj_fail(r, at, "tojson indent must be an integer or none");
    if ((ascii && ascii->kind != JV_BOOL) || (sort && sort->kind != JV_BOOL))
        return jj_fail(r, at, "tojson ensure_ascii and sort_keys must be booleans");
    style.ensure_ascii = ascii && ascii->as.boolean;
    style.sort_keys = sort && sort->as.boolean;
    if (style.indent)
        style.item_sep = ",";
    /* separators: (item, key) strings, which the arena keeps NUL-free copies of */
    if (seps && seps->kind == JV_ARRAY && seps->as.array->len == 2 && seps->as.array->items[0].kind == JV_STRING &&
        seps->as.array->items[1].kind == JV_STRING) {
        const char *sep[2];
        for (int i = 0; i < 2; i++) {
            jj_str s = seps->as.array->items[i].as.str;
            char *copy = jj_alloc(&r->arena, s.len + 1);
            if (!copy)
                return jj_undefined();
            memcpy(copy, s.s, s.len);
            sep[i] = copy;
        }
        style.item_sep = sep[0];
        style.key_sep = sep[1];
    } else if (seps && seps->kind != JV_NULL) {
        return jj_fail(r, at, "tojson separators must be two strings");
    }
    jj_buf b = {0};
    if (jj_write_json(&b, v, &style, 0) != 0) {
        jj_buf_free(&b);
        return jj_fail(r, at, "tojson cannot write a function, or a value nested this deep");
    }
    return jj_buf_to_string(r, at, &b);
}

static jj_value to_string(jj_render *r, const jj_node *at, jj_str name, jj_value v)
{
    if (v.kind == JV_STRING)
        return v;
    if (v.kind == JV_NULL || v.kind == JV_UNDEFINED || v.kind == JV_FUNCTION)
        return wrong_type(r, at, name, v);
    jj_buf b = {0};
    jj_write_value(&b, v);
    return jj_buf_to_string(r, at, &b);
}

/* join(separator=""): a list's items as JS joins them (none and undefined as ""), or
 * a string's characters. */
static jj_value join(jj_render *r, const jj_node *at, jj_str name, jj_value v, const jj_args *args)
{
    const jj_value *sep = jj_arg(args, 0, "separator");
    if (sep && sep->kind != JV_STRING)
        return jj_fail(r, at, "join's separator must be a string");
    jj_value items = v.kind == JV_STRING ? jj_characters(r, v.as.str) : v;
    if (items.kind != JV_ARRAY)
        return wrong_type(r, at, name, v);
    jj_buf b = {0};
    for (size_t i = 0; i < items.as.array->len; i++) {
        jj_value item = items.as.array->items[i];
        if (i && sep)
            jj_buf_put(&b, sep->as.str.s, sep->as.str.len);
        if (item.kind != JV_NULL && item.kind != JV_UNDEFINED && jj_write_raw(&b, item) != 0) {
            jj_buf_free(&b);
            return jj_fail(r, at, "join cannot write a function");
        }
    }
    return jj_buf_to_string(r, at, &b);
}

/* indent(width=4, first=false, blank=false): every line but the first and the empty ones. */
static jj_value indent(jj_render *r, const jj_node *at, jj_str name, jj_value v, const jj_args *args)
{
    if (v.kind != JV_STRING)
        return wrong_type(r, at, name, v);
    const jj_value *width = jj_arg(args, 0, "width"), *first = jj_arg(args, 1, "first"),
                   *blank = jj_arg(args, 2, "blank");
    if (width && width->kind != JV_INT && width->kind != JV_STRING)
        return jj_fail(r, at, "indent width must be an integer or a string");
    jj_buf pad = {0}, b = {0};
    if (width && width->kind == JV_STRING)
        jj_buf_put(&pad, width->as.str.s, width->as.str.len);
    for (double i = 0; (!width || width->kind == JV_INT) && i < (width ? fmin(width->as.number, 1024) : 4); i++)
        jj_buf_putc(&pad, ' ');
    jj_str s = v.as.str;
    for (size_t start = 0, line = 0; start <= s.len; line++) {
        const char *nl = memchr(s.s + start, '\n', s.len - start);
        size_t end = nl ? (size_t)(nl - s.s) : s.len;
        int skip = (line == 0 && !(first && jj_truthy(*first))) || (end == start && !(blank && jj_truthy(*blank)));
        if (line)
            jj_buf_putc(&b, '\n');
        if (!skip)
            jj_buf_put(&b, pad.data, pad.len);
        jj_buf_put(&b, s.s + start, end - start);
        start = end + 1;
    }
    jj_buf_free(&pad);
    return jj_buf_to_string(r, at, &b);
}

/* e / escape: HTML special characters as Jinja2 (markupsafe) escapes them. */
static jj_value escape(jj_render *r, const jj_node *at, jj_str name, jj_value v)
{
    jj_value s = to_string(r, at, name, v);
    if (s.kind != JV_STRING)
        return s;
    jj_buf b = {0};
    for (size_t i = 0; i < s.as.str.len; i++) {
        char c = s.as.str.s[i];
        const char *entity = c == '&' ? "&amp;" : c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '"' ? "&#34;"
                           : c == '\'' ? "&#39;" : NULL;
        if (entity)
            jj_buf_puts(&b, entity);
        else
            jj_buf_putc(&b, c);
    }
    return jj_buf_to_string(r, at, &b);
}

/* ---- numbers ---- */

/* int(default=0) and float(default=0.0): JS's parseInt / parseFloat on strings. */
static jj_value to_number(jj_render *r, const jj_node *at, jj_str name, jj_value v, const jj_args *args, int to_int)
{
    const jj_value *fallback = jj_arg(args, 0, "default");
    jj_value zero = to_int ? jj_int(0) : jj_float(0);
    if (v.kind == JV_STRING) {
        double d = to_int ? jj_parse_int(v.as.str.s, v.as.str.len) : jj_parse_float(v.as.str.s, v.as.str.len);
        if (isnan(d))
            return fallback ? *fallback : zero;
        return to_int ? jj_int(d) : jj_float(d);
    }
    if (jj_is_number(v))
        return to_int ? jj_int(trunc(v.as.number) + 0.0) : jj_float(v.as.number);
    if (v.kind == JV_BOOL)
        return to_int ? jj_int(v.as.boolean) : jj_float(v.as.boolean);
    return wrong_type(r, at, name, v);
}

/* ---- lists ---- */

static jj_value reversed(jj_render *r, jj_value items)
{
    jj_value out = jj_array_new(&r->arena, items.as.array->len);
    for (size_t i = 0; out.kind == JV_ARRAY && i < items.as.array->len; i++)
        out.as.array->items[i] = items.as.array->items[items.as.array->len - 1 - i];
    return out;
}

static jj_value unique(jj_render *r, jj_value items)
{
    jj_value out = jj_array_new(&r->arena, items.as.array->len);
    if (out.kind != JV_ARRAY)
        return out;
    out.as.array->len = 0;
    for (size_t i = 0; i < items.as.array->len; i++) {
        jj_value item = items.as.array->items[i];
        int seen = 0;
        for (size_t k = 0; k < out.as.array->len && !seen; k++)
            seen = jj_strict_equal(out.as.array->items[k], item);
        if (!seen)
            out.as.array->items[out.as.array->len++] = item;
    }
    return out;
}

/* sort(reverse=false, case_sensitive=false, attribute=none) */
static jj_value sort(jj_render *r, const jj_node *at, jj_value items, const jj_args *args)
{
    const jj_value *reverse = jj_arg(args, 0, "reverse"), *case_sensitive = jj_arg(args, 1, "case_sensitive"),
                   *attribute = jj_arg(args, 2, "attribute");
    if ((reverse && reverse->kind != JV_BOOL) || (case_sensitive && case_sensitive->kind != JV_BOOL))
        return jj_fail(r, at, "sort's reverse and case_sensitive must be booleans");
    jj_sort_key key = {.item_index = -1, .case_sensitive = case_sensitive && case_sensitive->as.boolean,
                       .reverse = reverse && reverse->as.boolean};
    jj_buf path = {0};
    if (attribute && attribute->kind == JV_INT)
        jj_write_value(&path, *attribute);
    else if (attribute && attribute->kind == JV_STRING)
        jj_buf_put(&path, attribute->as.str.s, attribute->as.str.len);
    else if (attribute && attribute->kind != JV_NULL)
        return jj_fail(r, at, "sort's attribute must be a string, an integer or none");
    jj_value path_text = jj_buf_to_string(r, at, &path);
    if (attribute && attribute->kind != JV_NULL)
        key.attribute = &path_text.as.str;
    jj_value out = jj_array_new(&r->arena, items.as.array->len);
    if (out.kind != JV_ARRAY)
        return out;
    memcpy(out.as.array->items, items.as.array->items, items.as.array->len * sizeof(jj_value));
    jj_sort(r, at, out.as.array, &key);
    return out;
}

/* map(attribute='a.b', default=x) */
static jj_value map(jj_render *r, const jj_node *at, jj_value items, const jj_args *args)
{
    const jj_value *attribute = jj_arg(args, SIZE_MAX, "attribute"), *fallback = jj_arg(args, SIZE_MAX, "default");
    if (!attribute)
        return jj_fail(r, at, "filter 'map' without attribute= is not supported");
    if (attribute->kind != JV_STRING)
        return jj_fail(r, at, "map's attribute must be a string");
    jj_value out = jj_array_new(&r->arena, items.as.array->len);
    for (size_t i = 0; out.kind == JV_ARRAY && i < items.as.array->len; i++) {
        jj_value item = items.as.array->items[i];
        if (item.kind != JV_OBJECT && item.kind != JV_NAMESPACE)
            return jj_fail(r, at, "map(attribute=) needs a list of dicts, found %s", jj_kind_name(item));
        jj_value v = jj_attribute_path(item, attribute->as.str);
        out.as.array->items[i] = v.kind == JV_UNDEFINED && fallback ? *fallback : v;
    }
    return out;
}

/* select / reject (test, value) and selectattr / rejectattr (attribute, test, value):
 * the items for which the test holds (or fails); without a test, truthiness. */
static jj_value select_items(jj_render *r, const jj_node *at, jj_str name, jj_value items, const jj_args *args)
{
    int by_attribute = name.len > 6 && memcmp(name.s + name.len - 4, "attr", 4) == 0;
    int keep_passing = name.s[0] == 's';
    size_t first_arg = by_attribute ? 1 : 0;
    const jj_value *attribute = by_attribute ? jj_arg(args, 0, NULL) : NULL;
    const jj_value *test = jj_arg(args, first_arg, NULL), *value = jj_arg(args, first_arg + 1, NULL);
    if ((by_attribute && (!attribute || attribute->kind != JV_STRING)) || (test && test->kind != JV_STRING))
        return jj_fail(r, at, "filter '%.*s' takes %sa test name and a value as strings", (int)name.len, name.s,
                       by_attribute ? "an attribute, " : "");
    jj_value out = jj_array_new(&r->arena, items.as.array->len);
    if (out.kind != JV_ARRAY)
        return out;
    out.as.array->len = 0;
    for (size_t i = 0; i < items.as.array->len && !r->failed; i++) {
        jj_value item = items.as.array->items[i], v = item;
        int passed;
        if (by_attribute) {
            if (item.kind != JV_OBJECT && item.kind != JV_NAMESPACE)
                return jj_fail(r, at, "filter '%.*s' needs a list of dicts, found %s", (int)name.len, name.s,
                               jj_kind_name(item));
            jj_value *found = jj_object_get(item.as.object, attribute->as.str.s, attribute->as.str.len);
            v = found ? *found : jj_undefined();
            passed = found && (test ? jj_apply_test(r, at, test->as.str, v, value) == 1 : jj_truthy(v));
        } else {
            passed = test ? jj_apply_test(r, at, test->as.str, v, value) == 1 : jj_truthy(v);
        }
        if (passed == keep_passing)
            out.as.array->items[out.as.array->len++] = item;
    }
    return out;
}

/* ---- dispatch ---- */

static int named(jj_str name, const char *a, const char *b)
{
    return jj_str_eq(name, a) || (b && jj_str_eq(name, b));
}

static jj_value string_filter(jj_render *r, const jj_node *at, jj_str name, jj_value v, const jj_args *args)
{
    jj_str s = v.as.str;
    if (named(name, "length", "count"))
        return jj_int((double)jj_utf16_length(s));
    if (named(name, "trim", NULL)) {
        jj_str trimmed = jj_trim_end(jj_trim_start(s));
        return jj_string_ref(trimmed.s, trimmed.len);
    }
    if (named(name, "first", "last")) {
        jj_value chars = jj_characters(r, s);
        if (chars.kind != JV_ARRAY || chars.as.array->len == 0)
            return jj_undefined();
        return chars.as.array->items[name.s[0] == 'f' ? 0 : chars.as.array->len - 1];
    }
    if (named(name, "list", NULL))
        return jj_characters(r, s);
    if (named(name, "reverse", NULL)) {
        jj_value chars = jj_characters(r, s);
        return chars.kind == JV_ARRAY ? join(r, at, name, reversed(r, chars), &(jj_args){0}) : chars;
    }
    /* upper, lower, title, capitalize and replace are the string methods */
    static const char *const methods[] = {"upper", "lower", "title", "capitalize", "replace", NULL};
    for (const char *const *m = methods; *m; m++)
        if (jj_str_eq(name, *m)) {
            jj_function method = {.kind = JF_METHOD, .method = *m, .self = v};
            return jj_call_builtin(r, at, &method, args);
        }
    return wrong_type(r, at, name, v);
}

static jj_value list_filter(jj_render *r, const jj_node *at, jj_str name, jj_value v, const jj_args *args)
{
    jj_array *a = v.as.array;
    if (named(name, "length", "count"))
        return jj_int((double)a->len);
    if (named(name, "first", NULL))
        return a->len ? a->items[0] : jj_undefined();
    if (named(name, "last", NULL))
        return a->len ? a->items[a->len - 1] : jj_undefined();
    if (named(name, "list", NULL))
        return v;
    if (named(name, "reverse", NULL))
        return reversed(r, v);
    if (named(name, "unique", NULL))
        return unique(r, v);
    if (named(name, "sort", NULL))
        return sort(r, at, v, args);
    if (named(name, "map", NULL))
        return map(r, at, v, args);
    if (named(name, "select", "reject") || named(name, "selectattr", "rejectattr"))
        return select_items(r, at, name, v, args);
    return wrong_type(r, at, name, v);
}

static jj_value dict_filter(jj_render *r, const jj_node *at, jj_str name, jj_value v, const jj_args *args)
{
    if (named(name, "length", "count"))
        return jj_int((double)v.as.object->len);
    if (named(name, "list", NULL))
        return jj_object_keys(r, v.as.object);
    static const char *const methods[] = {"items", "keys", "values", "dictsort", NULL};
    for (const char *const *m = methods; *m; m++)
        if (jj_str_eq(name, *m)) {
            jj_function method = {.kind = JF_METHOD, .method = *m, .self = v};
            return jj_call_builtin(r, at, &method, args);
        }
    return wrong_type(r, at, name, v);
}

static const char *const KNOWN_FILTERS[] = {
    "safe", "tojson", "string", "default", "d", "join", "indent", "int", "float", "abs", "bool", "e", "escape",
    "length", "count", "trim", "first", "last", "list", "reverse", "upper", "lower", "title", "capitalize",
    "replace", "unique", "sort", "map", "select", "reject", "selectattr", "rejectattr", "items", "keys",
    "values", "dictsort", NULL};

jj_value jj_apply_filter(jj_render *r, const jj_node *at, jj_value v, jj_str name, const jj_args *args)
{
    const char *const *known = KNOWN_FILTERS;
    while (*known && !jj_str_eq(name, *known))
        known++;
    if (!*known)
        return jj_fail(r, at, "filter '%.*s' is not supported", (int)name.len, name.s);
    if (named(name, "safe", NULL))
        return v;
    if (named(name, "tojson", NULL))
        return tojson(r, at, v, args);
    if (named(name, "string", NULL))
        return to_string(r, at, name, v);
    if (named(name, "e", "escape"))
        return escape(r, at, name, v);
    if (named(name, "join", NULL))
        return join(r, at, name, v, args);
    if (named(name, "indent", NULL))
        return indent(r, at, name, v, args);
    if (named(name, "int", "float"))
        return to_number(r, at, name, v, args, name.s[0] == 'i');
    if (named(name, "default", "d")) {
        const jj_value *fallback = jj_arg(args, 0, NULL), *boolean = jj_arg(args, 1, "boolean");
        if (boolean && boolean->kind != JV_BOOL)
            return jj_fail(r, at, "default's boolean flag must be a boolean");
        if (v.kind == JV_UNDEFINED || (boolean && boolean->as.boolean && !jj_truthy(v)))
            return fallback ? *fallback : jj_string_ref("", 0);
        return v;
    }
    if (named(name, "abs", NULL) && jj_is_number(v))
        return v.kind == JV_INT ? jj_int(fabs(v.as.number)) : jj_float(fabs(v.as.number));
    if (named(name, "bool", NULL) && v.kind == JV_BOOL)
        return v;
    if (v.kind == JV_STRING)
        return string_filter(r, at, name, v, args);
    if (v.kind == JV_ARRAY)
        return list_filter(r, at, name, v, args);
    if (v.kind == JV_OBJECT)
        return dict_filter(r, at, name, v, args);
    return wrong_type(r, at, name, v);
}
