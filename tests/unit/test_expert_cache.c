/* The expert cache (run/expert_cache.c) on a pack written through the pack writer:
 * 3 layers x 8 experts, each expert one record of gate/up/down (bf16, 4-6 pages by
 * layer), experts 0-3 in an uncompressed tier 1 and 4-7 in a zstd tier 2, with
 * routing_stats. Checked against independent facts: mp_pack_read_record's bytes,
 * the capacity, the eviction order a policy must give on a hand-made sequence,
 * exit 3 naming the record for missing/truncated/corrupt tier files at first
 * acquire (not at open), and the pinned set the stats imply. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../run/expert_cache.h"

#define LAYERS 3
#define EXPERTS 8
#define COLS 512

static char dir[64], pack[96];
static uint8_t *want[LAYERS][EXPERTS]; /* mp_pack_read_record of each expert */
static uint64_t want_len[LAYERS][EXPERTS];

static int rows_of(int layer)
{
    return 4 + layer; /* records of 12288, 15360 and 18432 bytes: 3, 4 and 5 pages */
}

static uint64_t alloc_of(int layer)
{
    return (uint64_t)(3 + layer) * 4096;
}

/* Lower entropy than random so zstd has something to do; distinct per record. */
static void fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(((i / 7) * 2654435761u + seed * 40503u) >> 11) & 0x3f;
}

static void write_part(mp_pack_writer *w, const char *name, int64_t rows, unsigned seed)
{
    mp_encoding e = {.kind = MP_ENC_BF16};
    mp_error err = {0};
    size_t n = (size_t)rows * COLS * 2;
    uint8_t *bytes = malloc(n);
    fill(bytes, n, seed);
    int64_t shape[2] = {rows, COLS};
    assert_int_equal(mp_pack_part_begin(w, name, "src", 2, shape, &e, &err), 0);
    assert_int_equal(mp_pack_part_write(w, bytes, n, &err), 0);
    assert_int_equal(mp_pack_part_end(w, &err), 0);
    free(bytes);
}

/* Expert e of layer l is routed with frequency freq(l, e), all distinct so the
 * ranking is known: layer 2 experts 4, 7, 2, 5, 0, 3, 6, 1 are the hottest, in that
 * order; in layer 0, expert 1 is the coldest. */
static double freq(int l, int e)
{
    return (double)(l * EXPERTS + ((e * 5 + 3) % EXPERTS)) / 100.0;
}

static json_t *routing_stats(void)
{
    json_t *layers = json_array();
    for (int l = 0; l < LAYERS; l++) {
        json_t *f = json_array(), *counts = json_array();
        for (int e = 0; e < EXPERTS; e++) {
            json_array_append_new(f, json_real(freq(l, e)));
            json_array_append_new(counts, json_integer((json_int_t)(freq(l, e) * 1000)));
        }
        json_array_append_new(layers, json_pack("{s:i, s:o, s:o}", "layer", l, "counts", counts, "frequency", f));
    }
    return json_pack("{s:i, s:i, s:o}", "tokens", 1000, "top_k", 2, "layers", layers);
}

static void write_pack(void)
{
    bool zstd[3] = {false, false, true};
    mp_error err = {0};
    mp_pack_writer *w = mp_pack_writer_new(pack, 3, zstd, 3, &err);
    assert_non_null(w);
    assert_int_equal(mp_pack_record_begin(w, 0, -1, -1, &err), 0);
    write_part(w, "embed", 2, 999);
    assert_int_equal(mp_pack_record_end(w, &err), 0);
    for (int l = 0; l < LAYERS; l++)
        for (int e = 0; e < EXPERTS; e++) {
            char name[64];
            const char *proj[3] = {"gate", "up", "down"};
            assert_int_equal(mp_pack_record_begin(w, e < 4 ? 1 : 2, l, e, &err), 0);
            for (int k = 0; k < 3; k++) {
                snprintf(name, sizeof name, "layers.%d.experts.%d.%s", l, e, proj[k]);
                write_part(w, name, rows_of(l), (unsigned)(l * 100 + e * 10 + k));
            }
            assert_int_equal(mp_pack_record_end(w, &err), 0);
        }
    json_t *model = json_pack("{s:{s:i, s:i}}", "routing", "experts", EXPERTS, "top_k", 2);
    assert_int_equal(mp_pack_writer_finish(w, model, NULL, routing_stats(), NULL, true, &err), 0);
}

