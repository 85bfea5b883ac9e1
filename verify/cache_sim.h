/* Expert-cache policies simulated over a trace of expert accesses: what fraction
 * of the accesses a runtime holding `capacity` experts in memory would serve
 * without a disk read. Every policy starts empty (each expert's first access is a
 * miss, pinned ones included) and experts are all of one size. */
#ifndef MP_CACHE_SIM_H
#define MP_CACHE_SIM_H

#include <stdint.h>

typedef enum {
    MP_CACHE_LRU,        /* evict the least recently used */
    MP_CACHE_LFU,        /* evict the least often used (accesses since the start; ties: LRU) */
    MP_CACHE_PINNED_LRU, /* the hottest capacity/2 never leave; LRU on the rest */
    MP_CACHE_STATIC,     /* the hottest capacity experts only, no eviction; the rest bypass */
    MP_CACHE_BELADY,     /* evict (or bypass) the one used again farthest ahead: the optimum */
    MP_CACHE_POLICIES
} mp_cache_policy;

const char *mp_cache_policy_name(mp_cache_policy p);

/* Hits of policy p over access[0 .. n) (items in [0, n_items)) with room for
 * capacity items. hot lists the items by decreasing global frequency (ties: lower
 * item first), as a runtime knows them from the pack's routing statistics; only
 * PINNED_LRU and STATIC read it. -1 when out of memory. */
int64_t mp_cache_simulate(mp_cache_policy p, const int32_t *access, int64_t n, int32_t n_items, int32_t capacity,
                          const int32_t *hot);

#endif
