/* moepack tokenize: the ids or pieces a model's tokenizer gives a text or a rendered
 * chat, or the text of ids (--decode), so that users can check them against HF's. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/cli.h"
#include "../core/fileio.h"
#include "../core/json.h"
#include "../tokenizer/chat_template.h"
#include "../tokenizer/tokenizer.h"
#include "verify_commands.h"

static const char *tokenize_help =
    "usage: moepack tokenize CKPT|PACK (--text FILE | --messages FILE.json | --tokens FILE) [options]\n\n"
    "Tokenizes a text with the model's tokenizer.json as HuggingFace tokenizers does, or renders\n"
    "chat messages with the model's chat template (chat_template.jinja or tokenizer_config.json's\n"
    "chat_template) as transformers' apply_chat_template does and tokenizes the result; or\n"
    "decodes ids back to text as HF's tokenizer.decode does (--decode, --tokens).\n\n"
    "  --text FILE             the text (UTF-8); its ids include the special tokens the\n"
    "                          post-processor adds (BOS...), as tokenizer(text) does\n"
    "  --no-special            without them (add_special_tokens=False)\n"
    "  --messages FILE.json    a JSON array of {\"role\", \"content\", ...} messages, or an object\n"
    "                          with \"messages\" and more template variables (\"tools\", ...);\n"
    "                          the rendering is tokenized without added special tokens\n"
    "  --add-generation-prompt end the rendering with the assistant's turn opener\n"
    "  --rendered              print the rendered chat text instead of ids\n"
    "  --ids                   print the ids, space-separated (default)\n"
    "  --pieces                print the vocabulary pieces, one per line\n"
    "  --json                  {\"ids\", \"pieces\", \"count\", \"rendered\"} on stdout\n"
    "  --decode                print the text of the ids instead, as HF's tokenizer.decode gives\n"
    "                          it (tokenizer.json's decoder), exactly, without a newline added\n"
    "  --tokens FILE           decode these ids (decimal, whitespace-separated); implies --decode\n"
    "  --skip-special          with --decode: drop special tokens (skip_special_tokens=True)\n\n"
    "exit codes: 0 ok, 2 bad input or usage, 3 I/O failure\n";

typedef enum { OUT_IDS, OUT_PIECES, OUT_RENDERED, OUT_TEXT } output_kind;

typedef struct {
    mp_common_opts common;
    const char *model, *text, *messages, *tokens;
    bool no_special, generation_prompt, skip_special;
    output_kind output;
} tokenize_opts;

static int parse_flag(tokenize_opts *o, const char *arg)
{
    if (strcmp(arg, "--no-special") == 0)
        o->no_special = true;
    else if (strcmp(arg, "--add-generation-prompt") == 0)
        o->generation_prompt = true;
    else if (strcmp(arg, "--ids") == 0)
        o->output = OUT_IDS;
    else if (strcmp(arg, "--pieces") == 0)
        o->output = OUT_PIECES;
    else if (strcmp(arg, "--rendered") == 0)
        o->output = OUT_RENDERED;
    else if (strcmp(arg, "--decode") == 0)
        o->output = OUT_TEXT;
    else if (strcmp(arg, "--skip-special") == 0)
        o->skip_special = true;
    else
        return 0;
    return 1;
}

static int parse_args(tokenize_opts *o, int argc, char **argv, mp_error *err)
{
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        int got = mp_cli_common(&o->common, argc, argv, &i, err);
        if (got == 0)
            got = mp_cli_value("--text", argc, argv, &i, &o->text, err);
        if (got == 0)
            got = mp_cli_value("--messages", argc, argv, &i, &o->messages, err);
        if (got == 0)
            got = mp_cli_value("--tokens", argc, argv, &i, &o->tokens, err);
        if (got == 0)
            got = parse_flag(o, argv[i]);
        if (got < 0)
            return err->code;
        if (got > 0)
            continue;
        if (argv[i][0] == '-' || o->model)
            return mp_fail(err, MP_EXIT_INPUT, "unexpected argument \"%s\"; see moepack tokenize --help", argv[i]);
        o->model = argv[i];
    }
    if (o->common.help)
        return MP_OK;
    if (!o->model)
        return mp_fail(err, MP_EXIT_INPUT, "missing CKPT|PACK; see moepack tokenize --help");
    if (!!o->text + !!o->messages + !!o->tokens != 1)
        return mp_fail(err, MP_EXIT_INPUT, "give --text FILE, --messages FILE.json or --tokens FILE (one of them)");
    if (o->tokens)
        o->output = OUT_TEXT;
    if (o->output == OUT_RENDERED && !o->messages)
        return mp_fail(err, MP_EXIT_INPUT, "--rendered goes with --messages");
    if (o->skip_special && o->output != OUT_TEXT)
        return mp_fail(err, MP_EXIT_INPUT, "--skip-special goes with --decode or --tokens");
    return MP_OK;
}

/* The chat context of --messages: the file's messages (an array, or an object holding
 * them and more template variables) over the model's special tokens. */
static int messages_context(const tokenize_opts *o, const json_t *base, json_t **context, mp_error *err)
{
    json_t *file;
    int rc = mp_json_load_file(o->messages, 64u << 20, &file, err);
    if (rc != MP_OK)
        return rc;
    json_t *messages = json_is_array(file) ? file : json_object_get(file, "messages");
    if (!json_is_array(messages))
        rc = mp_fail(err, MP_EXIT_INPUT, "%s: expected an array of messages or an object with \"messages\"",
                     o->messages);
    else if (!(*context = mp_chat_context(base, messages, o->generation_prompt)))
        rc = mp_fail(err, MP_EXIT_IO, "out of memory");
    else if (json_is_object(file))
        json_object_update_missing(*context, file);
    json_decref(file);
    return rc;
}

