#include "name_index.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

static uint32_t name_hash(const char *name)
{
    return (uint32_t)XXH3_64bits(name, strlen(name));
}

int mp_name_index_build(mp_name_index *x, const char *const *names, int n)
{
    uint32_t size = 16;
    while (size < 2u * (uint32_t)n)
        size *= 2;
    x->slots = calloc(size, sizeof *x->slots);
    x->n_slots = x->slots ? size : 0;
    if (!x->slots)
        return -1;
    for (int i = 0; i < n; i++) {
        uint32_t h = name_hash(names[i]) & (size - 1);
        while (x->slots[h])
            h = (h + 1) & (size - 1);
        x->slots[h] = (uint32_t)i + 1;
    }
    return 0;
}

int mp_name_index_find(const mp_name_index *x, const char *const *names, const char *name)
{
    if (x->n_slots == 0)
        return -1;
    uint32_t h = name_hash(name) & (x->n_slots - 1);
    while (x->slots[h]) {
        int i = (int)x->slots[h] - 1;
        if (strcmp(names[i], name) == 0)
            return i;
        h = (h + 1) & (x->n_slots - 1);
    }
    return -1;
}

void mp_name_index_free(mp_name_index *x)
{
    free(x->slots);
    x->slots = NULL;
    x->n_slots = 0;
}
