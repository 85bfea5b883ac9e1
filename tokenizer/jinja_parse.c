/* Tokens -> syntax tree: the statements (if / elif / else, for with its `if` filter and
 * else, set with =, tuples, namespace attributes and the block form, macro, break,
 * continue) and the token helpers the parser's two files share; expressions are in
 * jinja_parse_expr.c. Anything else is refused here, naming it and its line. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_parse.h"

const jj_token *jp_current(const jj_parser *p)
{
    return p->pos < p->n ? &p->tok[p->pos] : NULL;
}

int jp_line_here(const jj_parser *p)
{
    if (p->n == 0)
        return 1;
    return p->tok[p->pos < p->n ? p->pos : p->n - 1].line;
}

jj_node *jp_fail_at(jj_parser *p, int line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!p->failed)
        mp_fail(p->err, MP_EXIT_INPUT, "%s line %d: %s", p->origin, line, msg);
    p->failed = 1;
    return NULL;
}

/* How a token reads in an error message. */
static const char *describe(const jj_token *t, char *buf, size_t size)
{
    if (!t)
        return "the end of the template";
    if (t->kind == JT_TEXT)
        return "text";
    if (t->kind == JT_STRING)
        snprintf(buf, size, "a string");
    else
        snprintf(buf, size, "'%.*s'", t->text.len > 40 ? 40 : (int)t->text.len, t->text.s);
    return buf;
}

jj_node *jp_unexpected(jj_parser *p, const char *wanted)
{
    char buf[64];
    return jp_fail_at(p, jp_line_here(p), "expected %s, found %s", wanted, describe(jp_current(p), buf, sizeof buf));
}

int jp_at(const jj_parser *p, jj_token_kind kind)
{
    return p->pos < p->n && p->tok[p->pos].kind == kind;
}

int jp_at_name(const jj_parser *p, const char *name)
{
    return jp_at(p, JT_NAME) && jj_str_eq(p->tok[p->pos].text, name);
}

int jp_at_name_after(const jj_parser *p, size_t ahead, const char *name)
{
    size_t i = p->pos + ahead;
    return i < p->n && p->tok[i].kind == JT_NAME && jj_str_eq(p->tok[i].text, name);
}

int jp_expect(jj_parser *p, jj_token_kind kind, const char *wanted)
{
    if (!jp_at(p, kind)) {
        jp_unexpected(p, wanted);
        return -1;
    }
    p->pos++;
    return 0;
}

int jp_enter(jj_parser *p)
{
    if (++p->depth > JJ_MAX_NESTING) {
        jp_fail_at(p, jp_line_here(p), "template nested deeper than %d levels", JJ_MAX_NESTING);
        return -1;
    }
    return 0;
}

jj_node *jp_new_node(jj_parser *p, jj_node_kind kind, int line)
{
    jj_node *n = jj_alloc(p->arena, sizeof *n);
    if (!n)
        return jp_fail_at(p, line, "out of memory");
    n->kind = kind;
    n->line = line;
    n->literal = jj_undefined();
    return n;
}

int jp_push(jj_parser *p, jj_list *list, jj_node *n)
{
    if (list->len == list->cap) {
        size_t cap = list->cap ? 2 * list->cap : 4;
        jj_node **grown = jj_alloc(p->arena, cap * sizeof *grown);
        if (!grown) {
            jp_fail_at(p, jp_line_here(p), "out of memory");
            return -1;
        }
        if (list->len)
            memcpy(grown, list->items, list->len * sizeof *grown);
        list->items = grown;
        list->cap = cap;
    }
    list->items[list->len++] = n;
    return 0;
}

/* Is the parser at "{% NAME" with NAME one of names (NULL-terminated)? */
static int at_statement(const jj_parser *p, const char *const *names)
{
    if (!jp_at(p, JT_OPEN_STATEMENT))
        return 0;
    for (; *names; names++)
        if (jp_at_name_after(p, 1, *names))
            return 1;
    return 0;
}

static jj_node *parse_any(jj_parser *p);

/* Statements up to "{% STOP" for one of stops; the opener names the block in errors. */
static int parse_block(jj_parser *p, jj_list *body, const char *const *stops, const char *opener, int opener_line)
{
    while (!at_statement(p, stops)) {
        if (!jp_current(p)) {
            jp_fail_at(p, opener_line, "{%% %s %%} is never closed with {%% %s %%}", opener, stops[0]);
            return -1;
        }
        jj_node *n = parse_any(p);
        if (!n || jp_push(p, body, n) != 0)
            return -1;
    }
    return 0;
}

