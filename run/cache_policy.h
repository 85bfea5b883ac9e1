/* Eviction order of the expert cache's policies (internal to run/). */
#ifndef MP_CACHE_POLICY_H
#define MP_CACHE_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "expert_cache.h"

/* What the policies know of a record. */
typedef struct {
    uint64_t last_use; /* tick of the last acquire or load */
    uint64_t uses;     /* acquires since open, kept across evictions */
    double freq;       /* routing frequency from routing_stats, 0 when absent */
} mp_cache_usage;

/* True when a should be evicted before b. */
bool mp_policy_evicts_first(mp_evict_policy p, const mp_cache_usage *a, const mp_cache_usage *b);

#endif
