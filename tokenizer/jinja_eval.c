/* Expressions: names and scopes, operators, attribute and index access, slices and
 * calls, with the semantics of @huggingface/jinja (JavaScript's == and number
 * arithmetic; `+` joins strings; `~` joins anything, undefined as ""). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_internal.h"

jj_value jj_fail(jj_render *r, const jj_node *at, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!r->failed)
        mp_fail(r->err, MP_EXIT_INPUT, "%s line %d: %s", r->tmpl->origin, at ? at->line : 1, msg);
    r->failed = 1;
    return jj_undefined();
}

int jj_step(jj_render *r, const jj_node *at)
{
    if (r->failed)
        return -1;
    if (r->arena.failed) {
        jj_fail(r, at, "rendering needs more than %llu MiB of memory", (unsigned long long)(JJ_MAX_ARENA >> 20));
        return -1;
    }
    if (++r->steps > JJ_MAX_STEPS) {
        jj_fail(r, at, "rendering takes more than %llu steps", (unsigned long long)JJ_MAX_STEPS);
        return -1;
    }
    return 0;
}

/* ---- scopes ---- */

jj_scope *jj_scope_new(jj_render *r, jj_scope *parent)
{
    jj_scope *s = jj_alloc(&r->arena, sizeof *s);
    if (s)
        s->parent = parent;
    return s;
}

jj_value jj_lookup(jj_scope *scope, jj_str name)
{
    for (; scope; scope = scope->parent) {
        jj_value *v = jj_object_get(&scope->vars, name.s, name.len);
        if (v)
            return *v;
    }
    return jj_undefined();
}

void jj_scope_set(jj_render *r, jj_scope *scope, jj_str name, jj_value v)
{
    jj_object_set(&r->arena, &scope->vars, name, v); /* a refusal shows at the next step */
}

/* ---- arguments ---- */

jj_args jj_eval_args(jj_render *r, jj_scope *scope, const jj_list *args)
{
    jj_args a = {0};
    size_t n_kw = 0;
    for (size_t i = 0; i < args->len; i++)
        n_kw += args->items[i]->kind == JN_KWARG;
    size_t n_pos = args->len - n_kw;
    a.pos = n_pos ? jj_alloc(&r->arena, n_pos * sizeof *a.pos) : NULL;
    a.kw_names = n_kw ? jj_alloc(&r->arena, n_kw * sizeof *a.kw_names) : NULL;
    a.kw_values = n_kw ? jj_alloc(&r->arena, n_kw * sizeof *a.kw_values) : NULL;
    if ((n_pos && !a.pos) || (n_kw && (!a.kw_names || !a.kw_values)))
        return (jj_args){0};
    for (size_t i = 0; i < args->len; i++) {
        const jj_node *arg = args->items[i];
        if (arg->kind != JN_KWARG) {
            a.pos[a.n_pos++] = jj_eval(r, scope, arg);
            continue;
        }
        for (size_t k = 0; k < a.n_kw; k++)
            if (a.kw_names[k].len == arg->name.len && memcmp(a.kw_names[k].s, arg->name.s, arg->name.len) == 0)
                jj_fail(r, arg, "keyword argument '%.*s' given twice", (int)arg->name.len, arg->name.s);
        a.kw_names[a.n_kw] = arg->name;
        a.kw_values[a.n_kw++] = jj_eval(r, scope, arg->right);
    }
    return a;
}

const jj_value *jj_arg(const jj_args *a, size_t i, const char *name)
{
    if (i < a->n_pos)
        return &a->pos[i];
    for (size_t k = 0; name && k < a->n_kw; k++)
        if (jj_str_eq(a->kw_names[k], name))
            return &a->kw_values[k];
    return NULL;
}

jj_value jj_buf_to_string(jj_render *r, const jj_node *at, jj_buf *b)
{
    if (b->failed) {
        jj_buf_free(b);
        return jj_fail(r, at, "text longer than %u MiB", JJ_MAX_OUTPUT >> 20);
    }
    jj_value v = jj_string_copy(&r->arena, b->data, b->len);
    jj_buf_free(b);
    return v;
}

/* ---- attribute, index, slice ---- */