/* {% NAME %} closing a block. */
static int expect_end(jj_parser *p, const char *name)
{
    char wanted[32];
    snprintf(wanted, sizeof wanted, "'%s'", name);
    if (jp_expect(p, JT_OPEN_STATEMENT, "'{%'") != 0)
        return -1;
    if (!jp_at_name(p, name)) {
        jp_unexpected(p, wanted);
        return -1;
    }
    p->pos++;
    return jp_expect(p, JT_CLOSE_STATEMENT, "'%}'");
}

/* After "if" or "elif": the condition, the body, and elif / else. */
static jj_node *parse_if(jj_parser *p, int line, const char *opener)
{
    static const char *const stops[] = {"endif", "elif", "else", NULL};
    static const char *const end[] = {"endif", NULL};
    if (jp_enter(p) != 0)
        return NULL;
    jj_node *n = jp_new_node(p, JN_IF, line);
    if (!n || !(n->cond = jp_parse_expression(p)) || jp_expect(p, JT_CLOSE_STATEMENT, "'%}'") != 0 ||
        parse_block(p, &n->body, stops, opener, line) != 0)
        return NULL;
    if (at_statement(p, (const char *const[]){"elif", NULL})) {
        int elif_line = jp_line_here(p);
        p->pos += 2;
        jj_node *elif = parse_if(p, elif_line, "elif");
        if (!elif || jp_push(p, &n->orelse, elif) != 0)
            return NULL;
    } else if (at_statement(p, (const char *const[]){"else", NULL})) {
        p->pos += 2;
        if (jp_expect(p, JT_CLOSE_STATEMENT, "'%}'") != 0 || parse_block(p, &n->orelse, end, opener, line) != 0)
            return NULL;
    }
    p->depth--;
    return n;
}

static jj_node *parse_for(jj_parser *p, int line)
{
    static const char *const stops[] = {"endfor", "else", NULL};
    static const char *const end[] = {"endfor", NULL};
    jj_node *n = jp_new_node(p, JN_FOR, line);
    if (!n || !(n->left = jp_parse_sequence(p, 1)))
        return NULL;
    int names_only = n->left->kind == JN_NAME;
    if (n->left->kind == JN_TUPLE) {
        names_only = 1;
        for (size_t i = 0; i < n->left->args.len; i++)
            names_only &= n->left->args.items[i]->kind == JN_NAME;
    }
    if (!names_only)
        return jp_fail_at(p, line, "a for loop takes a name or names separated by commas");
    if (!jp_at_name(p, "in"))
        return jp_unexpected(p, "'in'");
    p->pos++;
    jj_node *iterable = jp_parse_expression(p);
    if (!iterable || jp_expect(p, JT_CLOSE_STATEMENT, "'%}'") != 0)
        return NULL;
    n->right = iterable;
    if (iterable->kind == JN_SELECT) { /* for x in xs if cond */
        n->right = iterable->left;
        n->cond = iterable->cond;
    }
    if (parse_block(p, &n->body, stops, "for", line) != 0)
        return NULL;
    if (at_statement(p, (const char *const[]){"else", NULL})) {
        p->pos += 2;
        if (jp_expect(p, JT_CLOSE_STATEMENT, "'%}'") != 0 || parse_block(p, &n->orelse, end, "for", line) != 0)
            return NULL;
    }
    return n;
}

static int is_assignable(const jj_node *target)
{
    if (target->kind == JN_NAME || target->kind == JN_ATTR)
        return 1;
    if (target->kind != JN_TUPLE)
        return 0;
    for (size_t i = 0; i < target->args.len; i++)
        if (target->args.items[i]->kind != JN_NAME)
            return 0;
    return 1;
}

static jj_node *parse_set(jj_parser *p, int line)
{
    static const char *const end[] = {"endset", NULL};
    jj_node *n = jp_new_node(p, JN_SET, line);
    if (!n || !(n->left = jp_parse_sequence(p, 0)))
        return NULL;
    if (!is_assignable(n->left))
        return jp_fail_at(p, line, "set assigns to a name, names separated by commas, or namespace.attribute");
    if (jp_at(p, JT_EQUALS)) {
        p->pos++;
        if (!(n->right = jp_parse_sequence(p, 0)) || jp_expect(p, JT_CLOSE_STATEMENT, "'%}'") != 0)
            return NULL;
        return n;
    }
    if (jp_expect(p, JT_CLOSE_STATEMENT, "'=' or '%}'") != 0 || parse_block(p, &n->body, end, "set", line) != 0 ||
        expect_end(p, "endset") != 0)
        return NULL;
    return n;
}

