/* Expressions, by recursive descent with @huggingface/jinja's precedence, loosest first:
 *
 *   x if c else y  >  or  >  and  >  not  >  == != < > <= >= in, not in  >  + - ~
 *   >  * / // %  >  **  >  is [not] test  >  | filter  >  unary - +  >  call, .attr, [i]
 *
 * (Filters bind tighter than arithmetic: a + b | f is a + (b | f).) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_parse.h"

static jj_node *parse_primary(jj_parser *p);

static jj_node *binary(jj_parser *p, int line, jj_op op, jj_node *left, jj_node *right)
{
    if (!left || !right)
        return NULL;
    jj_node *n = jp_new_node(p, JN_BINARY, line);
    if (n) {
        n->op = op;
        n->left = left;
        n->right = right;
    }
    return n;
}

int jp_parse_arguments(jj_parser *p, jj_list *args, int parameters)
{
    if (jp_expect(p, JT_LPAREN, "'('") != 0)
        return -1;
    int saw_keyword = 0;
    while (!jp_at(p, JT_RPAREN)) {
        if (!jp_current(p)) {
            jp_unexpected(p, "')'");
            return -1;
        }
        if (jp_at(p, JT_POWER) || (jp_at(p, JT_MULTIPLICATIVE) && jj_str_eq(jp_current(p)->text, "*"))) {
            jp_fail_at(p, jp_line_here(p), "argument unpacking with * or ** is not supported");
            return -1;
        }
        int line = jp_line_here(p);
        jj_node *arg = jp_parse_expression(p);
        if (!arg)
            return -1;
        if (jp_at(p, JT_EQUALS)) {
            p->pos++;
            if (arg->kind != JN_NAME) {
                jp_fail_at(p, line, "expected a name before '='");
                return -1;
            }
            jj_node *kw = jp_new_node(p, JN_KWARG, line);
            if (!kw || !(kw->right = jp_parse_expression(p)))
                return -1;
            kw->name = arg->name;
            arg = kw;
            saw_keyword = 1;
        } else if (parameters && arg->kind != JN_NAME) {
            jp_fail_at(p, line, "a macro parameter must be a name");
            return -1;
        } else if (saw_keyword) {
            jp_fail_at(p, line, parameters ? "a parameter without default follows one with a default"
                                        : "a positional argument follows a keyword argument");
            return -1;
        }
        for (size_t i = 0; parameters && i < args->len; i++)
            if (args->items[i]->name.len == arg->name.len &&
                memcmp(args->items[i]->name.s, arg->name.s, arg->name.len) == 0) {
                jp_fail_at(p, line, "parameter '%.*s' appears twice", (int)arg->name.len, arg->name.s);
                return -1;
            }
        if (jp_push(p, args, arg) != 0)
            return -1;
        if (jp_at(p, JT_COMMA))
            p->pos++;
    }
    p->pos++;
    return 0;
}

/* [i] or [start:stop:step] after an object. */
static jj_node *parse_subscript(jj_parser *p, jj_node *object)
{
    int line = jp_line_here(p);
    p->pos++; /* [ */
    jj_node *parts[3] = {NULL, NULL, NULL};
    size_t n_parts = 0;
    int is_slice = 0;
    while (!jp_at(p, JT_RBRACKET)) {
        if (!jp_current(p))
            return jp_unexpected(p, "']'");
        if (n_parts == 3)
            return jp_fail_at(p, line, "a slice has at most 3 parts");
        if (jp_at(p, JT_COLON)) {
            n_parts++;
            p->pos++;
            is_slice = 1;
            continue;
        }
        if (!(parts[n_parts++] = jp_parse_expression(p)))
            return NULL;
        if (jp_at(p, JT_COLON)) {
            p->pos++;
            is_slice = 1;
        } else if (!jp_at(p, JT_RBRACKET)) {
            return jp_unexpected(p, "']' or ':'");
        }
    }
    p->pos++;
    if (n_parts == 0)
        return jp_fail_at(p, line, "expected an index inside []");
    jj_node *n = jp_new_node(p, is_slice ? JN_SLICE : JN_INDEX, line);
    if (!n)
        return NULL;
    n->left = object;
    if (!is_slice) {
        n->right = parts[0];
        return n;
    }
    for (size_t i = 0; i < 3; i++)
        if (jp_push(p, &n->args, parts[i]) != 0)
            return NULL;
    return n;
}

