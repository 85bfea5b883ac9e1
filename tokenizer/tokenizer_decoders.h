/* The decoders of tokenizer.json (HF tokenizers' decoders/ (each file), and the decoder halves
 * of pre_tokenizers/byte_level.rs, metaspace.rs and normalizers/replace.rs): each turns
 * the list of token strings into another list, as its decode_chain does; a Sequence is
 * flattened into its steps. The decoded text is the final list joined. */
#ifndef MP_TOKENIZER_DECODERS_H
#define MP_TOKENIZER_DECODERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"
#include "tokenizer_normalize.h"

typedef enum {
    MP_DEC_BYTE_LEVEL,    /* byte-level characters back to bytes, the whole as lossy UTF-8 */
    MP_DEC_METASPACE,     /* replacement -> ' ', dropped in the first token unless prepend never */
    MP_DEC_REPLACE,       /* a String or Regex pattern -> content, in each token */
    MP_DEC_BYTE_FALLBACK, /* runs of <0xXX> tokens -> their bytes as UTF-8, else one U+FFFD per byte */
    MP_DEC_FUSE,          /* every token joined into one */
    MP_DEC_STRIP,         /* up to start / stop `content` characters off each token's ends */
    MP_DEC_WORDPIECE,     /* prefix dropped from continuing tokens, " " before the others */
    MP_DEC_BPE,           /* suffix -> " " (nothing in the last token) */
    MP_DEC_CTC            /* repeats merged, pad dropped, delimiter -> " " */
} mp_dec_kind;

typedef struct {
    mp_dec_kind kind;
    uint32_t cp;         /* METASPACE: the replacement; STRIP: the content */
    bool prepend;        /* METASPACE: prepend_scheme is not never */
    size_t start, stop;  /* STRIP */
    char *text;          /* WORDPIECE prefix, BPE suffix, CTC pad_token */
    char *word;          /* CTC word_delimiter_token */
    bool cleanup;        /* WORDPIECE, CTC */
    mp_norm_step replace; /* REPLACE: a Replace normalizer does the same to one string */
} mp_dec_step;

void mp_dec_step_free(mp_dec_step *st);

/* A list of strings (not NUL-terminated) in one growing buffer. */
typedef struct {
    char *buf;
    size_t used, cap;
    size_t *off, *len;
    size_t n, cap_n;
    bool oom;            /* a push failed; the list is then incomplete */
} mp_pieces;

void mp_pieces_clear(mp_pieces *p);
void mp_pieces_free(mp_pieces *p);
/* Appends s[0..len) to the buffer, without starting a new string. */
void mp_pieces_append(mp_pieces *p, const char *s, size_t len);
/* Appends s[0..len) as a new string. */
void mp_pieces_push(mp_pieces *p, const char *s, size_t len);
/* The i-th string (len[i] bytes). */
const char *mp_pieces_at(const mp_pieces *p, size_t i);

/* Runs the steps on *list (valid UTF-8 strings); the result replaces *list, spare is
 * scratch space. Returns 0, or -1 when out of memory or a regex fails. */
int mp_decode_steps(const mp_dec_step *steps, size_t n_steps, mp_pieces *list, mp_pieces *spare);

/* <0xXX> (ByteFallback's byte tokens): the byte, or -1. */
int mp_dec_byte_token(const char *s, size_t len);

/* transformers' clean_up_tokenization (" ." -> ".", " n't" -> "n't", ...), in place;
 * returns the new length. */
size_t mp_cleanup_spaces(char *s, size_t len);

/* Whether the strings s ends with could, once text follows, become part of a
 * clean_up_tokenization pattern: the length of that tail, 0 when none. */
size_t mp_cleanup_pending(const char *s, size_t len);

/* Decoding (tokenizer_decode.c), for the streaming decoder: the text of ids into
 * text->buf[0..text->used) (NUL-terminated); list and spare are scratch space. Returns
 * an MP_ code with err filled. */
struct mp_tokenizer;
int mp_decode_text(const struct mp_tokenizer *t, const int32_t *ids, size_t n, int skip_special, mp_pieces *list,
                   mp_pieces *spare, mp_pieces *text, mp_error *err);
/* The string decoding sees for id (an added token's, else the model's), or NULL. */
const char *mp_decode_string(const struct mp_tokenizer *t, int32_t id, size_t *len);

#endif
