/* NFC as UAX #15 defines it: full canonical decomposition, canonical ordering of
 * combining marks, then canonical composition. Hangul syllables are decomposed and
 * composed arithmetically (Unicode chapter 3.12) instead of through the tables. */
#include <stdlib.h>
#include <string.h>

#include "unicode.h"
#include "unicode_tables.h"

enum {
    S_BASE = 0xAC00,
    L_BASE = 0x1100,
    V_BASE = 0x1161,
    T_BASE = 0x11A7,
    L_COUNT = 19,
    V_COUNT = 21,
    T_COUNT = 28,
    N_COUNT = V_COUNT * T_COUNT,
    S_COUNT = L_COUNT * N_COUNT,
    MAX_DECOMPOSITION = 4 /* U+1F82, the longest; Hangul needs 3 */
};

/* Code points with their combining classes, kept side by side so each class is looked
 * up once. */
typedef struct {
    uint32_t *cp;
    uint8_t *ccc;
    size_t n;
} cp_buffer;

static const mp_decomposition *find_decomposition(uint32_t cp)
{
    if (cp < 0xC0) /* nothing below U+00C0 decomposes canonically */
        return NULL;
    size_t lo = 0, hi = mp_decompositions_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < mp_decompositions[mid].cp)
            hi = mid;
        else if (cp > mp_decompositions[mid].cp)
            lo = mid + 1;
        else
            return &mp_decompositions[mid];
    }
    return NULL;
}

/* Writes the full canonical decomposition of cp (cp itself when it has none) into out
 * and returns its length. */
static size_t decompose(uint32_t cp, uint32_t out[MAX_DECOMPOSITION])
{
    if (cp >= S_BASE && cp < S_BASE + S_COUNT) {
        uint32_t s = cp - S_BASE;
        out[0] = L_BASE + s / N_COUNT;
        out[1] = V_BASE + (s % N_COUNT) / T_COUNT;
        if (s % T_COUNT == 0)
            return 2;
        out[2] = T_BASE + s % T_COUNT;
        return 3;
    }
    const mp_decomposition *d = find_decomposition(cp);
    if (!d) {
        out[0] = cp;
        return 1;
    }
    memcpy(out, &mp_decomposition_data[d->start], d->len * sizeof *out);
    return d->len;
}

static int decompose_text(const char *s, size_t len, cp_buffer *b)
{
    uint32_t one[MAX_DECOMPOSITION], cp;
    size_t total = 0;
    for (size_t i = 0; i < len;) {
        i += mp_utf8_decode(s + i, &cp);
        total += decompose(cp, one);
    }
    b->cp = malloc((total ? total : 1) * sizeof *b->cp);
    b->ccc = malloc(total ? total : 1);
    if (!b->cp || !b->ccc)
        return -1;
    b->n = 0;
    for (size_t i = 0; i < len;) {
        i += mp_utf8_decode(s + i, &cp);
        size_t k = decompose(cp, one);
        for (size_t j = 0; j < k; j++) {
            b->cp[b->n] = one[j];
            b->ccc[b->n] = mp_combining_class(one[j]);
            b->n++;
        }
    }
    return 0;
}

/* Stable sort of one run of non-starters by combining class. Runs are almost always a
 * few marks long (insertion sort); a long run, which only crafted text has, is sorted
 * by counting so it cannot take quadratic time. */
static int sort_run(cp_buffer *b, size_t start, size_t end)
{
    if (end - start <= 16) {
        for (size_t i = start + 1; i < end; i++) {
            uint32_t cp = b->cp[i];
            uint8_t c = b->ccc[i];
            size_t j = i;
            for (; j > start && b->ccc[j - 1] > c; j--) {
                b->cp[j] = b->cp[j - 1];
                b->ccc[j] = b->ccc[j - 1];
            }
            b->cp[j] = cp;
            b->ccc[j] = c;
        }
        return 0;
    }
    uint32_t *tmp = malloc((end - start) * sizeof *tmp);
    if (!tmp)
        return -1;
    size_t first_of[257] = {0};
    for (size_t i = start; i < end; i++)
        first_of[b->ccc[i] + 1]++;
    for (int c = 1; c < 257; c++)
        first_of[c] += first_of[c - 1];
    for (size_t i = start; i < end; i++)
        tmp[first_of[b->ccc[i]]++] = b->cp[i];
    for (size_t i = start; i < end; i++) {
        b->cp[i] = tmp[i - start];
        b->ccc[i] = mp_combining_class(tmp[i - start]);
    }
    free(tmp);
    return 0;
}

