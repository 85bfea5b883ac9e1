/* The Jinja interpreter (tokenizer/jinja.h) and the chat-template API
 * (tokenizer/chat_template.h), construct by construct.
 *
 * The tables of render cases hold the output @huggingface/jinja 0.5.13 gives for each
 * template and variables (rendered with node when this file was written), quirks
 * included: JS number printing, `==` as JS's loose equality, `~` and `+` on lists,
 * strip() ignoring its argument, sort_keys in localeCompare order. Then what we accept
 * beyond HF (Jinja2's meaning), the errors (one line, naming the construct and its
 * line), the guards against runaway templates, and the checkpoint loader. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../tokenizer/chat_template.h"
#include "../../tokenizer/jinja.h"

typedef struct {
    const char *template;
    const char *vars; /* a JSON object, or NULL */
    const char *want;
} render_case;

/* strftime_now sees 2025-01-07 13:05 */
static struct tm fixed_now(void)
{
    struct tm t = {0};
    t.tm_year = 125;
    t.tm_mday = 7;
    t.tm_hour = 13;
    t.tm_min = 5;
    return t;
}

/* Parses and renders; returns the exit code, the output in *out (malloc'd) or the error. */
static int render(const char *template, const char *vars_json, char **out, mp_error *err)
{
    mp_jinja *t = NULL;
    json_t *vars = NULL;
    size_t len;
    struct tm now = fixed_now();
    *out = NULL;
    mp_error_clear(err);
    if (vars_json) {
        json_error_t jerr;
        vars = json_loads(vars_json, 0, &jerr);
        assert_non_null(vars);
    }
    int rc = mp_jinja_parse(template, strlen(template), "t", &t, err);
    if (rc == MP_OK)
        rc = mp_jinja_render(t, vars, &now, out, &len, err);
    if (rc == MP_OK)
        assert_int_equal(strlen(*out), len);
    mp_jinja_free(t);
    json_decref(vars);
    return rc;
}

static void expect_render(const char *template, const char *vars, const char *want)
{
    char *out;
    mp_error err;
    int rc = render(template, vars, &out, &err);
    if (rc != MP_OK || strcmp(out, want) != 0)
        fprintf(stderr, "template: %s\nvars: %s\nerror: %s\n", template, vars ? vars : "-", rc ? err.msg : "-");
    assert_int_equal(rc, MP_OK);
    assert_string_equal(out, want);
    free(out);
}

static void expect_cases(const render_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++)
        expect_render(cases[i].template, cases[i].vars, cases[i].want);
}

/* Parsing or rendering fails with MP_EXIT_INPUT and one line holding want. */
static void expect_error(const char *template, const char *vars, const char *want)
{
    char *out;
    mp_error err;
    int rc = render(template, vars, &out, &err);
    if (rc == MP_OK || !strstr(err.msg, want))
        fprintf(stderr, "template: %s\nwanted an error with: %s\ngot: %s\n", template, want,
                rc ? err.msg : out);
    assert_int_equal(rc, MP_EXIT_INPUT);
    assert_non_null(strstr(err.msg, want));
    assert_null(strchr(err.msg, '\n'));
    free(out);
}

/* ---- rendered by @huggingface/jinja ---- */

static const render_case LITERALS[] = {
    {"{{ 1 }}|{{ 1.0 }}|{{ 1.5 }}|{{ -0.0 }}|{{ 0.1 + 0.2 }}|{{ 1 / 3 }}|{{ 10 / 2 }}",
     NULL,
     "1|1.0|1.5|-0.0|0.30000000000000004|0.3333333333333333|5.0"},
    {"{{ 100000000000000000000 * 10 }}|{{ 0.000001 }}|{{ 0.0000001 }}|{{ 1 / 0 }}|{{ 0 / 0 }}|{{ 2 ** 70 }}",
     NULL,
     "1e+21|0.000001|1e-7|Infinity|NaN|1.1805916207174113e+21"},
    {"{{ 'a\\tb' }}|{{ \"q\\\"q\" }}|{{ 'x' 'y' \"z\" }}|{{ '\\u00e9\\x41' }}|{{ \"it's\" }}|{{ '\\\\' }}",
     NULL,
     "a\tb|q\"q|xyz|éA|it's|\\"},
    {"{{ true }}|{{ false }}|{{ none }}|{{ None }}|{{ True }}|{{ undefined_var }}",
     NULL,
     "true|false|||true|"},
    {"{{ [1, 'a', none, 1.5, true] }}|{{ {'a': 1, 'b': [2]} }}|{{ [undefined_var] }}|{{ {'a': {'b': 1}} }}",
     NULL,
     "[1, \"a\", null, 1.5, true]|{\"a\": 1, \"b\": [2]}|[undefined]|{\"a\": {\"b\": 1}}"},
    {"{{ x }}|{{ x|tojson }}|{{ y }}",
     "{\"x\": {\"big\": 1e+30, \"f\": 2.5, \"i\": 3, \"neg\": -1e-07, \"whole\": 4.0}, \"y\": [1.0, 1e+21, 123456789.123]}",
     "{\"big\": 1e+30, \"f\": 2.5, \"i\": 3, \"neg\": -1e-7, \"whole\": 4}|{\"big\": 1e+30, \"f\": 2.5, \"i\": 3, \"neg\": -1e-7, \"whole\": 4}|[1, 1e+21, 123456789.123]"},
    {"{% for k in d %}{{ k }}={{ d[k] }};{% endfor %}",
     "{\"d\": {\"10\": \"a\", \"2\": \"b\", \"x\": \"c\", \"1\": \"d\"}}",
     "1=d;2=b;10=a;x=c;"},
};

