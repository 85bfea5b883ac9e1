#include "generate.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Long prompts go through the decoder in pieces, bounding its scratch memory. */
enum { PREFILL_CHUNK = 512 };

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int mp_token_list_push(mp_token_list *l, const int32_t *ids, int n)
{
    if (l->n + n > l->cap) {
        int cap = l->cap ? l->cap : 64;
        while (cap < l->n + n)
            cap *= 2;
        int32_t *grown = realloc(l->ids, (size_t)cap * sizeof *grown);
        if (!grown)
            return MP_EXIT_IO;
        l->ids = grown;
        l->cap = cap;
    }
    memcpy(l->ids + l->n, ids, (size_t)n * sizeof *ids);
    l->n += n;
    return MP_OK;
}

void mp_token_list_free(mp_token_list *l)
{
    free(l->ids);
    memset(l, 0, sizeof *l);
}

static int prefill(mp_runtime *r, const int32_t *prompt, int n, float *logits, mp_error *err)
{
    int rc = MP_OK;
    for (int at = 0; at < n && !rc; at += PREFILL_CHUNK) {
        int len = n - at < PREFILL_CHUNK ? n - at : PREFILL_CHUNK;
        rc = mp_decoder_step(r->dec, prompt + at, len, false, logits, err);
    }
    return rc;
}

/* Without a tokenizer the ids themselves are the output. */
static int stream_token(mp_detok *dt, int32_t id, FILE *out, mp_error *err)
{
    const char *text;
    size_t len;
    if (!dt) {
        if (out)
            fprintf(out, "%d ", id);
        return MP_OK;
    }
    int rc = mp_detok_push(dt, id, &text, &len, err);
    if (!rc && out && len > 0) {
        fwrite(text, 1, len, out);
        fflush(out);
    }
    return rc;
}

static int finish_stream(mp_detok *dt, FILE *out, mp_error *err)
{
    const char *text = NULL;
    size_t len = 0;
    int rc = dt ? mp_detok_finish(dt, &text, &len, err) : MP_OK;
    if (!rc && out && len > 0)
        fwrite(text, 1, len, out);
    if (out)
        fflush(out);
    return rc;
}

static int decode_loop(mp_runtime *r, mp_sampler *s, float *logits, int max_tokens, FILE *out, mp_token_list *reply,
                       mp_gen_stats *st, mp_error *err)
{
    mp_detok *dt = NULL;
    int rc = r->tok ? mp_detok_new(r->tok, 1, &dt, err) : MP_OK;
    double t0 = now_seconds();
    uint64_t bytes0 = mp_decoder_weight_bytes(r->dec), disk0 = mp_expert_cache_stats_get(r->cache)->bytes_read;
    for (int i = 0; i < max_tokens && !rc; i++) {
        int32_t id = mp_sampler_pick(s, logits);
        if (mp_token_list_push(reply, &id, 1))
            rc = mp_fail(err, MP_EXIT_IO, "out of memory");
        if (rc || mp_runtime_is_eos(r, id))
            break;
        rc = stream_token(dt, id, out, err);
        if (!rc && i + 1 < max_tokens) {
            rc = mp_decoder_step(r->dec, &id, 1, false, logits, err);
            st->decode_tokens++;
        }
    }
    st->decode_secs += now_seconds() - t0;
    st->decode_weight_bytes += mp_decoder_weight_bytes(r->dec) - bytes0;
    st->decode_disk_bytes += mp_expert_cache_stats_get(r->cache)->bytes_read - disk0;
    if (!rc)
        rc = finish_stream(dt, out, err);
    mp_detok_free(dt);
    return rc;
}

int mp_generate(mp_runtime *r, mp_sampler *s, const int32_t *prompt, int n, int max_tokens, FILE *out,
                mp_token_list *reply, mp_gen_stats *st, mp_error *err)
{
    if (n <= 0)
        return mp_fail(err, MP_EXIT_INPUT, "the prompt is empty");
    float *logits = malloc((size_t)r->cfg.vocab * sizeof *logits);
    if (!logits)
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    double t0 = now_seconds();
    int rc = prefill(r, prompt, n, logits, err);
    st->prompt_secs += now_seconds() - t0;
    st->prompt_tokens += n;
    if (!rc)
        rc = decode_loop(r, s, logits, max_tokens, out, reply, st, err);
    free(logits);
    return rc;
}
