/* chat_render TEMPLATE_FILE|MODEL_DIR MESSAGES.json [--add-generation-prompt]
 *             [--context CONTEXT.json] [--now YYYY-MM-DDTHH:MM]
 *
 * Prints what apply_chat_template renders, byte for byte, on stdout. MODEL_DIR is read
 * as mp_chat_load reads a checkpoint (chat_template.jinja or tokenizer_config.json,
 * special tokens); a TEMPLATE_FILE is a bare template. MESSAGES.json is a list of
 * messages, or an object holding "messages" and any other variables (tools,
 * enable_thinking...). CONTEXT.json adds variables (bos_token... for a bare template).
 * --now fixes the time strftime_now formats. Errors: one line on stderr, exit 2 or 3. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../../core/fileio.h"
#include "../../tokenizer/chat_template.h"

typedef struct {
    const char *template_path, *messages_path, *context_path, *now;
    int add_generation_prompt;
} options;

static int usage(void)
{
    fprintf(stderr, "usage: chat_render TEMPLATE_FILE|MODEL_DIR MESSAGES.json [--add-generation-prompt]\n"
                    "                   [--context CONTEXT.json] [--now YYYY-MM-DDTHH:MM]\n");
    return MP_EXIT_INPUT;
}

static int parse_options(int argc, char **argv, options *o)
{
    const char *positional[2] = {NULL, NULL};
    int n = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--add-generation-prompt") == 0)
            o->add_generation_prompt = 1;
        else if (strcmp(argv[i], "--context") == 0 && i + 1 < argc)
            o->context_path = argv[++i];
        else if (strcmp(argv[i], "--now") == 0 && i + 1 < argc)
            o->now = argv[++i];
        else if (argv[i][0] != '-' && n < 2)
            positional[n++] = argv[i];
        else
            return -1;
    }
    o->template_path = positional[0];
    o->messages_path = positional[1];
    return n == 2 ? 0 : -1;
}

static int load_json(const char *path, json_t **out, mp_error *err)
{
    json_error_t jerr;
    *out = json_load_file(path, 0, &jerr);
    if (!*out)
        return mp_fail(err, MP_EXIT_INPUT, "%s: JSON: %s (line %d)", path, jerr.text, jerr.line);
    return MP_OK;
}

/* Sets every key of extra (an object) in context. */
static int merge(json_t *context, const char *path, json_t *extra, mp_error *err)
{
    if (!json_is_object(extra))
        return mp_fail(err, MP_EXIT_INPUT, "%s: expected a JSON object", path);
    return json_object_update(context, extra) == 0 ? MP_OK : mp_fail(err, MP_EXIT_IO, "out of memory");
}

/* The template and the context before messages: from a checkpoint directory, or a
 * bare template file with an empty context. */
static int load_template(const char *path, mp_chat_template **t, json_t **base, mp_error *err)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return mp_chat_load(path, t, base, err);
    char *text;
    size_t len;
    int rc = mp_read_small_file(path, 16u << 20, &text, &len, err);
    if (rc == MP_OK)
        rc = mp_chat_template_parse(text, len, path, t, err);
    free(text);
    *base = json_object();
    return rc;
}

static int build_context(const options *o, const json_t *base, json_t **context, mp_error *err)
{
    json_t *given = NULL, *extra = NULL;
    *context = NULL;
    int rc = load_json(o->messages_path, &given, err);
    if (rc == MP_OK) {
        json_t *messages = json_is_object(given) ? json_object_get(given, "messages") : given;
        if (!json_is_array(messages))
            rc = mp_fail(err, MP_EXIT_INPUT, "%s: expected a list of messages or an object with \"messages\"",
                         o->messages_path);
        else if (!(*context = mp_chat_context(base, messages, o->add_generation_prompt)))
            rc = mp_fail(err, MP_EXIT_IO, "out of memory");
    }
    if (rc == MP_OK && json_is_object(given))
        rc = merge(*context, o->messages_path, given, err);
    if (rc == MP_OK && o->context_path) {
        rc = load_json(o->context_path, &extra, err);
        if (rc == MP_OK)
            rc = merge(*context, o->context_path, extra, err);
    }
    json_decref(given);
    json_decref(extra);
    return rc;
}

static int parse_time(const char *text, struct tm *t, mp_error *err)
{
    memset(t, 0, sizeof *t);
    if (sscanf(text, "%d-%d-%dT%d:%d", &t->tm_year, &t->tm_mon, &t->tm_mday, &t->tm_hour, &t->tm_min) != 5 ||
        t->tm_mon < 1 || t->tm_mon > 12)
        return mp_fail(err, MP_EXIT_INPUT, "--now %s: expected YYYY-MM-DDTHH:MM", text);
    t->tm_year -= 1900;
    t->tm_mon -= 1;
    return MP_OK;
}

int main(int argc, char **argv)
{
    options o = {0};
    if (parse_options(argc, argv, &o) != 0)
        return usage();
    mp_error err = {0};
    mp_chat_template *t = NULL;
    json_t *base = NULL, *context = NULL;
    struct tm now;
    char *text = NULL;
    size_t len = 0;
    int rc = o.now ? parse_time(o.now, &now, &err) : MP_OK;
    if (rc == MP_OK)
        rc = load_template(o.template_path, &t, &base, &err);
    if (rc == MP_OK)
        rc = build_context(&o, base, &context, &err);
    if (rc == MP_OK)
        rc = mp_chat_template_render(t, context, o.now ? &now : NULL, &text, &len, &err);
    if (rc == MP_OK && fwrite(text, 1, len, stdout) != len)
        rc = mp_fail(&err, MP_EXIT_IO, "stdout: write failed");
    if (rc != MP_OK)
        fprintf(stderr, "chat_render: %s\n", err.msg);
    free(text);
    json_decref(context);
    json_decref(base);
    mp_chat_template_free(t);
    return rc;
}