/* .name, .0, [i], [a:b] after an object. */
static jj_node *parse_member_chain(jj_parser *p, jj_node *object)
{
    while (object && (jp_at(p, JT_DOT) || jp_at(p, JT_LBRACKET))) {
        if (jp_at(p, JT_LBRACKET)) {
            object = parse_subscript(p, object);
            continue;
        }
        p->pos++;
        const jj_token *t = jp_current(p);
        int is_integer = t && t->kind == JT_NUMBER && !memchr(t->text.s, '.', t->text.len);
        if (!t || (t->kind != JT_NAME && !is_integer))
            return jp_unexpected(p, "a name or an integer after '.'");
        jj_node *n = jp_new_node(p, is_integer ? JN_INDEX : JN_ATTR, t->line);
        if (!n)
            return NULL;
        n->left = object;
        if (is_integer) {
            if (!(n->right = parse_primary(p)))
                return NULL;
        } else {
            n->name = t->text;
            p->pos++;
        }
        object = n;
    }
    return object;
}

static jj_node *parse_call_member(jj_parser *p)
{
    jj_node *n = parse_member_chain(p, parse_primary(p));
    while (n && jp_at(p, JT_LPAREN)) {
        jj_node *call = jp_new_node(p, JN_CALL, jp_line_here(p));
        if (!call || jp_parse_arguments(p, &call->args, 0) != 0)
            return NULL;
        call->left = n;
        n = parse_member_chain(p, call);
    }
    return n;
}

static jj_node *parse_unary_sign(jj_parser *p)
{
    const jj_token *t = jp_current(p);
    if (t && (t->kind == JT_UNARY || t->kind == JT_ADDITIVE) && (jj_str_eq(t->text, "-") || jj_str_eq(t->text, "+"))) {
        if (jp_enter(p) != 0)
            return NULL;
        p->pos++;
        jj_node *n = jp_new_node(p, JN_UNARY, t->line);
        if (n) {
            n->op = t->text.s[0] == '-' ? JO_NEG : JO_POS;
            n->left = parse_unary_sign(p);
        }
        p->depth--;
        return n && n->left ? n : NULL;
    }
    return parse_call_member(p);
}

static jj_node *parse_filter(jj_parser *p)
{
    jj_node *operand = parse_unary_sign(p);
    while (operand && jp_at(p, JT_PIPE)) {
        p->pos++;
        if (!jp_at(p, JT_NAME))
            return jp_unexpected(p, "a filter name after '|'");
        jj_node *n = jp_new_node(p, JN_FILTER, jp_line_here(p));
        if (!n)
            return NULL;
        n->name = jp_current(p)->text;
        n->left = operand;
        p->pos++;
        if (jp_at(p, JT_LPAREN) && jp_parse_arguments(p, &n->args, 0) != 0)
            return NULL;
        operand = n;
    }
    return operand;
}

static jj_node *parse_test(jj_parser *p)
{
    jj_node *operand = parse_filter(p);
    while (operand && jp_at_name(p, "is")) {
        p->pos++;
        int negate = jp_at_name(p, "not");
        p->pos += (size_t)negate;
        if (!jp_at(p, JT_NAME))
            return jp_unexpected(p, "a test name after 'is'");
        jj_node *n = jp_new_node(p, JN_TEST, jp_line_here(p));
        if (!n)
            return NULL;
        n->name = jp_current(p)->text;
        n->left = operand;
        n->op = negate;
        p->pos++;
        if (jp_at(p, JT_LPAREN) || jp_at(p, JT_NUMBER) || jp_at(p, JT_STRING))
            return jp_fail_at(p, n->line, "test '%.*s' with an argument is not supported", (int)n->name.len,
                           n->name.s);
        operand = n;
    }
    return operand;
}

static jj_node *parse_power(jj_parser *p)
{
    jj_node *left = parse_test(p);
    while (left && jp_at(p, JT_POWER)) {
        int line = jp_line_here(p);
        p->pos++;
        left = binary(p, line, JO_POW, left, parse_test(p));
    }
    return left;
}

