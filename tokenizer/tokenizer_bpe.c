/* The BPE merge loop of HF tokenizers (models/bpe/word.rs merge_all), so ties and stale
 * candidates resolve exactly as there: the word starts as one symbol per character;
 * every adjacent pair that has a merge is a candidate in a min-heap ordered by (rank,
 * position); the best candidate merges when its pair still yields the same token, and
 * the pairs it forms with its neighbours become candidates. O(n log n) in the word
 * length, which matters for Metaspace without split: the whole text is one word. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_bpe.h"
#include "utf8.h"

#define NONE UINT32_MAX
/* Children per heap node: a wider, shallower heap touches fewer cache lines per pop
 * when the whole text is one word. */
#define ARITY 4

typedef struct {
    int32_t id;
    uint32_t prev, next; /* neighbours still in the word, NONE at the ends */
    uint32_t len;        /* bytes covered; 0 once merged into the left neighbour */
} symbol;

typedef struct {
    uint32_t rank;
    uint32_t pos; /* the left symbol of the pair */
    int32_t merged;
} candidate;

struct mp_bpe_work {
    symbol *sym;
    size_t n_sym, cap_sym;
    candidate *heap;
    size_t n_heap, cap_heap;
    char *buf; /* a character with the subword prefix or suffix attached */
    size_t cap_buf;
};

mp_bpe_work *mp_bpe_work_new(void)
{
    return calloc(1, sizeof(mp_bpe_work));
}

void mp_bpe_work_free(mp_bpe_work *w)
{
    if (!w)
        return;
    free(w->sym);
    free(w->heap);
    free(w->buf);
    free(w);
}

/* p grown to hold need elements: the new array (cap updated), p itself when it is
 * large enough, or NULL when out of memory (p is then left as it was). */
static void *grow(void *p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return p;
    size_t n = *cap ? *cap : 64;
    while (n < need)
        n *= 2;
    void *q = realloc(p, n * elem);
    if (q)
        *cap = n;
    return q;
}

static bool before(const candidate *a, const candidate *b)
{
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static int heap_push(mp_bpe_work *w, candidate c)
{
    candidate *heap = grow(w->heap, &w->cap_heap, w->n_heap + 1, sizeof *heap);
    if (!heap)
        return -1;
    w->heap = heap;
    size_t i = w->n_heap++;
    while (i > 0 && before(&c, &w->heap[(i - 1) / ARITY])) {
        w->heap[i] = w->heap[(i - 1) / ARITY];
        i = (i - 1) / ARITY;
    }
    w->heap[i] = c;
    return 0;
}

static candidate heap_pop(mp_bpe_work *w)
{
    candidate top = w->heap[0];
    candidate last = w->heap[--w->n_heap];
    size_t i = 0, n = w->n_heap;
    for (;;) {
        size_t first = ARITY * i + 1, child = first;
        if (first >= n)
            break;
        for (size_t k = first + 1; k < first + ARITY && k < n; k++)
            if (before(&w->heap[k], &w->heap[child]))
                child = k;
        if (!before(&w->heap[child], &last))
            break;
        w->heap[i] = w->heap[child];
        i = child;
    }
    if (n > 0)
        w->heap[i] = last;
    return top;
}

static int add_symbol(mp_bpe_work *w, int32_t id, uint32_t len)
{
    symbol *sym = grow(w->sym, &w->cap_sym, w->n_sym + 1, sizeof *sym);
    if (!sym)
        return -1;
    w->sym = sym;
    uint32_t pos = (uint32_t)w->n_sym;
    w->sym[pos] = (symbol){id, pos == 0 ? NONE : pos - 1, NONE, len};
    if (pos > 0)
        w->sym[pos - 1].next = pos;
    w->n_sym++;
    return 0;
}

/* The vocabulary id of one character, with the subword prefix when it is not the
 * first and the suffix when it is the last, or -1. */
static int find_char(const mp_bpe *m, mp_bpe_work *w, const char *c, size_t len, bool first,
                     bool last, int32_t *id)
{
    const char *prefix = !first && m->prefix ? m->prefix : "";
    const char *suffix = last && m->suffix ? m->suffix : "";
    if (!*prefix && !*suffix) {
        *id = mp_vocab_find(&m->vocab, c, len);
        return 0;
    }
    size_t np = strlen(prefix), ns = strlen(suffix);
    char *buf = grow(w->buf, &w->cap_buf, np + len + ns, 1);
    if (!buf)
        return -1;
    w->buf = buf;
    memcpy(w->buf, prefix, np);
    memcpy(w->buf + np, c, len);
    memcpy(w->buf + np + len, suffix, ns);
    *id = mp_vocab_find(&m->vocab, w->buf, np + len + ns);
    return 0;
}

/* Byte tokens for a character missing from the vocabulary; false when one is missing. */
static bool byte_fallback(const mp_bpe *m, const char *c, size_t len, int32_t ids[4])
{
    for (size_t i = 0; i < len; i++) {
        ids[i] = m->byte_id[(unsigned char)c[i]];
        if (ids[i] < 0)
            return false;
    }
    return true;
}

/* One symbol per character, as merge_word does: unknown characters become byte tokens
 * or (fused) unk, or are dropped when the model has neither. Note that a pending unk
 * is not flushed before byte tokens, as in HF. */
static int initial_symbols(const mp_bpe *m, const char *w, size_t len, mp_bpe_work *work)
{
    int32_t unk_id = -1;
    uint32_t unk_len = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = mp_utf8_decode(w + i, &cp);
        int32_t id, bytes[4];
        if (find_char(m, work, w + i, n, i == 0, i + n == len, &id) != 0)
            return -1;
        if (id >= 0) {
            if (unk_id >= 0 && add_symbol(work, unk_id, unk_len) != 0)
                return -1;
            unk_id = -1;
            if (add_symbol(work, id, (uint32_t)n) != 0)
                return -1;
        } else if (m->byte_fallback && byte_fallback(m, w + i, n, bytes)) {
            for (size_t k = 0; k < n; k++)
                if (add_symbol(work, bytes[k], 1) != 0)
                    return -1;
        } else if (m->unk_id >= 0) {
            if (unk_id >= 0 && m->fuse_unk) {
                unk_len += (uint32_t)n;
            } else {
                if (unk_id >= 0 && add_symbol(work, unk_id, unk_len) != 0)
                    return -1;
                unk_id = m->unk_id;
                unk_len = (uint32_t)n;
            }
        }
        i += n;
    }
    if (unk_id >= 0 && add_symbol(work, unk_id, unk_len) != 0)
        return -1;
    return 0;
}