static jj_node *parse_macro(jj_parser *p, int line)
{
    static const char *const end[] = {"endmacro", NULL};
    if (!jp_at(p, JT_NAME))
        return jp_unexpected(p, "the macro's name");
    jj_node *n = jp_new_node(p, JN_MACRO, line);
    if (!n)
        return NULL;
    n->name = jp_current(p)->text;
    p->pos++;
    if (jp_parse_arguments(p, &n->args, 1) != 0 || jp_expect(p, JT_CLOSE_STATEMENT, "'%}'") != 0 ||
        parse_block(p, &n->body, end, "macro", line) != 0)
        return NULL;
    return n;
}

static int is_one_of(jj_str name, const char *const *names)
{
    for (; *names; names++)
        if (jj_str_eq(name, *names))
            return 1;
    return 0;
}

static jj_node *parse_statement(jj_parser *p)
{
    static const char *const closers[] = {"elif", "else", "endif", "endfor", "endmacro", "endset", NULL};
    static const char *const unsupported[] = {"call", "filter", "raw", "include", "import", "from", "extends",
                                              "block", "with", "autoescape", "do", "trans", NULL};
    int line = jp_line_here(p);
    p->pos++; /* {% */
    if (!jp_at(p, JT_NAME))
        return jp_unexpected(p, "a statement name after '{%'");
    jj_str name = jp_current(p)->text;
    p->pos++;
    jj_node *n = NULL;
    if (jj_str_eq(name, "set")) {
        n = parse_set(p, line);
    } else if (jj_str_eq(name, "if")) {
        n = parse_if(p, line, "if");
        if (n && expect_end(p, "endif") != 0)
            return NULL;
    } else if (jj_str_eq(name, "for")) {
        n = parse_for(p, line);
        if (n && expect_end(p, "endfor") != 0)
            return NULL;
    } else if (jj_str_eq(name, "macro")) {
        n = parse_macro(p, line);
        if (n && expect_end(p, "endmacro") != 0)
            return NULL;
    } else if (jj_str_eq(name, "break") || jj_str_eq(name, "continue")) {
        n = jp_new_node(p, jj_str_eq(name, "break") ? JN_BREAK : JN_CONTINUE, line);
        if (n && jp_expect(p, JT_CLOSE_STATEMENT, "'%}'") != 0)
            return NULL;
    } else if (is_one_of(name, closers)) {
        return jp_fail_at(p, line, "{%% %.*s %%} closes no open block", (int)name.len, name.s);
    } else if (is_one_of(name, unsupported)) {
        return jp_fail_at(p, line, "statement '%.*s' is not supported", (int)name.len, name.s);
    } else {
        return jp_fail_at(p, line, "unknown statement '%.*s'", (int)name.len, name.s);
    }
    return n;
}

static jj_node *parse_any(jj_parser *p)
{
    const jj_token *t = jp_current(p);
    if (t->kind == JT_TEXT) {
        jj_node *n = jp_new_node(p, JN_TEXT, t->line);
        if (n)
            n->name = t->text;
        p->pos++;
        return n;
    }
    if (t->kind == JT_OPEN_STATEMENT) {
        if (jp_enter(p) != 0)
            return NULL;
        jj_node *n = parse_statement(p);
        p->depth--;
        return n;
    }
    if (t->kind == JT_OPEN_EXPRESSION) {
        jj_node *n = jp_new_node(p, JN_OUTPUT, t->line);
        p->pos++;
        if (!n || !(n->left = jp_parse_expression(p)) || jp_expect(p, JT_CLOSE_EXPRESSION, "'}}'") != 0)
            return NULL;
        return n;
    }
    return jp_unexpected(p, "text, '{{' or '{%'");
}

int jj_parse(const jj_token *tokens, size_t n, const char *origin, jj_arena *arena, jj_list *body, mp_error *err)
{
    /* comments produce nothing; the parser does not see them */
    jj_token *kept = malloc((n ? n : 1) * sizeof *kept);
    if (!kept)
        return mp_fail(err, MP_EXIT_IO, "%s: out of memory", origin);
    size_t n_kept = 0;
    for (size_t i = 0; i < n; i++)
        if (tokens[i].kind != JT_COMMENT)
            kept[n_kept++] = tokens[i];
    jj_parser p = {.tok = kept, .n = n_kept, .arena = arena, .origin = origin, .err = err};
    while (!p.failed && p.pos < p.n) {
        jj_node *node = parse_any(&p);
        if (node)
            jp_push(&p, body, node);
        else if (!p.failed)
            jp_fail_at(&p, jp_line_here(&p), "cannot parse here");
    }
    free(kept);
    return p.failed ? (err->code ? err->code : MP_EXIT_INPUT) : MP_OK;
}