/* The parser's state and the helpers its two files share: jinja_parse.c (statements)
 * and jinja_parse_expr.c (expressions). Internal to them. */
#ifndef MP_JINJA_PARSE_H
#define MP_JINJA_PARSE_H

#include "jinja_internal.h"

typedef struct {
    const jj_token *tok;
    size_t n, pos;
    jj_arena *arena;
    const char *origin;
    mp_error *err;
    int failed;
    int depth; /* recursion, bounded by JJ_MAX_NESTING */
} jj_parser;

/* The token at the parser, or NULL at the end; the line there (for errors). */
const jj_token *jp_current(const jj_parser *p);
int jp_line_here(const jj_parser *p);
/* Records "ORIGIN line N: message" (the first error only); returns NULL. */
jj_node *jp_fail_at(jj_parser *p, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* "expected WANTED, found <the token here>"; returns NULL. */
jj_node *jp_unexpected(jj_parser *p, const char *wanted);
int jp_at(const jj_parser *p, jj_token_kind kind);
int jp_at_name(const jj_parser *p, const char *name);
int jp_at_name_after(const jj_parser *p, size_t ahead, const char *name);
/* Consumes a token of that kind, else fails; 0 or -1. */
int jp_expect(jj_parser *p, jj_token_kind kind, const char *wanted);
/* One level deeper (the caller decrements p->depth after); -1 past JJ_MAX_NESTING. */
int jp_enter(jj_parser *p);
jj_node *jp_new_node(jj_parser *p, jj_node_kind kind, int line);
int jp_push(jj_parser *p, jj_list *list, jj_node *n);

/* Expressions (jinja_parse_expr.c). */
jj_node *jp_parse_expression(jj_parser *p);
/* a, b, c as a tuple (or a alone); with primary_only the items are primaries. */
jj_node *jp_parse_sequence(jj_parser *p, int primary_only);
/* (args): expressions and name=expression; as macro parameters, names and name=default. */
int jp_parse_arguments(jj_parser *p, jj_list *args, int parameters);

#endif
