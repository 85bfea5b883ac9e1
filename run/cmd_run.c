/* moepack run: text from a pack, streamed as it is generated. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/fileio.h"
#include "chat.h"
#include "run_commands.h"
#include "run_options.h"
#include "run_ppl.h"
#include "run_stats.h"

typedef struct {
    mp_run_cli o;
    mp_runtime rt;
    mp_sampler sampler;
    mp_gen_stats stats;
    mp_chat chat;
    bool have_chat;
    json_t *replies; /* --json: one {"prompt_tokens", "ids", "text"} per prompt */
} run_session;

/* The prompt's ids as tokenizer(text) gives them: the post-processor's leading
 * specials (BOS) and the text's tokens. */
static int plain_prompt(run_session *s, const char *text, size_t len, mp_token_list *out, mp_error *err)
{
    const int32_t *before, *after;
    size_t n_before, n_after;
    mp_tokenizer_specials(s->rt.tok, &before, &n_before, &after, &n_after);
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = mp_tokenizer_encode(s->rt.tok, text, len, &ids, &n, err);
    if (!rc && (mp_token_list_push(out, before, (int)n_before) || mp_token_list_push(out, ids, (int)n)))
        rc = mp_fail(err, MP_EXIT_IO, "out of memory");
    free(ids);
    return rc;
}

static int parse_ids(const char *text, mp_token_list *out, mp_error *err)
{
    const char *p = text;
    char *end;
    while (*p) {
        long v = strtol(p, &end, 10);
        if (end == p) {
            if (*p == ' ' || *p == ',' || *p == '\n' || *p == '\t') {
                p++;
                continue;
            }
            return mp_fail(err, MP_EXIT_INPUT, "--prompt-ids: \"%.20s\" is not a token id", p);
        }
        int32_t id = (int32_t)v;
        if (v < 0 || v > INT32_MAX || mp_token_list_push(out, &id, 1))
            return mp_fail(err, MP_EXIT_INPUT, "--prompt-ids: %ld is not a token id", v);
        p = end;
    }
    return MP_OK;
}

static void record_reply(run_session *s, int prompt_tokens, const mp_token_list *reply)
{
    json_t *ids = json_array();
    for (int i = 0; i < reply->n; i++)
        json_array_append_new(ids, json_integer(reply->ids[i]));
    char *text = NULL;
    size_t len = 0;
    mp_error ignored = {0};
    if (s->rt.tok)
        mp_tokenizer_decode(s->rt.tok, reply->ids, (size_t)reply->n, 1, &text, &len, &ignored);
    json_array_append_new(s->replies, json_pack("{s:i, s:o, s:s%}", "prompt_tokens", prompt_tokens, "ids", ids,
                                                "text", text ? text : "", text ? len : 0));
    free(text);
}

/* One prompt: a fresh context (plain) or the next turn of the conversation (--chat). */
static int answer(run_session *s, const char *text, size_t len, const mp_token_list *given_ids, mp_error *err)
{
    mp_token_list prompt = {0}, reply = {0};
    const int32_t *to_run = NULL;
    int n = 0, rc = MP_OK;
    if (s->have_chat) {
        rc = mp_chat_user_turn(&s->chat, &s->rt, text, &to_run, &n, err);
    } else {
        mp_decoder_truncate(s->rt.dec, 0);
        rc = given_ids ? MP_OK : plain_prompt(s, text, len, &prompt, err);
        to_run = given_ids ? given_ids->ids : prompt.ids;
        n = given_ids ? given_ids->n : prompt.n;
    }
    FILE *out = s->o.common.json ? NULL : stdout;
    if (!rc)
        rc = mp_generate(&s->rt, &s->sampler, to_run, n, s->o.max_tokens, out, &reply, &s->stats, err);
    if (!rc && s->have_chat)
        rc = mp_chat_reply(&s->chat, &s->rt, &reply, err);
    if (!rc && s->replies)
        record_reply(s, n, &reply);
    if (!rc && out) {
        fputc('\n', out);
        fflush(out);
    }
    mp_token_list_free(&prompt);
    mp_token_list_free(&reply);
    return rc;
}