/* Queues the pair starting at pos when it has a merge. */
static int offer_pair(const mp_bpe *m, mp_bpe_work *w, uint32_t pos)
{
    uint32_t next = w->sym[pos].next;
    candidate c = {0, pos, 0};
    if (next == NONE || !mp_merge_map_get(&m->merges, w->sym[pos].id, w->sym[next].id, &c.rank, &c.merged))
        return 0;
    return heap_push(w, c);
}

static int merge_all(const mp_bpe *m, mp_bpe_work *w)
{
    w->n_heap = 0;
    for (uint32_t pos = 0; pos + 1 < w->n_sym; pos++)
        if (offer_pair(m, w, pos) != 0)
            return -1;
    while (w->n_heap > 0) {
        candidate top = heap_pop(w);
        symbol *left = &w->sym[top.pos];
        if (left->len == 0 || left->next == NONE)
            continue;
        symbol *right = &w->sym[left->next];
        uint32_t rank;
        int32_t merged;
        /* stale: the pair changed since it was queued */
        if (!mp_merge_map_get(&m->merges, left->id, right->id, &rank, &merged) || merged != top.merged)
            continue;
        left->id = top.merged;
        left->len += right->len;
        left->next = right->next;
        right->len = 0;
        if (left->next != NONE)
            w->sym[left->next].prev = top.pos;
        if (left->prev != NONE && offer_pair(m, w, left->prev) != 0)
            return -1;
        if (offer_pair(m, w, top.pos) != 0)
            return -1;
    }
    return 0;
}

int mp_bpe_encode_word(const mp_bpe *m, const char *w, size_t len, mp_bpe_work *work,
                       mp_id_list *out)
{
    if (m->ignore_merges) {
        int32_t id = mp_vocab_find(&m->vocab, w, len);
        if (id >= 0)
            return mp_id_list_push(out, id);
    }
    work->n_sym = 0;
    if (initial_symbols(m, w, len, work) != 0 || merge_all(m, work) != 0)
        return -1;
    for (size_t i = 0; i < work->n_sym; i++)
        if (work->sym[i].len != 0 && mp_id_list_push(out, work->sym[i].id) != 0)
            return -1;
    return 0;
}
