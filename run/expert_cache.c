/* The expert cache. One mutex guards the slots, the byte count and the counters;
 * reads happen outside it, with the slot marked LOADING so that a second acquirer
 * waits for that read instead of reading the record twice. Buffers come from mmap
 * and go back with munmap on eviction, so resident memory follows the held bytes. */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/progress.h"
#include "cache_policy.h"
#include "expert_cache.h"
#include "expert_io.h"

#define PIN_SHARE 0.5 /* of capacity, see mp_expert_cache_opts.n_pinned_hint */

enum { SLOT_ABSENT, SLOT_LOADING, SLOT_RESIDENT };

typedef struct {
    int rec;       /* pack record, -1 when the pack has no such expert */
    int state;
    int refs;      /* acquires not yet released */
    uint8_t *raw;  /* the decoded record when resident */
    uint64_t alloc; /* bytes of raw's buffer: what the record counts against capacity */
    bool pinned, queued;
    bool hinted;   /* read for a prefetch hint and not used yet */
    mp_cache_usage use;
} slot;

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t changed; /* a read finished or a record was released */
    pthread_cond_t work;    /* the prefetch queue has work, or close */
    mp_expert_cache_stats snap;
} sync_state;

struct mp_expert_cache {
    const mp_pack *pack;
    mp_expert_cache_opts opts;
    int n_layers, n_experts, top_k;
    slot *slots;
    uint64_t held, max_alloc, total_alloc, tick;
    int loading; /* reads in flight */
    mp_expert_io io;
    sync_state *sync; /* separate so that stats_get, on a const cache, can lock */
    mp_expert_cache_stats st;
    int *queue, q_head, q_len; /* prefetch ring of slot indices */
    pthread_t thread;
    bool thread_started, stop;
};

void mp_expert_cache_opts_default(mp_expert_cache_opts *o)
{
    memset(o, 0, sizeof *o);
    o->capacity = UINT64_MAX;
    o->policy = MP_EVICT_DEFAULT;
    o->prefetch = true;
}

/* ---- open: index, sizes, pinning ---- */

static int index_records(mp_expert_cache *c, mp_error *err)
{
    const mp_pack *p = c->pack;
    for (int i = 0; i < p->n_records; i++)
        if (p->records[i].expert >= 0) {
            c->n_layers = p->records[i].layer + 1 > c->n_layers ? p->records[i].layer + 1 : c->n_layers;
            c->n_experts = p->records[i].expert + 1 > c->n_experts ? p->records[i].expert + 1 : c->n_experts;
        }
    if (c->n_layers == 0)
        return mp_fail(err, MP_EXIT_INPUT, "%s: the pack has no routed-expert records to cache", p->dir);
    size_t n = (size_t)c->n_layers * (size_t)c->n_experts;
    c->slots = calloc(n, sizeof *c->slots);
    c->queue = calloc(n, sizeof *c->queue);
    if (!c->slots || !c->queue)
        return mp_fail(err, MP_EXIT_IO, "%s: out of memory", p->dir);
    for (size_t i = 0; i < n; i++)
        c->slots[i].rec = -1;
    for (int i = 0; i < p->n_records; i++) {
        const mp_pack_record *r = &p->records[i];
        if (r->expert < 0)
            continue;
        slot *s = &c->slots[(size_t)r->layer * (size_t)c->n_experts + (size_t)r->expert];
        s->rec = i;
        s->alloc = mp_io_round(r->raw_length ? r->raw_length : 1);
        c->max_alloc = s->alloc > c->max_alloc ? s->alloc : c->max_alloc;
        c->total_alloc += s->alloc;
    }
    return MP_OK;
}

static int read_top_k(mp_expert_cache *c, mp_error *err)
{
    json_t *routing = json_object_get(json_object_get(c->pack->manifest, "model"), "routing");
    json_t *k = json_object_get(routing, "top_k");
    if (!json_is_integer(k))
        k = json_object_get(json_object_get(c->pack->manifest, "routing_stats"), "top_k");
    if (!json_is_integer(k) || json_integer_value(k) < 1 || json_integer_value(k) > c->n_experts)
        return mp_fail(err, MP_EXIT_INPUT, "%s/manifest.json: model.routing.top_k: expected 1 to %d experts per token",
                       c->pack->dir, c->n_experts);
    c->top_k = (int)json_integer_value(k);
    return MP_OK;
}

