/* One reply: the prompt's tokens fed to the decoder (in chunks), then tokens
 * sampled one at a time and streamed as text until EOS or the token limit. */
#ifndef MP_GENERATE_H
#define MP_GENERATE_H

#include <stdio.h>

#include "runtime.h"
#include "sampler.h"

typedef struct {
    double prompt_secs, decode_secs;
    int64_t prompt_tokens, decode_tokens;
    uint64_t decode_weight_bytes; /* packed weight bytes the decode steps read */
    uint64_t decode_disk_bytes;   /* bytes of expert records read from disk meanwhile */
} mp_gen_stats;

/* A growable list of token ids. */
typedef struct {
    int32_t *ids;
    int n, cap;
} mp_token_list;

int mp_token_list_push(mp_token_list *l, const int32_t *ids, int n);
void mp_token_list_free(mp_token_list *l);

/* Feeds prompt[0..n) after what the decoder holds, then generates up to max_tokens,
 * writing text to out as it is final (out NULL: no text) and appending the ids to
 * reply (the EOS that ends it included). Adds to st. */
int mp_generate(mp_runtime *r, mp_sampler *s, const int32_t *prompt, int n, int max_tokens, FILE *out,
                mp_token_list *reply, mp_gen_stats *st, mp_error *err);

#endif