/* The UTF-16 code unit at index of s, as a one-character string (JS's s.at(i)); half
 * of a surrogate pair becomes U+FFFD, as JS writes a lone surrogate in UTF-8. */
static jj_value string_at(jj_str s, double index)
{
    double units = (double)jj_utf16_length(s);
    if (isnan(index)) /* JS's at() reads NaN as 0 */
        index = 0;
    if (index < 0)
        index += units;
    if (index < 0 || index >= units)
        return jj_undefined();
    size_t unit = 0;
    for (size_t i = 0; i < s.len;) {
        uint32_t cp;
        size_t n = jj_utf8_get(s.s + i, s.len - i, &cp);
        size_t width = cp >= 0x10000 ? 2 : 1;
        if (index < (double)(unit + width))
            return width == 2 ? jj_string_ref("\xef\xbf\xbd", 3) : jj_string_ref(s.s + i, n);
        unit += width;
        i += n;
    }
    return jj_undefined();
}

static jj_value member(jj_render *r, const jj_node *at, jj_value object, jj_value property)
{
    if (object.kind == JV_OBJECT || object.kind == JV_NAMESPACE) {
        if (property.kind != JV_STRING)
            return jj_fail(r, at, "cannot index %s with %s (its keys are strings)", jj_kind_name(object),
                           jj_kind_name(property));
        jj_value *v = jj_object_get(object.as.object, property.as.str.s, property.as.str.len);
        if (v)
            return *v;
        return object.kind == JV_OBJECT ? jj_builtin_attribute(r, object, property.as.str) : jj_undefined();
    }
    if ((object.kind == JV_ARRAY || object.kind == JV_STRING) && property.kind == JV_INT) {
        if (object.kind == JV_STRING)
            return string_at(object.as.str, property.as.number);
        double i = isnan(property.as.number) ? 0 : property.as.number; /* JS's at() reads NaN as 0 */
        if (i < 0)
            i += (double)object.as.array->len;
        return i >= 0 && i < (double)object.as.array->len ? object.as.array->items[(size_t)i] : jj_undefined();
    }
    if (property.kind != JV_STRING)
        return jj_fail(r, at, "cannot index %s with %s", jj_kind_name(object), jj_kind_name(property));
    return jj_builtin_attribute(r, object, property.as.str);
}

/* Python's a[start:stop:step] (utils.slice of HF) over n items: the chosen indexes. */
static size_t slice_indexes(jj_render *r, size_t n, const jj_value bounds[3], size_t **out)
{
    double len = (double)n, step = bounds[2].kind == JV_INT ? bounds[2].as.number : 1;
    int dir = step > 0 ? 1 : step < 0 ? -1 : 0;
    int has_start = bounds[0].kind == JV_INT, has_stop = bounds[1].kind == JV_INT;
    double start, stop;
    if (dir >= 0) {
        start = !has_start ? 0 : bounds[0].as.number < 0 ? fmax(len + bounds[0].as.number, 0) : fmin(bounds[0].as.number, len);
        stop = !has_stop ? len : bounds[1].as.number < 0 ? fmax(len + bounds[1].as.number, 0) : fmin(bounds[1].as.number, len);
    } else {
        start = !has_start ? len - 1 : bounds[0].as.number < 0 ? fmax(len + bounds[0].as.number, -1) : fmin(bounds[0].as.number, len - 1);
        stop = !has_stop ? -1 : bounds[1].as.number < -1 ? fmax(len + bounds[1].as.number, -1) : fmin(bounds[1].as.number, len - 1);
    }
    size_t count = 0;
    *out = NULL;
    if (dir == 0 || dir * start >= dir * stop)
        return 0;
    *out = jj_alloc(&r->arena, (size_t)(fabs(stop - start) / fabs(step) + 2) * sizeof **out);
    if (!*out)
        return 0;
    for (double i = start; dir * i < dir * stop; i += step)
        (*out)[count++] = (size_t)i;
    return count;
}