/* The rendered chat text (malloc'd) of --messages. */
static int render(const tokenize_opts *o, char **text, size_t *len, mp_error *err)
{
    mp_chat_template *t = NULL;
    json_t *base = NULL, *context = NULL;
    int rc = mp_chat_load(o->model, &t, &base, err);
    if (rc == MP_OK)
        rc = messages_context(o, base, &context, err);
    if (rc == MP_OK)
        rc = mp_chat_template_render(t, context, NULL, text, len, err);
    json_decref(context);
    json_decref(base);
    mp_chat_template_free(t);
    return rc;
}

/* ids of text, with the post-processor's tokens around them unless without. */
static int encode(const mp_tokenizer *tok, const char *text, size_t len, bool specials, int32_t **ids, size_t *n,
                  mp_error *err)
{
    int32_t *core;
    size_t n_core;
    int rc = mp_tokenizer_encode(tok, text, len, &core, &n_core, err);
    if (rc != MP_OK || !specials) {
        *ids = core;
        *n = n_core;
        return rc;
    }
    const int32_t *before, *after;
    size_t n_before, n_after;
    mp_tokenizer_specials(tok, &before, &n_before, &after, &n_after);
    *n = n_before + n_core + n_after;
    *ids = malloc((*n + 1) * sizeof **ids);
    if (!*ids) {
        free(core);
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    }
    for (size_t i = 0; i < n_before; i++)
        (*ids)[i] = before[i];
    for (size_t i = 0; i < n_core; i++)
        (*ids)[n_before + i] = core[i];
    for (size_t i = 0; i < n_after; i++)
        (*ids)[n_before + n_core + i] = after[i];
    free(core);
    return MP_OK;
}

static void print_plain(const tokenize_opts *o, const mp_tokenizer *tok, const int32_t *ids, size_t n,
                        const char *rendered, size_t rendered_len)
{
    if (o->output == OUT_RENDERED) {
        fwrite(rendered, 1, rendered_len, stdout);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (o->output == OUT_PIECES)
            printf("%s\n", mp_tokenizer_piece(tok, ids[i]) ? mp_tokenizer_piece(tok, ids[i]) : "");
        else
            printf("%s%d", i ? " " : "", ids[i]);
    }
    if (o->output == OUT_IDS)
        printf("\n");
}

static void print_json(const mp_tokenizer *tok, const int32_t *ids, size_t n, const char *rendered,
                       size_t rendered_len)
{
    json_t *id_list = json_array(), *pieces = json_array();
    for (size_t i = 0; i < n; i++) {
        const char *piece = mp_tokenizer_piece(tok, ids[i]);
        json_array_append_new(id_list, json_integer(ids[i]));
        json_array_append_new(pieces, piece ? json_string(piece) : json_null());
    }
    json_t *out = json_pack("{s:o, s:o, s:I}", "ids", id_list, "pieces", pieces, "count", (json_int_t)n);
    if (rendered)
        json_object_set_new(out, "rendered", json_stringn(rendered, rendered_len));
    json_dumpf(out, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    printf("\n");
    json_decref(out);
}

/* --decode: the text of the ids, raw (or in JSON with the ids). */
static int print_text(const tokenize_opts *o, const mp_tokenizer *tok, const int32_t *ids, size_t n, mp_error *err)
{
    char *text;
    size_t len;
    int rc = mp_tokenizer_decode(tok, ids, n, o->skip_special, &text, &len, err);
    if (rc != MP_OK)
        return rc;
    if (o->common.json) {
        json_t *id_list = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(id_list, json_integer(ids[i]));
        json_t *out = json_pack("{s:o, s:s%}", "ids", id_list, "text", text, len);
        json_dumpf(out, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("\n");
        json_decref(out);
    } else {
        fwrite(text, 1, len, stdout);
    }
    free(text);
    return MP_OK;
}

int mp_cmd_tokenize(int argc, char **argv, mp_error *err)
{
    tokenize_opts o;
    int rc = parse_args(&o, argc, argv, err);
    if (rc != MP_OK || o.common.help) {
        fputs(tokenize_help, rc == MP_OK ? stdout : stderr);
        return rc;
    }
    char *text = NULL, *rendered = NULL;
    size_t len = 0, rendered_len = 0, n = 0;
    int32_t *ids = NULL;
    mp_tokenizer *tok = NULL;
    if (o.messages)
        rc = render(&o, &rendered, &rendered_len, err);
    else if (o.tokens)
        rc = mp_tokens_read_file(o.tokens, &ids, &n, err);
    else
        rc = mp_read_small_file(o.text, 1ull << 32, &text, &len, err);
    if (rc == MP_OK && o.output != OUT_RENDERED)
        rc = mp_tokenizer_load(o.model, &tok, err);
    if (rc == MP_OK && tok && !o.tokens)
        rc = o.messages ? encode(tok, rendered, rendered_len, false, &ids, &n, err)
                        : encode(tok, text, len, !o.no_special, &ids, &n, err);
    if (rc == MP_OK && o.output == OUT_TEXT)
        rc = print_text(&o, tok, ids, n, err);
    else if (rc == MP_OK && o.common.json && tok)
        print_json(tok, ids, n, rendered, rendered_len);
    else if (rc == MP_OK)
        print_plain(&o, tok, ids, n, rendered, rendered_len);
    free(ids);
    free(text);
    free(rendered);
    mp_tokenizer_free(tok);
    return rc;
}
