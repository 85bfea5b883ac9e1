#include "chat.h"

#include <stdlib.h>
#include <string.h>

int mp_chat_open(mp_chat *c, const char *pack_dir, mp_error *err)
{
    memset(c, 0, sizeof *c);
    int rc = mp_chat_load(pack_dir, &c->tpl, &c->base, err);
    if (!rc && !(c->messages = json_array()))
        rc = mp_fail(err, MP_EXIT_IO, "out of memory");
    if (rc)
        mp_chat_close(c);
    return rc;
}

void mp_chat_close(mp_chat *c)
{
    mp_chat_template_free(c->tpl);
    json_decref(c->base);
    json_decref(c->messages);
    mp_token_list_free(&c->cached);
    memset(c, 0, sizeof *c);
}

static int add_message(mp_chat *c, const char *role, const char *text, size_t len, mp_error *err)
{
    json_t *m = json_pack("{s:s, s:s%}", "role", role, "content", text, len);
    if (!m || json_array_append_new(c->messages, m))
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    return MP_OK;
}

static int render_tokens(mp_chat *c, mp_runtime *r, int32_t **ids, size_t *n, mp_error *err)
{
    json_t *ctx = mp_chat_context(c->base, c->messages, 1);
    char *text = NULL;
    size_t len = 0;
    int rc = ctx ? mp_chat_template_render(c->tpl, ctx, NULL, &text, &len, err) : mp_fail(err, MP_EXIT_IO, "out of memory");
    /* the rendering carries its own special tokens, as apply_chat_template(tokenize=True) */
    if (!rc)
        rc = mp_tokenizer_encode(r->tok, text, len, ids, n, err);
    json_decref(ctx);
    free(text);
    return rc;
}

int mp_chat_user_turn(mp_chat *c, mp_runtime *r, const char *text, const int32_t **to_run, int *n, mp_error *err)
{
    int32_t *ids = NULL;
    size_t count = 0;
    int rc = add_message(c, "user", text, strlen(text), err);
    if (!rc)
        rc = render_tokens(c, r, &ids, &count, err);
    if (rc)
        return rc;
    int same = 0;
    while (same < c->cached.n && (size_t)same < count && c->cached.ids[same] == ids[same])
        same++;
    /* at least one token runs, so there are logits to sample from */
    if ((size_t)same == count && same > 0)
        same--;
    mp_decoder_truncate(r->dec, same);
    c->cached.n = same;
    rc = mp_token_list_push(&c->cached, ids + same, (int)count - same) ? mp_fail(err, MP_EXIT_IO, "out of memory")
                                                                        : MP_OK;
    free(ids);
    *to_run = c->cached.ids + same;
    *n = c->cached.n - same;
    return rc;
}

int mp_chat_reply(mp_chat *c, mp_runtime *r, const mp_token_list *reply, mp_error *err)
{
    /* the last token sampled (EOS, or the one the limit stopped at) was not run */
    int ran = reply->n > 0 ? reply->n - 1 : 0;
    if (mp_token_list_push(&c->cached, reply->ids, ran))
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    char *text = NULL;
    size_t len = 0;
    int rc = mp_tokenizer_decode(r->tok, reply->ids, (size_t)reply->n, 1, &text, &len, err);
    if (!rc)
        rc = add_message(c, "assistant", text, len, err);
    free(text);
    return rc;
}