static jj_value slice(jj_render *r, jj_scope *scope, const jj_node *n)
{
    jj_value object = jj_eval(r, scope, n->left);
    if (object.kind != JV_ARRAY && object.kind != JV_STRING)
        return jj_fail(r, n, "cannot slice %s", jj_kind_name(object));
    jj_value bounds[3];
    for (size_t i = 0; i < 3; i++) {
        bounds[i] = n->args.items[i] ? jj_eval(r, scope, n->args.items[i]) : jj_undefined();
        if (bounds[i].kind != JV_INT && bounds[i].kind != JV_UNDEFINED)
            return jj_fail(r, n, "slice bounds must be integers, not %s", jj_kind_name(bounds[i]));
    }
    if (object.kind == JV_ARRAY) {
        size_t *chosen, count = slice_indexes(r, object.as.array->len, bounds, &chosen);
        jj_value out = jj_array_new(&r->arena, count);
        for (size_t i = 0; out.kind == JV_ARRAY && i < count; i++)
            out.as.array->items[i] = object.as.array->items[chosen[i]];
        return out;
    }
    /* a string slices by characters (code points) */
    jj_str s = object.as.str;
    size_t n_chars = jj_char_count(s);
    size_t *starts = jj_alloc(&r->arena, (n_chars + 1) * sizeof *starts);
    if (!starts)
        return jj_undefined();
    for (size_t i = 0, k = 0; k <= n_chars; k++) {
        starts[k] = i;
        if (k < n_chars)
            i += jj_char_len(s.s + i, s.len - i);
    }
    size_t *chosen, count = slice_indexes(r, n_chars, bounds, &chosen);
    jj_buf b = {0};
    for (size_t i = 0; i < count; i++)
        jj_buf_put(&b, s.s + starts[chosen[i]], starts[chosen[i] + 1] - starts[chosen[i]]);
    return jj_buf_to_string(r, n, &b);
}

/* ---- operators ---- */

static const char *op_name(int op)
{
    static const char *const names[] = {"+", "-", "~", "*", "/", "//", "%", "**", "==", "!=", "<", ">",
                                        "<=", ">=", "in", "not in", "and", "or", "not", "-", "+"};
    return names[op];
}

static jj_value arithmetic(jj_render *r, const jj_node *n, jj_value a, jj_value b)
{
    double x = a.as.number, y = b.as.number;
    int is_float = a.kind == JV_FLOAT || b.kind == JV_FLOAT;
    switch (n->op) {
    case JO_ADD:
        return is_float ? jj_float(x + y) : jj_int(x + y);
    case JO_SUB:
        return is_float ? jj_float(x - y) : jj_int(x - y);
    case JO_MUL:
        return is_float ? jj_float(x * y) : jj_int(x * y);
    case JO_DIV:
        return jj_float(x / y);
    case JO_FLOORDIV:
        return is_float ? jj_float(floor(x / y)) : jj_int(floor(x / y));
    case JO_MOD: /* JS's %, whose sign follows the dividend */
        return is_float ? jj_float(fmod(x, y)) : jj_int(fmod(x, y));
    case JO_LT:
        return jj_bool(x < y);
    case JO_GT:
        return jj_bool(x > y);
    case JO_LE:
        return jj_bool(x <= y);
    case JO_GE:
        return jj_bool(x >= y);
    default:
        return jj_fail(r, n, "operator '%s' does not apply to numbers", op_name(n->op));
    }
}

static jj_value power(jj_render *r, const jj_node *n, jj_value a, jj_value b)
{
    double x = a.kind == JV_BOOL ? a.as.boolean : a.as.number;
    double y = b.kind == JV_BOOL ? b.as.boolean : b.as.number;
    if (x == 0 && y < 0)
        return jj_fail(r, n, "0 cannot be raised to a negative power");
    double p = pow(x, y);
    if (!isfinite(p))
        return jj_fail(r, n, "%s ** %s is not a finite real number", jj_kind_name(a), jj_kind_name(b));
    return a.kind == JV_FLOAT || b.kind == JV_FLOAT || y < 0 ? jj_float(p) : jj_int(p);
}

/* raw(a) + raw(b) as a new string; undefined counts as "" (for `~`). */
static jj_value join_raw(jj_render *r, const jj_node *n, jj_value a, jj_value b)
{
    jj_buf buf = {0};
    int rc = 0;
    if (a.kind != JV_UNDEFINED)
        rc |= jj_write_raw(&buf, a);
    if (b.kind != JV_UNDEFINED)
        rc |= jj_write_raw(&buf, b);
    if (rc != 0) {
        jj_buf_free(&buf);
        return jj_fail(r, n, "cannot join a function into a string");
    }
    return jj_buf_to_string(r, n, &buf);
}

