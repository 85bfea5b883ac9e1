/* The tokenizer's insides, shared by tokenizer.c (encoding) and tokenizer_load*.c
 * (reading tokenizer.json). Users include tokenizer.h only. */
#ifndef MP_TOKENIZER_TYPES_H
#define MP_TOKENIZER_TYPES_H

#include <stdbool.h>

#include "tokenizer.h"
#include "tokenizer_added.h"
#include "tokenizer_bpe.h"
#include "tokenizer_decoders.h"
#include "tokenizer_normalize.h"
#include "tokenizer_pretok.h"
#include "unicode_class.h"
#include "tokenizer_unigram.h"

typedef enum { MP_MODEL_BPE, MP_MODEL_UNIGRAM } mp_model_kind;

/* A post-processor's single-sequence template: the ids before and after the text
 * (TemplateProcessing's "single", Bert's and Roberta's cls/sep). */
typedef struct {
    int32_t *before, *after;
    size_t n_before, n_after;
} mp_template;

struct mp_tokenizer {
    mp_uclasses classes;
    mp_norm_step *norm;
    size_t n_norm;
    mp_pretok_step *pretok;
    size_t n_pretok;
    mp_model_kind model;
    mp_bpe bpe;                 /* its vocab also holds the added tokens' strings */
    mp_unigram unigram;         /* likewise */
    mp_added_token *added;
    size_t n_added;
    mp_added_set added_raw, added_normalized;
    mp_template post;
    mp_dec_step *dec;           /* the decoder, flattened */
    size_t n_dec;
    bool has_decoder;           /* tokenizer.json has one (none: the pieces joined with spaces) */
    char *decoder_error;        /* why the decoder cannot be used, or NULL */
    bool cleanup_spaces;        /* tokenizer_config.json's clean_up_tokenization_spaces */
    int32_t *added_of_id;       /* by id: the index of its added token, or -1 */
    unsigned char *special_of_id; /* by id: 1 when its string is a special added token's */
};

/* The id <-> string tables of the tokenizer's model. */
const mp_vocab *mp_tokenizer_vocab(const mp_tokenizer *t);

#endif