static int interactive(run_session *s, mp_error *err)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = MP_OK;
    while (!rc && (len = getline(&line, &cap, stdin)) > 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len > 0)
            rc = answer(s, line, (size_t)len, NULL, err);
    }
    free(line);
    return rc;
}

static int ids_prompt(run_session *s, mp_error *err)
{
    mp_token_list ids = {0};
    int rc = parse_ids(s->o.prompt_ids, &ids, err);
    if (!rc)
        rc = answer(s, NULL, 0, &ids, err);
    mp_token_list_free(&ids);
    return rc;
}

static int text_prompt(run_session *s, mp_error *err)
{
    if (s->o.prompt)
        return answer(s, s->o.prompt, strlen(s->o.prompt), NULL, err);
    char *text;
    size_t len;
    int rc = mp_read_small_file(s->o.prompt_file, 1ull << 30, &text, &len, err);
    if (!rc)
        rc = answer(s, text, len, NULL, err);
    free(text);
    return rc;
}

static int perplexity(run_session *s, mp_error *err)
{
    double ppl;
    int64_t scored;
    int rc = mp_run_perplexity(&s->rt, s->o.perplexity, s->o.ctx, s->o.chunks, s->o.common.quiet || s->o.common.json,
                               &ppl, &scored, &s->stats, err);
    if (!rc && s->replies)
        json_array_append_new(s->replies, json_pack("{s:f, s:I}", "perplexity", ppl, "scored", (json_int_t)scored));
    else if (!rc)
        printf("perplexity %.4f over %lld scored tokens (%s kernels)\n", ppl, (long long)scored,
               s->o.runtime.mode == MP_KERN_EXACT ? "exact f32" : "fast");
    return rc;
}

static int dispatch(run_session *s, mp_error *err)
{
    if (s->o.prompt_ids)
        return ids_prompt(s, err);
    if (!s->rt.tok)
        return mp_fail(err, MP_EXIT_INPUT, "%s has no tokenizer.json: give the prompt as --prompt-ids", s->o.pack);
    if (s->o.perplexity)
        return perplexity(s, err);
    return s->o.interactive ? interactive(s, err) : text_prompt(s, err);
}

static void report(run_session *s)
{
    if (s->o.common.json) {
        json_t *root = json_pack("{s:o, s:o}", "replies", json_incref(s->replies), "stats",
                                 mp_run_stats_json(&s->rt, &s->stats));
        json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        json_decref(root);
    } else if (s->o.stats) {
        mp_run_stats_print(stderr, &s->rt, &s->stats);
    }
}

int mp_cmd_run(int argc, char **argv, mp_error *err)
{
    run_session s = {0};
    int rc = mp_run_cli_parse(&s.o, argc, argv, err);
    if (rc || s.o.common.help) {
        if (!rc)
            fputs(mp_run_help, stdout);
        return rc;
    }
    rc = mp_runtime_open(&s.rt, s.o.pack, &s.o.runtime, err);
    if (!rc && s.o.ignore_eos)
        s.rt.n_eos = 0;
    if (!rc) rc = mp_sampler_init(&s.sampler, &s.o.sampling, s.rt.cfg.vocab, err);
    if (!rc && s.o.chat) {
        rc = mp_chat_open(&s.chat, s.o.pack, err);
        s.have_chat = rc == MP_OK;
    }
    if (!rc && s.o.common.json)
        s.replies = json_array();
    if (!rc)
        rc = dispatch(&s, err);
    if (!rc)
        report(&s);
    json_decref(s.replies);
    if (s.have_chat)
        mp_chat_close(&s.chat);
    mp_sampler_free(&s.sampler);
    mp_runtime_close(&s.rt);
    return rc;
}