static int canonical_order(cp_buffer *b)
{
    size_t i = 0;
    while (i < b->n) {
        if (b->ccc[i] == 0) {
            i++;
            continue;
        }
        size_t end = i;
        while (end < b->n && b->ccc[end] != 0)
            end++;
        if (end - i > 1 && sort_run(b, i, end) != 0)
            return -1;
        i = end;
    }
    return 0;
}

/* The primary composite of the pair, or 0 when there is none. */
static uint32_t compose_pair(uint32_t a, uint32_t b)
{
    if (a >= L_BASE && a < L_BASE + L_COUNT && b >= V_BASE && b < V_BASE + V_COUNT)
        return S_BASE + ((a - L_BASE) * V_COUNT + (b - V_BASE)) * T_COUNT;
    if (a >= S_BASE && a < S_BASE + S_COUNT && (a - S_BASE) % T_COUNT == 0 && b > T_BASE &&
        b < T_BASE + T_COUNT)
        return a + (b - T_BASE);
    size_t lo = 0, hi = mp_compositions_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const mp_composition *c = &mp_compositions[mid];
        if (a < c->first || (a == c->first && b < c->second))
            hi = mid;
        else if (a > c->first || b > c->second)
            lo = mid + 1;
        else
            return c->composite;
    }
    return 0;
}

/* Canonical composition in place: each character joins the last starter when no
 * character between them blocks it (a starter, or a mark of equal or higher class). */
static void compose(cp_buffer *b)
{
    if (b->n == 0)
        return;
    size_t starter = 0, out = 1;
    /* a text that opens with a mark has no starter to compose with yet */
    int last_class = b->ccc[0] == 0 ? 0 : 256;
    for (size_t i = 1; i < b->n; i++) {
        uint32_t cp = b->cp[i];
        int c = b->ccc[i];
        uint32_t composite = compose_pair(b->cp[starter], cp);
        if (composite && (last_class == 0 || last_class < c)) {
            b->cp[starter] = composite;
            continue;
        }
        if (c == 0)
            starter = out;
        last_class = c;
        b->cp[out] = cp;
        b->ccc[out] = (uint8_t)c;
        out++;
    }
    b->n = out;
}

static int encode(const cp_buffer *b, char **out, size_t *out_len)
{
    char *s = malloc(b->n * 4 + 1);
    if (!s)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < b->n; i++)
        n += mp_utf8_encode(b->cp[i], s + n);
    s[n] = '\0';
    *out = s;
    *out_len = n;
    return 0;
}

static int copy_text(const char *s, size_t len, char **out, size_t *out_len)
{
    char *d = malloc(len + 1);
    if (!d)
        return -1;
    memcpy(d, s, len);
    d[len] = '\0';
    *out = d;
    *out_len = len;
    return 0;
}

int mp_nfc(const char *s, size_t len, char **out, size_t *out_len)
{
    *out = NULL;
    size_t i = 0;
    while (i < len && (unsigned char)s[i] < 0x80)
        i++;
    if (i == len) /* ASCII is already NFC */
        return copy_text(s, len, out, out_len);
    cp_buffer b = {0};
    int rc = decompose_text(s, len, &b);
    if (rc == 0)
        rc = canonical_order(&b);
    if (rc == 0) {
        compose(&b);
        rc = encode(&b, out, out_len);
    }
    free(b.cp);
    free(b.ccc);
    return rc;
}
