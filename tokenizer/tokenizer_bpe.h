/* The BPE model of a tokenizer.json: the vocabulary, the ranked merges, and the merge
 * loop HF tokenizers runs on each pre-tokenized word (models/bpe/model.rs, word.rs). */
#ifndef MP_TOKENIZER_BPE_H
#define MP_TOKENIZER_BPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int32_t *v;
    size_t n, cap;
} mp_id_list;

/* Returns 0, or -1 when out of memory. */
int mp_id_list_push(mp_id_list *l, int32_t id);

/* Every id's string, and a hash index from string to id over the model's own entries
 * (added tokens have strings but are not found by the model). */
typedef struct {
    char **piece;         /* by id, NUL-terminated; NULL for an id without one */
    uint32_t *piece_len;
    size_t n_ids;         /* highest id + 1 */
    size_t cap_ids;       /* ids there is room for */
    int32_t *slots;       /* open addressing: id + 1, 0 = empty */
    size_t n_slots;       /* a power of two, at least twice the indexed entries */
} mp_vocab;

/* Sizes the table for ids 0..n_ids-1 of which at most n_indexed are indexed. */
int mp_vocab_init(mp_vocab *v, size_t n_ids, size_t n_indexed);
/* Returns 0; -1 out of memory; -2 the string is already indexed under another id. */
int mp_vocab_set(mp_vocab *v, int32_t id, const char *s, size_t len, bool indexed);
/* Points the index entry of s[0..len) (id's own piece) at id, replacing an earlier id
 * listed with the same string. */
void mp_vocab_reindex(mp_vocab *v, int32_t id, const char *s, size_t len);
/* The indexed id of s[0..len), or -1. */
int32_t mp_vocab_find(const mp_vocab *v, const char *s, size_t len);
/* The ids of the byte pieces <0x00>..<0xFF> (byte fallback), -1 where missing. */
void mp_vocab_byte_ids(const mp_vocab *v, int32_t ids[256]);
void mp_vocab_free(mp_vocab *v);

/* (left id, right id) -> (rank, merged id). */
typedef struct {
    uint64_t *key;        /* left << 32 | right; UINT64_MAX = empty */
    uint32_t *rank;
    int32_t *merged;
    size_t n_slots;       /* a power of two, at least twice the merges */
} mp_merge_map;

int mp_merge_map_init(mp_merge_map *m, size_t n_merges);
/* A pair listed twice keeps the later rank, as HF's HashMap collect does. */
void mp_merge_map_put(mp_merge_map *m, int32_t left, int32_t right, uint32_t rank, int32_t merged);
/* Returns true and fills rank and merged when the pair merges. */
bool mp_merge_map_get(const mp_merge_map *m, int32_t left, int32_t right, uint32_t *rank,
                      int32_t *merged);
void mp_merge_map_free(mp_merge_map *m);

typedef struct {
    mp_vocab vocab;
    mp_merge_map merges;
    int32_t unk_id;         /* -1: no unk token, unknown characters are dropped (as HF) */
    bool fuse_unk;          /* consecutive unknown characters become one unk */
    bool byte_fallback;     /* unknown characters become their <0x00>..<0xFF> byte tokens */
    bool ignore_merges;     /* a word found whole in the vocabulary is not merged */
    int32_t byte_id[256];   /* the ids of <0x00>..<0xFF>, -1 where missing */
    char *prefix;           /* continuing_subword_prefix, or NULL */
    char *suffix;           /* end_of_word_suffix, or NULL */
} mp_bpe;

void mp_bpe_free(mp_bpe *m);

/* Scratch space reused across the words of one encode call. */
typedef struct mp_bpe_work mp_bpe_work;
mp_bpe_work *mp_bpe_work_new(void);
void mp_bpe_work_free(mp_bpe_work *w);

/* Appends the ids of the word w[0..len) (valid UTF-8, len > 0, fewer than 2^32 - 1
 * bytes) to out. Returns 0, or -1 when out of memory. */
int mp_bpe_encode_word(const mp_bpe *m, const char *w, size_t len, mp_bpe_work *work,
                       mp_id_list *out);

#endif
