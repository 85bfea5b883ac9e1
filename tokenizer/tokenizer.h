/* A HuggingFace tokenizer.json BPE tokenizer that gives the ids HF `tokenizers` gives.
 *
 * Supported: model BPE (byte fallback, unk, fuse_unk, ignore_merges, subword prefix and
 * suffix); normalizers null, NFC, Prepend, Replace with a string pattern, and Sequences
 * of them; pre-tokenizers null, Metaspace (any prepend_scheme, split or not), ByteLevel
 * (with or without the GPT-2 regex, add_prefix_space), Split with the Qwen2 or Llama-3
 * regex (behavior Isolated), and Sequences of them. Added tokens found literally in the
 * text are matched first, as HF does. Anything else is refused at load with an error
 * naming the field.
 *
 * Use: the sentencepiece-style Llama/Mixtral tokenizers and the byte-level GPT-2 / Qwen2
 * / Llama-3 ones, to turn evaluation text into the ids the verify engine scores. */
#ifndef MP_TOKENIZER_H
#define MP_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"

typedef struct mp_tokenizer mp_tokenizer;

/* path: a tokenizer.json, or a directory holding one. A tokenizer_config.json beside it
 * is read for add_bos_token / bos_token. */
int mp_tokenizer_load(const char *path, mp_tokenizer **out, mp_error *err);
void mp_tokenizer_free(mp_tokenizer *t);

/* Tokenizes text[0..len) (UTF-8; NUL bytes are ordinary characters) into a malloc'd
 * array of ids the caller frees; adds no special tokens (no BOS). Invalid UTF-8 is an
 * MP_EXIT_INPUT error naming the byte offset. Empty text gives *n_ids == 0. */
int mp_tokenizer_encode(const mp_tokenizer *t, const char *text, size_t len, int32_t **ids,
                        size_t *n_ids, mp_error *err);

/* The id the post-processor puts before a single sequence, or -1 when it adds none. */
int32_t mp_tokenizer_bos(const mp_tokenizer *t);

/* Highest id + 1, added tokens included. */
size_t mp_tokenizer_vocab_size(const mp_tokenizer *t);

/* The vocabulary string of id, as written in tokenizer.json ("▁the", "Ġthe", "<0x0A>"),
 * or NULL for an id outside the vocabulary. */
const char *mp_tokenizer_piece(const mp_tokenizer *t, int32_t id);

/* Reads a file of whitespace-separated decimal ids (for `--tokens FILE`) into a
 * malloc'd array. Errors name the file and the position of the offending token. */
int mp_tokens_read_file(const char *path, int32_t **ids, size_t *n, mp_error *err);

#endif
