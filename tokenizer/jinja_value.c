/* Template values: making them, dicts, truthiness, equality and how they print, all
 * as @huggingface/jinja (JavaScript underneath) does. */
#include <math.h>
#include <string.h>

#include "jinja_internal.h"

jj_value jj_undefined(void)
{
    return (jj_value){.kind = JV_UNDEFINED};
}

jj_value jj_null(void)
{
    return (jj_value){.kind = JV_NULL};
}

jj_value jj_bool(int b)
{
    return (jj_value){.kind = JV_BOOL, .as.boolean = b != 0};
}

jj_value jj_int(double n)
{
    return (jj_value){.kind = JV_INT, .as.number = n};
}

jj_value jj_float(double n)
{
    return (jj_value){.kind = JV_FLOAT, .as.number = n};
}

jj_value jj_string_ref(const char *s, size_t len)
{
    return (jj_value){.kind = JV_STRING, .as.str = {len ? s : "", len}};
}

jj_value jj_string_copy(jj_arena *a, const char *s, size_t len)
{
    if (len == 0)
        return jj_string_ref("", 0);
    char *copy = jj_alloc(a, len + 1);
    if (!copy)
        return jj_string_ref("", 0);
    memcpy(copy, s, len);
    return jj_string_ref(copy, len);
}

jj_value jj_array_new(jj_arena *a, size_t len)
{
    jj_array *array = jj_alloc(a, sizeof *array);
    jj_value *items = len ? jj_alloc(a, len * sizeof *items) : NULL;
    if (!array || (len && !items))
        return jj_undefined();
    array->len = len;
    array->items = items;
    for (size_t i = 0; i < len; i++)
        items[i] = jj_undefined();
    return (jj_value){.kind = JV_ARRAY, .as.array = array};
}

jj_value jj_object_new(jj_arena *a, jj_kind kind)
{
    jj_object *o = jj_alloc(a, sizeof *o);
    if (!o)
        return jj_undefined();
    return (jj_value){.kind = kind, .as.object = o};
}

jj_value *jj_object_get(const jj_object *o, const char *key, size_t len)
{
    for (size_t i = 0; i < o->len; i++)
        if (o->keys[i].len == len && memcmp(o->keys[i].s, key, len) == 0)
            return &o->values[i];
    return NULL;
}

int jj_object_set(jj_arena *a, jj_object *o, jj_str key, jj_value v)
{
    jj_value *slot = jj_object_get(o, key.s, key.len);
    if (slot) {
        *slot = v;
        return 0;
    }
    if (o->len == o->cap) {
        size_t cap = o->cap ? 2 * o->cap : 8;
        jj_str *keys = jj_alloc(a, cap * sizeof *keys);
        jj_value *values = jj_alloc(a, cap * sizeof *values);
        if (!keys || !values)
            return -1;
        if (o->len) {
            memcpy(keys, o->keys, o->len * sizeof *keys);
            memcpy(values, o->values, o->len * sizeof *values);
        }
        o->keys = keys;
        o->values = values;
        o->cap = cap;
    }
    o->keys[o->len] = key;
    o->values[o->len++] = v;
    return 0;
}

int jj_is_number(jj_value v)
{
    return v.kind == JV_INT || v.kind == JV_FLOAT;
}

int jj_str_eq(jj_str s, const char *cstr)
{
    size_t n = strlen(cstr);
    return s.len == n && memcmp(s.s, cstr, n) == 0;
}

int jj_truthy(jj_value v)
{
    switch (v.kind) {
    case JV_BOOL:
        return v.as.boolean;
    case JV_INT:
    case JV_FLOAT:
        return v.as.number != 0 && !isnan(v.as.number);
    case JV_STRING:
        return v.as.str.len > 0;
    case JV_ARRAY:
        return v.as.array->len > 0;
    case JV_OBJECT:
        return v.as.object->len > 0;
    case JV_NAMESPACE: /* a JS Map object: always true */
    case JV_FUNCTION:
        return 1;
    default:
        return 0;
    }
}

const char *jj_kind_name(jj_value v)
{
    static const char *const names[] = {"undefined", "none", "boolean", "integer", "float",
                                        "string", "list", "dict", "namespace", "function"};
    return names[v.kind];
}

/* ---- printing ---- */

static void write_number(jj_buf *b, double d)
{
    char text[32];
    jj_number_format(d, text);
    jj_buf_puts(b, text);
}

/* A float prints with ".0" when whole (1.0), as JS's toFixed(1) does below 1e21. */
static void write_float(jj_buf *b, double d)
{
    if (d == 0 && signbit(d)) {
        jj_buf_puts(b, "-0.0");
    } else if (isfinite(d) && d == floor(d) && fabs(d) < 1e21) {
        write_number(b, d);
        jj_buf_puts(b, ".0");
    } else {
        write_number(b, d);
    }
}

