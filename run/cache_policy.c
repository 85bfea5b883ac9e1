/* Eviction policies: each a strict order on records, so a replay is deterministic. */
#include <string.h>

#include "cache_policy.h"

static const char *const names[] = {"lru", "lfu", "freq"};

int mp_evict_policy_parse(const char *name, mp_evict_policy *out)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(name, names[i]) == 0) {
            *out = (mp_evict_policy)i;
            return 0;
        }
    return -1;
}

const char *mp_evict_policy_name(mp_evict_policy p)
{
    return p >= MP_EVICT_LRU && p <= MP_EVICT_FREQ ? names[p] : "?";
}

bool mp_policy_evicts_first(mp_evict_policy p, const mp_cache_usage *a, const mp_cache_usage *b)
{
    if (p == MP_EVICT_LFU && a->uses != b->uses)
        return a->uses < b->uses;
    if (p == MP_EVICT_FREQ && a->freq != b->freq)
        return a->freq < b->freq;
    return a->last_use < b->last_use; /* ticks are unique: a total order */
}