static void read_reference(void)
{
    mp_pack p;
    mp_error err = {0};
    assert_int_equal(mp_pack_open(&p, pack, &err), 0);
    for (int i = 0; i < p.n_records; i++) {
        const mp_pack_record *r = &p.records[i];
        if (r->expert < 0)
            continue;
        want[r->layer][r->expert] = malloc(r->raw_length);
        want_len[r->layer][r->expert] = r->raw_length;
        assert_int_equal(mp_pack_read_record(&p, i, want[r->layer][r->expert], &err), 0);
        assert_int_equal((r->raw_length + 4095) / 4096 * 4096, alloc_of(r->layer));
    }
    mp_pack_close(&p);
}

static int setup(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/mp-test-cache-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(pack, sizeof pack, "%s/p.mpk", dir);
    write_pack();
    read_reference();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int l = 0; l < LAYERS; l++)
        for (int e = 0; e < EXPERTS; e++)
            free(want[l][e]);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd);
}

static mp_expert_cache_opts opts(uint64_t capacity, mp_evict_policy policy, bool prefetch, int pins)
{
    mp_expert_cache_opts o;
    mp_expert_cache_opts_default(&o);
    o.capacity = capacity;
    o.policy = policy;
    o.prefetch = prefetch;
    o.n_pinned_hint = pins;
    return o;
}

static void acquire_check(mp_expert_cache *c, int l, int e)
{
    const uint8_t *raw = NULL;
    mp_error err = {0};
    assert_int_equal(mp_expert_cache_acquire(c, l, e, &raw, &err), 0);
    assert_memory_equal(raw, want[l][e], want_len[l][e]);
}

static uint64_t total(const uint64_t *per_layer)
{
    uint64_t n = 0;
    for (int l = 0; l < LAYERS; l++)
        n += per_layer[l];
    return n;
}

/* Every expert, twice, through the unlimited cache and through one that holds two
 * of the largest records, with and without prefetch; deferred and eager packs. */
static void test_bytes_match(void **state)
{
    (void)state;
    for (int variant = 0; variant < 4; variant++) {
        mp_pack p;
        mp_error err = {0};
        assert_int_equal((variant & 1 ? mp_pack_open : mp_pack_open_deferred)(&p, pack, &err), 0);
        uint64_t cap = variant & 2 ? 3 * alloc_of(2) : UINT64_MAX;
        mp_expert_cache_opts o = opts(cap, MP_EVICT_LRU, variant & 1, 0);
        mp_expert_cache *c;
        assert_int_equal(mp_expert_cache_open(&c, &p, &o, &err), 0);
        for (int pass = 0; pass < 2; pass++)
            for (int l = 0; l < LAYERS; l++)
                for (int e = 0; e < EXPERTS; e++) {
                    acquire_check(c, l, e);
                    mp_expert_cache_release(c, l, e);
                }
        const mp_expert_cache_stats *st = mp_expert_cache_stats_get(c);
        assert_int_equal(total(st->hits) + total(st->misses), 2 * LAYERS * EXPERTS);
        if (cap == UINT64_MAX) { /* each read once, at open */
            assert_int_equal(st->reads, LAYERS * EXPERTS);
            assert_int_equal(total(st->misses), 0);
        }
        assert_true(st->peak_bytes <= cap);
        mp_expert_cache_close(c);
        mp_pack_close(&p);
    }
}

/* A long random sequence of tokens (two experts of a layer acquired together, hints
 * for the next layer): bytes always right, held and peak bytes never above capacity. */
