/* Statements: text and {{ }} output, if, for (with loop, else, break and continue),
 * set (names, tuples, namespace attributes, blocks) and macros (defined where the
 * statement runs, seeing names where they were defined, called with positional,
 * keyword and default arguments).
 *
 * Scopes follow @huggingface/jinja: a for loop and a macro call open one; if does not;
 * a set inside a loop is gone after the loop, so templates carry state out of loops in
 * a namespace(). */
#include <string.h>

#include "jinja_internal.h"

static void exec_statement(jj_render *r, jj_scope *scope, const jj_node *n);

void jj_exec_block(jj_render *r, jj_scope *scope, const jj_list *body)
{
    for (size_t i = 0; i < body->len && !r->failed && r->flow == JJ_FLOW_NORMAL; i++)
        exec_statement(r, scope, body->items[i]);
}

jj_value jj_capture_block(jj_render *r, jj_scope *scope, const jj_list *body)
{
    jj_buf text = {0};
    jj_buf *outer = r->out;
    r->out = &text;
    jj_exec_block(r, scope, body);
    r->out = outer;
    return jj_buf_to_string(r, body->len ? body->items[0] : NULL, &text);
}

static void output(jj_render *r, const jj_node *n, jj_value v)
{
    if (v.kind == JV_NULL || v.kind == JV_UNDEFINED || r->failed)
        return;
    if (jj_write_value(r->out, v) != 0)
        jj_fail(r, n, v.kind == JV_FUNCTION ? "cannot print a function or macro" : "value nested too deep to print");
}

/* ---- for ---- */

/* The `loop` variable of iteration i of n items. */
static jj_value loop_info(jj_render *r, const jj_array *items, size_t i)
{
    size_t n = items->len;
    jj_value loop = jj_object_new(&r->arena, JV_OBJECT);
    if (loop.kind != JV_OBJECT)
        return loop;
    struct {
        const char *name;
        jj_value value;
    } fields[] = {
        {"index", jj_int((double)i + 1)},
        {"index0", jj_int((double)i)},
        {"revindex", jj_int((double)(n - i))},
        {"revindex0", jj_int((double)(n - i - 1))},
        {"first", jj_bool(i == 0)},
        {"last", jj_bool(i == n - 1)},
        {"length", jj_int((double)n)},
        {"previtem", i > 0 ? items->items[i - 1] : jj_undefined()},
        {"nextitem", i + 1 < n ? items->items[i + 1] : jj_undefined()},
    };
    for (size_t k = 0; k < sizeof fields / sizeof fields[0]; k++)
        jj_object_set(&r->arena, loop.as.object, (jj_str){fields[k].name, strlen(fields[k].name)}, fields[k].value);
    return loop;
}

/* Binds the loop's name (or names, unpacking a list) to item. */
static void bind_target(jj_render *r, jj_scope *scope, const jj_node *target, jj_value item)
{
    if (target->kind == JN_NAME) {
        jj_scope_set(r, scope, target->name, item);
        return;
    }
    for (size_t i = 0; i < target->args.len; i++)
        jj_scope_set(r, scope, target->args.items[i]->name, item.as.array->items[i]);
}

/* What a for loop walks: a list's items, a dict's keys, a string's characters. */
static jj_value loop_items(jj_render *r, const jj_node *n, jj_value iterable)
{
    if (iterable.kind == JV_ARRAY)
        return iterable;
    if (iterable.kind == JV_OBJECT)
        return jj_object_keys(r, iterable.as.object);
    if (iterable.kind == JV_STRING)
        return jj_characters(r, iterable.as.str);
    return jj_fail(r, n, "cannot loop over %s", jj_kind_name(iterable));
}

/* The items the loop runs over: each checked against the names to unpack, and kept
 * only when the loop's `if` holds for it. */
