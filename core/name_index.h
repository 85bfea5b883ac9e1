/* Name -> index lookup over a fixed set of strings (open addressing, XXH3). */
#ifndef MP_NAME_INDEX_H
#define MP_NAME_INDEX_H

#include <stdint.h>

typedef struct {
    uint32_t *slots; /* index + 1, 0 = empty */
    uint32_t n_slots;
} mp_name_index;

/* names[i] must outlive the index. Returns 0, or -1 when out of memory. */
int mp_name_index_build(mp_name_index *x, const char *const *names, int n);
/* The i with names[i] equal to name, or -1. */
int mp_name_index_find(const mp_name_index *x, const char *const *names, const char *name);
void mp_name_index_free(mp_name_index *x);

#endif
