#include "run_stats.h"

#include <string.h>

uint64_t mp_peak_rss(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long long kib = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %llu kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib * 1024;
}

static double per_second(int64_t n, double secs)
{
    return secs > 0 ? (double)n / secs : 0;
}

static double hit_rate(const mp_expert_cache_stats *s, int li)
{
    uint64_t all = s->hits[li] + s->misses[li];
    return all ? (double)s->hits[li] / (double)all : 1.0;
}

static double per_token(uint64_t bytes, int64_t tokens)
{
    return tokens ? (double)bytes / (double)tokens : 0.0;
}

static double mib(uint64_t bytes)
{
    return (double)bytes / (1024.0 * 1024.0);
}

void mp_run_stats_print(FILE *f, const mp_runtime *r, const mp_gen_stats *st)
{
    const mp_expert_cache_stats *s = mp_expert_cache_stats_get(r->cache);
    fprintf(f, "prompt: %lld tokens, %.2f tokens/s\n", (long long)st->prompt_tokens,
            per_second(st->prompt_tokens, st->prompt_secs));
    fprintf(f, "decode: %lld tokens, %.2f tokens/s\n", (long long)st->decode_tokens,
            per_second(st->decode_tokens, st->decode_secs));
    fprintf(f, "memory: tier 0 %.1f MiB, expert cache %s%.1f MiB of %.1f MiB of experts, KV cache %.1f MiB, "
               "peak RSS %.1f MiB\n",
            mib(mp_decoder_resident_bytes(r->dec)), r->cache_capacity == UINT64_MAX ? "unlimited, held " : "",
            mib(r->cache_capacity == UINT64_MAX ? s->peak_bytes : r->cache_capacity), mib(r->expert_bytes),
            mib(mp_decoder_kv_bytes(r->dec)), mib(mp_peak_rss()));
    fprintf(f, "disk: %llu expert reads, %.1f MiB (%.2f MiB per decoded token); %d experts pinned (%.1f MiB)\n",
            (unsigned long long)s->reads, mib(s->bytes_read), mib(per_token(st->decode_disk_bytes, st->decode_tokens)),
            s->n_pinned, mib(s->pinned_bytes));
    fprintf(f, "cache hit rate per layer:");
    for (int li = 0; li < s->n_layers; li++)
        if (s->hits[li] + s->misses[li] > 0)
            fprintf(f, " %d:%.3f", li, hit_rate(s, li));
    fprintf(f, "\n");
}

json_t *mp_run_stats_json(const mp_runtime *r, const mp_gen_stats *st)
{
    const mp_expert_cache_stats *s = mp_expert_cache_stats_get(r->cache);
    json_t *layers = json_array();
    for (int li = 0; li < s->n_layers; li++)
        if (s->hits[li] + s->misses[li] > 0)
            json_array_append_new(layers, json_pack("{s:i, s:I, s:I, s:I, s:I, s:f}", "layer", li, "hits",
                                                    (json_int_t)s->hits[li], "misses", (json_int_t)s->misses[li],
                                                    "prefetched", (json_int_t)s->prefetched[li], "prefetch_used",
                                                    (json_int_t)s->prefetch_used[li], "hit_rate", hit_rate(s, li)));
    return json_pack("{s:I, s:f, s:I, s:f, s:f, s:f, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:i, s:s, s:o}", "prompt_tokens",
                     (json_int_t)st->prompt_tokens, "prompt_tokens_per_s",
                     per_second(st->prompt_tokens, st->prompt_secs), "decode_tokens", (json_int_t)st->decode_tokens,
                     "decode_tokens_per_s", per_second(st->decode_tokens, st->decode_secs), "weight_bytes_per_decode_token",
                     per_token(st->decode_weight_bytes, st->decode_tokens), "disk_bytes_per_decode_token",
                     per_token(st->decode_disk_bytes, st->decode_tokens), "tier0_bytes",
                     (json_int_t)mp_decoder_resident_bytes(r->dec), "expert_bytes", (json_int_t)r->expert_bytes,
                     "cache_capacity", (json_int_t)(r->cache_capacity == UINT64_MAX ? -1 : (json_int_t)r->cache_capacity),
                     "cache_peak_bytes", (json_int_t)s->peak_bytes,
                     "kv_bytes", (json_int_t)mp_decoder_kv_bytes(r->dec), "disk_reads", (json_int_t)s->reads,
                     "disk_bytes", (json_int_t)s->bytes_read, "peak_rss", (json_int_t)mp_peak_rss(), "pinned",
                     s->n_pinned, "kernels", mp_kern_isa(), "layers", layers);
}
