/* What templates call: string methods (s.strip(), s.split(...)...), dict methods
 * (d.get(), d.items()...), the global functions (namespace, range, raise_exception,
 * strftime_now) and the tests of `x is ...`, each as @huggingface/jinja defines it:
 * e.g. strip/lstrip/rstrip ignore their argument and trim whitespace. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "jinja_internal.h"

static const char *const STRING_METHODS[] = {"upper", "lower", "strip", "lstrip", "rstrip", "title", "capitalize",
                                             "startswith", "endswith", "split", "replace", NULL};
static const char *const DICT_METHODS[] = {"get", "items", "keys", "values", "dictsort", NULL};

static const char *find_name(const char *const *names, jj_str name)
{
    for (; *names; names++)
        if (jj_str_eq(name, *names))
            return *names;
    return NULL;
}

static jj_value bound_method(jj_render *r, jj_value self, const char *method)
{
    jj_function *fn = jj_alloc(&r->arena, sizeof *fn);
    if (!fn)
        return jj_undefined();
    fn->kind = JF_METHOD;
    fn->method = method;
    fn->self = self;
    return (jj_value){.kind = JV_FUNCTION, .as.function = fn};
}

jj_value jj_builtin_attribute(jj_render *r, jj_value v, jj_str name)
{
    const char *method = NULL;
    if (v.kind == JV_STRING && jj_str_eq(name, "length"))
        return jj_int((double)jj_utf16_length(v.as.str));
    if (v.kind == JV_ARRAY && jj_str_eq(name, "length"))
        return jj_int((double)v.as.array->len);
    if (v.kind == JV_STRING)
        method = find_name(STRING_METHODS, name);
    else if (v.kind == JV_OBJECT)
        method = find_name(DICT_METHODS, name);
    return method ? bound_method(r, v, method) : jj_undefined();
}

/* ---- strings ---- */

