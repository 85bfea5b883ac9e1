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
 * Decoding back to text: see mp_tokenizer_decode.
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

/* ---- ids -> text (tokenizer_decode.c, detok_stream.c) ---- */

/* The text of ids as HF's Tokenizer::decode gives it: each id's string (an added
 * token's, else the model's; ids outside the vocabulary are dropped, as HF drops them),
 * through tokenizer.json's "decoder" (ByteLevel, Metaspace, Replace, ByteFallback,
 * Fuse, Strip, WordPiece, BPEDecoder, CTC, Sequence), or, without a decoder, joined
 * with spaces. skip_special drops the added tokens marked special. When
 * tokenizer_config.json says clean_up_tokenization_spaces: true, transformers'
 * clean-up follows (" ." -> ".", " n't" -> "n't", ...), as its tokenizer.decode does.
 * *text: malloc'd, NUL-terminated, *len bytes (NUL bytes may occur inside). A decoder
 * moepack cannot read is an MP_EXIT_INPUT error naming the field; loading and
 * encoding still work with it. */
int mp_tokenizer_decode(const mp_tokenizer *t, const int32_t *ids, size_t n, int skip_special, char **text,
                        size_t *len, mp_error *err);

/* Streaming decoding: ids are pushed one at a time, and each push gives the text that
 * is now final: the concatenation of every push's text and finish's equals
 * mp_tokenizer_decode of all the ids. Text a later id could still change is held
 * back: an incomplete UTF-8 character (U+FFFD at the end), a run of byte-fallback
 * tokens (one invalid byte later turns the whole run into U+FFFD), a tail the
 * clean-up could still rewrite (" n" before "'t"). A window of recent ids is decoded
 * each time, so the cost per id stays bounded (within a run of byte tokens it grows
 * with the run, which must be decoded whole). *out (out_len bytes, not
 * NUL-terminated) is valid until the next call. */
typedef struct mp_detok mp_detok;
int mp_detok_new(const mp_tokenizer *t, int skip_special, mp_detok **out, mp_error *err);
int mp_detok_push(mp_detok *d, int32_t id, const char **out, size_t *out_len, mp_error *err);
/* Gives the text held back; the decoder then starts afresh. */
int mp_detok_finish(mp_detok *d, const char **out, size_t *out_len, mp_error *err);
void mp_detok_free(mp_detok *d);

/* Whether id is an added token marked special (EOS handling, and what skip_special
 * drops: HF drops by string, so also a model piece spelled like a special token, but
 * not a normalized special token the normalizer rewrites; decoding follows HF). */
int mp_tokenizer_is_special(const mp_tokenizer *t, int32_t id);

/* The id of a token string (an added token's content first, then the model's
 * vocabulary), or -1. */
int32_t mp_tokenizer_id(const mp_tokenizer *t, const char *piece);

/* Reads a file of whitespace-separated decimal ids (for `--tokens FILE`) into a
 * malloc'd array. Errors name the file and the position of the offending token. */
int mp_tokens_read_file(const char *path, int32_t **ids, size_t *n, mp_error *err);

#endif