static jj_node *parse_multiplicative(jj_parser *p)
{
    jj_node *left = parse_power(p);
    while (left && jp_at(p, JT_MULTIPLICATIVE)) {
        const jj_token *t = jp_current(p);
        jj_op op = jj_str_eq(t->text, "*") ? JO_MUL : jj_str_eq(t->text, "/") ? JO_DIV
                 : jj_str_eq(t->text, "//") ? JO_FLOORDIV : JO_MOD;
        p->pos++;
        left = binary(p, t->line, op, left, parse_power(p));
    }
    return left;
}

static jj_node *parse_additive(jj_parser *p)
{
    jj_node *left = parse_multiplicative(p);
    while (left && jp_at(p, JT_ADDITIVE)) {
        const jj_token *t = jp_current(p);
        jj_op op = t->text.s[0] == '+' ? JO_ADD : t->text.s[0] == '-' ? JO_SUB : JO_CONCAT;
        p->pos++;
        left = binary(p, t->line, op, left, parse_multiplicative(p));
    }
    return left;
}

static jj_node *parse_comparison(jj_parser *p)
{
    static const char *const names[] = {"==", "!=", "<", ">", "<=", ">="};
    static const jj_op ops[] = {JO_EQ, JO_NE, JO_LT, JO_GT, JO_LE, JO_GE};
    jj_node *left = parse_additive(p);
    while (left) {
        int line = jp_line_here(p);
        jj_op op;
        if (jp_at_name(p, "not") && jp_at_name_after(p, 1, "in")) {
            op = JO_NOT_IN;
            p->pos += 2;
        } else if (jp_at_name(p, "in")) {
            op = JO_IN;
            p->pos++;
        } else if (jp_at(p, JT_COMPARISON)) {
            size_t k = 0;
            while (!jj_str_eq(jp_current(p)->text, names[k]))
                k++;
            op = ops[k];
            p->pos++;
        } else {
            break;
        }
        left = binary(p, line, op, left, parse_additive(p));
    }
    return left;
}

static jj_node *parse_not(jj_parser *p)
{
    if (!jp_at_name(p, "not"))
        return parse_comparison(p);
    if (jp_enter(p) != 0)
        return NULL;
    jj_node *n = jp_new_node(p, JN_UNARY, jp_line_here(p));
    p->pos++;
    if (n) {
        n->op = JO_NOT;
        n->left = parse_not(p);
    }
    p->depth--;
    return n && n->left ? n : NULL;
}

static jj_node *parse_and(jj_parser *p)
{
    jj_node *left = parse_not(p);
    while (left && jp_at_name(p, "and")) {
        int line = jp_line_here(p);
        p->pos++;
        left = binary(p, line, JO_AND, left, parse_not(p));
    }
    return left;
}

static jj_node *parse_or(jj_parser *p)
{
    jj_node *left = parse_and(p);
    while (left && jp_at_name(p, "or")) {
        int line = jp_line_here(p);
        p->pos++;
        left = binary(p, line, JO_OR, left, parse_and(p));
    }
    return left;
}

/* a if c else b; a if c alone is a select (a for-loop filter, or undefined when false). */
static jj_node *parse_conditional(jj_parser *p)
{
    jj_node *value = parse_or(p);
    if (!value || !jp_at_name(p, "if"))
        return value;
    jj_node *n = jp_new_node(p, JN_SELECT, jp_line_here(p));
    p->pos++;
    if (!n || !(n->cond = parse_or(p)))
        return NULL;
    n->left = value;
    if (jp_at_name(p, "else")) {
        p->pos++;
        n->kind = JN_TERNARY;
        if (!(n->right = jp_parse_expression(p)))
            return NULL;
    }
    return n;
}

jj_node *jp_parse_expression(jj_parser *p)
{
    if (jp_enter(p) != 0)
        return NULL;
    jj_node *n = parse_conditional(p);
    p->depth--;
    return n;
}

