/* The expert cache of `moepack run`: which routed experts of a pack are in memory
 * under a byte budget. Missing records are read with one aligned pread (O_DIRECT
 * unless page_cache), a background thread reads hinted experts ahead of need, the
 * hottest experts by the manifest's routing_stats are pinned, and every access is
 * counted. Thread-safe: acquire/release/prefetch may be called from any thread. */
#ifndef MP_EXPERT_CACHE_H
#define MP_EXPERT_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "../formats/pack.h"

/* Which unpinned, unacquired record to evict: least recently used, least often used
 * since open, or lowest routing frequency in the manifest's routing_stats (ties and
 * packs without stats: least recently used). Names "lru", "lfu", "freq". LFU is the
 * default: on moby-mixtral's routing it matches freq (within 0.2% hit rate) without
 * needing stats and beats LRU by 2-8 points (see the cache_replay tool). */
typedef enum { MP_EVICT_LRU, MP_EVICT_LFU, MP_EVICT_FREQ } mp_evict_policy;
#define MP_EVICT_DEFAULT MP_EVICT_LFU

typedef struct {
    /* Bytes of routed-expert records held in memory (each record counted as its
     * buffer, rounded up to 4 KiB). UINT64_MAX: every expert resident, all read at open
     * (a progress bar unless quiet), nothing pinned. */
    uint64_t capacity;
    mp_evict_policy policy;
    bool page_cache; /* false: cold reads bypass the page cache with O_DIRECT (falls back, said once on stderr, where refused) */
    bool prefetch;   /* background prefetch thread */
    bool quiet;      /* no progress bar */
    int n_pinned_hint; /* 0: pin the hottest experts up to half the capacity; > 0: at most that many; < 0: none */
} mp_expert_cache_opts;

typedef struct mp_expert_cache mp_expert_cache;

/* capacity UINT64_MAX, the default policy, O_DIRECT, prefetch on, pinning by rule. */
void mp_expert_cache_opts_default(mp_expert_cache_opts *o);
/* "lru", "lfu", "freq" -> policy; -1 when unknown. */
int mp_evict_policy_parse(const char *name, mp_evict_policy *out);
const char *mp_evict_policy_name(mp_evict_policy p);

/* pack: opened by the caller (mp_pack_open_deferred, so cold tiers open at first
 * need) and kept open until close. Indexes the records with expert >= 0 by (layer,
 * expert). Fails (exit 2, one line saying the minimum) when capacity is below one
 * token's need: top_k records of the largest size, plus one prefetch slot. Pinned
 * experts are loaded at open (on the prefetch thread, or here when prefetch is off);
 * a record that cannot be read then is reported by its first acquire. */
int mp_expert_cache_open(mp_expert_cache **out, const mp_pack *pack, const mp_expert_cache_opts *o, mp_error *err);
void mp_expert_cache_close(mp_expert_cache *c);
/* The raw bytes of (layer, expert)'s record as mp_pack_read_record gives them (part k
 * at raw + record.parts[k].offset), valid and never evicted until the matching
 * release. Reads the record when absent (one pread); its checksum is verified on
 * every read. A missing, truncated or corrupt tier file or record: exit 3
 * naming the record. An expert the pack lacks, or more acquired than fit: exit 2. */
int mp_expert_cache_acquire(mp_expert_cache *c, int layer, int expert, const uint8_t **raw, mp_error *err);
void mp_expert_cache_release(mp_expert_cache *c, int layer, int expert);
/* A hint: these experts of this layer are likely needed soon; the absent ones are
 * read on the background thread, dropped when they do not fit without evicting an
 * acquired, pinned or hinted-but-unused record (hinted records are also the last an
 * acquire evicts). Returns at once; a no-op without the prefetch thread. */
void mp_expert_cache_prefetch(mp_expert_cache *c, int layer, const int *experts, int n);

/* Counters since open. Per layer: hits, misses (reads on the caller's path),
 * prefetched (reads for hints), prefetch_used (hinted records used before their
 * eviction). waits: acquires that waited for a background read of their record. */
typedef struct {
    uint64_t *hits, *misses, *prefetched, *prefetch_used; /* [n_layers] */
    uint64_t bytes_read, reads, peak_bytes, pinned_bytes, waits;
    int n_layers, n_pinned;
} mp_expert_cache_stats;
/* A consistent snapshot, valid until the next call or close. */
const mp_expert_cache_stats *mp_expert_cache_stats_get(const mp_expert_cache *c);
/* Bytes held now (resident and being read). */
uint64_t mp_expert_cache_held(const mp_expert_cache *c);

#endif
