/* Reading tokenizer.json, shared by the files that read its parts: tokenizer_load.c
 * (the file, added tokens, post-processor, tokenizer_config.json),
 * tokenizer_load_model.c (BPE, Unigram) and tokenizer_load_steps.c (normalizers,
 * pre-tokenizers). Every error names the file, the field and what was expected. */
#ifndef MP_TOKENIZER_LOAD_H
#define MP_TOKENIZER_LOAD_H

#include <jansson.h>
#include <stdbool.h>

#include "tokenizer_types.h"

#define MP_TOKENIZER_MAX_IDS (1 << 24)

typedef struct {
    const char *path; /* the file, for messages */
    mp_tokenizer *t;
    mp_error *err;
} mp_loader;

int mp_load_oom(mp_loader *l);
/* key of obj as a string: NULL, with an error naming where.key, when it is missing or
 * not a string; when optional, missing or null is NULL without an error. */
const char *mp_load_string(mp_loader *l, json_t *obj, const char *where, const char *key, bool optional);
/* key of obj as a boolean, dflt when missing or null. */
int mp_load_bool(mp_loader *l, json_t *obj, const char *where, const char *key, bool dflt, bool *out);
/* obj's "type", with an error when obj is not an object or has none. */
const char *mp_load_type(mp_loader *l, json_t *obj, const char *where);
int mp_load_id(mp_loader *l, json_t *v, const char *where, int32_t *id);

/* obj's pattern: {"String": s} or {"Regex": r}; exactly one of *string, *regex is set. */
int mp_load_pattern(mp_loader *l, json_t *obj, const char *where, const char **string, const char **regex);

int mp_load_model(mp_loader *l, json_t *model);
int mp_load_normalizer(mp_loader *l, json_t *n, const char *where);
int mp_load_pretokenizer(mp_loader *l, json_t *p, const char *where);
/* The decoder (tokenizer_load_decoder.c); never fails for a decoder it cannot read,
 * but keeps why in t->decoder_error, so that encoding still works. */
int mp_load_decoder(mp_loader *l, json_t *d);
/* The id -> added token and id -> special tables decoding looks tokens up in. */
int mp_load_decode_tables(mp_loader *l);

#endif