static const render_case WHITESPACE[] = {
    {"  {% if true %}\n  yes\n  {% endif %}\n  {{ 'x' }}\n",
     NULL,
     "  yes\n  x"},
    {"a  {%- if true -%}  b  {%- endif -%}  c",
     NULL,
     "abc"},
    {"a {{- ' b ' -}} c\n{# comment #}\nd {#- c -#} e",
     NULL,
     "a b c\nde"},
    {"{% for i in [1,2,3] %}{{ i }}{% endfor %}\n\nend\n",
     NULL,
     "123\nend"},
    {"x\n{%- generation -%}\n  gen  \n{%- endgeneration %}\ny",
     NULL,
     "xgeny"},
    {"  {%- if true %}\n    x\n{%- endif %}\n  y  \n  {#- c #}\nz\n\n",
     NULL,
     "    x  yz\n"},
    {"\t{% if true %}\t\n\tt\n{% endif %}\n{{ 'e' }}\n  {{- 'f' }}\n{%- for x in [1] -%}\n  {{ x }}\n{%- endfor %}\n",
     NULL,
     "\t\n\tt\nef1"},
    {"a\n  {# c #}\nb\n  {%- set x = 1 -%}  \n  c",
     NULL,
     "a\nbc"},
    {"{{ 'x' }}\n{{ 'y' }}\n{% if 1 %}\n\nz{% endif %}",
     NULL,
     "x\ny\n\nz"},
    {"{{ '%}\\n' }}|100%}\nx",
     NULL,
     "%}\n|100%}x"},
    {"{{- '  lead' -}}   {{- 'trail  ' }}",
     NULL,
     "  leadtrail  "},
    {"{% set x %}\n  block\n{% endset %}[{{ x }}]",
     NULL,
     "[  block\n]"},
    {"{{ \"{{ not a tag }}\" }}|{{ '{% x %}' }}",
     NULL,
     "{{ not a tag }}|{% x %}"},
};

static const render_case CONTROL[] = {
    {"{% if a %}A{% elif b %}B{% elif c %}C{% else %}D{% endif %}",
     "{\"c\": 1}",
     "C"},
    {"{% for x in xs %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}:{{ loop.previtem }}/{{ loop.nextitem }};{% endfor %}",
     "{\"xs\": [\"a\", \"b\", \"c\"]}",
     "1032truefalse3:/b;2121falsefalse3:a/c;3210falsetrue3:b/;"},
    {"{% for x in [] %}a{% else %}empty{% endfor %}|{% for k, v in d.items() %}{{ k }}={{ v }},{% endfor %}|{% for k in d %}{{ k }}{% endfor %}|{% for x in xs if x > 1 %}{{ x }}{{ loop.index }}{% endfor %}",
     "{\"d\": {\"b\": 1, \"a\": 2}, \"xs\": [1, 2, 3]}",
     "empty|b=1,a=2,|ba|2132"},
    {"{% for x in xs %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}|{% for x in [1] %}{% continue %}{% else %}else-ran{% endfor %}",
     "{\"xs\": [1, 2, 3, 4, 5]}",
     "13|else-ran"},
    {"{% for i in range(3) %}{% for j in range(2) %}{{ loop.index }}{% endfor %}{{ loop.index }};{% endfor %}",
     NULL,
     "121;122;123;"},
    {"{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }}{% endfor %}",
     NULL,
     "37"},
    {"{% for m in messages %}{{ m.role }}{% if not loop.last %},{% endif %}{% endfor %}",
     "{\"messages\": [{\"role\": \"a\"}, {\"role\": \"b\"}]}",
     "a,b"},
};

static const render_case SCOPES[] = {
    {"{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{{ x }}{% endfor %}{{ x }}|{% set ns = namespace(n=0) %}{% for i in [1,2,3] %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}|{% set a, b = [1, 2] %}{{ a }}{{ b }}|{% set blk %}in {{ a }} block{% endset %}[{{ blk }}]",
     NULL,
     "21|6|12|[in 1 block]"},
    {"{%- set ns = namespace(items=[]) %}{%- for x in [1, 2] %}{% set ns.items = ns.items + [x * 2] %}{% endfor %}{{ ns.items }}|{{ ns }}",
     NULL,
     "[2, 4]|{\"items\": [2, 4]}"},
    {"{% set ns = namespace([['a', 1], ['b', 2]]) %}{{ ns.a }}{{ ns.b }}|{% set n2 = namespace() %}{% set n2.x = 'X' %}{{ n2.x }}|{{ n2.missing }}|{{ n2['x'] }}|{% set n3 = namespace({'a': 1}, b=2) %}{{ n3.a }}{{ n3.b }}",
     NULL,
     "12|X||X|12"},
    {"{{ a }}{% set a = 'late' %}{{ a }}",
     "{\"a\": \"early\"}",
     "earlylate"},
    {"{% for x in [1, 2] %}{% set y = x %}{% endfor %}[{{ y }}]",
     NULL,
     "[]"},
};