/* routing_stats counts -> each slot's frequency; false when the pack has none. */
static bool read_frequencies(mp_expert_cache *c)
{
    json_t *layers = json_object_get(json_object_get(c->pack->manifest, "routing_stats"), "layers");
    size_t i;
    json_t *entry;
    bool any = false;
    json_array_foreach(layers, i, entry) {
        json_t *layer = json_object_get(entry, "layer"), *freq = json_object_get(entry, "frequency");
        int l = json_is_integer(layer) ? (int)json_integer_value(layer) : -1;
        for (int e = 0; l >= 0 && l < c->n_layers && e < c->n_experts && e < (int)json_array_size(freq); e++) {
            c->slots[(size_t)l * (size_t)c->n_experts + (size_t)e].use.freq = json_number_value(json_array_get(freq, (size_t)e));
            any = true;
        }
    }
    return any;
}

typedef struct {
    double heat;
    int index;
} ranked;

static int hotter_first(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->heat != y->heat)
        return x->heat > y->heat ? -1 : 1;
    return x->index - y->index; /* (layer, expert) order */
}

/* The hottest experts by routing frequency, or without stats the records of tier 1
 * when there are colder tiers, up to the pin budget; they stay resident. */
static int choose_pinned(mp_expert_cache *c, uint64_t min_bytes, mp_error *err)
{
    bool stats = read_frequencies(c);
    int n = c->n_layers * c->n_experts, n_expert_tiers = c->pack->n_tiers - 1;
    if (c->opts.capacity == UINT64_MAX || c->opts.n_pinned_hint < 0 || (!stats && n_expert_tiers < 2))
        return MP_OK;
    ranked *order = calloc((size_t)n, sizeof *order);
    if (!order)
        return mp_fail(err, MP_EXIT_IO, "%s: out of memory", c->pack->dir);
    int m = 0;
    for (int i = 0; i < n; i++)
        if (c->slots[i].rec >= 0 && (stats || c->pack->records[c->slots[i].rec].tier == 1))
            order[m++] = (ranked){stats ? c->slots[i].use.freq : 1.0, i};
    qsort(order, (size_t)m, sizeof *order, hotter_first);
    uint64_t budget = (uint64_t)((double)c->opts.capacity * PIN_SHARE);
    if (budget > c->opts.capacity - min_bytes)
        budget = c->opts.capacity - min_bytes;
    int limit = c->opts.n_pinned_hint > 0 ? c->opts.n_pinned_hint : m;
    for (int i = 0; i < m && c->st.n_pinned < limit; i++) {
        slot *s = &c->slots[order[i].index];
        if (c->st.pinned_bytes + s->alloc > budget)
            break;
        s->pinned = true;
        c->st.pinned_bytes += s->alloc;
        c->st.n_pinned++;
    }
    free(order);
    return MP_OK;
}

static int alloc_stats(mp_expert_cache_stats *st, int n_layers)
{
    st->n_layers = n_layers;
    st->hits = calloc((size_t)n_layers * 4, sizeof *st->hits);
    st->misses = st->hits + n_layers;
    st->prefetched = st->misses + n_layers;
    st->prefetch_used = st->prefetched + n_layers;
    return st->hits ? 0 : -1;
}

/* ---- loading and eviction (callers hold the lock unless said) ---- */

static void touch(mp_expert_cache *c, slot *s)
{
    s->use.last_use = ++c->tick;
}

static void evict(mp_expert_cache *c, slot *s)
{
    mp_io_buffer_free(s->raw, s->alloc);
    s->raw = NULL;
    s->state = SLOT_ABSENT;
    s->hinted = false;
    c->held -= s->alloc;
}

/* Hinted records not used yet are spared while anything else can go: they were
 * read because they are about to be needed. */
static slot *pick_victim(mp_expert_cache *c, bool spare_hinted)
{
    slot *best = NULL;
    int n = c->n_layers * c->n_experts;
    for (int i = 0; i < n; i++) {
        slot *s = &c->slots[i];
        if (s->state == SLOT_RESIDENT && s->refs == 0 && !s->pinned && !(spare_hinted && s->hinted) &&
            (!best || mp_policy_evicts_first(c->opts.policy, &s->use, &best->use)))
            best = s;
    }
    return best;
}

enum { RESERVED, WAITED, NO_ROOM };

/* A record read for a hint takes the place of victim only if the policy, on what it
 * knows of both, would evict the victim first: under a tight budget, a prediction must
 * not push out the records that keep the hit rate up (on moby-mixtral at half the
 * expert bytes, unchecked prefetching read 3x the bytes and halved decode speed). */
