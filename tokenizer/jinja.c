/* The interpreter's entry points: parse (check the text is UTF-8, tokenize, build the
 * tree) and render (globals and variables in a fresh arena, run the template, hand
 * back the output). */
#include "jinja.h"

#include <stdlib.h>
#include <string.h>

#include "../core/fileio.h"
#include "jinja_internal.h"
#include "utf8.h"

struct mp_jinja {
    jj_template tmpl;
};

void mp_jinja_free(mp_jinja *t)
{
    if (!t)
        return;
    jj_arena_free(&t->tmpl.arena);
    free(t->tmpl.origin);
    free(t);
}

int mp_jinja_parse(const char *source, size_t len, const char *origin, mp_jinja **out, mp_error *err)
{
    *out = NULL;
    origin = origin ? origin : "chat template";
    size_t bad = mp_utf8_check(source, len);
    if (bad != len) {
        int line = 1;
        for (size_t i = 0; i < bad; i++)
            line += source[i] == '\n';
        return mp_fail(err, MP_EXIT_INPUT, "%s line %d: not valid UTF-8 (byte %zu)", origin, line, bad);
    }
    mp_jinja *t = calloc(1, sizeof *t);
    char *name = mp_strdup(origin);
    if (!t || !name) {
        free(t);
        free(name);
        return mp_fail(err, MP_EXIT_IO, "%s: out of memory", origin);
    }
    t->tmpl.origin = name;
    jj_token *tokens;
    size_t n_tokens;
    int rc = jj_tokenize(source, len, name, &t->tmpl.arena, &tokens, &n_tokens, err);
    if (rc == MP_OK) {
        rc = jj_parse(tokens, n_tokens, name, &t->tmpl.arena, &t->tmpl.body, err);
        free(tokens);
    }
    if (rc != MP_OK) {
        mp_jinja_free(t);
        return rc;
    }
    *out = t;
    return MP_OK;
}

/* The caller's variables, set in the global scope. */
static int set_variables(jj_render *r, jj_scope *globals, const json_t *vars)
{
    const char *key;
    size_t key_len;
    json_t *value;
    json_object_keylen_foreach((json_t *)vars, key, key_len, value) {
        jj_value v, name = jj_string_copy(&r->arena, key, key_len);
        if (jj_from_json(&r->arena, value, &v, 0) != 0)
            return mp_fail(r->err, MP_EXIT_INPUT, "%s: variable '%s' is nested too deep or too large",
                           r->tmpl->origin, key);
        jj_scope_set(r, globals, name.as.str, v);
    }
    return MP_OK;
}

int mp_jinja_render(const mp_jinja *t, const json_t *vars, const struct tm *now, char **out, size_t *out_len,
                    mp_error *err)
{
    *out = NULL;
    *out_len = 0;
    if (vars && !json_is_object(vars))
        return mp_fail(err, MP_EXIT_INPUT, "%s: the variables must be a JSON object", t->tmpl.origin);
    jj_buf text = {0};
    jj_render r = {.tmpl = &t->tmpl, .out = &text, .err = err};
    r.arena.limit = JJ_MAX_ARENA;
    if (now) {
        r.now = *now;
    } else {
        time_t seconds = time(NULL);
        localtime_r(&seconds, &r.now);
    }
    jj_scope *globals = jj_global_scope(&r);
    int rc = globals ? MP_OK : mp_fail(err, MP_EXIT_IO, "%s: out of memory", t->tmpl.origin);
    if (rc == MP_OK && vars)
        rc = set_variables(&r, globals, vars);
    if (rc == MP_OK) {
        jj_exec_block(&r, globals, &t->tmpl.body);
        if (!r.failed && r.flow != JJ_FLOW_NORMAL)
            jj_fail(&r, NULL, "{%% break %%} or {%% continue %%} outside a loop");
        if (!r.failed && (text.failed || r.arena.failed))
            mp_fail(err, MP_EXIT_INPUT, "%s: rendering needs more memory or output than allowed", t->tmpl.origin);
        rc = r.failed || text.failed || r.arena.failed ? (err->code ? err->code : MP_EXIT_INPUT) : MP_OK;
    }
    jj_arena_free(&r.arena);
    if (rc != MP_OK) {
        jj_buf_free(&text);
        return rc;
    }
    if (!text.data) /* nothing was written */
        text.data = calloc(1, 1);
    if (!text.data)
        return mp_fail(err, MP_EXIT_IO, "%s: out of memory", t->tmpl.origin);
    *out = text.data;
    *out_len = text.len;
    return MP_OK;
}
