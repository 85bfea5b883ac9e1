/* A conversation under the checkpoint's chat template: each user turn is rendered
 * with the whole history, and only the tokens after what the KV cache already holds
 * are run again. */
#ifndef MP_RUN_CHAT_H
#define MP_RUN_CHAT_H

#include <jansson.h>

#include "../tokenizer/chat_template.h"
#include "generate.h"

typedef struct {
    mp_chat_template *tpl;
    json_t *base, *messages;
    mp_token_list cached; /* the tokens the decoder holds, in order */
} mp_chat;

int mp_chat_open(mp_chat *c, const char *pack_dir, mp_error *err);
void mp_chat_close(mp_chat *c);
/* Adds the user's message, renders the conversation with the generation prompt and
 * tokenizes it; rewinds the decoder to the longest prefix it already holds and
 * returns in *to_run / *n the tokens still to run. */
int mp_chat_user_turn(mp_chat *c, mp_runtime *r, const char *text, const int32_t **to_run, int *n, mp_error *err);
/* Records the reply: the tokens the decoder ran and, as the assistant's message, its text. */
int mp_chat_reply(mp_chat *c, mp_runtime *r, const mp_token_list *reply, mp_error *err);

#endif
