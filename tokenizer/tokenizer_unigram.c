#include "tokenizer_unigram.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

/* SentencePiece's penalty on an unknown character, below the lowest piece score. */
#define UNK_PENALTY 10.0

/* ---- the model ---- */

int mp_unigram_init(mp_unigram *m, size_t n, size_t n_ids)
{
    memset(m, 0, sizeof *m);
    m->unk_id = -1;
    m->unk_score = INFINITY;
    m->score = calloc(n_ids ? n_ids : 1, sizeof *m->score);
    if (!m->score || mp_vocab_init(&m->vocab, n_ids, n) != 0)
        return -1;
    return 0;
}

int mp_unigram_add(mp_unigram *m, int32_t id, const char *piece, size_t len, double score)
{
    int rc = mp_vocab_set(&m->vocab, id, piece, len, true);
    if (rc == -2)
        mp_vocab_reindex(&m->vocab, id, piece, len);
    else if (rc != 0)
        return -1;
    m->score[id] = score;
    if (score < m->unk_score)
        m->unk_score = score;
    return 0;
}

/* The trie holds each indexed piece once, under the id the index finds it by. */
static int build_trie(mp_unigram *m)
{
    const mp_vocab *v = &m->vocab;
    size_t total = 0;
    for (size_t id = 0; id < v->n_ids; id++)
        if (v->piece[id])
            total += v->piece_len[id];
    if (mp_trie_init(&m->trie, total) != 0)
        return -1;
    for (size_t id = 0; id < v->n_ids; id++)
        if (v->piece[id] && mp_vocab_find(v, v->piece[id], v->piece_len[id]) == (int32_t)id)
            mp_trie_insert(&m->trie, v->piece[id], v->piece_len[id], (int32_t)id);
    return 0;
}

int mp_unigram_finish(mp_unigram *m)
{
    m->unk_score -= UNK_PENALTY;
    mp_vocab_byte_ids(&m->vocab, m->byte_id);
    return build_trie(m);
}

void mp_unigram_free(mp_unigram *m)
{
    mp_vocab_free(&m->vocab);
    free(m->score);
    mp_trie_free(&m->trie);
    memset(m, 0, sizeof *m);
}


/* ---- encoding ---- */

/* The best path to a byte position: its score, the piece ending there and where that
 * piece starts (-1: not reached yet). */
typedef struct {
    double score;
    int32_t id;
    int64_t from;
} path_end;

struct mp_unigram_work {
    path_end *best;
    size_t cap;
};

mp_unigram_work *mp_unigram_work_new(void)
{
    return calloc(1, sizeof(mp_unigram_work));
}

void mp_unigram_work_free(mp_unigram_work *w)
{
    if (!w)
        return;
    free(w->best);
    free(w);
}

/* Strictly better only: of equal scores the first path found stays, as in HF. */
static void offer(path_end *to, double score, int32_t id, size_t from)
{
    if (to->from < 0 || score > to->score)
        *to = (path_end){score, id, (int64_t)from};
}

/* Forward pass: every piece starting at each character boundary, and unk for a
 * character no single piece covers. */
static int viterbi(const mp_unigram *m, const char *w, size_t len, path_end *best)
{
    for (size_t i = 0; i <= len; i++)
        best[i] = (path_end){0.0, -1, -1};
    for (size_t at = 0; at < len;) {
        uint32_t cp;
        size_t char_len = mp_utf8_decode(w + at, &cp);
        double base = best[at].score;
        bool single = false;
        int32_t node = 0;
        for (size_t end = at; end < len && (node = mp_trie_step(&m->trie, node, (unsigned char)w[end])) >= 0;) {
            end++;
            int32_t id = m->trie.value[node];
            if (id < 0)
                continue;
            offer(&best[end], base + m->score[id], id, at);
            single |= end - at == char_len;
        }
        if (!single) {
            if (m->unk_id < 0)
                return -2;
            offer(&best[at + char_len], base + m->unk_score, m->unk_id, at);
        }
        at += char_len;
    }
    return 0;
}

/* A run of unknown characters, as HF turns the fused string back into ids: the piece
 * when the string is one, else its byte pieces, else unk. */
static int push_unknown(const mp_unigram *m, const char *s, size_t len, mp_id_list *out)
{
    int32_t id = mp_vocab_find(&m->vocab, s, len);
    if (id >= 0)
        return mp_id_list_push(out, id);
    bool bytes = m->byte_fallback;
    for (size_t i = 0; bytes && i < len; i++)
        bytes = m->byte_id[(unsigned char)s[i]] >= 0;
    if (!bytes)
        return mp_id_list_push(out, m->unk_id);
    for (size_t i = 0; i < len; i++)
        if (mp_id_list_push(out, m->byte_id[(unsigned char)s[i]]) != 0)
            return -1;
    return 0;
}

/* Walks the best path back from the end, then appends its ids in text order;
 * consecutive unk pieces fuse into one run. */
static int emit(const mp_unigram *m, const char *w, size_t len, const path_end *best, mp_id_list *out)
{
    size_t first = out->n;
    for (size_t end = len; end > 0;) {
        size_t from = (size_t)best[end].from;
        if (best[end].id == m->unk_id) {
            while (from > 0 && best[from].id == m->unk_id)
                from = (size_t)best[from].from;
            /* the run's ids go in reversed, like the rest, and are flipped back below */
            size_t mark = out->n;
            if (push_unknown(m, w + from, end - from, out) != 0)
                return -1;
            for (size_t i = 0; i < (out->n - mark) / 2; i++) {
                int32_t t = out->v[mark + i];
                out->v[mark + i] = out->v[out->n - 1 - i];
                out->v[out->n - 1 - i] = t;
            }
        } else if (mp_id_list_push(out, best[end].id) != 0) {
            return -1;
        }
        end = from;
    }
    for (size_t i = 0; i < (out->n - first) / 2; i++) {
        int32_t t = out->v[first + i];
        out->v[first + i] = out->v[out->n - 1 - i];
        out->v[out->n - 1 - i] = t;
    }
    return 0;
}

int mp_unigram_encode_word(const mp_unigram *m, const char *w, size_t len, mp_unigram_work *work,
                           mp_id_list *out)
{
    if (len + 1 > work->cap) {
        path_end *best = realloc(work->best, (len + 1) * sizeof *best);
        if (!best)
            return -1;
        work->best = best;
        work->cap = len + 1;
    }
    int rc = viterbi(m, w, len, work->best);
    return rc != 0 ? rc : emit(m, w, len, work->best, out);
}