jj_node *jp_parse_sequence(jj_parser *p, int primary_only)
{
    jj_node *first = primary_only ? parse_primary(p) : jp_parse_expression(p);
    if (!first || !jp_at(p, JT_COMMA))
        return first;
    jj_node *tuple = jp_new_node(p, JN_TUPLE, first->line);
    if (!tuple || jp_push(p, &tuple->args, first) != 0)
        return NULL;
    while (jp_at(p, JT_COMMA)) {
        p->pos++;
        jj_node *item = primary_only ? parse_primary(p) : jp_parse_expression(p);
        if (!item || jp_push(p, &tuple->args, item) != 0)
            return NULL;
    }
    return tuple;
}

/* [a, b] or {k: v, ...}; like HF, the commas between items may be left out. */
static jj_node *parse_collection(jj_parser *p, jj_node_kind kind, jj_token_kind closer, const char *wanted)
{
    jj_node *n = jp_new_node(p, kind, jp_line_here(p));
    if (!n)
        return NULL;
    p->pos++;
    while (!jp_at(p, closer)) {
        if (!jp_current(p))
            return jp_unexpected(p, wanted);
        jj_node *item = jp_parse_expression(p);
        if (!item || jp_push(p, &n->args, item) != 0)
            return NULL;
        if (kind == JN_DICT) {
            if (jp_expect(p, JT_COLON, "':' between a key and its value") != 0)
                return NULL;
            jj_node *value = jp_parse_expression(p);
            if (!value || jp_push(p, &n->args, value) != 0)
                return NULL;
        }
        if (jp_at(p, JT_COMMA))
            p->pos++;
    }
    p->pos++;
    return n;
}

static jj_node *parse_string_literal(jj_parser *p)
{
    jj_node *n = jp_new_node(p, JN_LITERAL, jp_line_here(p));
    if (!n)
        return NULL;
    size_t first = p->pos, total = 0;
    while (jp_at(p, JT_STRING))
        total += p->tok[p->pos++].text.len;
    if (p->pos == first + 1) {
        n->literal = jj_string_ref(p->tok[first].text.s, total);
        return n;
    }
    /* adjacent strings join: 'a' "b" is "ab" */
    char *joined = jj_alloc(p->arena, total + 1);
    if (!joined)
        return jp_fail_at(p, n->line, "out of memory");
    size_t len = 0;
    for (size_t i = first; i < p->pos; i++) {
        memcpy(joined + len, p->tok[i].text.s, p->tok[i].text.len);
        len += p->tok[i].text.len;
    }
    n->literal = jj_string_ref(joined, total);
    return n;
}

static jj_node *parse_primary(jj_parser *p)
{
    const jj_token *t = jp_current(p);
    if (!t)
        return jp_unexpected(p, "an expression");
    if (t->kind == JT_STRING)
        return parse_string_literal(p);
    if (t->kind == JT_LBRACKET)
        return parse_collection(p, JN_LIST, JT_RBRACKET, "']'");
    if (t->kind == JT_LBRACE)
        return parse_collection(p, JN_DICT, JT_RBRACE, "'}'");
    if (t->kind == JT_LPAREN) {
        p->pos++;
        jj_node *n = jp_parse_sequence(p, 0);
        return n && jp_expect(p, JT_RPAREN, "')'") == 0 ? n : NULL;
    }
    if (t->kind != JT_NUMBER && t->kind != JT_NAME)
        return jp_unexpected(p, "an expression");
    jj_node *n = jp_new_node(p, JN_LITERAL, t->line);
    if (!n)
        return NULL;
    p->pos++;
    if (t->kind == JT_NUMBER) {
        char text[64];
        snprintf(text, sizeof text, "%.*s", (int)t->text.len, t->text.s);
        double d = strtod(text, NULL);
        n->literal = memchr(t->text.s, '.', t->text.len) ? jj_float(d) : jj_int(d);
    } else if (jj_str_eq(t->text, "true") || jj_str_eq(t->text, "True")) {
        n->literal = jj_bool(1);
    } else if (jj_str_eq(t->text, "false") || jj_str_eq(t->text, "False")) {
        n->literal = jj_bool(0);
    } else if (jj_str_eq(t->text, "none") || jj_str_eq(t->text, "None")) {
        n->literal = jj_null();
    } else {
        n->kind = JN_NAME;
        n->name = t->text;
    }
    return n;
}

/* ---- statements ---- */
