#include "run_ppl.h"

#include <math.h>
#include <stdlib.h>
#include <time.h>

#include "../core/progress.h"
#include "../engine/chunks.h"

/* -log p(next token) at positions [first, last) of a chunk's logits [ctx, vocab]. */
static double chunk_nll(const mp_chunks *c, const int32_t *tokens, const float *logits, int vocab)
{
    double nll = 0;
    for (int p = c->first; p < c->last; p++) {
        const float *row = logits + (int64_t)p * vocab;
        float max = row[0];
        for (int v = 1; v < vocab; v++)
            max = row[v] > max ? row[v] : max;
        double sum = 0;
        for (int v = 0; v < vocab; v++)
            sum += exp((double)row[v] - max);
        nll += log(sum) + max - row[tokens[p + 1]];
    }
    return nll;
}

int mp_run_perplexity(mp_runtime *r, const char *text_path, int ctx, int max_chunks, bool quiet, double *ppl,
                      int64_t *scored, mp_gen_stats *st, mp_error *err)
{
    mp_chunks c;
    int rc = mp_chunks_load(&c, r->pack.dir, text_path, NULL, ctx, max_chunks, err);
    if (rc)
        return rc;
    int vocab = r->cfg.vocab;
    int32_t *tokens = malloc((size_t)ctx * sizeof *tokens);
    float *logits = malloc((size_t)ctx * (size_t)vocab * sizeof *logits);
    if (!tokens || !logits)
        rc = mp_fail(err, MP_EXIT_IO, "out of memory for %d positions of %d logits", ctx, vocab);
    mp_progress bar;
    mp_progress_start(&bar, "perplexity", (uint64_t)c.n_chunks, false, quiet);
    double nll = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int64_t i = 0; i < c.n_chunks && !rc; i++) {
        mp_chunks_get(&c, i, tokens);
        mp_decoder_truncate(r->dec, 0);
        rc = mp_decoder_step(r->dec, tokens, ctx, true, logits, err);
        if (!rc)
            nll += chunk_nll(&c, tokens, logits, vocab);
        mp_progress_add(&bar, 1);
    }
    mp_progress_finish(&bar);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    st->prompt_secs += (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
    st->prompt_tokens += c.n_chunks * ctx;
    *scored = c.n_chunks * mp_chunks_scored(&c);
    *ppl = exp(nll / (double)*scored);
    free(tokens);
    free(logits);
    mp_chunks_free(&c);
    return rc;
}
