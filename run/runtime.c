#include "runtime.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/fileio.h"
#include "../model/pack_open.h"

static int cache_acquire(void *user, int layer, int expert, const uint8_t **raw, mp_error *err)
{
    return mp_expert_cache_acquire(user, layer, expert, raw, err);
}

static void cache_release(void *user, int layer, int expert)
{
    mp_expert_cache_release(user, layer, expert);
}

static void cache_prefetch(void *user, int layer, const int *experts, int n)
{
    mp_expert_cache_prefetch(user, layer, experts, n);
}

static void add_eos(mp_runtime *r, json_int_t id)
{
    if (id < 0 || id >= r->cfg.vocab || r->n_eos == (int)(sizeof r->eos / sizeof r->eos[0]))
        return;
    for (int i = 0; i < r->n_eos; i++)
        if (r->eos[i] == id)
            return;
    r->eos[r->n_eos++] = (int32_t)id;
}

/* eos_token_id of a JSON file in the pack: a number or a list of them. */
static void read_eos(mp_runtime *r, const char *file)
{
    char *path = mp_path_join(r->pack.dir, file);
    json_t *root = path ? json_load_file(path, 0, NULL) : NULL;
    json_t *eos = json_object_get(root, "eos_token_id");
    if (json_is_integer(eos))
        add_eos(r, json_integer_value(eos));
    for (size_t i = 0; json_is_array(eos) && i < json_array_size(eos); i++)
        if (json_is_integer(json_array_get(eos, i)))
            add_eos(r, json_integer_value(json_array_get(eos, i)));
    json_decref(root);
    free(path);
}

/* A pack without tokenizer.json still runs from token ids (--prompt-ids). */
static int load_tokenizer(mp_runtime *r, const char *pack_dir, mp_error *err)
{
    char *path = mp_path_join(pack_dir, "tokenizer.json");
    bool present = path && access(path, F_OK) == 0;
    free(path);
    return present ? mp_tokenizer_load(pack_dir, &r->tok, err) : MP_OK;
}

static uint64_t expert_bytes(const mp_pack *p)
{
    uint64_t sum = 0;
    for (int i = 0; i < p->n_records; i++)
        if (p->records[i].expert >= 0)
            sum += p->records[i].raw_length;
    return sum;
}

static int open_cache(mp_runtime *r, const mp_runtime_opts *o, uint64_t tier0, mp_error *err)
{
    mp_expert_cache_opts co;
    mp_expert_cache_opts_default(&co);
    co.policy = o->policy;
    co.page_cache = o->page_cache;
    co.prefetch = o->prefetch;
    co.quiet = o->quiet;
    if (o->budget > 0) {
        if (o->budget <= tier0)
            return mp_fail(err, MP_EXIT_INPUT, "--budget %llu bytes: tier 0 alone needs %llu bytes",
                           (unsigned long long)o->budget, (unsigned long long)tier0);
        co.capacity = o->budget - tier0;
    }
    r->cache_capacity = co.capacity;
    return mp_expert_cache_open(&r->cache, &r->pack, &co, err);
}

int mp_runtime_open(mp_runtime *r, const char *pack_dir, const mp_runtime_opts *o, mp_error *err)
{
    memset(r, 0, sizeof *r);
    char *cfg_path = mp_path_join(pack_dir, "config.json");
    int rc = mp_model_pack_open(&r->pack, pack_dir, true, err);
    if (!rc) rc = cfg_path ? mp_config_read(&r->cfg, cfg_path, err) : mp_fail(err, MP_EXIT_IO, "out of memory");
    free(cfg_path);
    if (!rc) rc = load_tokenizer(r, pack_dir, err);
    mp_expert_source src = {0};
    mp_decoder_opts dopts = {.mode = o->mode, .max_ctx = o->max_ctx, .prefetch_extra = 2};
    if (!rc) {
        /* tier 0 is read by the decoder; the cache gets what the budget leaves */
        mp_expert_source none = {0};
        rc = mp_decoder_new(&r->dec, &r->pack, &r->cfg, &none, &dopts, err);
    }
    if (!rc) rc = open_cache(r, o, mp_decoder_resident_bytes(r->dec), err);
    if (!rc) {
        src = (mp_expert_source){r->cache, cache_acquire, cache_release, o->prefetch ? cache_prefetch : NULL};
        mp_decoder_set_experts(r->dec, &src);
        r->expert_bytes = expert_bytes(&r->pack);
        read_eos(r, "generation_config.json");
        read_eos(r, "config.json");
    }
    if (rc)
        mp_runtime_close(r);
    return rc;
}

void mp_runtime_close(mp_runtime *r)
{
    mp_decoder_free(r->dec);
    mp_expert_cache_close(r->cache);
    mp_tokenizer_free(r->tok);
    if (r->cfg.n_layers)
        mp_config_free(&r->cfg);
    mp_pack_close(&r->pack);
    memset(r, 0, sizeof *r);
}

bool mp_runtime_is_eos(const mp_runtime *r, int32_t id)
{
    for (int i = 0; i < r->n_eos; i++)
        if (r->eos[i] == id)
            return true;
    return false;
}