static bool hint_outranks(const mp_expert_cache *c, const slot *hint, const slot *victim)
{
    return mp_policy_evicts_first(c->opts.policy, &victim->use, &hint->use);
}

/* Makes room for need bytes by evicting; when only reads in flight stand in the
 * way, a caller's acquire waits for them (then retries from the start, since the
 * slot it wants may have changed). hint: the slot a prefetch wants to read, or NULL
 * for an acquire; a prefetch never waits and spares hinted records. */
static int reserve(mp_expert_cache *c, uint64_t need, const slot *hint)
{
    while (c->opts.capacity - c->held < need) {
        slot *victim = pick_victim(c, true);
        if (!victim && !hint)
            victim = pick_victim(c, false);
        if (victim && (!hint || hint_outranks(c, hint, victim))) {
            evict(c, victim);
            continue;
        }
        if (hint || c->loading == 0)
            return NO_ROOM;
        pthread_cond_wait(&c->sync->changed, &c->sync->lock);
        return WAITED;
    }
    c->held += need;
    c->st.peak_bytes = c->held > c->st.peak_bytes ? c->held : c->st.peak_bytes;
    return RESERVED;
}

/* Without the lock: the slot is LOADING and owned by this thread. */
static int load(mp_expert_cache *c, slot *s, uint64_t *transferred, mp_error *err)
{
    const mp_pack_record *r = &c->pack->records[s->rec];
    uint64_t stored_bytes = r->zstd ? mp_io_round(r->length ? r->length : 1) : 0;
    uint8_t *raw = mp_io_buffer(s->alloc), *stored = r->zstd ? mp_io_buffer(stored_bytes) : raw;
    int rc = raw && stored ? MP_OK : mp_fail(err, MP_EXIT_IO, "%s: out of memory for an expert record", c->pack->dir);
    if (rc == MP_OK)
        rc = mp_expert_io_read(&c->io, s->rec, stored, transferred, err);
    if (rc == MP_OK)
        /* every read, not only the first: a record read again after its eviction
         * comes from the disk again (xxh3 runs far faster than the disk) */
        rc = mp_pack_decode_record(c->pack, s->rec, stored, raw, err);
    if (r->zstd)
        mp_io_buffer_free(stored, stored_bytes);
    if (rc != MP_OK) {
        mp_io_buffer_free(raw, s->alloc);
        return rc;
    }
    s->raw = raw;
    return MP_OK;
}

/* Reads slot s (reserved, ABSENT) with the lock released during the read. */
static int load_unlocked(mp_expert_cache *c, slot *s, mp_error *err)
{
    uint64_t transferred = 0;
    s->state = SLOT_LOADING;
    c->loading++;
    pthread_mutex_unlock(&c->sync->lock);
    int rc = load(c, s, &transferred, err);
    pthread_mutex_lock(&c->sync->lock);
    c->loading--;
    if (rc == MP_OK) {
        s->state = SLOT_RESIDENT;
        c->st.bytes_read += transferred;
        c->st.reads++;
        touch(c, s);
    } else {
        s->state = SLOT_ABSENT;
        c->held -= s->alloc;
    }
    pthread_cond_broadcast(&c->sync->changed);
    return rc;
}

/* ---- the prefetch thread ---- */

static void *prefetch_main(void *arg)
{
    mp_expert_cache *c = arg;
    pthread_mutex_lock(&c->sync->lock);
    while (!c->stop) {
        if (c->q_len == 0) {
            pthread_cond_wait(&c->sync->work, &c->sync->lock);
            continue;
        }
        int i = c->queue[c->q_head];
        c->q_head = (c->q_head + 1) % (c->n_layers * c->n_experts);
        c->q_len--;
        slot *s = &c->slots[i];
        s->queued = false;
        if (s->state != SLOT_ABSENT || reserve(c, s->alloc, s) != RESERVED)
            continue;
        mp_error ignored = {0}; /* the record's first acquire reads it again and reports */
        if (load_unlocked(c, s, &ignored) == MP_OK && !s->pinned) {
            s->hinted = true;
            c->st.prefetched[i / c->n_experts]++;
        }
    }
    pthread_mutex_unlock(&c->sync->lock);
    return NULL;
}

/* Lock held. */
static void enqueue(mp_expert_cache *c, int i)
{
    slot *s = &c->slots[i];
    int n = c->n_layers * c->n_experts;
    if (s->rec < 0 || s->state != SLOT_ABSENT || s->queued || c->q_len == n)
        return;
    c->queue[(c->q_head + c->q_len) % n] = i;
    c->q_len++;
    s->queued = true;
    pthread_cond_signal(&c->sync->work);
}

