/* Chat templates as transformers finds them in a checkpoint, rendered by jinja.h. */
#include "chat_template.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../core/fileio.h"
#include "../core/json.h"
#include "jinja.h"

#define MAX_TEMPLATE_FILE (16u << 20)
#define MAX_CONFIG_FILE (64u << 20)

struct mp_chat_template {
    mp_jinja *jinja;
};

int mp_chat_template_parse(const char *source, size_t len, const char *origin, mp_chat_template **out,
                           mp_error *err)
{
    *out = NULL;
    mp_chat_template *t = calloc(1, sizeof *t);
    if (!t)
        return mp_fail(err, MP_EXIT_IO, "%s: out of memory", origin ? origin : "chat template");
    int rc = mp_jinja_parse(source, len, origin, &t->jinja, err);
    if (rc != MP_OK) {
        free(t);
        return rc;
    }
    *out = t;
    return MP_OK;
}

int mp_chat_template_render(const mp_chat_template *t, const json_t *context, const struct tm *now, char **out,
                            size_t *out_len, mp_error *err)
{
    return mp_jinja_render(t->jinja, context, now, out, out_len, err);
}

void mp_chat_template_free(mp_chat_template *t)
{
    if (!t)
        return;
    mp_jinja_free(t->jinja);
    free(t);
}

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* tokenizer_config.json, read tolerantly: real ones hold integers too large for
 * jansson's integers (model_max_length 1000000000000000019884624838656). */
static int read_config(const char *path, json_t **config, mp_error *err)
{
    int rc = mp_json_load_file_tolerant(path, MAX_CONFIG_FILE, config, err);
    if (rc == MP_OK && !json_is_object(*config)) {
        json_decref(*config);
        *config = NULL;
        rc = mp_fail(err, MP_EXIT_INPUT, "%s: expected a JSON object", path);
    }
    return rc;
}

/* chat_template: a string, or [{"name": ..., "template": ...}] whose "default" is used. */
static int config_template(const json_t *config, const char *path, const char **source, size_t *len, mp_error *err)
{
    const json_t *t = json_object_get(config, "chat_template");
    if (json_is_array(t)) {
        size_t i;
        const json_t *entry;
        const json_t *found = NULL;
        json_array_foreach(t, i, entry) {
            if (json_is_string(json_object_get(entry, "name")) &&
                strcmp(json_string_value(json_object_get(entry, "name")), "default") == 0)
                found = json_object_get(entry, "template");
        }
        if (!found)
            return mp_fail(err, MP_EXIT_INPUT, "%s: chat_template is a list without a \"default\" template", path);
        t = found;
    }
    if (!t)
        return mp_fail(err, MP_EXIT_INPUT, "%s: no chat_template (and no chat_template.jinja beside it)", path);
    if (!json_is_string(t))
        return mp_fail(err, MP_EXIT_INPUT, "%s: chat_template must be a string or a list of {name, template}", path);
    *source = json_string_value(t);
    *len = json_string_length(t);
    return MP_OK;
}

/* The special tokens apply_chat_template passes to the template, as strings. */
static int special_tokens(const json_t *config, json_t *context)
{
    static const char *const names[] = {"bos_token", "eos_token", "unk_token", "pad_token"};
    for (size_t i = 0; config && i < sizeof names / sizeof names[0]; i++) {
        const json_t *token = json_object_get(config, names[i]);
        if (json_is_object(token))
            token = json_object_get(token, "content");
        if (json_is_string(token) && json_object_set_new(context, names[i], json_copy((json_t *)token)) != 0)
            return -1;
    }
    return 0;
}

static int parse_template_file(const char *path, mp_chat_template **t, mp_error *err)
{
    char *text;
    size_t len;
    int rc = mp_read_small_file(path, MAX_TEMPLATE_FILE, &text, &len, err);
    if (rc == MP_OK)
        rc = mp_chat_template_parse(text, len, path, t, err);
    free(text);
    return rc;
}

static int parse_config_template(const json_t *config, const char *config_path, mp_chat_template **t,
                                 mp_error *err)
{
    const char *source = NULL;
    size_t len = 0;
    int rc = config_template(config, config_path, &source, &len, err);
    if (rc != MP_OK)
        return rc;
    char *origin = malloc(strlen(config_path) + sizeof " chat_template");
    if (!origin)
        return mp_fail(err, MP_EXIT_IO, "%s: out of memory", config_path);
    sprintf(origin, "%s chat_template", config_path);
    rc = mp_chat_template_parse(source, len, origin, t, err);
    free(origin);
    return rc;
}

int mp_chat_load(const char *model_dir, mp_chat_template **t, json_t **base_context, mp_error *err)
{
    *t = NULL;
    *base_context = NULL;
    char *jinja_path = mp_path_join(model_dir, "chat_template.jinja");
    char *config_path = mp_path_join(model_dir, "tokenizer_config.json");
    json_t *config = NULL;
    int rc = jinja_path && config_path ? MP_OK : mp_fail(err, MP_EXIT_IO, "%s: out of memory", model_dir);
    if (rc == MP_OK && is_file(config_path))
        rc = read_config(config_path, &config, err);
    if (rc == MP_OK && is_file(jinja_path))
        rc = parse_template_file(jinja_path, t, err);
    else if (rc == MP_OK && config)
        rc = parse_config_template(config, config_path, t, err);
    else if (rc == MP_OK)
        rc = mp_fail(err, MP_EXIT_INPUT, "%s: no chat_template.jinja and no tokenizer_config.json", model_dir);
    if (rc == MP_OK) {
        *base_context = json_object();
        if (!*base_context || special_tokens(config, *base_context) != 0)
            rc = mp_fail(err, MP_EXIT_IO, "%s: out of memory", model_dir);
    }
    if (rc != MP_OK) {
        mp_chat_template_free(*t);
        *t = NULL;
        json_decref(*base_context);
        *base_context = NULL;
    }
    json_decref(config);
    free(jinja_path);
    free(config_path);
    return rc;
}

json_t *mp_chat_context(const json_t *base_context, json_t *messages, int add_generation_prompt)
{
    json_t *context = base_context ? json_copy((json_t *)base_context) : json_object();
    if (!context)
        return NULL;
    if (json_object_set(context, "messages", messages) != 0 ||
        json_object_set_new(context, "add_generation_prompt", json_boolean(add_generation_prompt)) != 0) {
        json_decref(context);
        return NULL;
    }
    return context;
}