static jj_value select_items(jj_render *r, jj_scope *scope, const jj_node *n, jj_value all)
{
    const jj_node *target = n->left;
    if (target->kind == JN_NAME && !n->cond)
        return all;
    jj_value kept = jj_array_new(&r->arena, all.as.array->len);
    if (kept.kind != JV_ARRAY)
        return kept;
    kept.as.array->len = 0;
    for (size_t i = 0; i < all.as.array->len && !r->failed; i++) {
        jj_value item = all.as.array->items[i];
        if (target->kind == JN_TUPLE && (item.kind != JV_ARRAY || item.as.array->len != target->args.len))
            return jj_fail(r, n, "cannot unpack %s into %zu names", item.kind == JV_ARRAY ? "a list of another length"
                                                                                         : jj_kind_name(item),
                           target->args.len);
        if (n->cond) {
            jj_scope *test_scope = jj_scope_new(r, scope);
            if (!test_scope)
                return jj_undefined();
            bind_target(r, test_scope, target, item);
            if (!jj_truthy(jj_eval(r, test_scope, n->cond)))
                continue;
        }
        kept.as.array->items[kept.as.array->len++] = item;
    }
    return kept;
}

static void exec_for(jj_render *r, jj_scope *outer, const jj_node *n)
{
    jj_scope *scope = jj_scope_new(r, outer);
    if (!scope)
        return;
    jj_value all = loop_items(r, n, jj_eval(r, scope, n->right));
    if (r->failed || all.kind != JV_ARRAY)
        return;
    jj_value items = select_items(r, scope, n, all);
    if (r->failed || items.kind != JV_ARRAY)
        return;
    int completed_one = 0; /* HF renders else when no iteration ran to its end */
    static const jj_str loop_name = {"loop", 4};
    for (size_t i = 0; i < items.as.array->len && !r->failed; i++) {
        if (jj_step(r, n) != 0)
            return;
        jj_scope_set(r, scope, loop_name, loop_info(r, items.as.array, i));
        bind_target(r, scope, n->left, items.as.array->items[i]);
        jj_exec_block(r, scope, &n->body);
        int flow = r->flow;
        r->flow = JJ_FLOW_NORMAL;
        if (flow == JJ_FLOW_BREAK)
            break;
        if (flow == JJ_FLOW_NORMAL)
            completed_one = 1;
    }
    if (!completed_one)
        jj_exec_block(r, scope, &n->orelse);
}

/* ---- set ---- */

static void exec_set(jj_render *r, jj_scope *scope, const jj_node *n)
{
    jj_value v = n->right ? jj_eval(r, scope, n->right) : jj_capture_block(r, scope, &n->body);
    const jj_node *target = n->left;
    if (r->failed)
        return;
    if (target->kind == JN_NAME) {
        jj_scope_set(r, scope, target->name, v);
    } else if (target->kind == JN_TUPLE) {
        if (v.kind != JV_ARRAY || v.as.array->len != target->args.len) {
            jj_fail(r, n, "cannot unpack %s into %zu names",
                    v.kind == JV_ARRAY ? "a list of another length" : jj_kind_name(v), target->args.len);
            return;
        }
        for (size_t i = 0; i < target->args.len; i++)
            jj_scope_set(r, scope, target->args.items[i]->name, v.as.array->items[i]);
    } else {
        jj_value object = jj_eval(r, scope, target->left);
        if (object.kind != JV_NAMESPACE) {
            if (!r->failed)
                jj_fail(r, n, "set can assign attributes of a namespace only, not of %s", jj_kind_name(object));
            return;
        }
        jj_object_set(&r->arena, object.as.object, target->name, v);
    }
}

/* ---- macros ---- */

static void define_macro(jj_render *r, jj_scope *scope, const jj_node *n)
{
    jj_function *fn = jj_alloc(&r->arena, sizeof *fn);
    if (!fn)
        return;
    fn->kind = JF_MACRO;
    fn->macro = n;
    fn->scope = scope;
    jj_scope_set(r, scope, n->name, (jj_value){.kind = JV_FUNCTION, .as.function = fn});
}

/* The argument given for parameter i of a call: positional, else by name, else NULL. */
static const jj_value *argument_for(const jj_args *args, size_t i, jj_str name)
{
    if (i < args->n_pos)
        return &args->pos[i];
    for (size_t k = 0; k < args->n_kw; k++)
        if (args->kw_names[k].len == name.len && memcmp(args->kw_names[k].s, name.s, name.len) == 0)
            return &args->kw_values[k];
    return NULL;
}