int jj_write_value(jj_buf *b, jj_value v)
{
    static const jj_json_style printing = {0, ", ", ": ", 0, 0, 0};
    switch (v.kind) {
    case JV_UNDEFINED:
        jj_buf_puts(b, "undefined");
        return 0;
    case JV_NULL:
        jj_buf_puts(b, "null");
        return 0;
    case JV_BOOL:
        jj_buf_puts(b, v.as.boolean ? "true" : "false");
        return 0;
    case JV_INT:
        write_number(b, v.as.number);
        return 0;
    case JV_FLOAT:
        write_float(b, v.as.number);
        return 0;
    case JV_STRING:
        jj_buf_put(b, v.as.str.s, v.as.str.len);
        return 0;
    case JV_FUNCTION:
        return -1;
    default:
        return jj_write_json(b, v, &printing, 0);
    }
}

int jj_write_raw(jj_buf *b, jj_value v)
{
    switch (v.kind) {
    case JV_FLOAT:
        write_number(b, v.as.number);
        return 0;
    case JV_ARRAY:
        for (size_t i = 0; i < v.as.array->len; i++) {
            if (i)
                jj_buf_putc(b, ',');
            if (jj_write_value(b, v.as.array->items[i]) != 0)
                return -1;
        }
        return 0;
    case JV_OBJECT:
    case JV_NAMESPACE:
        jj_buf_puts(b, "[object Map]");
        return 0;
    default:
        return jj_write_value(b, v);
    }
}

/* ---- equality ---- */

/* The JavaScript type of a value's underlying JS value. */
typedef enum { JS_UNDEFINED, JS_NULL, JS_BOOLEAN, JS_NUMBER, JS_STRING, JS_OBJECT } js_type;

static js_type js_type_of(jj_value v)
{
    switch (v.kind) {
    case JV_UNDEFINED:
        return JS_UNDEFINED;
    case JV_NULL:
        return JS_NULL;
    case JV_BOOL:
        return JS_BOOLEAN;
    case JV_INT:
    case JV_FLOAT:
        return JS_NUMBER;
    case JV_STRING:
        return JS_STRING;
    default:
        return JS_OBJECT;
    }
}

static const void *identity(jj_value v)
{
    return v.kind == JV_ARRAY ? (const void *)v.as.array
         : v.kind == JV_FUNCTION ? (const void *)v.as.function : (const void *)v.as.object;
}

static int same_type_equal(jj_value a, jj_value b, js_type t)
{
    switch (t) {
    case JS_BOOLEAN:
        return a.as.boolean == b.as.boolean;
    case JS_NUMBER:
        return a.as.number == b.as.number;
    case JS_STRING:
        return a.as.str.len == b.as.str.len && memcmp(a.as.str.s, b.as.str.s, a.as.str.len) == 0;
    case JS_OBJECT:
        return identity(a) == identity(b);
    default:
        return 1;
    }
}

int jj_strict_equal(jj_value a, jj_value b)
{
    js_type t = js_type_of(a);
    return t == js_type_of(b) && same_type_equal(a, b, t);
}

/* ToPrimitive of a list or dict: its String() text, as a string value in buf. */
static jj_value object_to_primitive(jj_value v, jj_buf *buf)
{
    if (v.kind == JV_FUNCTION)
        jj_buf_puts(buf, "function");
    else
        jj_write_raw(buf, v);
    return jj_string_ref(buf->data ? buf->data : "", buf->len);
}

/* IsLooselyEqual of ECMAScript, step by step. */
int jj_loose_equal(jj_value a, jj_value b)
{
    js_type ta = js_type_of(a), tb = js_type_of(b);
    if (ta == tb)
        return same_type_equal(a, b, ta);
    if ((ta == JS_NULL && tb == JS_UNDEFINED) || (ta == JS_UNDEFINED && tb == JS_NULL))
        return 1;
    if (ta == JS_NUMBER && tb == JS_STRING)
        return a.as.number == jj_string_to_number(b.as.str.s, b.as.str.len);
    if (ta == JS_STRING && tb == JS_NUMBER)
        return jj_loose_equal(b, a);
    if (ta == JS_BOOLEAN)
        return jj_loose_equal(jj_int(a.as.boolean), b);
    if (tb == JS_BOOLEAN)
        return jj_loose_equal(a, jj_int(b.as.boolean));
    if (ta == JS_OBJECT && (tb == JS_NUMBER || tb == JS_STRING)) {
        jj_buf buf = {0};
        int equal = jj_loose_equal(object_to_primitive(a, &buf), b);
        jj_buf_free(&buf);
        return equal;
    }
    if (tb == JS_OBJECT && (ta == JS_NUMBER || ta == JS_STRING))
        return jj_loose_equal(b, a);
    return 0;
}
