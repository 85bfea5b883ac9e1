/* cache_replay PACK TRACE [options]: replays a routing trace (routing_trace.c) through
 * the expert cache as a token-by-token runtime would: per token and layer, acquire
 * its top_k experts, then release them. One result line on stdout.
 *
 *   --capacity PCT    of the pack's expert bytes (each record rounded to 4 KiB); default 50
 *   --policy P        lru | lfu | freq (default: the cache's default)
 *   --prefetch        hint layer l+1's experts of the token before acquiring layer l's
 *                     (the trace's own routing: an upper bound for a real predictor)
 *   --page-cache      ordinary reads instead of O_DIRECT
 *   --no-pin          no pinning (n_pinned_hint -1); --pin N: at most N
 *   --tokens N        replay only the first N tokens
 *
 * Prints policy, capacity, hit rate, reads, bytes read, peak bytes held, the
 * process's peak RSS (VmHWM) and the wall time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../run/expert_cache.h"

typedef struct {
    int n_layers, top_k;
    long n_tokens;
    int *experts; /* [token][layer][k] */
} routing_trace;

static int load_trace(const char *path, routing_trace *t)
{
    FILE *f = fopen(path, "r");
    if (!f || fscanf(f, "moepack-routing-trace layers %d top_k %d tokens %ld", &t->n_layers, &t->top_k, &t->n_tokens) != 3 ||
        t->n_layers < 1 || t->top_k < 1 || t->n_tokens < 1) {
        fprintf(stderr, "cache_replay: %s: not a routing trace\n", path);
        if (f)
            fclose(f);
        return 2;
    }
    size_t n = (size_t)t->n_tokens * (size_t)t->n_layers * (size_t)t->top_k;
    t->experts = malloc(n * sizeof *t->experts);
    for (size_t i = 0; t->experts && i < n; i++)
        if (fscanf(f, "%d", &t->experts[i]) != 1) {
            fprintf(stderr, "cache_replay: %s: trace ends after %zu of %zu experts\n", path, i, n);
            fclose(f);
            return 2;
        }
    fclose(f);
    return t->experts ? 0 : 3;
}

static long vm_hwm_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0)
            kib = atol(line + 6);
    if (f)
        fclose(f);
    return kib;
}

static uint64_t expert_bytes(const mp_pack *p)
{
    uint64_t sum = 0;
    for (int i = 0; i < p->n_records; i++)
        if (p->records[i].expert >= 0)
            sum += (p->records[i].raw_length + 4095) / 4096 * 4096;
    return sum;
}

static int replay(mp_expert_cache *c, const routing_trace *t, long n_tokens, bool prefetch, mp_error *err)
{
    int k = t->top_k;
    for (long tok = 0; tok < n_tokens; tok++)
        for (int l = 0; l < t->n_layers; l++) {
            const int *e = t->experts + ((size_t)tok * (size_t)t->n_layers + (size_t)l) * (size_t)k;
            if (prefetch && l + 1 < t->n_layers)
                mp_expert_cache_prefetch(c, l + 1, e + k, k);
            else if (prefetch && tok + 1 < n_tokens)
                mp_expert_cache_prefetch(c, 0, e + k, k); /* the next token's layer 0 */
            for (int i = 0; i < k; i++) {
                const uint8_t *raw;
                int rc = mp_expert_cache_acquire(c, l, e[i], &raw, err);
                if (rc != 0)
                    return rc;
            }
            for (int i = 0; i < k; i++)
                mp_expert_cache_release(c, l, e[i]);
        }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: cache_replay PACK TRACE [--capacity PCT] [--policy P] [--prefetch] [--page-cache] [--no-pin | --pin N] [--tokens N]\n");
        return 2;
    }
    mp_expert_cache_opts o;
    mp_expert_cache_opts_default(&o);
    o.prefetch = false;
    double pct = 50;
    long max_tokens = 0;
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--capacity") == 0 && i + 1 < argc)
            pct = atof(argv[++i]);
        else if (strcmp(argv[i], "--policy") == 0 && i + 1 < argc && mp_evict_policy_parse(argv[i + 1], &o.policy) == 0)
            i++;
        else if (strcmp(argv[i], "--prefetch") == 0)
            o.prefetch = true;
        else if (strcmp(argv[i], "--page-cache") == 0)
            o.page_cache = true;
        else if (strcmp(argv[i], "--no-pin") == 0)
            o.n_pinned_hint = -1;
        else if (strcmp(argv[i], "--pin") == 0 && i + 1 < argc)
            o.n_pinned_hint = atoi(argv[++i]);
        else if (strcmp(argv[i], "--tokens") == 0 && i + 1 < argc)
            max_tokens = atol(argv[++i]);
        else {
            fprintf(stderr, "cache_replay: unknown or incomplete option %s\n", argv[i]);
            return 2;
        }
    }
    routing_trace t = {0};
    int rc = load_trace(argv[2], &t);
    if (rc != 0)
        return rc;
    mp_pack p;
    mp_error err = {0};
    mp_expert_cache *c = NULL;
    rc = mp_pack_open_deferred(&p, argv[1], &err);
    uint64_t total = rc == 0 ? expert_bytes(&p) : 0;
    o.capacity = pct >= 100 ? UINT64_MAX : (uint64_t)((double)total * pct / 100);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (rc == 0)
        rc = mp_expert_cache_open(&c, &p, &o, &err);
    long n_tokens = max_tokens > 0 && max_tokens < t.n_tokens ? max_tokens : t.n_tokens;
    if (rc == 0)
        rc = replay(c, &t, n_tokens, o.prefetch, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rc != 0) {
        fprintf(stderr, "cache_replay: %s\n", err.msg);
    } else {
        const mp_expert_cache_stats *st = mp_expert_cache_stats_get(c);
        uint64_t hits = 0, misses = 0, pre = 0, used = 0;
        for (int l = 0; l < st->n_layers; l++) {
            hits += st->hits[l];
            misses += st->misses[l];
            pre += st->prefetched[l];
            used += st->prefetch_used[l];
        }
        printf("policy %-4s capacity %3.0f%% (%llu of %llu B) pinned %d  hit %.4f  misses %llu  prefetched %llu used %llu waits %llu  reads %llu  read %.1f MB  peak %.2f MB  VmHWM %.1f MB  %.3f s\n",
               mp_evict_policy_name(o.policy), pct, (unsigned long long)(o.capacity == UINT64_MAX ? total : o.capacity),
               (unsigned long long)total, st->n_pinned, (double)hits / (double)(hits + misses), (unsigned long long)misses,
               (unsigned long long)pre, (unsigned long long)used, (unsigned long long)st->waits,
               (unsigned long long)st->reads, (double)st->bytes_read / 1e6, (double)st->peak_bytes / 1e6,
               (double)vm_hwm_kib() / 1024.0, (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    }
    mp_expert_cache_close(c);
    if (p.dir)
        mp_pack_close(&p);
    free(t.experts);
    return rc;
}
