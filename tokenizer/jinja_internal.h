/* The pieces of the Jinja interpreter (tokenizer/jinja_*.c) that its files share: the
 * memory arena, values, tokens, the syntax tree and the state of one rendering.
 *
 * The pipeline: jinja_lex.c turns the template text into tokens (after the whitespace
 * preprocessing HF applies), jinja_parse*.c turn tokens into a tree of jj_node,
 * jinja_exec.c runs the statements and jinja_eval.c evaluates the expressions, with
 * jinja_filters.c, jinja_methods.c (string and dict methods, tests, global functions),
 * jinja_json.c (tojson and the context given as JSON) and jinja_value.c (truthiness,
 * equality, how a value prints) underneath.
 *
 * Values follow @huggingface/jinja, which is JavaScript: numbers are doubles (integers
 * too), strings are compared and printed as JS does. Everything a rendering allocates
 * lives in one arena freed at the end, so values are plain structs copied freely and
 * shared containers (lists, dicts, namespaces) are pointers. */
#ifndef MP_JINJA_INTERNAL_H
#define MP_JINJA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "../core/error.h"

/* ---- limits: a template must not hang or exhaust memory ---- */
#define JJ_MAX_NESTING 200          /* parser recursion (nested expressions and blocks) */
#define JJ_MAX_CALL_DEPTH 200       /* macro calls inside macro calls */
#define JJ_MAX_VALUE_DEPTH 500      /* nested lists and dicts when printed or converted */
#define JJ_MAX_STEPS 100000000ull   /* nodes evaluated in one rendering */
#define JJ_MAX_OUTPUT (64u << 20)   /* bytes of output, and of any one string built */
#define JJ_MAX_ARENA (512ull << 20)  /* bytes of values one rendering may allocate */
#define JJ_MAX_RANGE 1000000        /* items range() may make */

/* ---- memory ---- */

typedef struct jj_block jj_block;

/* A bump allocator: many small allocations, freed all at once. */
typedef struct {
    jj_block *blocks;
    uint64_t allocated; /* bytes handed out so far, checked against limit */
    uint64_t limit;
    int failed;         /* an allocation was refused (limit or out of memory) */
} jj_arena;

/* Zeroed memory, or NULL (and a->failed set) past the limit or when out of memory. */
void *jj_alloc(jj_arena *a, size_t size);
void jj_arena_free(jj_arena *a);

/* A growing byte buffer (malloc'd): the output, and strings while they are built. */
typedef struct {
    char *data;
    size_t len, cap;
    int failed; /* out of memory or past JJ_MAX_OUTPUT: the content is incomplete */
} jj_buf;

void jj_buf_put(jj_buf *b, const char *s, size_t n);
void jj_buf_puts(jj_buf *b, const char *s);
void jj_buf_putc(jj_buf *b, char c);
void jj_buf_free(jj_buf *b);

/* ---- values ---- */

typedef struct {
    const char *s; /* not NUL-terminated; may hold NUL bytes */
    size_t len;
} jj_str;

typedef enum {
    JV_UNDEFINED, /* a missing variable, key or attribute: prints as nothing */
    JV_NULL,      /* none */
    JV_BOOL,
    JV_INT,       /* a JS number known to be an integer */
    JV_FLOAT,
    JV_STRING,
    JV_ARRAY,     /* list or tuple */
    JV_OBJECT,    /* dict (mapping) */
    JV_NAMESPACE, /* namespace(): a dict whose attributes `set` may assign */
    JV_FUNCTION   /* macro, bound method or global function */
} jj_kind;

typedef struct jj_array jj_array;
typedef struct jj_object jj_object;
typedef struct jj_function jj_function;

typedef struct {
    jj_kind kind;
    union {
        int boolean;
        double number; /* JV_INT and JV_FLOAT */
        jj_str str;
        jj_array *array;
        jj_object *object; /* JV_OBJECT and JV_NAMESPACE */
        jj_function *function;
    } as;
} jj_value;

struct jj_array {
    size_t len;
    jj_value *items;
};

/* Keys keep the order they were first set in, as a JS Map does. */
struct jj_object {
    size_t len, cap;
    jj_str *keys;
    jj_value *values;
};

typedef struct jj_node jj_node;
typedef struct jj_scope jj_scope;

typedef enum {
    JF_MACRO,
    JF_METHOD,         /* a string or dict method bound to its value, e.g. s.split */
    JF_RANGE,
    JF_NAMESPACE,
    JF_RAISE_EXCEPTION,
    JF_STRFTIME_NOW
} jj_function_kind;