static void test_capacity_random(void **state)
{
    (void)state;
    for (int variant = 0; variant < 6; variant++) {
        mp_pack p;
        mp_error err = {0};
        assert_int_equal(mp_pack_open_deferred(&p, pack, &err), 0);
        uint64_t cap = 3 * alloc_of(2) + (uint64_t)variant * 4096 * 5;
        mp_expert_cache_opts o = opts(cap, (mp_evict_policy)(variant % 3), variant >= 3, 0);
        mp_expert_cache *c;
        assert_int_equal(mp_expert_cache_open(&c, &p, &o, &err), 0);
        unsigned x = 12345u + (unsigned)variant;
        for (int t = 0; t < 1500; t++) {
            int l = t % LAYERS, a, b;
            x = x * 1103515245u + 12345u;
            a = (int)(x >> 16) % EXPERTS;
            b = (a + 1 + (int)(x >> 8) % (EXPERTS - 1)) % EXPERTS;
            int hint[2] = {(int)(x >> 20) % EXPERTS, (int)(x >> 24) % EXPERTS};
            mp_expert_cache_prefetch(c, (l + 1) % LAYERS, hint, 2);
            acquire_check(c, l, a);
            acquire_check(c, l, b);
            assert_true(mp_expert_cache_held(c) <= cap);
            mp_expert_cache_release(c, l, a);
            mp_expert_cache_release(c, l, b);
        }
        const mp_expert_cache_stats *st = mp_expert_cache_stats_get(c);
        assert_true(st->peak_bytes <= cap);
        assert_int_equal(total(st->hits) + total(st->misses), 3000);
        assert_true(total(st->prefetch_used) <= total(st->prefetched));
        if (variant < 3)
            assert_int_equal(total(st->prefetched), 0);
        /* a pinned record is read once, by the thread or, when acquired first, as a miss */
        assert_true(st->reads >= total(st->misses) + total(st->prefetched));
        assert_true(st->reads <= total(st->misses) + total(st->prefetched) + (uint64_t)st->n_pinned);
        mp_expert_cache_close(c);
        mp_pack_close(&p);
    }
}

/* Layer 0 records are 3 pages; a capacity of 4 of them (above the 2 x 5 pages one
 * token needs) holds four. After 0,1,2,3, then 0,0,1,1,2,2,3 (uses 0:3 1:3 2:3 3:2,
 * least recent 0), a fifth expert evicts 0 (lru), 3 (lfu) or the expert of the
 * lowest routing frequency among 0..3, which is 1 (freq). */
static void expect_victim(mp_evict_policy policy, int victim)
{
    mp_pack p;
    mp_error err = {0};
    assert_int_equal(mp_pack_open_deferred(&p, pack, &err), 0);
    mp_expert_cache_opts o = opts(4 * alloc_of(0), policy, false, -1);
    mp_expert_cache *c;
    assert_int_equal(mp_expert_cache_open(&c, &p, &o, &err), 0);
    const int seq[] = {0, 1, 2, 3, 0, 0, 1, 1, 2, 2, 3, 4};
    for (size_t i = 0; i < sizeof seq / sizeof *seq; i++) {
        acquire_check(c, 0, seq[i]);
        mp_expert_cache_release(c, 0, seq[i]);
    }
    const mp_expert_cache_stats *st = mp_expert_cache_stats_get(c);
    assert_int_equal(st->misses[0], 5);
    for (int e = 0; e < 4; e++)
        if (e != victim) {
            acquire_check(c, 0, e);
            mp_expert_cache_release(c, 0, e);
        }
    assert_int_equal(mp_expert_cache_stats_get(c)->misses[0], 5); /* the survivors were hits */
    acquire_check(c, 0, victim);
    mp_expert_cache_release(c, 0, victim);
    assert_int_equal(mp_expert_cache_stats_get(c)->misses[0], 6);
    mp_expert_cache_close(c);
    mp_pack_close(&p);
}

static void test_eviction_order(void **state)
{
    (void)state;
    assert_true(freq(0, 1) < freq(0, 0) && freq(0, 1) < freq(0, 2) && freq(0, 1) < freq(0, 3));
    expect_victim(MP_EVICT_LRU, 0);
    expect_victim(MP_EVICT_LFU, 3);
    expect_victim(MP_EVICT_FREQ, 1);
}

