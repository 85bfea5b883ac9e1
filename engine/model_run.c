#include "model_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int mp_model_run_open(mp_model_run *r, const char *path, mp_act_mode act, bool allow_nonfinite, mp_error *err)
{
    memset(r, 0, sizeof *r);
    int rc = mp_wsrc_open(&r->src, path, err);
    if (rc)
        return rc;
    r->src.ckpt.model.allow_nonfinite = allow_nonfinite; /* before the engine reads the weights */
    rc = mp_engine_new(&r->engine, &r->src, act, err);
    if (rc) {
        mp_wsrc_close(&r->src);
        return rc;
    }
    r->vocab = mp_engine_vocab(r->engine);
    return MP_OK;
}

void mp_model_run_close(mp_model_run *r)
{
    mp_engine_free(r->engine);
    mp_wsrc_close(&r->src);
    memset(r, 0, sizeof *r);
}

int mp_batch_chunks(int ctx)
{
    int n = 2048 / ctx;
    return n < 1 ? 1 : n;
}

int mp_model_run_batch(mp_model_run *r, const mp_chunks *c, int64_t c0, int n, int32_t *tokens, float *logits,
                       const mp_engine_hooks *hooks, mp_error *err)
{
    for (int i = 0; i < n; i++)
        mp_chunks_get(c, c0 + i, tokens + (int64_t)i * c->ctx);
    return mp_engine_forward(r->engine, tokens, n, c->ctx, c->first, c->last, logits, hooks, err);
}

int mp_embed_chunks(mp_engine *e, const mp_chunks *c, int n_chunks, int ctx, int64_t hidden, float **out,
                    mp_error *err)
{
    int64_t n = (int64_t)n_chunks * ctx;
    int32_t *tokens = malloc((size_t)ctx * sizeof *tokens);
    float *x = malloc((size_t)(n * hidden) * sizeof *x);
    if (!tokens || !x) {
        free(tokens);
        free(x);
        return mp_fail(err, MP_EXIT_IO, "out of memory for %lld calibration tokens (%.1f MB)", (long long)n,
                       (double)(n * hidden) * 4 / 1e6);
    }
    int rc = MP_OK;
    for (int s = 0; s < n_chunks && rc == MP_OK; s++) {
        mp_chunks_get(c, s, tokens);
        rc = mp_engine_embed(e, tokens, ctx, x + (int64_t)s * ctx * hidden, err);
    }
    free(tokens);
    *out = x;
    return rc;
}

json_t *mp_model_identity(const mp_config *cfg)
{
    return json_pack("{s:s, s:s, s:i, s:i, s:i, s:i, s:i}", "architecture", cfg->architecture, "family",
                     mp_family_name(cfg->family), "vocab", cfg->vocab, "hidden", cfg->hidden, "layers",
                     cfg->n_layers, "experts", cfg->routing.n_experts, "top_k", cfg->routing.top_k);
}

const char *mp_model_identity_differs(json_t *a, json_t *b, bool b_pruned, char *why, size_t cap)
{
    const char *key;
    json_t *va;
    json_object_foreach(a, key, va) {
        json_t *vb = json_object_get(b, key);
        /* fewer experts in b: a pruned pack of a's model (moepack prune) */
        bool fewer_experts = vb && strcmp(key, "experts") == 0 && json_integer_value(vb) < json_integer_value(va);
        if (fewer_experts && b_pruned)
            continue;
        if (fewer_experts) {
            snprintf(why, cap, "experts %lld vs %lld, and the pack's manifest has no provenance.prune",
                     (long long)json_integer_value(va), (long long)json_integer_value(vb));
            return why;
        }
        if (!vb || !json_equal(va, vb)) {
            char *ta = json_dumps(va, JSON_ENCODE_ANY), *tb = vb ? json_dumps(vb, JSON_ENCODE_ANY) : NULL;
            snprintf(why, cap, "%s %s vs %s", key, ta ? ta : "?", tb ? tb : "absent");
            free(ta);
            free(tb);
            return why;
        }
    }
    return NULL;
}
