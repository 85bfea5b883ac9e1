/* The tokenizer's insides, shared by tokenizer.c (encoding) and tokenizer_load.c
 * (reading tokenizer.json). Users include tokenizer.h only. */
#ifndef MP_TOKENIZER_TYPES_H
#define MP_TOKENIZER_TYPES_H

#include <stdbool.h>

#include "tokenizer.h"
#include "tokenizer_bpe.h"
#include "tokenizer_normalize.h"
#include "tokenizer_pretok.h"

/* An entry of "added_tokens": matched in the text before anything else. */
typedef struct {
    char *content;
    size_t len;
    int32_t id;
    bool normalized; /* matched in the normalized text rather than the raw text */
} mp_added_token;

struct mp_tokenizer {
    mp_norm_step *norm;
    size_t n_norm;
    mp_pretok_step *pretok;
    size_t n_pretok;
    mp_bpe bpe;                 /* its vocab also holds the added tokens' strings */
    mp_added_token *added;
    size_t n_added;
    bool added_starts[2][256];  /* [normalized][first byte]: a token may start here */
    int32_t bos;
};

#endif
