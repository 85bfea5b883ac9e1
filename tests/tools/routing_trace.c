/* routing_trace MODEL TEXT OUT [CTX] [CHUNKS]: the experts the engine routes each
 * token to, for replaying through the expert cache (tests/tools/cache_replay.c)
 * until `moepack profile --routing-trace` exists. MODEL is a checkpoint or pack
 * (with tokenizer.json); TEXT is cut into chunks as `moepack profile` does.
 *
 * OUT is text: a line "moepack-routing-trace layers L top_k K tokens N", then one
 * line per token, in text order, of L x K expert indices (layer 0's first). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../engine/chunks.h"
#include "../../engine/engine.h"
#include "../../model/weight_source.h"

typedef struct {
    int ctx, n_layers, top_k;
    int *chunk; /* [layer][ctx][top_k] of the chunk being run */
} trace;

static void on_routing(void *user, int layer, const int *experts, const float *weights, int64_t n, int top_k)
{
    trace *t = user;
    (void)weights;
    if (layer >= t->n_layers || top_k != t->top_k || n != t->ctx)
        return;
    memcpy(t->chunk + (size_t)layer * (size_t)t->ctx * (size_t)top_k, experts, (size_t)n * (size_t)top_k * sizeof *experts);
}

static int run(const char *model, const char *text, FILE *out, int ctx, int64_t max_chunks, mp_error *err)
{
    mp_weight_source src;
    mp_chunks chunks;
    mp_engine *e = NULL;
    memset(&src, 0, sizeof src);
    memset(&chunks, 0, sizeof chunks);
    int rc = mp_wsrc_open(&src, model, err);
    if (rc == 0)
        rc = mp_engine_new(&e, &src, MP_ACT_BF16, err);
    if (rc == 0)
        rc = mp_chunks_load(&chunks, model, text, NULL, ctx, max_chunks, err);
    if (rc != 0) {
        mp_engine_free(e);
        mp_wsrc_close(&src);
        return rc;
    }
    const mp_config *cfg = mp_wsrc_config(&src);
    trace t = {ctx, cfg->n_layers, cfg->routing.top_k, NULL};
    t.chunk = calloc((size_t)t.n_layers * (size_t)ctx * (size_t)t.top_k, sizeof *t.chunk);
    int32_t *tokens = malloc((size_t)ctx * sizeof *tokens);
    float *logits = malloc((size_t)mp_engine_vocab(e) * sizeof *logits);
    mp_engine_hooks hooks = {.user = &t, .routing = on_routing};
    fprintf(out, "moepack-routing-trace layers %d top_k %d tokens %lld\n", t.n_layers, t.top_k,
            (long long)chunks.n_chunks * ctx);
    for (int64_t c = 0; c < chunks.n_chunks && rc == 0; c++) {
        mp_chunks_get(&chunks, c, tokens);
        rc = mp_engine_forward(e, tokens, 1, ctx, ctx - 1, ctx, logits, &hooks, err);
        for (int p = 0; p < ctx && rc == 0; p++) {
            for (int l = 0; l < t.n_layers; l++)
                for (int k = 0; k < t.top_k; k++)
                    fprintf(out, "%s%d", l + k ? " " : "", t.chunk[((size_t)l * (size_t)ctx + (size_t)p) * (size_t)t.top_k + (size_t)k]);
            fputc('\n', out);
        }
    }
    free(t.chunk);
    free(tokens);
    free(logits);
    mp_chunks_free(&chunks);
    mp_engine_free(e);
    mp_wsrc_close(&src);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 6) {
        fprintf(stderr, "usage: routing_trace MODEL TEXT OUT [CTX] [CHUNKS]\n");
        return 2;
    }
    int ctx = argc > 4 ? atoi(argv[4]) : 256;
    int64_t chunks = argc > 5 ? atoll(argv[5]) : 0;
    FILE *out = fopen(argv[3], "w");
    if (!out) {
        perror(argv[3]);
        return 3;
    }
    mp_error err = {0};
    int rc = run(argv[1], argv[2], out, ctx, chunks, &err);
    if (fclose(out) != 0 && rc == 0)
        rc = 3;
    if (rc != 0)
        fprintf(stderr, "routing_trace: %s\n", err.msg[0] ? err.msg : "write failed");
    return rc;
}
