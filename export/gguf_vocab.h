/* The tokenizer part of the GGUF export (gguf_vocab.c, gguf_vocab_pre.c,
 * gguf_vocab_special.c): the pack's tokenizer files as convert_hf_to_gguf.py writes
 * them into tokenizer.ggml.* keys. */
#ifndef MP_GGUF_VOCAB_H
#define MP_GGUF_VOCAB_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "../core/error.h"
#include "../formats/gguf_writer.h"
#include "../model/model.h"

typedef struct {
    const char *dir;       /* the pack */
    json_t *tokenizer;     /* tokenizer.json */
    json_t *tok_config;    /* tokenizer_config.json, or NULL */
    json_t *config;        /* config.json */
    int n;                 /* tokens written: the model's vocab_size */
    char **tokens;
    int32_t *types;        /* GGUF token types (SentencePiece's numbering) */
    float *scores;         /* "llama" only */
    const char *model;     /* "llama" or "gpt2" */
    const char *pre;       /* llama.cpp's pre-tokenizer name */
    const char *source;    /* "tokenizer.model", "tokenizer.json" */
    int from_tokenizer;    /* ids the tokenizer defines; the rest is padding */
} gg_vocab;

/* gguf_vocab_pre.c: llama.cpp's pre-tokenizer name for a byte-level BPE tokenizer.json,
 * from its pre_tokenizer (Split regexes, ByteLevel); exit 2 for one it does not know. */
int gg_vocab_pre(const gg_vocab *v, mp_family family, const char **pre, mp_error *err);

/* gguf_vocab_special.c: bos/eos/unk/sep/pad/mask ids, add_bos/add_eos, the chat
 * template; summary receives the ids chosen. */
int gg_vocab_special(mp_gguf *g, gg_vocab *v, json_t *summary, mp_error *err);

/* Whether an added token is CONTROL by its look (the converter's does_token_look_special). */
bool gg_token_looks_special(const char *text);

#endif