struct jj_function {
    jj_function_kind kind;
    const char *method;   /* JF_METHOD: its name */
    jj_value self;        /* JF_METHOD: the value it is bound to */
    const jj_node *macro; /* JF_MACRO: the {% macro %} node */
    jj_scope *scope;      /* JF_MACRO: where it was defined; its body sees those names */
};

jj_value jj_undefined(void);
jj_value jj_null(void);
jj_value jj_bool(int b);
jj_value jj_int(double n);
jj_value jj_float(double n);
/* A string that refers to s (which must outlive the rendering, e.g. template text). */
jj_value jj_string_ref(const char *s, size_t len);
/* A string copied into the arena (an empty string when the arena refuses). */
jj_value jj_string_copy(jj_arena *a, const char *s, size_t len);
/* A list of len undefined items to fill in (undefined when the arena refuses). */
jj_value jj_array_new(jj_arena *a, size_t len);
/* An empty dict or namespace (kind JV_OBJECT or JV_NAMESPACE). */
jj_value jj_object_new(jj_arena *a, jj_kind kind);
/* Sets key (whose bytes must outlive the rendering) to v; returns 0, or -1 when the
 * arena refuses. */
int jj_object_set(jj_arena *a, jj_object *o, jj_str key, jj_value v);
/* The value of key, or NULL. */
jj_value *jj_object_get(const jj_object *o, const char *key, size_t len);

int jj_is_number(jj_value v); /* JV_INT or JV_FLOAT */
int jj_truthy(jj_value v);
/* JavaScript's `==` on the values (@huggingface/jinja compares with it). */
int jj_loose_equal(jj_value a, jj_value b);
/* JavaScript's `===`: same type and value; containers by identity. */
int jj_strict_equal(jj_value a, jj_value b);
/* How {{ v }} prints v (lists and dicts as JSON). Returns -1 for a function or a value
 * nested too deep, 0 otherwise. */
int jj_write_value(jj_buf *b, jj_value v);
/* How JavaScript's String(v.value) prints it, which `~`, `+` and join use: numbers
 * without ".0", lists as their items joined by ",", dicts as "[object Map]". */
int jj_write_raw(jj_buf *b, jj_value v);
/* The name of v's type in error messages: "string", "list", "dict"... */
const char *jj_kind_name(jj_value v);

/* ---- JSON (jinja_json.c) ---- */

typedef struct {
    int indent;              /* spaces per level; 0 = all on one line */
    const char *item_sep;    /* between items: ", " (or "," when indenting) */
    const char *key_sep;     /* between a key and its value: ": " */
    int ensure_ascii;        /* escape everything above 0x7e as \uXXXX */
    int sort_keys;
    int undefined_as_null;   /* tojson writes undefined as null; printing as "undefined" */
} jj_json_style;

/* Writes v as JSON the way @huggingface/jinja's tojson does. Returns -1 for a
 * function or nesting deeper than JJ_MAX_VALUE_DEPTH, 0 otherwise. */
int jj_write_json(jj_buf *b, jj_value v, const jj_json_style *style, int depth);

struct json_t;
/* A jansson value as a template value, as JS's JSON.parse would give it to the
 * template (dict keys that are array indexes come first, ascending, as in any JS
 * object). Returns -1 when nested deeper than JJ_MAX_VALUE_DEPTH or out of memory. */
int jj_from_json(jj_arena *a, const struct json_t *j, jj_value *out, int depth);

/* ---- JavaScript numbers and text (jinja_number.c, jinja_text.c) ---- */

/* Number.prototype.toString: "1", "0.1", "1e+21", "NaN". out holds >= 32 bytes. */
void jj_number_format(double d, char *out);
/* Number(s), parseInt(s, 10) and parseFloat(s); NaN when JS gives NaN. */
double jj_string_to_number(const char *s, size_t len);
double jj_parse_int(const char *s, size_t len);
double jj_parse_float(const char *s, size_t len);

/* Bytes of the UTF-8 character at s (1 for an invalid byte); len > 0. */
size_t jj_char_len(const char *s, size_t len);
/* Bytes of the JavaScript whitespace character (\s) at s, or 0. */
size_t jj_space_at(const char *s, size_t len);
/* Bytes of the JavaScript whitespace character that ends at s[end-1], or 0. */
size_t jj_space_before(const char *s, size_t end);
/* s without leading / trailing JavaScript whitespace (trimStart, trimEnd). */
jj_str jj_trim_start(jj_str s);
jj_str jj_trim_end(jj_str s);
/* The length JavaScript gives: UTF-16 code units. */
size_t jj_utf16_length(jj_str s);
/* Number of characters (code points). */
size_t jj_char_count(jj_str s);
/* Writes code point cp as UTF-8; returns the byte count (1..4). */
size_t jj_utf8_put(uint32_t cp, char *out);
/* Decodes the character at s (len > 0); an invalid byte decodes as itself. */
size_t jj_utf8_get(const char *s, size_t len, uint32_t *cp);

