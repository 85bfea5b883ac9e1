/* A HuggingFace tokenizer.json tokenizer that gives the ids HF `tokenizers` gives.
 *
 * Models BPE (byte fallback, unk, fuse_unk, ignore_merges, subword prefix and suffix)
 * and Unigram; normalizers NFC, NFD, NFKC, NFKD, Lowercase, Strip, StripAccents,
 * Replace, Prepend; pre-tokenizers Split (Regex through Oniguruma, or String; every
 * behavior; invert), ByteLevel, Metaspace, Digits, Punctuation, Whitespace,
 * WhitespaceSplit, CharDelimiterSplit; Sequences of them. Added tokens with lstrip,
 * rstrip, single_word and normalized are matched first, as HF does. Post-processors
 * TemplateProcessing, Bert, Roberta, ByteLevel and Sequence give the special tokens
 * around a sequence. Anything else is refused at load with an error naming the field.
 *
 * Use: turning evaluation and calibration text into the ids the engine runs, and
 * `moepack tokenize`. */
#ifndef MP_TOKENIZER_H
#define MP_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"

typedef struct mp_tokenizer mp_tokenizer;

/* path: a tokenizer.json, or a directory holding one. A tokenizer_config.json beside it
 * is read, tolerantly (huge integers, fields not used), for add_bos_token,
 * add_eos_token, bos_token and eos_token. */
int mp_tokenizer_load(const char *path, mp_tokenizer **out, mp_error *err);
void mp_tokenizer_free(mp_tokenizer *t);

/* Tokenizes text[0..len) (UTF-8; NUL bytes are ordinary characters) into a malloc'd
 * array of ids the caller frees; adds no special tokens (no BOS). Invalid UTF-8 is an
 * MP_EXIT_INPUT error naming the byte offset. Empty text gives *n_ids == 0. */
int mp_tokenizer_encode(const mp_tokenizer *t, const char *text, size_t len, int32_t **ids,
                        size_t *n_ids, mp_error *err);

/* The id the post-processor puts first before a single sequence, or -1 when it adds
 * none. */
int32_t mp_tokenizer_bos(const mp_tokenizer *t);

/* The ids the post-processor puts before and after a single sequence (tokenizer.json's,
 * or as tokenizer_config.json's add_bos_token / add_eos_token rebuild it). */
void mp_tokenizer_specials(const mp_tokenizer *t, const int32_t **before, size_t *n_before, const int32_t **after,
                           size_t *n_after);

/* Highest id + 1, added tokens included. */
size_t mp_tokenizer_vocab_size(const mp_tokenizer *t);

/* The vocabulary string of id, as written in tokenizer.json ("▁the", "Ġthe", "<0x0A>"),
 * or NULL for an id outside the vocabulary. */
const char *mp_tokenizer_piece(const mp_tokenizer *t, int32_t id);

/* Reads a file of whitespace-separated decimal ids (for `--tokens FILE`) into a
 * malloc'd array. Errors name the file and the position of the offending token. */
int mp_tokens_read_file(const char *path, int32_t **ids, size_t *n, mp_error *err);

#endif