static int is_ascii_word(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static char ascii_upper(char c)
{
    return c >= 'a' && c <= 'z' ? (char)(c - 32) : c;
}

static char ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

/* upper, lower, title (HF's: the first word character after a non-word one goes up,
 * the rest stays) and capitalize (the first character up, the rest stays). Case
 * changes are ASCII only. */
static jj_value change_case(jj_render *r, jj_str s, const char *how)
{
    char *out = jj_alloc(&r->arena, s.len + 1);
    if (!out)
        return jj_undefined();
    for (size_t i = 0; i < s.len; i++) {
        char c = s.s[i];
        if (how[0] == 'u')
            c = ascii_upper(c);
        else if (how[0] == 'l')
            c = ascii_lower(c);
        else if (how[0] == 't' && (i == 0 || !is_ascii_word(s.s[i - 1])))
            c = ascii_upper(c);
        else if (how[0] == 'c' && i == 0)
            c = ascii_upper(c);
        out[i] = c;
    }
    return jj_string_ref(out, s.len);
}

static int has_prefix(jj_str s, jj_str p)
{
    return p.len <= s.len && memcmp(s.s, p.s, p.len) == 0;
}

static int has_suffix(jj_str s, jj_str p)
{
    return p.len <= s.len && memcmp(s.s + s.len - p.len, p.s, p.len) == 0;
}

/* startswith / endswith: a string, or a list of strings any of which may match. */
static jj_value starts_or_ends(jj_render *r, const jj_node *at, jj_str s, const jj_args *args, int ends)
{
    const jj_value *pattern = jj_arg(args, 0, NULL);
    int (*matches)(jj_str, jj_str) = ends ? has_suffix : has_prefix;
    if (pattern && pattern->kind == JV_STRING)
        return jj_bool(matches(s, pattern->as.str));
    if (pattern && pattern->kind == JV_ARRAY) {
        for (size_t i = 0; i < pattern->as.array->len; i++) {
            jj_value item = pattern->as.array->items[i];
            if (item.kind != JV_STRING)
                return jj_fail(r, at, "%s() takes strings", ends ? "endswith" : "startswith");
            if (matches(s, item.as.str))
                return jj_bool(1);
        }
        return jj_bool(0);
    }
    return jj_fail(r, at, "%s() takes a string or a list of strings", ends ? "endswith" : "startswith");
}

static size_t find_text(jj_str s, size_t from, jj_str needle)
{
    for (size_t i = from; i + needle.len <= s.len; i++)
        if (memcmp(s.s + i, needle.s, needle.len) == 0)
            return i;
    return SIZE_MAX;
}

/* Python's str.split(sep=None, maxsplit=-1). */
static jj_value split(jj_render *r, const jj_node *at, jj_str s, const jj_args *args)
{
    const jj_value *sep = jj_arg(args, 0, NULL), *max = jj_arg(args, 1, NULL);
    if (args->n_kw || (sep && sep->kind != JV_STRING && sep->kind != JV_NULL) || (max && max->kind != JV_INT))
        return jj_fail(r, at, "split() takes a string or none, then an integer");
    double max_splits = max ? max->as.number : -1;
    int by_space = !sep || sep->kind == JV_NULL;
    if (!by_space && sep->as.str.len == 0)
        return jj_fail(r, at, "split() with an empty separator");
    /* pieces go into a list as large as the string could need */
    jj_value out = jj_array_new(&r->arena, s.len + 1);
    if (out.kind != JV_ARRAY)
        return out;
    jj_array *pieces = out.as.array;
    pieces->len = 0;
    if (by_space) {
        jj_str rest = jj_trim_start(s);
        while (rest.len > 0) {
            if (max_splits >= 0 && (double)pieces->len >= max_splits) {
                pieces->items[pieces->len++] = jj_string_ref(rest.s, rest.len);
                break;
            }
            size_t word = 0;
            while (word < rest.len && jj_space_at(rest.s + word, rest.len - word) == 0)
                word += jj_char_len(rest.s + word, rest.len - word);
            pieces->items[pieces->len++] = jj_string_ref(rest.s, word);
            rest = jj_trim_start((jj_str){rest.s + word, rest.len - word});
        }
        return out;
    }
    size_t from = 0, hit;
    while ((max_splits < 0 || (double)pieces->len < max_splits) && (hit = find_text(s, from, sep->as.str)) != SIZE_MAX) {
        pieces->items[pieces->len++] = jj_string_ref(s.s + from, hit - from);
        from = hit + sep->as.str.len;
    }
    pieces->items[pieces->len++] = jj_string_ref(s.s + from, s.len - from);
    return out;
}

/* Python's str.replace(old, new, count=None); an empty old matches between characters. */
static jj_value replace(jj_render *r, const jj_node *at, jj_str s, const jj_args *args)
{
    const jj_value *old = jj_arg(args, 0, NULL), *new = jj_arg(args, 1, NULL), *count = jj_arg(args, 2, "count");
    if (!old || !new || old->kind != JV_STRING || new->kind != JV_STRING)
        return jj_fail(r, at, "replace() takes two strings");
    if (count && count->kind != JV_INT && count->kind != JV_NULL)
        return jj_fail(r, at, "replace() count must be an integer or none");
    double left = !count || count->kind == JV_NULL || count->as.number < 0 ? INFINITY : count->as.number;
    jj_str from = old->as.str, to = new->as.str;
    jj_buf b = {0};
    size_t i = 0;
    while (i <= s.len && left > 0) {
        size_t hit = from.len ? find_text(s, i, from) : i;
        if (hit == SIZE_MAX)
            break;
        jj_buf_put(&b, s.s + i, hit - i);
        jj_buf_put(&b, to.s, to.len);
        left--;
        if (from.len) {
            i = hit + from.len;
        } else if (hit < s.len) { /* keep one character, then match again after it */
            size_t n = jj_char_len(s.s + hit, s.len - hit);
            jj_buf_put(&b, s.s + hit, n);
            i = hit + n;
        } else {
            i = s.len + 1;
        }
    }
    if (i < s.len)
        jj_buf_put(&b, s.s + i, s.len - i);
    if (s.len == 0 && b.len == 0)
        return jj_string_ref("", 0);
    return jj_buf_to_string(r, at, &b);
}

static jj_value string_method(jj_render *r, const jj_node *at, const char *name, jj_str s, const jj_args *args)
{
    if (!strcmp(name, "upper") || !strcmp(name, "lower") || !strcmp(name, "title") || !strcmp(name, "capitalize"))
        return change_case(r, s, name);
    if (!strcmp(name, "strip") || !strcmp(name, "lstrip") || !strcmp(name, "rstrip")) {
        jj_str t = name[0] == 'r' ? s : jj_trim_start(s);
        t = name[0] == 'l' ? t : jj_trim_end(t);
        return jj_string_ref(t.s, t.len);
    }
    if (!strcmp(name, "startswith") || !strcmp(name, "endswith"))
        return starts_or_ends(r, at, s, args, name[0] == 'e');
    if (!strcmp(name, "split"))
        return split(r, at, s, args);
    return replace(r, at, s, args);
}

/* ---- dicts ---- */

jj_value jj_object_items(jj_render *r, const jj_object *o)
{
    jj_value out = jj_array_new(&r->arena, o->len);
    for (size_t i = 0; out.kind == JV_ARRAY && i < o->len; i++) {
        jj_value pair = jj_array_new(&r->arena, 2);
        if (pair.kind == JV_ARRAY) {
            pair.as.array->items[0] = jj_string_ref(o->keys[i].s, o->keys[i].len);
            pair.as.array->items[1] = o->values[i];
        }
        out.as.array->items[i] = pair;
    }
    return out;
}

jj_value jj_object_keys(jj_render *r, const jj_object *o)
{
    jj_value out = jj_array_new(&r->arena, o->len);
    for (size_t i = 0; out.kind == JV_ARRAY && i < o->len; i++)
        out.as.array->items[i] = jj_string_ref(o->keys[i].s, o->keys[i].len);
    return out;
}

jj_value jj_object_values(jj_render *r, const jj_object *o)
{
    jj_value out = jj_array_new(&r->arena, o->len);
    for (size_t i = 0; out.kind == JV_ARRAY && i < o->len; i++)
        out.as.array->items[i] = o->values[i];
    return out;
}

/* dictsort(case_sensitive=false, by='key', reverse=false): the [key, value] pairs sorted. */
static jj_value dictsort(jj_render *r, const jj_node *at, const jj_object *o, const jj_args *args)
{
    const jj_value *case_sensitive = jj_arg(args, 0, "case_sensitive"), *by = jj_arg(args, 1, "by"),
                   *reverse = jj_arg(args, 2, "reverse");
    if ((case_sensitive && case_sensitive->kind != JV_BOOL) || (reverse && reverse->kind != JV_BOOL))
        return jj_fail(r, at, "dictsort's case_sensitive and reverse must be booleans");
    int by_value = 0;
    if (by && by->kind == JV_STRING && (jj_str_eq(by->as.str, "key") || jj_str_eq(by->as.str, "value")))
        by_value = jj_str_eq(by->as.str, "value");
    else if (by)
        return jj_fail(r, at, "dictsort's by must be 'key' or 'value'");
    jj_value items = jj_object_items(r, o);
    if (items.kind != JV_ARRAY)
        return items;
    jj_sort_key key = {.item_index = by_value, .case_sensitive = case_sensitive && case_sensitive->as.boolean,
                       .reverse = reverse && reverse->as.boolean};
    jj_sort(r, at, items.as.array, &key);
    return items;
}

static jj_value dict_method(jj_render *r, const jj_node *at, const char *name, const jj_object *o, const jj_args *args)
{
    if (!strcmp(name, "get")) {
        const jj_value *key = jj_arg(args, 0, NULL), *fallback = jj_arg(args, 1, NULL);
        if (!key || key->kind != JV_STRING || args->n_kw)
            return jj_fail(r, at, "get() takes a string key and an optional default");
        jj_value *v = jj_object_get(o, key->as.str.s, key->as.str.len);
        return v ? *v : fallback ? *fallback : jj_null();
    }
    if (!strcmp(name, "items"))
        return jj_object_items(r, o);
    if (!strcmp(name, "keys"))
        return jj_object_keys(r, o);
    if (!strcmp(name, "values"))
        return jj_object_values(r, o);
    return dictsort(r, at, o, args);
}

/* ---- global functions ---- */

/* range(stop), range(start, stop[, step]) */
static jj_value range(jj_render *r, const jj_node *at, const jj_args *args)
{
    double bounds[3] = {0, 0, 1};
    if (args->n_pos < 1 || args->n_pos > 3 || args->n_kw)
        return jj_fail(r, at, "range() takes 1 to 3 numbers");
    for (size_t i = 0; i < args->n_pos; i++) {
        if (!jj_is_number(args->pos[i]))
            return jj_fail(r, at, "range() takes numbers, not %s", jj_kind_name(args->pos[i]));
        bounds[args->n_pos == 1 ? 1 : i] = args->pos[i].as.number;
    }
    double start = bounds[0], stop = bounds[1], step = bounds[2];
    if (step == 0)
        return jj_fail(r, at, "range() step must not be zero");
    double count = ceil((stop - start) / step);
    if (!(count <= JJ_MAX_RANGE))
        return jj_fail(r, at, "range() of more than %d numbers", JJ_MAX_RANGE);
    jj_value out = jj_array_new(&r->arena, count > 0 ? (size_t)count : 0);
    size_t n = 0;
    for (double x = start; out.kind == JV_ARRAY && n < out.as.array->len && (step > 0 ? x < stop : x > stop); x += step)
        out.as.array->items[n++] = x == floor(x) ? jj_int(x) : jj_float(x);
    if (out.kind == JV_ARRAY)
        out.as.array->len = n;
    return out;
}

/* namespace(dict or [[key, value]...], key=value...) */
static jj_value namespace(jj_render *r, const jj_node *at, const jj_args *args)
{
    jj_value ns = jj_object_new(&r->arena, JV_NAMESPACE);
    if (ns.kind != JV_NAMESPACE)
        return ns;
    if (args->n_pos > 1)
        return jj_fail(r, at, "namespace() takes at most one positional argument");
    if (args->n_pos == 1) {
        jj_value from = args->pos[0];
        if (from.kind == JV_OBJECT) {
            for (size_t i = 0; i < from.as.object->len; i++)
                jj_object_set(&r->arena, ns.as.object, from.as.object->keys[i], from.as.object->values[i]);
        } else if (from.kind == JV_ARRAY) {
            for (size_t i = 0; i < from.as.array->len; i++) {
                jj_value pair = from.as.array->items[i];
                if (pair.kind != JV_ARRAY || pair.as.array->len != 2 || pair.as.array->items[0].kind != JV_STRING)
                    return jj_fail(r, at, "namespace() takes a dict or a list of [string, value] pairs");
                jj_object_set(&r->arena, ns.as.object, pair.as.array->items[0].as.str, pair.as.array->items[1]);
            }
        } else {
            return jj_fail(r, at, "namespace() takes a dict or a list of pairs, not %s", jj_kind_name(from));
        }
    }
    for (size_t k = 0; k < args->n_kw; k++)
        jj_object_set(&r->arena, ns.as.object, args->kw_names[k], args->kw_values[k]);
    return ns;
}

/* HF's strftime: %Y %m %d %b %B %H %M and %%; anything else stays as written. */
static jj_value strftime_now(jj_render *r, const jj_node *at, const jj_args *args)
{
    static const char *const months[] = {"January", "February", "March", "April", "May", "June", "July",
                                         "August", "September", "October", "November", "December"};
    const jj_value *format = jj_arg(args, 0, NULL);
    if (!format || format->kind != JV_STRING)
        return jj_fail(r, at, "strftime_now() takes a format string");
    jj_str f = format->as.str;
    const struct tm *t = &r->now;
    const char *month = months[t->tm_mon >= 0 && t->tm_mon < 12 ? t->tm_mon : 0];
    jj_buf b = {0};
    char field[32];
    for (size_t i = 0; i < f.len; i++) {
        char c = i + 1 < f.len && f.s[i] == '%' ? f.s[i + 1] : '\0';
        field[0] = '\0';
        if (c == 'Y')
            snprintf(field, sizeof field, "%d", t->tm_year + 1900);
        else if (c == 'm' || c == 'd' || c == 'H' || c == 'M')
            snprintf(field, sizeof field, "%02d",
                     c == 'm' ? t->tm_mon + 1 : c == 'd' ? t->tm_mday : c == 'H' ? t->tm_hour : t->tm_min);
        else if (c == 'b')
            snprintf(field, sizeof field, "%.3s", month);
        else if (c == 'B' || c == '%')
            snprintf(field, sizeof field, "%s", c == 'B' ? month : "%");
        if (field[0]) {
            jj_buf_puts(&b, field);
            i++;
        } else {
            jj_buf_putc(&b, f.s[i]);
        }
    }
    return jj_buf_to_string(r, at, &b);
}

static jj_value raise_exception(jj_render *r, const jj_node *at, const jj_args *args)
{
    jj_buf b = {0};
    const jj_value *message = jj_arg(args, 0, NULL);
    if (jj_write_raw(&b, message ? *message : jj_undefined()) != 0)
        jj_buf_puts(&b, "(a function)");
    jj_fail(r, at, "raise_exception: %.*s", b.len > 600 ? 600 : (int)b.len, b.data ? b.data : "");
    jj_buf_free(&b);
    return jj_undefined();
}

jj_value jj_call_builtin(jj_render *r, const jj_node *at, const jj_function *fn, const jj_args *args)
{
    switch (fn->kind) {
    case JF_RANGE:
        return range(r, at, args);
    case JF_NAMESPACE:
        return namespace(r, at, args);
    case JF_STRFTIME_NOW:
        return strftime_now(r, at, args);
    case JF_RAISE_EXCEPTION:
        return raise_exception(r, at, args);
    default:
        if (fn->self.kind == JV_STRING)
            return string_method(r, at, fn->method, fn->self.as.str, args);
        return dict_method(r, at, fn->method, fn->self.as.object, args);
    }
}

jj_scope *jj_global_scope(jj_render *r)
{
    static const struct {
        const char *name;
        jj_function_kind kind;
    } globals[] = {{"namespace", JF_NAMESPACE},
                   {"range", JF_RANGE},
                   {"raise_exception", JF_RAISE_EXCEPTION},
                   {"strftime_now", JF_STRFTIME_NOW}};
    jj_scope *scope = jj_scope_new(r, NULL);
    for (size_t i = 0; scope && i < sizeof globals / sizeof globals[0]; i++) {
        jj_function *fn = jj_alloc(&r->arena, sizeof *fn);
        if (!fn)
            return NULL;
        fn->kind = globals[i].kind;
        jj_scope_set(r, scope, (jj_str){globals[i].name, strlen(globals[i].name)},
                     (jj_value){.kind = JV_FUNCTION, .as.function = fn});
    }
    return scope;
}

/* ---- tests ---- */

static int is_case(jj_str s, int upper)
{
    for (size_t i = 0; i < s.len; i++)
        if (s.s[i] != (upper ? ascii_upper(s.s[i]) : ascii_lower(s.s[i])))
            return 0;
    return 1;
}

int jj_apply_test(jj_render *r, const jj_node *at, jj_str name, jj_value v, const jj_value *arg)
{
    jj_kind k = v.kind;
    if (jj_str_eq(name, "defined"))
        return k != JV_UNDEFINED;
    if (jj_str_eq(name, "undefined"))
        return k == JV_UNDEFINED;
    if (jj_str_eq(name, "none"))
        return k == JV_NULL;
    if (jj_str_eq(name, "boolean"))
        return k == JV_BOOL;
    if (jj_str_eq(name, "true") || jj_str_eq(name, "false"))
        return k == JV_BOOL && v.as.boolean == (name.s[0] == 't');
    if (jj_str_eq(name, "string"))
        return k == JV_STRING;
    if (jj_str_eq(name, "number"))
        return k == JV_INT || k == JV_FLOAT;
    if (jj_str_eq(name, "integer"))
        return k == JV_INT;
    if (jj_str_eq(name, "iterable"))
        return k == JV_ARRAY || k == JV_STRING;
    if (jj_str_eq(name, "mapping"))
        return k == JV_OBJECT;
    if (jj_str_eq(name, "sequence"))
        return k == JV_ARRAY || k == JV_OBJECT || k == JV_STRING;
    if (jj_str_eq(name, "callable"))
        return k == JV_FUNCTION;
    if (jj_str_eq(name, "odd") || jj_str_eq(name, "even")) {
        if (k != JV_INT) {
            jj_fail(r, at, "test '%.*s' needs an integer, not %s", (int)name.len, name.s, jj_kind_name(v));
            return -1;
        }
        return (fmod(v.as.number, 2) != 0) == (name.s[0] == 'o');
    }
    if (jj_str_eq(name, "lower") || jj_str_eq(name, "upper")) {
        if (k != JV_STRING) {
            jj_fail(r, at, "test '%.*s' needs a string, not %s", (int)name.len, name.s, jj_kind_name(v));
            return -1;
        }
        return is_case(v.as.str, name.s[0] == 'u');
    }
    if (jj_str_eq(name, "equalto") || jj_str_eq(name, "eq")) {
        if (!arg) {
            jj_fail(r, at, "test '%.*s' needs a value to compare with", (int)name.len, name.s);
            return -1;
        }
        return jj_strict_equal(v, *arg);
    }
    jj_fail(r, at, "test '%.*s' is not supported", (int)name.len, name.s);
    return -1;
}

/* ---- sorting ---- */

/* HF's compareRuntimeValues: numbers (and booleans) with numbers, strings with strings
 * (case-insensitively unless asked), none with none; anything else cannot be ordered. */
static int compare(jj_render *r, const jj_node *at, jj_value a, jj_value b, int case_sensitive)
{
    if (a.kind == JV_NULL && b.kind == JV_NULL)
        return 0;
    if (a.kind == JV_UNDEFINED && b.kind == JV_UNDEFINED)
        return 0;
    int a_num = jj_is_number(a) || a.kind == JV_BOOL, b_num = jj_is_number(b) || b.kind == JV_BOOL;
    if (a_num && b_num) {
        double x = a.kind == JV_BOOL ? a.as.boolean : a.as.number, y = b.kind == JV_BOOL ? b.as.boolean : b.as.number;
        return (x > y) - (x < y);
    }
    if (a.kind != JV_STRING || b.kind != JV_STRING) {
        jj_fail(r, at, "cannot order %s and %s", jj_kind_name(a), jj_kind_name(b));
        return 0;
    }
    size_t n = a.as.str.len < b.as.str.len ? a.as.str.len : b.as.str.len;
    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)a.as.str.s[i], y = (unsigned char)b.as.str.s[i];
        if (!case_sensitive) {
            x = (unsigned char)ascii_lower((char)x);
            y = (unsigned char)ascii_lower((char)y);
        }
        if (x != y)
            return x < y ? -1 : 1;
    }
    return (a.as.str.len > b.as.str.len) - (a.as.str.len < b.as.str.len);
}