static const render_case MACROS[] = {
    {"{% macro m(a, b=2, c='c') %}{{ a }}-{{ b }}-{{ c }}{% endmacro %}{{ m(1) }}|{{ m(1, 3) }}|{{ m(1, c='z') }}|{{ m(a=5, b=6) }}|{{ m() }}",
     NULL,
     "1-2-c|1-3-c|1-2-z|5-6-c|-2-c"},
    {"{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1)|int }}{% endif %}{% endmacro %}{{ fact(5) }}",
     NULL,
     "120"},
    {"{% set g = 'G' %}{% macro show() %}{{ g }}{% endmacro %}{% set g = 'H' %}{{ show() }}",
     NULL,
     "H"},
    {"{% macro outer(x) %}[{{ inner(x) }}]{% endmacro %}{% macro inner(y) %}<{{ y }}>{% endmacro %}{{ outer(1) }}",
     NULL,
     "[<1>]"},
    {"{% macro m(a) %}{% set a = a ~ '!' %}{{ a }}{% endmacro %}{% set a = 'g' %}{{ m('l') }}{{ a }}",
     NULL,
     "l!g"},
    {"{% macro m(x, y=x ~ 'y') %}{{ y }}{% endmacro %}{{ m('a') }}|{{ m('a', 'b') }}",
     NULL,
     "ay|b"},
    {"{% macro m() %}X{% endmacro %}{% set s = m() %}{{ s ~ s }}|{{ m()|length }}|{{ m() is string }}",
     NULL,
     "XX|1|true"},
    {"{%- macro r(n) -%}{%- if n > 0 -%}{{ n }}{{ r(n - 1) }}{%- endif -%}{%- endmacro -%}{{ r(5) }}",
     NULL,
     "54321"},
};

static const render_case OPERATORS[] = {
    {"{{ 2 + 3 * 4 }}|{{ (2 + 3) * 4 }}|{{ 2 ** 3 ** 2 }}|{{ -2 ** 2 }}|{{ 1 + 2 | string }}|{{ 'a' ~ 1 + 2 }}|{{ not 1 == 2 }}|{{ 10 - 2 - 3 }}",
     NULL,
     "14|20|64|4|12|a12|true|5"},
    {"{{ 7 // 2 }}|{{ -7 // 2 }}|{{ -7 % 3 }}|{{ 7.5 // 2 }}|{{ 7 % 2.5 }}|{{ 2 ** -1 }}|{{ 3 * 1.0 }}|{{ 5 - 5.0 }}",
     NULL,
     "3|-4|-1|3.0|2.0|0.5|3.0|0.0"},
    {"{{ 1 == 1.0 }}{{ '1' == 1 }}{{ none == undefined_var }}{{ [] == '' }}{{ true == 1 }}{{ 'a' != 'b' }}{{ [1] == [1] }}{{ x == x }}{{ ' 1 ' == 1 }}{{ 'a' == none }}",
     "{\"x\": [1]}",
     "truetruetruetruetruetruefalsetruetruefalse"},
    {"{{ 2 in [1, 2] }}{{ 'b' in 'abc' }}{{ 'k' in {'k': 1} }}{{ 'z' not in 'abc' }}{{ 1 in undefined_var }}{{ '1' in [1] }}{{ 1.0 in [1] }}{{ '' in 'x' }}",
     NULL,
     "truetruetruetruefalsefalsetruetrue"},
    {"{{ 0 or 'x' }}|{{ 'a' and 'b' }}|{{ [] or none }}|{{ not [] }}|{{ 'y' if 0 else 'n' }}|{{ 'y' if 1 }}|[{{ 'y' if 0 }}]|{{ 1 if true else 2 if true else 3 }}",
     NULL,
     "x|b||true|n|y|[]|1"},
    {"{{ 'a' ~ 1 ~ 1.0 ~ none_var ~ [1, 'x'] }}|{{ 'a' + 1.0 }}|{{ 'n' + true }}|{{ 'x' + {'a': 1} }}|{{ 'l' + [1, 2] }}|{{ [1] + [2] }}|{{ [1, [2, 3], {'a': none}] ~ '' }}",
     NULL,
     "a111,x|a1|ntrue|x[object Map]|l1,2|[1, 2]|1,[2, 3],{\"a\": null}"},
    {"{{ -x }}|{{ +x }}|{{ -(-x) }}|{{ - 2 }}|{{ [-1][0] }}|{{ 5-3 }}|{{ x-1 }}|{{ -true }}|{{ -1.5 }}",
     "{\"x\": 3}",
     "-3|3|3|-2|-1|2|2|-1|-1.5"},
    {"{{ 'abc'[::-1] }}|{{ [1,2,3,4][1:] }}|{{ [1,2,3,4][-2:] }}|{{ [1,2,3,4][::2] }}|{{ 'hello'[1:3] }}|{{ [1, 2, 3][2:0:-1] }}|{{ '😀ab'[1:] }}|{{ [1,2,3][0:3:0] }}",
     NULL,
     "cba|[2, 3, 4]|[3, 4]|[1, 3]|el|[3, 2]|ab|[]"},
    {"{{ [1,2,3][-1] }}|{{ 'héllo'[1] }}|{{ [1,2,3][5] }}|{{ xs[0].a }}|{{ d.missing.deeper }}|{{ undefined_var.attr }}|{{ none.attr }}|{{ y.0 }}|{{ 'abc'.length }}",
     "{\"xs\": [{\"a\": \"A\"}], \"d\": {}, \"y\": [7]}",
     "3|é||A||||7|3"},
    {"{{ x|length - 1 }}|{{ xs[x|length - 3] }}",
     "{\"x\": \"abcd\", \"xs\": [5, 6]}",
     "3|6"},
};

