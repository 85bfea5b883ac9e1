/* The cache policies of cache_sim.h. LRU is a doubly linked list over the items;
 * LFU and Belady keep the cached items in an indexed binary heap whose root is the
 * next victim, so a DeepSeek-size trace (15 k experts, millions of accesses) runs
 * in n log(capacity). */
#include "cache_sim.h"

#include <stdbool.h>
#include <stdlib.h>

const char *mp_cache_policy_name(mp_cache_policy p)
{
    static const char *names[] = {"lru", "lfu", "pinned_lru", "static", "belady"};
    return p < MP_CACHE_POLICIES ? names[p] : "?";
}

/* ---- LRU list ---- */

typedef struct {
    int32_t *prev, *next; /* -1: none */
    bool *in;
    int32_t head, tail, size, capacity;
} lru_list;

static int lru_init(lru_list *l, int32_t n_items, int32_t capacity)
{
    l->prev = malloc((size_t)n_items * sizeof *l->prev);
    l->next = malloc((size_t)n_items * sizeof *l->next);
    l->in = calloc((size_t)n_items, sizeof *l->in);
    l->head = l->tail = -1;
    l->size = 0;
    l->capacity = capacity;
    return l->prev && l->next && l->in ? 0 : -1;
}

static void lru_free(lru_list *l)
{
    free(l->prev);
    free(l->next);
    free(l->in);
}

static void lru_unlink(lru_list *l, int32_t i)
{
    if (l->prev[i] >= 0) l->next[l->prev[i]] = l->next[i];
    else l->head = l->next[i];
    if (l->next[i] >= 0) l->prev[l->next[i]] = l->prev[i];
    else l->tail = l->prev[i];
}

static void lru_push_front(lru_list *l, int32_t i)
{
    l->prev[i] = -1;
    l->next[i] = l->head;
    if (l->head >= 0) l->prev[l->head] = i;
    l->head = i;
    if (l->tail < 0) l->tail = i;
}

/* True on a hit; on a miss the item enters, the least recent one leaving when full. */
static bool lru_access(lru_list *l, int32_t i)
{
    if (l->in[i]) {
        lru_unlink(l, i);
        lru_push_front(l, i);
        return true;
    }
    if (l->capacity == 0)
        return false;
    if (l->size == l->capacity) {
        int32_t victim = l->tail;
        lru_unlink(l, victim);
        l->in[victim] = false;
        l->size--;
    }
    lru_push_front(l, i);
    l->in[i] = true;
    l->size++;
    return false;
}

/* ---- indexed min-heap on (a, b) ---- */

typedef struct {
    int32_t *item, *pos; /* pos[i] = index in item, -1 when absent */
    uint64_t *a, *b;     /* keys by item */
    int32_t size;
} item_heap;

static int heap_init(item_heap *h, int32_t n_items, int32_t capacity)
{
    h->item = malloc(((size_t)capacity + 1) * sizeof *h->item);
    h->pos = malloc((size_t)n_items * sizeof *h->pos);
    h->a = calloc((size_t)n_items, sizeof *h->a);
    h->b = calloc((size_t)n_items, sizeof *h->b);
    h->size = 0;
    for (int32_t i = 0; h->pos && i < n_items; i++)
        h->pos[i] = -1;
    return h->item && h->pos && h->a && h->b ? 0 : -1;
}

static void heap_free(item_heap *h)
{
    free(h->item);
    free(h->pos);
    free(h->a);
    free(h->b);
}

static bool heap_less(const item_heap *h, int32_t x, int32_t y)
{
    return h->a[x] < h->a[y] || (h->a[x] == h->a[y] && h->b[x] < h->b[y]);
}

static void heap_place(item_heap *h, int32_t at, int32_t i)
{
    h->item[at] = i;
    h->pos[i] = at;
}

/* Restores the heap order around item i after its key changed. */
static void heap_fix(item_heap *h, int32_t i)
{
    int32_t at = h->pos[i];
    while (at > 0 && heap_less(h, i, h->item[(at - 1) / 2])) {
        heap_place(h, at, h->item[(at - 1) / 2]);
        at = (at - 1) / 2;
    }
    for (;;) {
        int32_t c = 2 * at + 1;
        if (c >= h->size)
            break;
        if (c + 1 < h->size && heap_less(h, h->item[c + 1], h->item[c]))
            c++;
        if (!heap_less(h, h->item[c], i))
            break;
        heap_place(h, at, h->item[c]);
        at = c;
    }
    heap_place(h, at, i);
}

static void heap_push(item_heap *h, int32_t i)
{
    heap_place(h, h->size++, i);
    heap_fix(h, i);
}