/* The value an item sorts by under key. */
static jj_value sort_value(const jj_sort_key *key, jj_value item)
{
    if (key->item_index >= 0)
        return item.kind == JV_ARRAY && (size_t)key->item_index < item.as.array->len
                   ? item.as.array->items[key->item_index] : jj_undefined();
    return key->attribute ? jj_attribute_path(item, *key->attribute) : item;
}

static int ordered(jj_render *r, const jj_node *at, const jj_sort_key *key, jj_value a, jj_value b)
{
    int c = compare(r, at, sort_value(key, a), sort_value(key, b), key->case_sensitive);
    return key->reverse ? -c : c;
}

/* A stable merge sort (JS's sort is stable) of items[lo..hi) using tmp. */
static void merge_sort(jj_render *r, const jj_node *at, const jj_sort_key *key, jj_value *items, jj_value *tmp,
                       size_t lo, size_t hi)
{
    if (hi - lo < 2 || r->failed)
        return;
    size_t mid = lo + (hi - lo) / 2;
    merge_sort(r, at, key, items, tmp, lo, mid);
    merge_sort(r, at, key, items, tmp, mid, hi);
    size_t i = lo, j = mid, k = lo;
    while (i < mid && j < hi)
        tmp[k++] = ordered(r, at, key, items[j], items[i]) < 0 ? items[j++] : items[i++];
    while (i < mid)
        tmp[k++] = items[i++];
    while (j < hi)
        tmp[k++] = items[j++];
    memcpy(items + lo, tmp + lo, (hi - lo) * sizeof *items);
}

void jj_sort(jj_render *r, const jj_node *at, jj_array *items, const jj_sort_key *key)
{
    jj_value *tmp = items->len ? jj_alloc(&r->arena, items->len * sizeof *tmp) : NULL;
    if (items->len && !tmp)
        return;
    merge_sort(r, at, key, items->items, tmp, 0, items->len);
}