/* ---- tokens (jinja_lex.c) ---- */

typedef enum {
    JT_TEXT,
    JT_COMMENT,
    JT_NUMBER,
    JT_STRING,      /* text holds the value, escapes resolved */
    JT_NAME,
    JT_EQUALS,
    JT_LPAREN, JT_RPAREN,
    JT_OPEN_STATEMENT, JT_CLOSE_STATEMENT,
    JT_OPEN_EXPRESSION, JT_CLOSE_EXPRESSION,
    JT_LBRACKET, JT_RBRACKET,
    JT_LBRACE, JT_RBRACE,
    JT_COMMA, JT_DOT, JT_COLON, JT_PIPE,
    JT_ADDITIVE,       /* + - ~ */
    JT_MULTIPLICATIVE, /* * / // % */
    JT_POWER,          /* ** */
    JT_COMPARISON,     /* == != < > <= >= */
    JT_UNARY           /* + or - before an operand */
} jj_token_kind;

typedef struct {
    jj_token_kind kind;
    jj_str text;
    int line; /* in the template as given, from 1 */
} jj_token;

/* Tokenizes source[0..len) as @huggingface/jinja does with trim_blocks and
 * lstrip_blocks. Tokens (and the text they point to) live in arena; *tokens is
 * malloc'd. Errors name origin and the line. */
int jj_tokenize(const char *source, size_t len, const char *origin, jj_arena *arena,
                jj_token **tokens, size_t *n_tokens, mp_error *err);

/* ---- the syntax tree (jinja_parse.c, jinja_parse_expr.c) ---- */

typedef struct {
    jj_node **items;
    size_t len, cap;
} jj_list;

typedef enum {
    /* statements */
    JN_TEXT,     /* name: the text */
    JN_OUTPUT,   /* {{ left }} */
    JN_IF,       /* cond, body, orelse (an elif is a JN_IF alone in orelse) */
    JN_FOR,      /* for left (JN_NAME or JN_TUPLE) in right [if cond]: body, else: orelse */
    JN_SET,      /* left (JN_NAME, JN_TUPLE of names, JN_ATTR) = right, or the body's text */
    JN_MACRO,    /* name, args (JN_NAME, or JN_KWARG with its default), body */
    JN_BREAK,
    JN_CONTINUE,
    /* expressions */
    JN_LITERAL,  /* literal */
    JN_NAME,     /* name */
    JN_LIST,     /* args: the items */
    JN_TUPLE,    /* args: the items */
    JN_DICT,     /* args: key, value, key, value... */
    JN_ATTR,     /* left.name */
    JN_INDEX,    /* left[right] */
    JN_SLICE,    /* left[a:b:c]: args holds a, b, c, each possibly NULL */
    JN_CALL,     /* left(args), keyword arguments as JN_KWARG */
    JN_KWARG,    /* name=right */
    JN_FILTER,   /* left | name(args) */
    JN_TEST,     /* left is [not] name; op = 1 when negated */
    JN_UNARY,    /* op left */
    JN_BINARY,   /* left op right */
    JN_TERNARY,  /* left if cond else right */
    JN_SELECT    /* left if cond (no else): undefined when cond is false */
} jj_node_kind;

typedef enum {
    JO_ADD, JO_SUB, JO_CONCAT, JO_MUL, JO_DIV, JO_FLOORDIV, JO_MOD, JO_POW,
    JO_EQ, JO_NE, JO_LT, JO_GT, JO_LE, JO_GE, JO_IN, JO_NOT_IN, JO_AND, JO_OR,
    JO_NOT, JO_NEG, JO_POS
} jj_op;

struct jj_node {
    jj_node_kind kind;
    int line;
    int op;          /* jj_op for JN_BINARY / JN_UNARY; 1 = negated for JN_TEST */
    jj_str name;     /* see the kinds above */
    jj_value literal;
    jj_node *left, *right, *cond;
    jj_list args;
    jj_list body, orelse;
};

typedef struct {
    jj_arena arena; /* the nodes and the text they point to */
    jj_list body;
    char *origin;   /* malloc'd; names the template in errors */
} jj_template;

int jj_parse(const jj_token *tokens, size_t n, const char *origin, jj_arena *arena,
             jj_list *body, mp_error *err);