static const render_case TESTS[] = {
    {"{{ x is defined }}{{ y is undefined }}{{ none is none }}{{ 's' is string }}{{ 1.5 is number }}{{ 1.0 is integer }}{{ {} is mapping }}{{ [] is iterable }}{{ 's' is iterable }}{{ {} is iterable }}{{ {} is sequence }}{{ true is boolean }}{{ true is true }}{{ 1 is true }}{{ 3 is odd }}{{ 4 is even }}{{ 'ab' is lower }}{{ 'AB' is upper }}{{ range is callable }}{{ x is not none }}",
     "{\"x\": 1}",
     "truetruetruetruetruefalsetruetruetruefalsetruetruetruefalsetruetruetruetruetruetrue"},
    {"{{ x is defined and x.y is defined }}|{{ x.y is none }}|{{ x.z|default('d') }}|{{ x.y|default('d') }}|{{ x.y|default('d', true) }}",
     "{\"x\": {\"y\": null}}",
     "true|true|d||d"},
};

static const render_case FILTERS[] = {
    {"{{ '  t  '|trim }}|{{ 'ab'|upper }}|{{ 'AB'|lower }}|{{ 'hello wORLD-x_y 3d'|title }}|{{ 'hello World'|capitalize }}|{{ 'héllo'|length }}|{{ '😀'|length }}|{{ [1,2]|length }}|{{ {'a':1}|length }}",
     NULL,
     "t|AB|ab|Hello WORLD-X_y 3d|Hello World|5|2|2|1"},
    {"{{ [1, 'a', none, 2.0]|join(', ') }}|{{ 'abc'|join('-') }}|{{ xs|join }}|{{ [[1, 2], [3]]|join(';') }}|{{ undefined_var|default('dflt') }}|{{ ''|default('e', true) }}|{{ ''|default('e') }}|{{ [3,1]|first }}|{{ [3,1]|last }}",
     "{\"xs\": [\"x\", \"y\"]}",
     "1, a, , 2|a-b-c|xy|1,2;3|dflt|e||3|1"},
    {"{{ {'b': [1, {'c': none}], 'a': 'é\"\\n'}|tojson }}|{{ {'b': [1, 2], 'a': {}}|tojson(indent=2) }}|{{ {'b': 'é😀'}|tojson(ensure_ascii=true) }}|{{ [1, {'a': 2}]|tojson(separators=(',', ':')) }}|{{ undefined_var|tojson }}|{{ 1.0|tojson }}",
     NULL,
     "{\"b\": [1, {\"c\": null}], \"a\": \"é\\\"\\n\"}|{\n  \"b\": [\n    1,\n    2\n  ],\n  \"a\": {}\n}|{\"b\": \"\\u00e9\\ud83d\\ude00\"}|[1,{\"a\":2}]|null|1"},
    {"{{ {'b': 1, 'A': 2, 'a': 3, 'a_b': 4, 'ab': 5, 'aB': 6, 'Ab': 7, 'a1': 8, '_x': 9}|tojson(sort_keys=true) }}",
     NULL,
     "{\"_x\": 9, \"a\": 3, \"A\": 2, \"a_b\": 4, \"a1\": 8, \"ab\": 5, \"aB\": 6, \"Ab\": 7, \"b\": 1}"},
    {"{{ x|tojson(indent=4) }}|{{ []|tojson(indent=2) }}|{{ ['\\u007f']|tojson(ensure_ascii=true) }}|{{ [1, 2]|tojson(indent=2, separators=(', ', ' = ')) }}",
     "{\"x\": {\"a\": [1, {\"b\": [true, null]}], \"s\": \"tab\\there \\u0001 \\u007f \\u2028\"}}",
     "{\n    \"a\": [\n        1,\n        {\n            \"b\": [\n                true,\n                null\n            ]\n        }\n    ],\n    \"s\": \"tab\\there \\u0001 \177 \u2028\"\n}|[]|[\"\\u007f\"]|[\n  1, \n  2\n]"},
    {"{{ [1, 'a']|string }}|{{ 1.0|string }}|{{ true|string }}|{{ '42abc'|int }}|{{ 'x'|int }}|{{ 'x'|int(7) }}|{{ 3.9|int }}|{{ -3.9|int }}|{{ '2.5e1x'|float }}|{{ 2|float }}|{{ true|int }}|{{ '0x1A'|int }}|{{ '.5'|float }}",
     NULL,
     "[1, \"a\"]|1.0|true|42|0|7|3|-3|25.0|2.0|1|0|0.5"},
    {"{{ d|items }}|{{ d.items() }}|{{ d.keys() }}|{{ d.values() }}|{{ xs|map(attribute='n')|join(',') }}|{{ xs|map(attribute='m', default='-')|join(',') }}|{{ xs|rejectattr('n')|list }}|{{ xs|selectattr('n')|map(attribute='n')|list }}|{{ ys|selectattr('t', 'equalto', 'b')|list }}",
     "{\"d\": {\"a\": 1, \"b\": \"x\"}, \"xs\": [{\"n\": 1}, {\"n\": 2}, {\"n\": 0}], \"ys\": [{\"t\": \"a\"}, {\"t\": \"b\"}]}",
     "[[\"a\", 1], [\"b\", \"x\"]]|[[\"a\", 1], [\"b\", \"x\"]]|[\"a\", \"b\"]|[1, \"x\"]|1,2,0|-,-,-|[{\"n\": 0}]|[1, 2]|[{\"t\": \"b\"}]"},
    {"{{ messages|map(attribute='content.0.text')|join }}",
     "{\"messages\": [{\"role\": \"user\", \"content\": [{\"text\": \"T\"}]}, {\"role\": \"a\", \"content\": [{\"text\": \"U\"}]}]}",
     "TU"},
    {"{{ 'aXbXc'|replace('X', '-') }}|{{ 'aXbXc'|replace('X', '-', 1) }}|{{ 'ab'|replace('', '.') }}|{{ 'a\\nb\\n\\nc'|indent }}|{{ 'a\\nb'|indent(2, true) }}|{{ 'a\\n\\nb'|indent('> ', blank=true) }}|{{ [1, 2, 1, '1']|unique|list }}|{{ [1,2]|reverse }}|{{ -3|abs }}|{{ '<a&b>'|safe }}",
     NULL,
     "a-b-c|a-bXc|.a.b.|a\n    b\n\n    c|  a\n  b|a\n> \n> b|[1, 2, \"1\"]|[2, 1]|3|<a&b>"},
    {"{{ [3, 1, 2]|sort }}|{{ ['b', 'A', 'a']|sort }}|{{ ['b', 'A', 'a']|sort(reverse=true, case_sensitive=true) }}|{{ xs|sort(attribute='n')|map(attribute='n')|join }}|{{ [true, 0, 2]|sort }}|{{ d|dictsort }}|{{ d|dictsort(by='value') }}|{{ d.dictsort(reverse=true) }}",
     "{\"xs\": [{\"n\": 2}, {\"n\": 1}], \"d\": {\"b\": 1, \"a\": 2, \"C\": 0}}",
     "[1, 2, 3]|[\"A\", \"a\", \"b\"]|[\"b\", \"a\", \"A\"]|12|[0, true, 2]|[[\"a\", 2], [\"b\", 1], [\"C\", 0]]|[[\"C\", 0], [\"b\", 1], [\"a\", 2]]|[[\"C\", 0], [\"b\", 1], [\"a\", 2]]"},
};

