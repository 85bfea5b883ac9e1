/* A byte trie whose edges live in one hash table, (node, byte) -> child: pieces of the
 * Unigram model and added tokens, walked one byte at a time. */
#ifndef MP_TOKENIZER_TRIE_H
#define MP_TOKENIZER_TRIE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t *key;     /* node << 8 | byte, + 1; 0 = empty slot */
    int32_t *child;
    size_t n_slots;    /* a power of two */
    int32_t *value;    /* by node: the value of the string ending there, or -1 */
    size_t n_nodes, cap_nodes;
} mp_trie;

/* Room for strings of total_bytes bytes in all. Returns 0, or -1 when out of memory. */
int mp_trie_init(mp_trie *t, size_t total_bytes);
/* value >= 0; within the room mp_trie_init made. */
void mp_trie_insert(mp_trie *t, const char *s, size_t len, int32_t value);
/* The child of node (0 = the root) along byte b, or -1. */
int32_t mp_trie_step(const mp_trie *t, int32_t node, unsigned char b);
void mp_trie_free(mp_trie *t);

#endif
