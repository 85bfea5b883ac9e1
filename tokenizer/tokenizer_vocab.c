/* The models' lookup tables: id <-> string and the merge ranks, as open-addressing
 * hash tables with linear probing (built once at load, read-only while encoding). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer_bpe.h"

#define EMPTY_PAIR UINT64_MAX

int mp_id_list_push(mp_id_list *l, int32_t id)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        int32_t *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = id;
    return 0;
}

/* FNV-1a: short strings, no need for more. */
static uint64_t hash_string(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3u;
    }
    return h;
}

static uint64_t hash_pair(uint64_t key)
{
    key ^= key >> 31;
    key *= 0x9e3779b97f4a7c15u;
    return key ^ (key >> 29);
}

static size_t table_size(size_t entries)
{
    size_t n = 16;
    while (n < entries * 2)
        n *= 2;
    return n;
}

int mp_vocab_init(mp_vocab *v, size_t n_ids, size_t n_indexed)
{
    memset(v, 0, sizeof *v);
    v->n_ids = v->cap_ids = n_ids;
    v->n_slots = table_size(n_indexed);
    v->piece = calloc(n_ids ? n_ids : 1, sizeof *v->piece);
    v->piece_len = calloc(n_ids ? n_ids : 1, sizeof *v->piece_len);
    v->slots = calloc(v->n_slots, sizeof *v->slots);
    return v->piece && v->piece_len && v->slots ? 0 : -1;
}

static bool same_piece(const mp_vocab *v, int32_t id, const char *s, size_t len)
{
    return v->piece_len[id] == len && memcmp(v->piece[id], s, len) == 0;
}

int mp_vocab_set(mp_vocab *v, int32_t id, const char *s, size_t len, bool indexed)
{
    if (!v->piece[id]) {
        v->piece[id] = malloc(len + 1);
        if (!v->piece[id])
            return -1;
        memcpy(v->piece[id], s, len);
        v->piece[id][len] = '\0';
        v->piece_len[id] = (uint32_t)len;
    }
    if (!indexed)
        return 0;
    size_t mask = v->n_slots - 1;
    for (size_t i = hash_string(s, len) & mask;; i = (i + 1) & mask) {
        int32_t other = v->slots[i] - 1;
        if (other < 0) {
            v->slots[i] = id + 1;
            return 0;
        }
        if (same_piece(v, other, s, len))
            return other == id ? 0 : -2;
    }
}

void mp_vocab_reindex(mp_vocab *v, int32_t id, const char *s, size_t len)
{
    size_t mask = v->n_slots - 1;
    for (size_t i = hash_string(s, len) & mask;; i = (i + 1) & mask)
        if (v->slots[i] == 0 || same_piece(v, v->slots[i] - 1, s, len)) {
            v->slots[i] = id + 1;
            return;
        }
}

int32_t mp_vocab_find(const mp_vocab *v, const char *s, size_t len)
{
    size_t mask = v->n_slots - 1;
    for (size_t i = hash_string(s, len) & mask;; i = (i + 1) & mask) {
        int32_t id = v->slots[i] - 1;
        if (id < 0)
            return -1;
        if (same_piece(v, id, s, len))
            return id;
    }
}

void mp_vocab_byte_ids(const mp_vocab *v, int32_t ids[256])
{
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        ids[b] = mp_vocab_find(v, name, strlen(name));
    }
}

void mp_vocab_free(mp_vocab *v)
{
    if (v->piece)
        for (size_t i = 0; i < v->cap_ids; i++)
            free(v->piece[i]);
    free(v->piece);
    free(v->piece_len);
    free(v->slots);
    memset(v, 0, sizeof *v);
}

int mp_merge_map_init(mp_merge_map *m, size_t n_merges)
{
    m->n_slots = table_size(n_merges);
    m->key = malloc(m->n_slots * sizeof *m->key);
    m->rank = malloc(m->n_slots * sizeof *m->rank);
    m->merged = malloc(m->n_slots * sizeof *m->merged);
    if (!m->key || !m->rank || !m->merged)
        return -1;
    for (size_t i = 0; i < m->n_slots; i++)
        m->key[i] = EMPTY_PAIR;
    return 0;
}

static uint64_t pair_key(int32_t left, int32_t right)
{
    return (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
}

void mp_merge_map_put(mp_merge_map *m, int32_t left, int32_t right, uint32_t rank, int32_t merged)
{
    uint64_t key = pair_key(left, right);
    size_t mask = m->n_slots - 1;
    size_t i = hash_pair(key) & mask;
    while (m->key[i] != EMPTY_PAIR && m->key[i] != key)
        i = (i + 1) & mask;
    m->key[i] = key;
    m->rank[i] = rank;
    m->merged[i] = merged;
}

bool mp_merge_map_get(const mp_merge_map *m, int32_t left, int32_t right, uint32_t *rank,
                      int32_t *merged)
{
    uint64_t key = pair_key(left, right);
    size_t mask = m->n_slots - 1;
    for (size_t i = hash_pair(key) & mask; m->key[i] != EMPTY_PAIR; i = (i + 1) & mask) {
        if (m->key[i] == key) {
            *rank = m->rank[i];
            *merged = m->merged[i];
            return true;
        }
    }
    return false;
}

void mp_merge_map_free(mp_merge_map *m)
{
    free(m->key);
    free(m->rank);
    free(m->merged);
    memset(m, 0, sizeof *m);
}

void mp_bpe_free(mp_bpe *m)
{
    mp_vocab_free(&m->vocab);
    mp_merge_map_free(&m->merges);
    free(m->prefix);
    free(m->suffix);
    m->prefix = m->suffix = NULL;
}