/* ---- rendering (jinja_exec.c, jinja_eval.c, jinja_filters.c, jinja_methods.c) ---- */

struct jj_scope {
    jj_scope *parent;
    jj_object vars;
};

enum { JJ_FLOW_NORMAL, JJ_FLOW_BREAK, JJ_FLOW_CONTINUE };

typedef struct {
    const jj_template *tmpl;
    jj_arena arena;       /* every value of this rendering */
    jj_buf *out;          /* where text goes: the output, or a macro's or set block's text */
    mp_error *err;
    int failed;           /* an error is recorded: everything unwinds without output */
    int flow;             /* JJ_FLOW_BREAK / CONTINUE while leaving a loop body */
    int call_depth;
    uint64_t steps;
    struct tm now;        /* the time strftime_now formats */
} jj_render;

/* Evaluated call arguments: positional ones, then keyword ones. */
typedef struct {
    jj_value *pos;
    size_t n_pos;
    jj_str *kw_names;
    jj_value *kw_values;
    size_t n_kw;
} jj_args;

/* Records the error "ORIGIN line N: message" (the first one only) and marks the
 * rendering failed; returns undefined so callers can `return jj_fail(...)`. */
jj_value jj_fail(jj_render *r, const jj_node *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Counts one evaluation step; returns 0 to go on, -1 when the rendering must stop. */
int jj_step(jj_render *r, const jj_node *at);

jj_value jj_eval(jj_render *r, jj_scope *scope, const jj_node *n);
jj_args jj_eval_args(jj_render *r, jj_scope *scope, const jj_list *args);
/* The positional argument i, else the keyword argument name, else NULL. */
const jj_value *jj_arg(const jj_args *a, size_t i, const char *name);
jj_value jj_lookup(jj_scope *scope, jj_str name);
void jj_scope_set(jj_render *r, jj_scope *scope, jj_str name, jj_value v);
jj_scope *jj_scope_new(jj_render *r, jj_scope *parent);

/* Runs statements, writing their text to r->out. */
void jj_exec_block(jj_render *r, jj_scope *scope, const jj_list *body);
/* A string value of what body writes (a macro call, a set block). */
jj_value jj_capture_block(jj_render *r, jj_scope *scope, const jj_list *body);
jj_value jj_call_macro(jj_render *r, const jj_node *at, const jj_function *fn, const jj_args *args);

/* The string the buffer holds, copied into the arena; frees the buffer. */
jj_value jj_buf_to_string(jj_render *r, const jj_node *at, jj_buf *b);

jj_value jj_apply_filter(jj_render *r, const jj_node *at, jj_value operand, jj_str name,
                         const jj_args *args);
/* 1 or 0; -1 after an error (unknown test, wrong type). arg is NULL for tests used
 * with `is`; selectattr's equalto passes its value. */
int jj_apply_test(jj_render *r, const jj_node *at, jj_str name, jj_value v, const jj_value *arg);
/* v.name for a string, list or dict method or property; undefined when there is none. */
jj_value jj_builtin_attribute(jj_render *r, jj_value v, jj_str name);
jj_value jj_call_builtin(jj_render *r, const jj_node *at, const jj_function *fn, const jj_args *args);
/* The scope with namespace, range, raise_exception and strftime_now. */
jj_scope *jj_global_scope(jj_render *r);
/* A string's characters (code points) as a list of one-character strings. */
jj_value jj_characters(jj_render *r, jj_str s);
/* The items of a dict as [key, value] lists, its keys, or its values. */
jj_value jj_object_items(jj_render *r, const jj_object *o);
jj_value jj_object_keys(jj_render *r, const jj_object *o);
jj_value jj_object_values(jj_render *r, const jj_object *o);

/* How sort and dictsort order items. */
typedef struct {
    int item_index;          /* >= 0: order [key, value] pairs by that item (dictsort) */
    const jj_str *attribute; /* otherwise: order by this attribute path ("a.b.0"), or NULL */
    int case_sensitive;
    int reverse;
} jj_sort_key;

/* Sorts items in place, stably, as HF's sort filter does; an error on items that
 * cannot be ordered (a string and a number...). */
void jj_sort(jj_render *r, const jj_node *at, jj_array *items, const jj_sort_key *key);
/* item.a.b.0 for the path "a.b.0" (HF's getAttributeValue: dict keys and list
 * indexes); undefined where the path leads nowhere. */
jj_value jj_attribute_path(jj_value item, jj_str path);

int jj_str_eq(jj_str s, const char *cstr);

#endif
