/* The Unigram model of a tokenizer.json (SentencePiece's): every piece has a score
 * (a log-probability), and a word becomes the sequence of pieces with the highest
 * total score, found by HF's Viterbi pass over a trie of the pieces
 * (models/unigram/model.rs encode_optimized). Characters no piece covers cost the
 * lowest score minus 10 and become unk (consecutive ones fused), or their <0x00>..<0xFF>
 * byte pieces with byte_fallback. */
#ifndef MP_TOKENIZER_UNIGRAM_H
#define MP_TOKENIZER_UNIGRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenizer_bpe.h"
#include "tokenizer_trie.h"

typedef struct {
    mp_vocab vocab;         /* the pieces; a piece listed twice is found under its last id */
    double *score;          /* by id */
    double unk_score;       /* the lowest score minus 10 */
    int32_t unk_id;         /* -1: a character no piece covers is an error */
    bool byte_fallback;
    int32_t byte_id[256];   /* the ids of <0x00>..<0xFF>, -1 where missing */
    mp_trie trie;          /* piece bytes -> id */
} mp_unigram;

/* Sizes the model for n pieces (ids 0..n-1) within n_ids ids (added tokens may lie beyond). */
int mp_unigram_init(mp_unigram *m, size_t n, size_t n_ids);
/* Piece id with its score; call for ids in increasing order, then mp_unigram_finish,
 * which builds the trie. Both return 0, or -1 when out of memory. */
int mp_unigram_add(mp_unigram *m, int32_t id, const char *piece, size_t len, double score);
int mp_unigram_finish(mp_unigram *m);
void mp_unigram_free(mp_unigram *m);

typedef struct mp_unigram_work mp_unigram_work;
mp_unigram_work *mp_unigram_work_new(void);
void mp_unigram_work_free(mp_unigram_work *w);

/* Appends the ids of the word w[0..len) (valid UTF-8, len > 0) to out. Returns 0,
 * -1 when out of memory, -2 when a character has no piece and the model no unk. */
int mp_unigram_encode_word(const mp_unigram *m, const char *w, size_t len, mp_unigram_work *work,
                           mp_id_list *out);

#endif