/* Half of a capacity of 11 records of 5 pages (27.5 pages) pins the hottest experts
 * by frequency: layer 2 experts 4, 7, 2, 5, 0 take 25 pages; a sixth would not fit. */
static void test_pinning(void **state)
{
    (void)state;
    mp_pack p;
    mp_error err = {0};
    assert_int_equal(mp_pack_open_deferred(&p, pack, &err), 0);
    mp_expert_cache_opts o = opts(11 * alloc_of(2), MP_EVICT_LRU, false, 0);
    mp_expert_cache *c;
    assert_int_equal(mp_expert_cache_open(&c, &p, &o, &err), 0);
    const mp_expert_cache_stats *st = mp_expert_cache_stats_get(c);
    assert_int_equal(st->n_pinned, 5);
    assert_int_equal(st->pinned_bytes, 5 * alloc_of(2));
    assert_int_equal(st->reads, 5); /* loaded at open */
    /* Every other expert, many times: the pinned ones are never read again. */
    for (int round = 0; round < 3; round++)
        for (int l = 0; l < LAYERS; l++)
            for (int e = 0; e < EXPERTS; e++) {
                acquire_check(c, l, e);
                mp_expert_cache_release(c, l, e);
            }
    st = mp_expert_cache_stats_get(c);
    assert_int_equal(st->hits[2] >= 15, 1);
    const int pinned[5] = {4, 7, 2, 5, 0};
    for (int i = 0; i < 5; i++) {
        acquire_check(c, 2, pinned[i]);
        mp_expert_cache_release(c, 2, pinned[i]);
    }
    assert_int_equal(mp_expert_cache_stats_get(c)->misses[2], st->misses[2]);
    mp_expert_cache_close(c);
    /* Too small: one token needs top_k + prefetch slot records of the largest size. */
    o = opts(3 * alloc_of(2) - 1, MP_EVICT_LRU, true, 0);
    assert_int_equal(mp_expert_cache_open(&c, &p, &o, &err), MP_EXIT_INPUT);
    assert_non_null(strstr(err.msg, "61440 bytes minimum"));
    mp_pack_close(&p);
}

static void copy_pack(const char *to)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf %s && cp -r %s %s", to, pack, to);
    assert_int_equal(system(cmd), 0);
}

/* Opens the damaged copy (must succeed: cold tiers are checked at first need), reads
 * a tier-1 expert fine, and fails exit 3 on (layer 1, expert 6) naming its record. */
static void expect_failure_at_first_need(const char *copy, bool prefetch, const char *why)
{
    mp_pack p;
    mp_error err = {0};
    assert_int_equal(mp_pack_open_deferred(&p, copy, &err), 0);
    mp_expert_cache_opts o = opts(8 * alloc_of(2), MP_EVICT_LRU, prefetch, 0);
    mp_expert_cache *c;
    assert_int_equal(mp_expert_cache_open(&c, &p, &o, &err), 0);
    acquire_check(c, 0, 1);
    mp_expert_cache_release(c, 0, 1);
    int hint = 6;
    mp_expert_cache_prefetch(c, 1, &hint, 1); /* a failing background read must not hide the error */
    const uint8_t *raw;
    assert_int_equal(mp_expert_cache_acquire(c, 1, 6, &raw, &err), MP_EXIT_IO);
    char label[96];
    snprintf(label, sizeof label, "tier-2.bin record %d (layer 1 expert 6)", 1 + 1 * EXPERTS + 6);
    assert_non_null(strstr(err.msg, label));
    assert_non_null(strstr(err.msg, why));
    assert_null(strchr(err.msg, '\n'));
    mp_expert_cache_close(c);
    mp_pack_close(&p);
}

/* mp_pack_open still checks every tier at open (exit 2); a deferred pack read
 * without the cache fails at the record, exit 3, and reads the other tiers. */
