/* For bench/bench_engine.sh: the forward-pass FLOPs per token of a model (from its
 * config.json, at a given context) and this machine's sgemm throughput with the
 * shapes the engine uses, measured now.
 *
 *   engine_limits MODEL_DIR CTX THREADS   prints "flops_per_token F" and "sgemm_gflops G" */
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../core/fileio.h"
#include "../../core/progress.h"
#include "../../engine/linalg.h"
#include "../../model/model.h"

/* Multiply-adds of one token: every linear it passes through (attention, router,
 * top_k routed experts, shared experts; the output head for half of the tokens, as
 * the perplexity protocol scores half) plus attention over ctx/2 positions on average. */
static double flops_per_token(const mp_config *c, int ctx)
{
    double d = c->hidden, q = (double)c->n_heads * c->head_dim, kv = (double)c->n_kv_heads * c->head_dim;
    double attn = d * q + 2 * d * kv + q * d + 2.0 * (ctx / 2.0) * q;
    double mlp = c->routing.n_experts > 0
                     ? d * c->routing.n_experts + c->routing.top_k * 3.0 * d * c->moe_intermediate +
                           3.0 * d * c->shared_intermediate
                     : 3.0 * d * c->intermediate;
    return 2.0 * (c->n_layers * (attn + mlp) + 0.5 * d * c->vocab);
}

/* The engine's own tiled sgemm (mp_matmul_nt) on a linear of the model's width. */
static double sgemm_gflops(int k, int m)
{
    int n = 2048;
    float *x = calloc((size_t)n * k, sizeof *x), *w = calloc((size_t)m * k, sizeof *w);
    float *y = malloc((size_t)n * m * sizeof *y);
    for (int i = 0; x && w && i < n * k; i++)
        x[i] = (float)(i % 7) * 0.25f;
    for (int i = 0; x && w && i < m * k; i++)
        w[i] = (float)(i % 5) * 0.5f;
    double best = 0;
    for (int rep = 0; x && w && y && rep < 5; rep++) {
        double t0 = mp_now();
        mp_matmul_nt(x, n, k, w, m, y);
        double t = mp_now() - t0, g = 2.0 * n * k * m / t / 1e9;
        if (g > best)
            best = g;
    }
    free(x);
    free(w);
    free(y);
    return best;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: engine_limits MODEL_DIR CTX THREADS\n");
        return 2;
    }
    mp_config cfg;
    mp_error err = {0};
    char *path = mp_path_join(argv[1], "config.json");
    if (!path || mp_config_read(&cfg, path, &err) != MP_OK) {
        fprintf(stderr, "engine_limits: %s\n", err.msg);
        return 2;
    }
    omp_set_num_threads(atoi(argv[3]));
    mp_linalg_init();
    printf("flops_per_token %.0f\n", flops_per_token(&cfg, atoi(argv[2])));
    printf("sgemm_gflops %.2f\n", sgemm_gflops(cfg.hidden, cfg.moe_intermediate > 0 ? cfg.moe_intermediate : cfg.intermediate));
    mp_config_free(&cfg);
    free(path);
    return 0;
}
