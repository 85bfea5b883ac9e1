#include "sp_model.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../core/fileio.h"

#define MAX_MODEL_BYTES (1u << 30)

typedef struct {
    const uint8_t *p, *end, *start;
} wire;

static int varint(wire *w, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (w->p >= w->end)
            return -1;
        uint8_t b = *w->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

/* Skips a field's value of the given wire type (0 varint, 1 fixed64, 2 bytes, 5 fixed32). */
static int skip(wire *w, int type)
{
    uint64_t n;
    switch (type) {
    case 0:
        return varint(w, &n);
    case 1:
        n = 8;
        break;
    case 2:
        if (varint(w, &n))
            return -1;
        break;
    case 5:
        n = 4;
        break;
    default:
        return -1;
    }
    if (n > (uint64_t)(w->end - w->p))
        return -1;
    w->p += n;
    return 0;
}

static int length_delimited(wire *w, wire *inner)
{
    uint64_t n;
    if (varint(w, &n) || n > (uint64_t)(w->end - w->p))
        return -1;
    *inner = (wire){w->p, w->p + n, w->start};
    w->p += n;
    return 0;
}

/* message SentencePiece { string piece = 1; float score = 2; Type type = 3; } */
static int parse_piece(wire *w, mp_sp_piece *out)
{
    out->type = MP_SP_NORMAL;
    while (w->p < w->end) {
        uint64_t key, v;
        if (varint(w, &key))
            return -1;
        int field = (int)(key >> 3), type = (int)(key & 7);
        if (field == 1 && type == 2) {
            wire s;
            if (length_delimited(w, &s) || out->piece)
                return -1;
            out->piece = malloc((size_t)(s.end - s.p) + 1);
            if (!out->piece)
                return -1;
            memcpy(out->piece, s.p, (size_t)(s.end - s.p));
            out->piece[s.end - s.p] = '\0';
        } else if (field == 2 && type == 5) {
            if (w->end - w->p < 4)
                return -1;
            memcpy(&out->score, w->p, 4);
            w->p += 4;
        } else if (field == 3 && type == 0) {
            if (varint(w, &v))
                return -1;
            out->type = (int)v;
        } else if (skip(w, type)) {
            return -1;
        }
    }
    return out->piece ? 0 : -1;
}

static int add_piece(mp_sp_model *m, wire *w, int *cap)
{
    if (m->n == *cap) {
        int grown_cap = *cap ? 2 * *cap : 1024;
        mp_sp_piece *grown = realloc(m->pieces, (size_t)grown_cap * sizeof *grown);
        if (!grown)
            return -1;
        m->pieces = grown;
        *cap = grown_cap;
    }
    mp_sp_piece *piece = &m->pieces[m->n];
    memset(piece, 0, sizeof *piece);
    m->n++;
    return parse_piece(w, piece);
}

int mp_sp_model_load(const char *path, mp_sp_model *m, mp_error *err)
{
    memset(m, 0, sizeof *m);
    char *bytes;
    size_t len;
    int rc = mp_read_small_file(path, MAX_MODEL_BYTES, &bytes, &len, err);
    if (rc)
        return rc;
    wire w = {(const uint8_t *)bytes, (const uint8_t *)bytes + len, (const uint8_t *)bytes};
    int cap = 0, bad = 0;
    while (w.p < w.end && !bad) {
        uint64_t key;
        const uint8_t *at = w.p;
        bad = varint(&w, &key) != 0;
        if (!bad && key == ((1u << 3) | 2)) {
            wire inner;
            bad = length_delimited(&w, &inner) || add_piece(m, &inner, &cap);
        } else if (!bad) {
            bad = skip(&w, (int)(key & 7));
        }
        if (bad)
            rc = mp_fail(err, MP_EXIT_INPUT, "%s: not a SentencePiece model (malformed at byte %ld)", path,
                         (long)(at - w.start));
    }
    if (!rc && m->n == 0)
        rc = mp_fail(err, MP_EXIT_INPUT, "%s: a SentencePiece model without pieces", path);
    free(bytes);
    if (rc)
        mp_sp_model_free(m);
    return rc;
}

void mp_sp_model_free(mp_sp_model *m)
{
    for (int i = 0; m->pieces && i < m->n; i++)
        free(m->pieces[i].piece);
    free(m->pieces);
    memset(m, 0, sizeof *m);
}