static void missing_tier_without_cache(const char *copy)
{
    mp_pack p;
    mp_error err = {0};
    assert_int_equal(mp_pack_open(&p, copy, &err), MP_EXIT_INPUT);
    assert_non_null(strstr(err.msg, "tier-2.bin: missing"));
    mp_error_clear(&err);
    assert_int_equal(mp_pack_open_deferred(&p, copy, &err), 0);
    uint8_t *raw = malloc(want_len[1][6]);
    assert_int_equal(mp_pack_read_record(&p, 1 + 1 * EXPERTS + 6, raw, &err), MP_EXIT_IO);
    assert_non_null(strstr(err.msg, "record 15 (layer 1 expert 6)"));
    assert_int_equal(mp_pack_read_record(&p, 1 + 1 * EXPERTS + 2, raw, &err), 0);
    assert_memory_equal(raw, want[1][2], want_len[1][2]); /* same layer: same length */
    free(raw);
    mp_pack_close(&p);
}

static void flip_byte(const char *path, long offset)
{
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, offset, SEEK_SET), 0);
    int b = fgetc(f);
    assert_int_equal(fseek(f, offset, SEEK_SET), 0);
    fputc(b ^ 0x40, f);
    assert_int_equal(fclose(f), 0);
}

static void test_damaged_tiers(void **state)
{
    (void)state;
    char copy[128], tier[160];
    snprintf(copy, sizeof copy, "%s/damaged.mpk", dir);
    snprintf(tier, sizeof tier, "%s/tier-2.bin", copy);
    for (int prefetch = 0; prefetch < 2; prefetch++) {
        copy_pack(copy);
        assert_int_equal(unlink(tier), 0);
        expect_failure_at_first_need(copy, prefetch, "missing");
        missing_tier_without_cache(copy);

        copy_pack(copy);
        struct stat st;
        assert_int_equal(stat(tier, &st), 0);
        assert_int_equal(truncate(tier, st.st_size - 100), 0);
        expect_failure_at_first_need(copy, prefetch, "bytes, the manifest says");

        copy_pack(copy);
        mp_pack p;
        mp_error err = {0};
        assert_int_equal(mp_pack_open(&p, copy, &err), 0);
        const mp_pack_record *r = &p.records[1 + 1 * EXPERTS + 6];
        long at = (long)(r->offset + r->length / 2);
        mp_pack_close(&p);
        flip_byte(tier, at);
        expect_failure_at_first_need(copy, prefetch, "checksum mismatch");
    }
}

/* tmpfs refused O_DIRECT before Linux 6.6: there the cache says so once and reads
 * through the page cache; newer kernels take the direct path. Either way the bytes
 * are the record's. */
static void test_no_direct_fallback(void **state)
{
    (void)state;
    struct stat st;
    if (stat("/dev/shm", &st) != 0 || !S_ISDIR(st.st_mode)) {
        skip();
        return;
    }
    char shm[64], copy[128];
    strcpy(shm, "/dev/shm/mp-test-cache-XXXXXX");
    if (!mkdtemp(shm)) {
        skip();
        return;
    }
    snprintf(copy, sizeof copy, "%s/p.mpk", shm);
    copy_pack(copy);
    mp_pack p;
    mp_error err = {0};
    assert_int_equal(mp_pack_open_deferred(&p, copy, &err), 0);
    mp_expert_cache_opts o = opts(4 * alloc_of(2), MP_EVICT_LFU, true, 0);
    mp_expert_cache *c;
    assert_int_equal(mp_expert_cache_open(&c, &p, &o, &err), 0);
    for (int l = 0; l < LAYERS; l++)
        for (int e = 0; e < EXPERTS; e++) {
            acquire_check(c, l, e);
            mp_expert_cache_release(c, l, e);
        }
    mp_expert_cache_close(c);
    mp_pack_close(&p);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", shm);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytes_match),      cmocka_unit_test(test_capacity_random),
        cmocka_unit_test(test_eviction_order),   cmocka_unit_test(test_pinning),
        cmocka_unit_test(test_damaged_tiers),    cmocka_unit_test(test_no_direct_fallback),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
