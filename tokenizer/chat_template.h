/* HuggingFace chat templates: the text tokenizer.apply_chat_template(messages,
 * add_generation_prompt=...) renders for a checkpoint, through the Jinja interpreter of
 * jinja.h (byte-identical to @huggingface/jinja 0.5.13 on the supported subset).
 *
 * Use:
 *     mp_chat_template *t; json_t *base;
 *     mp_chat_load("ckpt", &t, &base, &err);            // template + special tokens
 *     json_t *ctx = mp_chat_context(base, messages, 1);  // + messages, add_generation_prompt
 *     json_object_set(ctx, "tools", tools);              // optional: tools, enable_thinking...
 *     mp_chat_template_render(t, ctx, NULL, &text, &len, &err);
 *
 * Errors are MP_EXIT_INPUT for bad templates, files and inputs (one line naming the
 * file and, for templates, the line), MP_EXIT_IO for I/O failures. */
#ifndef MP_CHAT_TEMPLATE_H
#define MP_CHAT_TEMPLATE_H

#include <jansson.h>
#include <stddef.h>
#include <time.h>

#include "../core/error.h"

/* A chat template (tokenizer_config.json's chat_template or chat_template.jinja). */
typedef struct mp_chat_template mp_chat_template;

/* origin names the template's file in errors. */
int mp_chat_template_parse(const char *source, size_t len, const char *origin, mp_chat_template **out,
                           mp_error *err);

/* context: a JSON object with messages, add_generation_prompt, tools, bos_token... as HF
 * passes them; now: the time strftime_now formats (NULL = the current local time).
 * *out is malloc'd, NUL-terminated; *out_len excludes the NUL. */
int mp_chat_template_render(const mp_chat_template *t, const json_t *context, const struct tm *now, char **out,
                            size_t *out_len, mp_error *err);

void mp_chat_template_free(mp_chat_template *t);

/* Reads a checkpoint directory's template (chat_template.jinja, else tokenizer_config.json's
 * chat_template: a string, or a list of {name, template} of which "default" is used) and,
 * from tokenizer_config.json, the special tokens bos_token, eos_token, unk_token and
 * pad_token (each a string or {"content": string}) into *base_context, a new JSON object
 * the caller releases with json_decref. */
int mp_chat_load(const char *model_dir, mp_chat_template **t, json_t **base_context, mp_error *err);

/* A new context (released with json_decref): base_context's keys plus messages (a JSON
 * array) and add_generation_prompt, as apply_chat_template passes them. NULL when out
 * of memory. */
json_t *mp_chat_context(const json_t *base_context, json_t *messages, int add_generation_prompt);

#endif