static int contains_item(const jj_array *a, jj_value v)
{
    for (size_t i = 0; i < a->len; i++)
        if (jj_strict_equal(a->items[i], v))
            return 1;
    return 0;
}

static int contains_text(jj_str haystack, jj_str needle)
{
    if (needle.len == 0)
        return 1;
    for (size_t i = 0; i + needle.len <= haystack.len; i++)
        if (memcmp(haystack.s + i, needle.s, needle.len) == 0)
            return 1;
    return 0;
}

static jj_value binary(jj_render *r, jj_scope *scope, const jj_node *n)
{
    jj_value a = jj_eval(r, scope, n->left);
    if (n->op == JO_AND)
        return jj_truthy(a) ? jj_eval(r, scope, n->right) : a;
    if (n->op == JO_OR)
        return jj_truthy(a) ? a : jj_eval(r, scope, n->right);
    jj_value b = jj_eval(r, scope, n->right);
    if (r->failed)
        return jj_undefined();
    int op = n->op, in = op == JO_IN || op == JO_NOT_IN;
    if (op == JO_EQ || op == JO_NE)
        return jj_bool(jj_loose_equal(a, b) == (op == JO_EQ));
    if (jj_is_number(a) && jj_is_number(b) && op != JO_CONCAT && op != JO_POW) {
        if (!in)
            return arithmetic(r, n, a, b);
    } else if (a.kind == JV_UNDEFINED || b.kind == JV_UNDEFINED) {
        if (b.kind == JV_UNDEFINED && in)
            return jj_bool(op == JO_NOT_IN);
        if (op == JO_CONCAT && a.kind != JV_NULL && b.kind != JV_NULL)
            return join_raw(r, n, a, b);
        return jj_fail(r, n, "operator '%s' does not apply to %s and %s", op_name(op), jj_kind_name(a), jj_kind_name(b));
    } else if (a.kind == JV_NULL || b.kind == JV_NULL) {
        return jj_fail(r, n, "operator '%s' does not apply to %s and %s", op_name(op), jj_kind_name(a), jj_kind_name(b));
    } else if (op == JO_CONCAT) {
        return join_raw(r, n, a, b);
    } else if (op == JO_POW && (jj_is_number(a) || a.kind == JV_BOOL) && (jj_is_number(b) || b.kind == JV_BOOL)) {
        return power(r, n, a, b);
    } else if (a.kind == JV_ARRAY && b.kind == JV_ARRAY) {
        if (op == JO_ADD) {
            jj_value out = jj_array_new(&r->arena, a.as.array->len + b.as.array->len);
            for (size_t i = 0; out.kind == JV_ARRAY && i < out.as.array->len; i++)
                out.as.array->items[i] = i < a.as.array->len ? a.as.array->items[i]
                                                             : b.as.array->items[i - a.as.array->len];
            return out;
        }
    } else if (b.kind == JV_ARRAY && in) {
        return jj_bool(contains_item(b.as.array, a) == (op == JO_IN));
    }
    if ((a.kind == JV_STRING || b.kind == JV_STRING) && op == JO_ADD)
        return join_raw(r, n, a, b);
    if (a.kind == JV_STRING && b.kind == JV_STRING && in)
        return jj_bool(contains_text(b.as.str, a.as.str) == (op == JO_IN));
    if (a.kind == JV_STRING && b.kind == JV_OBJECT && in)
        return jj_bool((jj_object_get(b.as.object, a.as.str.s, a.as.str.len) != NULL) == (op == JO_IN));
    return jj_fail(r, n, "operator '%s' does not apply to %s and %s", op_name(op), jj_kind_name(a), jj_kind_name(b));
}

static jj_value unary(jj_render *r, jj_scope *scope, const jj_node *n)
{
    jj_value v = jj_eval(r, scope, n->left);
    if (n->op == JO_NOT)
        return jj_bool(!jj_truthy(v));
    double sign = n->op == JO_NEG ? -1 : 1;
    if (v.kind == JV_BOOL)
        return jj_int(sign * v.as.boolean);
    if (jj_is_number(v))
        return v.kind == JV_FLOAT ? jj_float(sign * v.as.number) : jj_int(sign * v.as.number);
    return jj_fail(r, n, "unary '%s' does not apply to %s", op_name(n->op), jj_kind_name(v));
}