static int32_t heap_pop(item_heap *h)
{
    int32_t top = h->item[0], last = h->item[--h->size];
    h->pos[top] = -1;
    if (h->size > 0) {
        heap_place(h, 0, last);
        heap_fix(h, last);
    }
    return top;
}

/* ---- policies ---- */

static int64_t simulate_lru(const int32_t *access, int64_t n, int32_t n_items, int32_t capacity)
{
    lru_list l;
    int64_t hits = 0;
    if (lru_init(&l, n_items, capacity) != 0)
        hits = -1;
    for (int64_t t = 0; hits >= 0 && t < n; t++)
        hits += lru_access(&l, access[t]);
    lru_free(&l);
    return hits;
}

/* Victim: the fewest accesses so far, then the least recent. */
static int64_t simulate_lfu(const int32_t *access, int64_t n, int32_t n_items, int32_t capacity)
{
    item_heap h;
    int64_t hits = 0;
    if (heap_init(&h, n_items, capacity) != 0)
        hits = -1;
    for (int64_t t = 0; hits >= 0 && t < n; t++) {
        int32_t i = access[t];
        h.a[i]++;
        h.b[i] = (uint64_t)t;
        if (h.pos[i] >= 0) {
            hits++;
            heap_fix(&h, i);
            continue;
        }
        if (h.size == capacity)
            heap_pop(&h);
        heap_push(&h, i);
    }
    heap_free(&h);
    return hits;
}

/* pinned: the first `pinned` of hot stay once loaded; the other experts share an
 * LRU of capacity - pinned (STATIC: pinned = capacity, so they always miss). */
static int64_t simulate_pinned(const int32_t *access, int64_t n, int32_t n_items, int32_t capacity, int32_t pinned,
                               const int32_t *hot)
{
    bool *is_pinned = calloc((size_t)n_items, sizeof *is_pinned), *loaded = calloc((size_t)n_items, sizeof *loaded);
    lru_list l;
    int64_t hits = lru_init(&l, n_items, capacity - pinned) == 0 && is_pinned && loaded ? 0 : -1;
    for (int32_t j = 0; hits >= 0 && j < pinned && j < n_items; j++)
        is_pinned[hot[j]] = true;
    for (int64_t t = 0; hits >= 0 && t < n; t++) {
        int32_t i = access[t];
        if (is_pinned[i]) {
            hits += loaded[i];
            loaded[i] = true;
        } else {
            hits += lru_access(&l, i);
        }
    }
    lru_free(&l);
    free(is_pinned);
    free(loaded);
    return hits;
}

/* Belady's MIN with bypass: on a miss in a full cache, the item (cached or incoming)
 * whose next use lies farthest ahead stays out. The heap's key a = n + 1 - next use,
 * so the farthest is the root. */
static int64_t simulate_belady(const int32_t *access, int64_t n, int32_t n_items, int32_t capacity)
{
    int64_t *next_use = malloc(((size_t)n + 1) * sizeof *next_use), *seen = malloc((size_t)n_items * sizeof *seen);
    item_heap h;
    int64_t hits = heap_init(&h, n_items, capacity) == 0 && next_use && seen ? 0 : -1;
    for (int32_t i = 0; hits >= 0 && i < n_items; i++)
        seen[i] = n; /* never again */
    for (int64_t t = n - 1; hits >= 0 && t >= 0; t--) {
        next_use[t] = seen[access[t]];
        seen[access[t]] = t;
    }
    for (int64_t t = 0; hits >= 0 && t < n; t++) {
        int32_t i = access[t];
        uint64_t key = (uint64_t)(n + 1 - next_use[t]);
        if (h.pos[i] >= 0) {
            hits++;
            h.a[i] = key;
            heap_fix(&h, i);
            continue;
        }
        if (h.size == capacity) {
            if (capacity == 0 || key <= h.a[h.item[0]])
                continue; /* the incoming one is needed last: bypass */
            heap_pop(&h);
        }
        h.a[i] = key;
        heap_push(&h, i);
    }
    heap_free(&h);
    free(next_use);
    free(seen);
    return hits;
}

int64_t mp_cache_simulate(mp_cache_policy p, const int32_t *access, int64_t n, int32_t n_items, int32_t capacity,
                          const int32_t *hot)
{
    if (capacity > n_items)
        capacity = n_items;
    switch (p) {
    case MP_CACHE_LRU: return simulate_lru(access, n, n_items, capacity);
    case MP_CACHE_LFU: return capacity > 0 ? simulate_lfu(access, n, n_items, capacity) : 0;
    case MP_CACHE_PINNED_LRU: return simulate_pinned(access, n, n_items, capacity, capacity / 2, hot);
    case MP_CACHE_STATIC: return simulate_pinned(access, n, n_items, capacity, capacity, hot);
    case MP_CACHE_BELADY: return simulate_belady(access, n, n_items, capacity);
    default: return -1;
    }
}
