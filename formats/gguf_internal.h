/* What gguf_writer.c (metadata, tensor infos, serialization) and gguf_files.c (planning
 * and writing the files) share. Not for use outside formats/gguf_*.c. */
#ifndef MP_GGUF_INTERNAL_H
#define MP_GGUF_INTERNAL_H

#include <stddef.h>

#include "gguf_writer.h"

typedef struct {
    char *key;
    mp_gguf_type type;
    uint8_t scalar[8];    /* numbers and bools, little-endian, mp_gguf_elem_size bytes */
    char *str;            /* STRING */
    mp_gguf_type elem;    /* ARRAY: element type */
    uint64_t n;           /* ARRAY: element count */
    void *numbers;        /* ARRAY of numbers */
    char **strings;       /* ARRAY of strings */
} gguf_kv;

typedef struct {
    char name[MP_GGUF_MAX_NAME];
    int n_dims;
    int64_t ne[MP_GGUF_MAX_DIMS];
    int type;
    uint64_t bytes;
} gguf_tensor;

struct mp_gguf {
    gguf_kv *kv;
    int n_kv, cap_kv;
    gguf_tensor *tensors;
    int n_tensors, cap_tensors;
};

/* A byte stream into a file (fd >= 0, buffered) or only counted (fd < 0). The first
 * failure is kept in rc/err and later puts do nothing. */
typedef struct {
    int fd;
    const char *path;
    uint8_t *buf;
    size_t n, cap;
    uint64_t total;
    int rc;
    mp_error *err;
} gguf_out;

void gguf_out_put(gguf_out *o, const void *bytes, uint64_t len);
void gguf_out_zeros(gguf_out *o, uint64_t len);
int gguf_out_flush(gguf_out *o);

int mp_gguf_elem_size(mp_gguf_type t);

/* Serializes one key-value pair, and a whole header: magic, version, counts, the kv
 * (extra, n_extra: keys written after g's own; with own_kv false only the extra ones),
 * the infos of tensors [t0, t1) with offsets from 0, and the padding to the alignment. */
void gguf_put_kv(gguf_out *o, const gguf_kv *kv);
void gguf_put_header(gguf_out *o, const mp_gguf *g, bool own_kv, const gguf_kv *extra, int n_extra, int t0, int t1);
uint64_t gguf_padded(uint64_t n);

#endif