/* Pinned records: queued first on the prefetch thread, or read here without it.
 * With an unlimited capacity, every record is read here instead, in layer order, as a
 * model is loaded: generation then runs at full speed from its first token, its
 * timings free of disk reads. Failures are left for the record's first acquire to
 * report. */
static void load_initial(mp_expert_cache *c)
{
    int n = c->n_layers * c->n_experts;
    bool all = c->opts.capacity == UINT64_MAX;
    mp_progress bar;
    mp_progress_start(&bar, "loading experts", all ? c->total_alloc : 0, true, c->opts.quiet || !all);
    pthread_mutex_lock(&c->sync->lock);
    for (int i = 0; i < n; i++) {
        slot *s = &c->slots[i];
        if (s->rec < 0 || !(s->pinned || all))
            continue;
        if (c->thread_started && !all)
            enqueue(c, i);
        else if (s->state == SLOT_ABSENT && reserve(c, s->alloc, s) == RESERVED) {
            mp_error ignored = {0};
            load_unlocked(c, s, &ignored);
        }
        mp_progress_add(&bar, all ? s->alloc : 0);
    }
    pthread_mutex_unlock(&c->sync->lock);
    mp_progress_finish(&bar);
}

/* ---- API ---- */

static int start(mp_expert_cache *c, mp_error *err)
{
    int rc = index_records(c, err);
    if (rc == MP_OK)
        rc = read_top_k(c, err);
    uint64_t min_bytes = (uint64_t)(c->top_k + (c->opts.prefetch ? 1 : 0)) * c->max_alloc;
    if (rc == MP_OK && c->opts.capacity < min_bytes)
        rc = mp_fail(err, MP_EXIT_INPUT,
                     "%s: expert cache capacity %llu bytes is below one token's need: %d records of %llu bytes%s = %llu bytes minimum",
                     c->pack->dir, (unsigned long long)c->opts.capacity, c->top_k + (c->opts.prefetch ? 1 : 0),
                     (unsigned long long)c->max_alloc, c->opts.prefetch ? " (top_k + one prefetch slot)" : " (top_k)",
                     (unsigned long long)min_bytes);
    if (rc == MP_OK)
        rc = choose_pinned(c, min_bytes, err);
    if (rc == MP_OK && (alloc_stats(&c->st, c->n_layers) != 0 || alloc_stats(&c->sync->snap, c->n_layers) != 0))
        rc = mp_fail(err, MP_EXIT_IO, "%s: out of memory", c->pack->dir);
    if (rc == MP_OK)
        rc = mp_expert_io_init(&c->io, c->pack, c->opts.page_cache, err);
    if (rc == MP_OK && c->opts.prefetch) {
        if (pthread_create(&c->thread, NULL, prefetch_main, c) != 0)
            rc = mp_fail(err, MP_EXIT_IO, "%s: cannot start the expert prefetch thread", c->pack->dir);
        c->thread_started = rc == MP_OK;
    }
    return rc;
}

int mp_expert_cache_open(mp_expert_cache **out, const mp_pack *pack, const mp_expert_cache_opts *o, mp_error *err)
{
    mp_expert_cache *c = calloc(1, sizeof *c);
    sync_state *sync = calloc(1, sizeof *sync);
    *out = NULL;
    if (!c || !sync) {
        free(c);
        free(sync);
        return mp_fail(err, MP_EXIT_IO, "%s: out of memory", pack->dir);
    }
    c->pack = pack;
    c->sync = sync;
    if (o)
        c->opts = *o;
    else
        mp_expert_cache_opts_default(&c->opts);
    pthread_mutex_init(&sync->lock, NULL);
    pthread_cond_init(&sync->changed, NULL);
    pthread_cond_init(&sync->work, NULL);
    int rc = start(c, err);
    if (rc != MP_OK) {
        mp_expert_cache_close(c);
        return rc;
    }
    load_initial(c);
    *out = c;
    return MP_OK;
}