/* Binds the arguments of a call to the macro's parameters; defaults are evaluated
 * after every parameter is bound, so a default may use an earlier parameter. */
static int bind_arguments(jj_render *r, const jj_node *at, const jj_node *macro, const jj_args *args, jj_scope *scope)
{
    const jj_list *params = &macro->args;
    if (args->n_pos > params->len) {
        jj_fail(r, at, "macro '%.*s' takes at most %zu arguments, got %zu", (int)macro->name.len, macro->name.s,
                params->len, args->n_pos);
        return -1;
    }
    for (size_t k = 0; k < args->n_kw; k++) {
        int known = 0;
        for (size_t i = args->n_pos; i < params->len; i++)
            known |= params->items[i]->name.len == args->kw_names[k].len &&
                     memcmp(params->items[i]->name.s, args->kw_names[k].s, args->kw_names[k].len) == 0;
        if (!known) {
            jj_fail(r, at, "macro '%.*s' has no parameter '%.*s' left to pass by name", (int)macro->name.len,
                    macro->name.s, (int)args->kw_names[k].len, args->kw_names[k].s);
            return -1;
        }
    }
    for (size_t i = 0; i < params->len; i++) {
        const jj_value *given = argument_for(args, i, params->items[i]->name);
        jj_scope_set(r, scope, params->items[i]->name, given ? *given : jj_undefined());
    }
    for (size_t i = 0; i < params->len && !r->failed; i++) {
        const jj_node *param = params->items[i];
        if (param->kind == JN_KWARG && !argument_for(args, i, param->name))
            jj_scope_set(r, scope, param->name, jj_eval(r, scope, param->right));
    }
    return r->failed ? -1 : 0;
}

jj_value jj_call_macro(jj_render *r, const jj_node *at, const jj_function *fn, const jj_args *args)
{
    const jj_node *macro = fn->macro;
    if (r->call_depth >= JJ_MAX_CALL_DEPTH)
        return jj_fail(r, at, "macro calls nested deeper than %d (endless recursion in '%.*s'?)", JJ_MAX_CALL_DEPTH,
                       (int)macro->name.len, macro->name.s);
    jj_scope *scope = jj_scope_new(r, fn->scope);
    if (!scope || bind_arguments(r, at, macro, args, scope) != 0)
        return jj_undefined();
    r->call_depth++;
    jj_value text = jj_capture_block(r, scope, &macro->body);
    r->call_depth--;
    if (r->flow != JJ_FLOW_NORMAL) {
        r->flow = JJ_FLOW_NORMAL;
        return jj_fail(r, at, "{%% break %%} or {%% continue %%} outside a loop in macro '%.*s'", (int)macro->name.len,
                       macro->name.s);
    }
    return text;
}

static void exec_statement(jj_render *r, jj_scope *scope, const jj_node *n)
{
    if (jj_step(r, n) != 0)
        return;
    switch (n->kind) {
    case JN_TEXT:
        jj_buf_put(r->out, n->name.s, n->name.len);
        break;
    case JN_OUTPUT:
        output(r, n, jj_eval(r, scope, n->left));
        break;
    case JN_IF:
        jj_exec_block(r, scope, jj_truthy(jj_eval(r, scope, n->cond)) ? &n->body : &n->orelse);
        break;
    case JN_FOR:
        exec_for(r, scope, n);
        break;
    case JN_SET:
        exec_set(r, scope, n);
        break;
    case JN_MACRO:
        define_macro(r, scope, n);
        break;
    case JN_BREAK:
        r->flow = JJ_FLOW_BREAK;
        break;
    case JN_CONTINUE:
        r->flow = JJ_FLOW_CONTINUE;
        break;
    default:
        jj_fail(r, n, "an expression cannot stand here as a statement");
    }
    if (r->out->failed)
        jj_fail(r, n, "output longer than %u MiB", JJ_MAX_OUTPUT >> 20);
}
