/* The evaluation protocol of llama.cpp's perplexity tool (../shared/models/README.md):
 * the whole text tokenized once (BOS first when the tokenizer adds one), cut into
 * floor(N / ctx) chunks of ctx tokens, the first token of each replaced by BOS,
 * and only the second half scored: logits at positions ctx/2 .. ctx-2 predict the
 * tokens at ctx/2+1 .. ctx-1. */
#ifndef MP_CHUNKS_H
#define MP_CHUNKS_H

#include <stdint.h>

#include "../core/error.h"

typedef struct {
    int32_t *tokens; /* the whole sequence, BOS included */
    int64_t n_tokens;
    int32_t bos;     /* -1 when the tokenizer adds none */
    int ctx;
    int first, last; /* scored logits positions [first, last) */
    int64_t n_chunks;
    uint64_t text_xxh3, text_bytes; /* of the text or ids file */
} mp_chunks;

/* Tokens of text_path (tokenized with the tokenizer.json in model_dir), or the
 * ids in tokens_path; exactly one of them is non-NULL. With ids, the tokenizer only
 * says which BOS leads each chunk; when it cannot be read, a warning goes to stderr
 * and the ids run as given. max_chunks limits the run (0 = all). Fails when the text
 * holds fewer than ctx tokens. */
int mp_chunks_load(mp_chunks *c, const char *model_dir, const char *text_path, const char *tokens_path, int ctx,
                   int64_t max_chunks, mp_error *err);
void mp_chunks_free(mp_chunks *c);
/* The ctx tokens of chunk i as run (BOS first when there is one). */
void mp_chunks_get(const mp_chunks *c, int64_t i, int32_t *out);
int mp_chunks_scored(const mp_chunks *c);

#endif