static const render_case METHODS[] = {
    {"{{ 'abc'.startswith('a') }}{{ 'abc'.startswith(['x', 'ab']) }}{{ 'abc'.endswith('bc') }}|{{ ' a  b '.split() }}|{{ 'a,b,,c'.split(',') }}|{{ 'a,b,c'.split(',', 1) }}|{{ ' a b c '.split(none, 1) }}|{{ ''.split(',') }}|{{ '   '.split() }}",
     NULL,
     "truetruetrue|[\"a\", \"b\"]|[\"a\", \"b\", \"\", \"c\"]|[\"a\", \"b,c\"]|[\"a\", \"b c \"]|[\"\"]|[]"},
    {"{{ '\\n x \\n'.strip('\\n') }}|{{ '  x '.lstrip() }}|{{ ' x  '.rstrip() }}|{{ ' \\u00a0x\\u3000'|trim }}|{{ 'aaa'.replace('a', 'b', 2) }}|{{ 'é'.replace('', '-') }}|{{ 'ab'.upper() }}{{ 'AB'.lower() }}|{{ '3rd place'.title() }}|{{ 'aBC'.capitalize() }}",
     NULL,
     "x|x | x|x|bba|-é-|ABab|3rd Place|ABC"},
    {"{{ d.get('a') }}|{{ d.get('z', 'dflt') }}|{{ d.get('z') }}|{{ d.items }}|{{ d.keys()|length }}",
     "{\"d\": {\"a\": 1, \"items\": \"shadowed\"}}",
     "1|dflt||shadowed|2"},
};

static const render_case GLOBALS[] = {
    {"{{ range(3)|list }}|{{ range(1, 7, 2)|list }}|{{ range(3, 0, -1)|list }}|{{ range(0) }}|{{ range(0, 1, 0.25) }}",
     NULL,
     "[0, 1, 2]|[1, 3, 5]|[3, 2, 1]|[]|[0, 0.25, 0.5, 0.75]"},
    {"{{ strftime_now('%Y-%m-%d %H:%M %b %B %% %j') }}|{{ strftime_now('%d/%m/%Y') }}|{{ strftime_now('%') }}",
     NULL,
     "2025-01-07 13:05 Jan January % %j|07/01/2025|%"},
};

static void test_literals_and_printing(void **state)
{
    (void)state;
    expect_cases(LITERALS, sizeof LITERALS / sizeof LITERALS[0]);
}

static void test_whitespace_control(void **state)
{
    (void)state;
    expect_cases(WHITESPACE, sizeof WHITESPACE / sizeof WHITESPACE[0]);
}

static void test_if_and_for(void **state)
{
    (void)state;
    expect_cases(CONTROL, sizeof CONTROL / sizeof CONTROL[0]);
}

static void test_set_namespace_and_scopes(void **state)
{
    (void)state;
    expect_cases(SCOPES, sizeof SCOPES / sizeof SCOPES[0]);
}

static void test_macros(void **state)
{
    (void)state;
    expect_cases(MACROS, sizeof MACROS / sizeof MACROS[0]);
}

static void test_operators_and_access(void **state)
{
    (void)state;
    expect_cases(OPERATORS, sizeof OPERATORS / sizeof OPERATORS[0]);
}

static void test_tests(void **state)
{
    (void)state;
    expect_cases(TESTS, sizeof TESTS / sizeof TESTS[0]);
}

static void test_filters(void **state)
{
    (void)state;
    expect_cases(FILTERS, sizeof FILTERS / sizeof FILTERS[0]);
}

static void test_methods(void **state)
{
    (void)state;
    expect_cases(METHODS, sizeof METHODS / sizeof METHODS[0]);
}

static void test_globals(void **state)
{
    (void)state;
    expect_cases(GLOBALS, sizeof GLOBALS / sizeof GLOBALS[0]);
}