/* ---- literals, calls ---- */

static jj_value make_list(jj_render *r, jj_scope *scope, const jj_node *n)
{
    jj_value out = jj_array_new(&r->arena, n->args.len);
    for (size_t i = 0; out.kind == JV_ARRAY && i < n->args.len; i++)
        out.as.array->items[i] = jj_eval(r, scope, n->args.items[i]);
    return out;
}

static jj_value make_dict(jj_render *r, jj_scope *scope, const jj_node *n)
{
    jj_value out = jj_object_new(&r->arena, JV_OBJECT);
    for (size_t i = 0; out.kind == JV_OBJECT && i + 1 < n->args.len && !r->failed; i += 2) {
        jj_value key = jj_eval(r, scope, n->args.items[i]);
        if (key.kind != JV_STRING)
            return jj_fail(r, n->args.items[i], "dict keys must be strings, not %s", jj_kind_name(key));
        jj_object_set(&r->arena, out.as.object, key.as.str, jj_eval(r, scope, n->args.items[i + 1]));
    }
    return out;
}

static jj_value call(jj_render *r, jj_scope *scope, const jj_node *n)
{
    jj_args args = jj_eval_args(r, scope, &n->args);
    jj_value callee = jj_eval(r, scope, n->left);
    if (r->failed)
        return jj_undefined();
    if (callee.kind != JV_FUNCTION) {
        if (n->left->kind == JN_NAME || n->left->kind == JN_ATTR)
            return jj_fail(r, n, "'%.*s' is %s%s, not a function or macro", (int)n->left->name.len, n->left->name.s,
                           callee.kind == JV_UNDEFINED ? "" : "of type ", jj_kind_name(callee));
        return jj_fail(r, n, "cannot call %s", jj_kind_name(callee));
    }
    if (callee.as.function->kind == JF_MACRO)
        return jj_call_macro(r, n, callee.as.function, &args);
    return jj_call_builtin(r, n, callee.as.function, &args);
}

jj_value jj_eval(jj_render *r, jj_scope *scope, const jj_node *n)
{
    if (jj_step(r, n) != 0)
        return jj_undefined();
    switch (n->kind) {
    case JN_LITERAL:
        return n->literal;
    case JN_NAME:
        return jj_lookup(scope, n->name);
    case JN_LIST:
    case JN_TUPLE:
        return make_list(r, scope, n);
    case JN_DICT:
        return make_dict(r, scope, n);
    case JN_ATTR:
        return member(r, n, jj_eval(r, scope, n->left), jj_string_ref(n->name.s, n->name.len));
    case JN_INDEX: {
        jj_value object = jj_eval(r, scope, n->left);
        return member(r, n, object, jj_eval(r, scope, n->right));
    }
    case JN_SLICE:
        return slice(r, scope, n);
    case JN_CALL:
        return call(r, scope, n);
    case JN_FILTER: {
        jj_value operand = jj_eval(r, scope, n->left);
        jj_args args = jj_eval_args(r, scope, &n->args);
        return r->failed ? jj_undefined() : jj_apply_filter(r, n, operand, n->name, &args);
    }
    case JN_TEST: {
        jj_value operand = jj_eval(r, scope, n->left);
        int passed = r->failed ? -1 : jj_apply_test(r, n, n->name, operand, NULL);
        return passed < 0 ? jj_undefined() : jj_bool(passed != n->op);
    }
    case JN_UNARY:
        return unary(r, scope, n);
    case JN_BINARY:
        return binary(r, scope, n);
    case JN_TERNARY:
        return jj_eval(r, scope, jj_truthy(jj_eval(r, scope, n->cond)) ? n->left : n->right);
    case JN_SELECT:
        return jj_truthy(jj_eval(r, scope, n->cond)) ? jj_eval(r, scope, n->left) : jj_undefined();
    default:
        return jj_fail(r, n, "this is a statement, not an expression");
    }
}
