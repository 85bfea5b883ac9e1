#include "tokenizer_trie.h"

#include <stdlib.h>
#include <string.h>

static uint64_t hash_edge(uint64_t key)
{
    key ^= key >> 31;
    key *= 0x9e3779b97f4a7c15u;
    return key ^ (key >> 29);
}

int mp_trie_init(mp_trie *t, size_t total_bytes)
{
    memset(t, 0, sizeof *t);
    t->n_slots = 16;
    while (t->n_slots < 2 * (total_bytes + 1))
        t->n_slots *= 2;
    t->key = calloc(t->n_slots, sizeof *t->key);
    t->child = calloc(t->n_slots, sizeof *t->child);
    t->cap_nodes = total_bytes + 1;
    t->value = malloc(t->cap_nodes * sizeof *t->value);
    if (!t->key || !t->child || !t->value)
        return -1;
    t->value[0] = -1; /* the root */
    t->n_nodes = 1;
    return 0;
}

/* The child of node along byte b, or -1. */
int32_t mp_trie_step(const mp_trie *t, int32_t node, unsigned char b)
{
    uint64_t key = ((uint64_t)node << 8 | b) + 1;
    size_t mask = t->n_slots - 1;
    for (size_t i = hash_edge(key) & mask;; i = (i + 1) & mask) {
        if (t->key[i] == key)
            return t->child[i];
        if (t->key[i] == 0)
            return -1;
    }
}

/* The table was sized for every byte of every piece, so there is always room. */
static int32_t add_child(mp_trie *t, int32_t node, unsigned char b)
{
    uint64_t key = ((uint64_t)node << 8 | b) + 1;
    size_t mask = t->n_slots - 1;
    size_t i = hash_edge(key) & mask;
    while (t->key[i] != 0)
        i = (i + 1) & mask;
    int32_t child = (int32_t)t->n_nodes++;
    t->key[i] = key;
    t->child[i] = child;
    t->value[child] = -1;
    return child;
}

void mp_trie_insert(mp_trie *t, const char *s, size_t len, int32_t value)
{
    int32_t node = 0;
    for (size_t i = 0; i < len; i++) {
        int32_t next = mp_trie_step(t, node, (unsigned char)s[i]);
        node = next >= 0 ? next : add_child(t, node, (unsigned char)s[i]);
    }
    t->value[node] = value; /* a string inserted twice keeps its last value */
}

void mp_trie_free(mp_trie *t)
{
    free(t->key);
    free(t->child);
    free(t->value);
    memset(t, 0, sizeof *t);
}
