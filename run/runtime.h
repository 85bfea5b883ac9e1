/* A pack opened for generation: its config, the expert cache under the memory
 * budget, the decoder and the tokenizer, and the tokens that end a reply. */
#ifndef MP_RUNTIME_H
#define MP_RUNTIME_H

#include "../engine/decoder.h"
#include "../tokenizer/tokenizer.h"
#include "expert_cache.h"

typedef struct {
    uint64_t budget;        /* bytes of weights in memory (tier 0 + cached experts); 0 = all */
    mp_kern_mode mode;
    int max_ctx;
    mp_evict_policy policy;
    bool page_cache, prefetch;
    bool quiet; /* no progress bar while the experts load */
} mp_runtime_opts;

typedef struct {
    mp_pack pack;
    mp_config cfg;
    mp_expert_cache *cache;
    mp_decoder *dec;
    mp_tokenizer *tok; /* NULL when the pack has no tokenizer.json */
    int32_t eos[8];
    int n_eos;
    uint64_t expert_bytes, cache_capacity;
} mp_runtime;

int mp_runtime_open(mp_runtime *r, const char *pack_dir, const mp_runtime_opts *o, mp_error *err);
void mp_runtime_close(mp_runtime *r);
bool mp_runtime_is_eos(const mp_runtime *r, int32_t id);

#endif