/* ---- beyond @huggingface/jinja: Jinja2's meaning where HF refuses ---- */

static void test_jinja2_extras(void **state)
{
    (void)state;
    expect_render("{% for c in 'ab' %}[{{ c }}]{% endfor %}", NULL, "[a][b]");
    expect_render("{{ 'abc'|first }}{{ 'abc'|last }}|{{ 'ab'|list }}|{{ 'abc'|reverse }}", NULL, "ac|[\"a\", \"b\"]|cba");
    expect_render("{{ [1, 2]|count }}|{{ 'abc'|count }}|{{ x|d('dflt') }}", NULL, "2|3|dflt");
    expect_render("{{ '<a href=\"x\">&\\'</a>'|e }}|{{ 5|escape }}", NULL,
                  "&lt;a href=&#34;x&#34;&gt;&amp;&#39;&lt;/a&gt;|5");
    expect_render("{{ [1, 0, 2]|select|list }}|{{ [1, 2, 3]|reject('odd')|list }}|{{ [1, 'a']|select('string')|list }}",
                  NULL, "[1, 2]|[2]|[\"a\"]");
    expect_render("{{ xs|selectattr('n', 'equalto', 2)|list }}", "{\"xs\": [{\"n\": 1}, {\"n\": 2}]}", "[{\"n\": 2}]");
    expect_render("{{ {'b': 1, 'a': 2}|list }}|{{ (1, 'a') }}", NULL, "[\"b\", \"a\"]|[1, \"a\"]");
    expect_render("{% set t = (1, 2) %}{% for a, b in [t] %}{{ a }}{{ b }}{% endfor %}", NULL, "12");
}

/* ---- errors ---- */

static void test_unsupported_constructs(void **state)
{
    (void)state;
    expect_error("line 1\n{{ x|wordwrap }}", "{\"x\": \"a\"}", "t line 2: filter 'wordwrap' is not supported");
    expect_error("{% if true %}\n{% include 'other.jinja' %}{% endif %}", NULL, "t line 2: statement 'include' is not supported");
    expect_error("{% call m() %}x{% endcall %}", NULL, "t line 1: statement 'call' is not supported");
    expect_error("{% filter upper %}x{% endfilter %}", NULL, "statement 'filter' is not supported");
    expect_error("\n\n{% frobnicate %}", NULL, "t line 3: unknown statement 'frobnicate'");
    expect_error("{{ 6 is divisibleby(3) }}", NULL, "t line 1: test 'divisibleby' with an argument is not supported");
    expect_error("{{ 6 is prime }}", NULL, "t line 1: test 'prime' is not supported");
    expect_error("{{ 'x'.format(1) }}", NULL, "t line 1: 'format' is undefined, not a function or macro");
    expect_error("{{ [1].append(2) }}", NULL, "'append' is undefined, not a function or macro");
    expect_error("{{ f(*args) }}", NULL, "argument unpacking with * or ** is not supported");
    expect_error("{% for x in xs recursive %}{% endfor %}", "{\"xs\": []}", "expected '%}', found 'recursive'");
}

static void test_syntax_errors(void **state)
{
    (void)state;
    expect_error("a\n{% if x %}\nb", NULL, "t line 2: {% if %} is never closed with {% endif %}");
    expect_error("{% for x in y %}", NULL, "t line 1: {% for %} is never closed with {% endfor %}");
    expect_error("{% macro m() %}", NULL, "{% macro %} is never closed with {% endmacro %}");
    expect_error("x\n{% endfor %}", NULL, "t line 2: {% endfor %} closes no open block");
    expect_error("{{ 'a' + }}", NULL, "t line 1: expected an expression, found '}}'");
    expect_error("\n{{ 'unterminated }}", NULL, "t line 2: string starting here is never closed");
    expect_error("{{ x | }}", NULL, "expected a filter name after '|'");
    expect_error("{{ 1 @ 2 }}", NULL, "t line 1: unexpected character '@'");
    expect_error("{{ \"\\q\" }}", NULL, "invalid escape \\q in a string");
    expect_error("{# never closed", NULL, "comment {# is never closed with #}");
    expect_error("{{ x", NULL, "unexpected end of template");
    expect_error("{% set 1 = 2 %}", NULL, "set assigns to a name");
    expect_error("{% macro m(a=1, b) %}{% endmacro %}", NULL, "a parameter without default follows one with a default");
    expect_error("{% macro m(a, a) %}{% endmacro %}", NULL, "parameter 'a' appears twice");
    expect_error("{{ f(a=1, 2) }}", NULL, "a positional argument follows a keyword argument");
    expect_error("{{ x[] }}", NULL, "expected an index inside []");
    expect_error("ok\n\xff\n", NULL, "t line 2: not valid UTF-8");
}

