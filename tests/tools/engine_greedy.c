/* Greedy generation by the f32 engine, the runtime's oracle: every step runs the
 * whole sequence again through mp_engine_forward (no KV cache, weights decoded to
 * f32, OpenBLAS products) and appends the most likely token.
 *     engine_greedy PACK N ID...   prints the N generated ids, space-separated */
#include <stdio.h>
#include <stdlib.h>

#include "../../engine/model_run.h"

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: engine_greedy PACK N ID...\n");
        return 2;
    }
    int n_new = atoi(argv[2]), n_prompt = argc - 3, total = n_prompt + n_new;
    mp_error err = {0};
    mp_model_run run;
    if (mp_model_run_open(&run, argv[1], MP_ACT_F32, false, &err) != MP_OK) {
        fprintf(stderr, "engine_greedy: %s\n", err.msg);
        return err.code;
    }
    int32_t *tokens = malloc((size_t)total * sizeof *tokens);
    float *logits = malloc((size_t)run.vocab * sizeof *logits);
    for (int i = 0; i < n_prompt; i++)
        tokens[i] = atoi(argv[3 + i]);
    int rc = MP_OK;
    for (int len = n_prompt; len < total && rc == MP_OK; len++) {
        rc = mp_engine_forward(run.engine, tokens, 1, len, len - 1, len, logits, NULL, &err);
        int best = 0;
        for (int v = 1; v < run.vocab; v++)
            if (logits[v] > logits[best])
                best = v;
        tokens[len] = best;
        printf("%d%s", best, len + 1 < total ? " " : "\n");
    }
    if (rc != MP_OK)
        fprintf(stderr, "engine_greedy: %s\n", err.msg);
    free(tokens);
    free(logits);
    mp_model_run_close(&run);
    return rc;
}