void mp_expert_cache_close(mp_expert_cache *c)
{
    if (!c)
        return;
    if (c->thread_started) {
        pthread_mutex_lock(&c->sync->lock);
        c->stop = true;
        pthread_cond_broadcast(&c->sync->work);
        pthread_mutex_unlock(&c->sync->lock);
        pthread_join(c->thread, NULL);
    }
    for (int i = 0; c->slots && i < c->n_layers * c->n_experts; i++)
        mp_io_buffer_free(c->slots[i].raw, c->slots[i].alloc);
    if (c->io.tiers)
        mp_expert_io_free(&c->io);
    pthread_cond_destroy(&c->sync->work);
    pthread_cond_destroy(&c->sync->changed);
    pthread_mutex_destroy(&c->sync->lock);
    free(c->st.hits);
    free(c->sync->snap.hits);
    free(c->sync);
    free(c->slots);
    free(c->queue);
    free(c);
}

static slot *find_slot(mp_expert_cache *c, int layer, int expert)
{
    if (layer < 0 || layer >= c->n_layers || expert < 0 || expert >= c->n_experts)
        return NULL;
    slot *s = &c->slots[(size_t)layer * (size_t)c->n_experts + (size_t)expert];
    return s->rec >= 0 ? s : NULL;
}

static void count_hit(mp_expert_cache *c, slot *s, int layer)
{
    c->st.hits[layer]++;
    if (s->hinted)
        c->st.prefetch_used[layer]++;
    s->hinted = false;
}

int mp_expert_cache_acquire(mp_expert_cache *c, int layer, int expert, const uint8_t **raw, mp_error *err)
{
    slot *s = find_slot(c, layer, expert);
    if (!s)
        return mp_fail(err, MP_EXIT_INPUT, "%s: no routed-expert record for layer %d expert %d", c->pack->dir, layer, expert);
    pthread_mutex_lock(&c->sync->lock);
    int rc = MP_OK;
    bool waited = false;
    for (;;) {
        if (s->state == SLOT_RESIDENT) {
            count_hit(c, s, layer);
            break;
        }
        if (s->state == SLOT_LOADING) {
            waited = true;
            pthread_cond_wait(&c->sync->changed, &c->sync->lock);
            continue;
        }
        int room = reserve(c, s->alloc, NULL);
        if (room == WAITED)
            continue;
        if (room == NO_ROOM) {
            rc = mp_fail(err, MP_EXIT_INPUT, "%s: expert cache: layer %d expert %d does not fit in %llu bytes: every record held is acquired or pinned",
                         c->pack->dir, layer, expert, (unsigned long long)c->opts.capacity);
            break;
        }
        rc = load_unlocked(c, s, err);
        if (rc == MP_OK)
            c->st.misses[layer]++;
        break;
    }
    if (rc == MP_OK) {
        c->st.waits += waited;
        s->refs++;
        s->use.uses++;
        touch(c, s);
        *raw = s->raw;
    }
    pthread_mutex_unlock(&c->sync->lock);
    return rc;
}

void mp_expert_cache_release(mp_expert_cache *c, int layer, int expert)
{
    slot *s = find_slot(c, layer, expert);
    if (!s)
        return;
    pthread_mutex_lock(&c->sync->lock);
    if (s->refs > 0 && --s->refs == 0)
        pthread_cond_broadcast(&c->sync->changed);
    pthread_mutex_unlock(&c->sync->lock);
}

void mp_expert_cache_prefetch(mp_expert_cache *c, int layer, const int *experts, int n)
{
    if (!c->thread_started || layer < 0 || layer >= c->n_layers)
        return;
    pthread_mutex_lock(&c->sync->lock);
    for (int i = 0; i < n; i++)
        if (experts[i] >= 0 && experts[i] < c->n_experts)
            enqueue(c, layer * c->n_experts + experts[i]);
    pthread_mutex_unlock(&c->sync->lock);
}

const mp_expert_cache_stats *mp_expert_cache_stats_get(const mp_expert_cache *c)
{
    mp_expert_cache_stats *snap = &c->sync->snap;
    uint64_t *arrays = snap->hits;
    pthread_mutex_lock(&c->sync->lock);
    memcpy(arrays, c->st.hits, (size_t)c->n_layers * 4 * sizeof *arrays);
    *snap = c->st;
    snap->hits = arrays;
    snap->misses = arrays + c->n_layers;
    snap->prefetched = snap->misses + c->n_layers;
    snap->prefetch_used = snap->prefetched + c->n_layers;
    pthread_mutex_unlock(&c->sync->lock);
    return snap;
}

uint64_t mp_expert_cache_held(const mp_expert_cache *c)
{
    pthread_mutex_lock(&c->sync->lock);
    uint64_t held = c->held;
    pthread_mutex_unlock(&c->sync->lock);
    return held;
}