static void test_runtime_errors(void **state)
{
    (void)state;
    expect_error("a\n\n{{ 'abc' < 'b' }}", NULL, "t line 3: operator '<' does not apply to string and string");
    expect_error("{{ none ~ 'x' }}", NULL, "operator '~' does not apply to none and string");
    expect_error("{{ x.y }}{{ x.y.z[0] }}", NULL, "t line 1: cannot index undefined with integer");
    expect_error("{{ [1]|trim }}", NULL, "filter 'trim' does not apply to list");
    expect_error("{{ none|string }}", NULL, "filter 'string' does not apply to none");
    expect_error("{{ 1.5 is odd }}", NULL, "test 'odd' needs an integer, not float");
    expect_error("{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}", NULL, "macro 'm' takes at most 1 arguments, got 2");
    expect_error("{% macro m(a) %}{% endmacro %}{{ m(z=1) }}", NULL, "macro 'm' has no parameter 'z'");
    expect_error("{{ m() }}{% macro m() %}{% endmacro %}", NULL, "'m' is undefined, not a function or macro");
    expect_error("{{ raise_exception('Bad role: ' ~ role) }}", "{\"role\": \"x\"}", "t line 1: raise_exception: Bad role: x");
    expect_error("{% for x in 5 %}{% endfor %}", NULL, "cannot loop over integer");
    expect_error("{% for a, b in [[1]] %}{% endfor %}", NULL, "cannot unpack a list of another length into 2 names");
    expect_error("{{ [1][0:'a'] }}", NULL, "slice bounds must be integers, not string");
    expect_error("{% set x.y = 1 %}", "{\"x\": {}}", "set can assign attributes of a namespace only, not of dict");
    expect_error("{% break %}", NULL, "{% break %} or {% continue %} outside a loop");
    expect_error("{{ range }}", NULL, "cannot print a function or macro");
    expect_error("{{ [1, 'a']|sort }}", NULL, "cannot order string and integer");
    expect_error("{{ x|tojson(2) }}", NULL, "tojson takes keyword arguments only");
    expect_error("{{ 'a,b'.split(sep=',') }}", NULL, "split() takes a string or none");
    expect_error("{{ xs|map('upper') }}", "{\"xs\": []}", "filter 'map' without attribute= is not supported");
}

/* ---- guards ---- */

static char *repeat(const char *piece, int times, const char *before, const char *after)
{
    size_t n = strlen(piece) * (size_t)times + strlen(before) + strlen(after) + 1;
    char *s = malloc(n);
    assert_non_null(s);
    strcpy(s, before);
    for (int i = 0; i < times; i++)
        strcat(s, piece);
    strcat(s, after);
    return s;
}

static void test_runaway_templates(void **state)
{
    (void)state;
    expect_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", NULL,
                 "t line 1: macro calls nested deeper than 200 (endless recursion in 'f'?)");
    expect_error("{% macro a() %}{{ b() }}{% endmacro %}{% macro b() %}{{ a() }}{% endmacro %}{{ a() }}", NULL,
                 "macro calls nested deeper than 200");
    /* a recursion that ends is fine */
    expect_render("{% macro f(n) %}{% if n < 150 %}{{ f(n + 1) }}{% else %}{{ n }}{% endif %}{% endmacro %}{{ f(0) }}",
                  NULL, "150");
    char *deep = repeat("(", 5000, "{{ ", "1 }}");
    expect_error(deep, NULL, "template nested deeper than 200 levels");
    free(deep);
    deep = repeat("{% if true %}", 5000, "", "");
    expect_error(deep, NULL, "template nested deeper than 200 levels");
    free(deep);
    deep = repeat("not ", 5000, "{{ ", "1 }}");
    expect_error(deep, NULL, "template nested deeper than 200 levels");
    free(deep);
    deep = repeat("[", 100000, "{{ x", " }}");
    expect_error(deep, NULL, "t line 1:");
    free(deep);
    expect_error("{{ range(100000000)|length }}", NULL, "range() of more than 1000000 numbers");
    expect_error("{% set ns = namespace() %}{% set ns.self = ns %}{{ ns|tojson }}", NULL, "nested this deep");
}

/* A JSON value nested deeper than the interpreter converts. */
static void test_deep_variables(void **state)
{
    (void)state;
    char *deep = repeat("[", 1000, "{\"x\": ", "");
    char *json = repeat("]", 1000, deep, "}");
    char *out;
    mp_error err;
    assert_int_equal(render("{{ x|length }}", json, &out, &err), MP_EXIT_INPUT);
    assert_non_null(strstr(err.msg, "variable 'x' is nested too deep"));
    free(deep);
    free(json);
}

/* ---- the API ---- */

static void test_render_is_repeatable(void **state)
{
    (void)state;
    const char *src = "{% for m in messages %}{{ m.role }}:{{ m.content }};{% endfor %}{{ strftime_now('%Y') }}";
    mp_jinja *t;
    mp_error err = {0};
    assert_int_equal(mp_jinja_parse(src, strlen(src), NULL, &t, &err), MP_OK);
    json_t *a = json_loads("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}", 0, NULL);
    json_t *b = json_loads("{\"messages\": []}", 0, NULL);
    struct tm now = fixed_now();
    char *first, *second, *other;
    size_t len;
    assert_int_equal(mp_jinja_render(t, a, &now, &first, &len, &err), MP_OK);
    assert_int_equal(mp_jinja_render(t, b, &now, &other, &len, &err), MP_OK);
    assert_int_equal(mp_jinja_render(t, a, &now, &second, &len, &err), MP_OK);
    assert_string_equal(first, "user:hi;2025");
    assert_string_equal(other, "2025");
    assert_string_equal(second, first);
    free(first);
    free(second);
    free(other);
    /* no variables at all, and an empty result */
    assert_int_equal(mp_jinja_render(t, NULL, &now, &first, &len, &err), MP_EXIT_INPUT);
    assert_non_null(strstr(err.msg, "chat template line 1: cannot loop over undefined"));
    json_decref(a);
    json_decref(b);
    mp_jinja_free(t);
    expect_render("{# nothing #}", NULL, "");
    expect_render("", NULL, "");
}

