/* A Jinja interpreter for HuggingFace chat templates: the subset real templates use,
 * rendering byte for byte what @huggingface/jinja 0.5.13 (the renderer of
 * transformers.js) renders, with its whitespace rules (trim_blocks and lstrip_blocks
 * on, one trailing newline dropped, {% generation %} tags dropped) and its values,
 * which are JavaScript's: {{ true }} prints "true", 1.0 prints "1.0" but joins as "1",
 * == is JS's loose equality, strip('x') strips whitespace.
 *
 * Statements: text, {{ }}, {# #}, `-` whitespace control; if / elif / else; for (loop.index,
 * index0, revindex, revindex0, first, last, length, previtem, nextitem; `for a, b in`;
 * `for x in xs if cond`; else; break; continue) over lists, dict keys and strings; set
 * (names, tuples, namespace attributes, {% set x %}...{% endset %}); macro (defaults,
 * positional and keyword arguments, recursion).
 * Expressions: literals, lists, dicts, (tuples), a.b, a['b'], a[0], a[-1], slices, + - * /
 * // % **, ~, comparisons, and / or / not, in / not in, x if c else y.
 * Tests: defined undefined none boolean true false string number integer iterable
 * mapping sequence callable odd even lower upper (equalto / eq in selectattr).
 * Filters: safe tojson(indent=, ensure_ascii=, sort_keys=, separators=) string default d
 * join indent int float abs bool e escape length count trim first last list reverse
 * upper lower title capitalize replace unique sort map(attribute=) select reject
 * selectattr rejectattr items keys values dictsort.
 * Methods: on strings upper lower strip lstrip rstrip title capitalize startswith
 * endswith split replace and .length; on dicts get items keys values dictsort; on lists
 * .length. Globals: namespace, range, raise_exception, strftime_now.
 *
 * Anything else (call and filter blocks, include / import / extends, tests with
 * arguments, *args, macro varargs / kwargs / caller, other filters and methods) fails
 * with one line naming it and its line, at parse time (statements, syntax) or when the
 * rendering reaches it (filters, tests, methods, wrong types), as HF fails.
 *
 * Known differences from HF: case changes (upper, lower, title, capitalize) are ASCII
 * only; sort_keys follows ICU's order for ASCII keys only; where HF fails we may render
 * (count, d, e, select, reject, first / last / list / reverse of strings, looping over
 * strings, printing tuples: Jinja2's meaning) or fail with another message; printing a
 * function is an error (HF prints JS source); a lone surrogate from a \u escape becomes
 * U+FFFD at once; break / continue inside a macro called in a loop is an error.
 *
 * Rendering is bounded: nesting, macro recursion, steps, memory and output (see the
 * JJ_MAX_ limits in jinja_internal.h); past a bound it fails with a message. */
#ifndef MP_JINJA_H
#define MP_JINJA_H

#include <jansson.h>
#include <stddef.h>
#include <time.h>

#include "../core/error.h"

typedef struct mp_jinja mp_jinja;

/* Parses source[0..len) (UTF-8). origin names the template in errors ("ORIGIN line N:
 * ..."; NULL: "chat template"); bad templates are MP_EXIT_INPUT errors. */
int mp_jinja_parse(const char *source, size_t len, const char *origin, mp_jinja **out, mp_error *err);

/* Renders with the variables of vars (a JSON object; may be NULL). strftime_now formats
 * now (NULL: the current local time). *out is malloc'd and NUL-terminated; *out_len
 * excludes the NUL. raise_exception(msg) fails with msg in the error. A template may
 * be rendered any number of times, also from several threads at once. */
int mp_jinja_render(const mp_jinja *t, const json_t *vars, const struct tm *now, char **out, size_t *out_len,
                    mp_error *err);

void mp_jinja_free(mp_jinja *t);

#endif
