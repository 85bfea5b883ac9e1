/* For tests/cli/test_engine_families.sh: the engine's logits for one sequence,
 * through the public API only (weight source + engine), so they can be compared
 * with the independent NumPy reference tests/ref/moe_forward.py.
 *
 *   engine_logits CKPT_OR_PACK "0 1 2 ..." OUT.f32
 *
 * Writes logits [n_tokens, vocab] as little-endian f32, the sequence run from
 * position 0 under a causal mask with f32 activations. Exit 2 with the engine's
 * message when it refuses the model (a family it does not run yet) or on bad
 * arguments; 3 on I/O failure. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../engine/engine.h"
#include "../../model/weight_source.h"

static int parse_tokens(const char *text, int32_t **out, int *n)
{
    int cap = 64, count = 0;
    int32_t *t = malloc((size_t)cap * sizeof *t);
    const char *p = text;
    while (t) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == ',')
            p++;
        if (!*p)
            break;
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > INT32_MAX) {
            free(t);
            return -1;
        }
        if (count == cap) {
            int32_t *grown = realloc(t, (size_t)(cap *= 2) * sizeof *t);
            if (!grown) {
                free(t);
                return -1;
            }
            t = grown;
        }
        t[count++] = (int32_t)v;
        p = end;
    }
    if (!t || count == 0) {
        free(t);
        return -1;
    }
    *out = t;
    *n = count;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: engine_logits CKPT_OR_PACK \"TOKENS\" OUT.f32\n");
        return 2;
    }
    int32_t *tokens = NULL;
    int n = 0;
    if (parse_tokens(argv[2], &tokens, &n) != 0) {
        fprintf(stderr, "engine_logits: tokens: expected space-separated non-negative integers\n");
        return 2;
    }
    mp_error err = {0};
    mp_weight_source src;
    memset(&src, 0, sizeof src);
    int rc = mp_wsrc_open(&src, argv[1], &err);
    if (rc != 0) {
        fprintf(stderr, "engine_logits: %s\n", err.msg);
        free(tokens);
        return rc;
    }
    mp_engine *e = NULL;
    rc = mp_engine_new(&e, &src, MP_ACT_F32, &err);
    if (rc != 0) {
        fprintf(stderr, "engine_logits: engine refuses %s: %s\n", argv[1], err.msg);
        mp_wsrc_close(&src);
        free(tokens);
        return 2;
    }
    int vocab = mp_engine_vocab(e);
    for (int i = 0; i < n; i++)
        if (tokens[i] >= vocab) {
            fprintf(stderr, "engine_logits: token %d at %d is outside the vocabulary (%d)\n", tokens[i], i, vocab);
            rc = 2;
        }
    float *logits = rc == 0 ? malloc((size_t)n * (size_t)vocab * sizeof *logits) : NULL;
    if (rc == 0 && !logits) {
        fprintf(stderr, "engine_logits: out of memory\n");
        rc = 3;
    }
    if (rc == 0 && (rc = mp_engine_forward(e, tokens, 1, n, 0, n, logits, NULL, &err)) != 0)
        fprintf(stderr, "engine_logits: forward: %s\n", err.msg);
    if (rc == 0) {
        FILE *f = fopen(argv[3], "wb");
        size_t count = (size_t)n * (size_t)vocab;
        if (!f || fwrite(logits, sizeof *logits, count, f) != count || fclose(f) != 0) {
            fprintf(stderr, "engine_logits: %s: write failed: %s\n", argv[3], strerror(errno));
            rc = 3;
        }
    }
    free(logits);
    mp_engine_free(e);
    mp_wsrc_close(&src);
    free(tokens);
    return rc;
}