static void test_chat_context(void **state)
{
    (void)state;
    const char *src = "{{ bos_token }}{% for m in messages %}[{{ m.content }}]{% endfor %}"
                      "{% if add_generation_prompt %}>{% endif %}";
    mp_chat_template *t;
    mp_error err = {0};
    assert_int_equal(mp_chat_template_parse(src, strlen(src), "inline", &t, &err), MP_OK);
    json_t *base = json_pack("{s:s}", "bos_token", "<s>");
    json_t *messages = json_pack("[{s:s,s:s}]", "role", "user", "content", "hi");
    json_t *context = mp_chat_context(base, messages, 1);
    assert_non_null(context);
    assert_null(json_object_get(base, "messages")); /* base is left as it was */
    char *out;
    size_t len;
    assert_int_equal(mp_chat_template_render(t, context, NULL, &out, &len, &err), MP_OK);
    assert_string_equal(out, "<s>[hi]>");
    free(out);
    json_decref(context);
    json_decref(messages);
    json_decref(base);
    mp_chat_template_free(t);
}

static char dir[64];

static void write_file(const char *name, const char *text)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void remove_file(const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unlink(path);
}

/* mp_chat_load on dir: the rendering of one user message, or the error. */
static int load_and_render(char **out, mp_error *err)
{
    mp_chat_template *t;
    json_t *base;
    *out = NULL;
    mp_error_clear(err);
    int rc = mp_chat_load(dir, &t, &base, err);
    if (rc != MP_OK)
        return rc;
    json_t *messages = json_pack("[{s:s,s:s}]", "role", "user", "content", "hi");
    json_t *context = mp_chat_context(base, messages, 0);
    size_t len;
    rc = mp_chat_template_render(t, context, NULL, out, &len, err);
    json_decref(context);
    json_decref(messages);
    json_decref(base);
    mp_chat_template_free(t);
    return rc;
}

static void test_chat_load(void **state)
{
    (void)state;
    char *out;
    mp_error err;
    strcpy(dir, "/tmp/mp-test-jinja-XXXXXX");
    assert_non_null(mkdtemp(dir));

    assert_int_equal(load_and_render(&out, &err), MP_EXIT_INPUT);
    assert_non_null(strstr(err.msg, "no chat_template.jinja and no tokenizer_config.json"));

    /* a string template; special tokens as strings or {content}; huge integers */
    write_file("tokenizer_config.json",
               "{\"model_max_length\": 1000000000000000019884624838656, \"bos_token\": {\"content\": \"<s>\"},"
               " \"eos_token\": \"</s>\", \"pad_token\": null, \"chat_template\": "
               "\"{{ bos_token }}{{ messages[0].content }}{{ eos_token }}{{ pad_token is defined }}\"}");
    assert_int_equal(load_and_render(&out, &err), MP_OK);
    assert_string_equal(out, "<s>hi</s>false");
    free(out);

    /* a list of named templates: "default" */
    write_file("tokenizer_config.json",
               "{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"T\"}, {\"name\": \"default\", \"template\": \"D\"}]}");
    assert_int_equal(load_and_render(&out, &err), MP_OK);
    assert_string_equal(out, "D");
    free(out);

    /* chat_template.jinja comes first; its errors name the file */
    write_file("chat_template.jinja", "J{{ messages|length }}\n");
    assert_int_equal(load_and_render(&out, &err), MP_OK);
    assert_string_equal(out, "J1");
    free(out);
    write_file("chat_template.jinja", "\n{{ x|wordwrap }}");
    assert_int_equal(load_and_render(&out, &err), MP_EXIT_INPUT);
    assert_non_null(strstr(err.msg, "chat_template.jinja line 2: filter 'wordwrap' is not supported"));
    remove_file("chat_template.jinja");

    /* templates in tokenizer_config name it in errors */
    write_file("tokenizer_config.json", "{\"chat_template\": \"{% if %}\"}");
    assert_int_equal(load_and_render(&out, &err), MP_EXIT_INPUT);
    assert_non_null(strstr(err.msg, "tokenizer_config.json chat_template line 1: expected an expression"));

    write_file("tokenizer_config.json", "{\"chat_template\": [{\"name\": \"rag\", \"template\": \"R\"}]}");
    assert_int_equal(load_and_render(&out, &err), MP_EXIT_INPUT);
    assert_non_null(strstr(err.msg, "without a \"default\" template"));

    write_file("tokenizer_config.json", "{\"bos_token\": \"<s>\"}");
    assert_int_equal(load_and_render(&out, &err), MP_EXIT_INPUT);
    assert_non_null(strstr(err.msg, "tokenizer_config.json: no chat_template"));

    write_file("tokenizer_config.json", "{\"chat_template\": ");
    assert_int_equal(load_and_render(&out, &err), MP_EXIT_INPUT);
    assert_non_null(strstr(err.msg, "tokenizer_config.json: JSON:"));

    remove_file("tokenizer_config.json");
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literals_and_printing),
        cmocka_unit_test(test_whitespace_control),
        cmocka_unit_test(test_if_and_for),
        cmocka_unit_test(test_set_namespace_and_scopes),
        cmocka_unit_test(test_macros),
        cmocka_unit_test(test_operators_and_access),
        cmocka_unit_test(test_tests),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_methods),
        cmocka_unit_test(test_globals),
        cmocka_unit_test(test_jinja2_extras),
        cmocka_unit_test(test_unsupported_constructs),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_runtime_errors),
        cmocka_unit_test(test_runaway_templates),
        cmocka_unit_test(test_deep_variables),
        cmocka_unit_test(test_render_is_repeatable),
        cmocka_unit_test(test_chat_context),
        cmocka_unit_test(test_chat_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
