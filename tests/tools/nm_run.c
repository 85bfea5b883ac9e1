/* For tests/cli/test_nm_ref.sh: makes a synthetic 2:4 pruning problem (weights W and the
 * Hessian H = X^T X of correlated inputs X, as tests/tools/gptq_run.c), runs Wanda and
 * SparseGPT (quant/nm_sparse.h) on it, and writes .npy files for the NumPy oracle
 * tests/ref/nm_ref.py:
 *
 *   nm_run OUTDIR [--rows R] [--cols C] [--seed S] [--block B] [--joint GROUP] [--sym]
 *
 *   W.npy f32 [R, C], H.npy f64 [C, C], wanda.npy f32 [R, C], sgpt.npy f32 [R, C];
 *   with --joint (SparseGPT quantizing onto w4 with that group): sgptq.npy f32 [R, C]
 *   (decoded), codes.npy u8 [R, C], scales.npy u16 [R, G], zeros.npy u8 [R, G];
 *   meta.json the options.
 * SparseGPT also runs on 1 and on 2 threads: different bytes are an error (exit 1). */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/error.h"
#include "../../quant/nm_sparse.h"
#include "npy.h"

typedef struct {
    const char *out;
    long rows, cols, seed, block;
    int joint;
    bool sym;
} run_args;

static int parse_args(int argc, char **argv, run_args *a)
{
    *a = (run_args){.rows = 96, .cols = 256, .seed = 1};
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(k, "--sym"))
            a->sym = true;
        else if (k[0] != '-' && !a->out)
            a->out = k;
        else if (!v)
            return -1;
        else if (!strcmp(k, "--rows"))
            a->rows = atol(argv[++i]);
        else if (!strcmp(k, "--cols"))
            a->cols = atol(argv[++i]);
        else if (!strcmp(k, "--seed"))
            a->seed = atol(argv[++i]);
        else if (!strcmp(k, "--block"))
            a->block = atol(argv[++i]);
        else if (!strcmp(k, "--joint"))
            a->joint = atoi(argv[++i]);
        else
            return -1;
    }
    return a->out && a->rows > 0 && a->cols > 0 && a->cols % 4 == 0 && (!a->joint || a->cols % a->joint == 0) ? 0
                                                                                                              : -1;
}

static uint64_t rng_state;

static double uniform01(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return ((double)(rng_state >> 11) + 0.5) / 9007199254740992.0;
}

static double gaussian(void)
{
    return sqrt(-2.0 * log(uniform01())) * cos(6.283185307179586 * uniform01());
}

/* X = Z B + 0.3 N, column c scaled by exp(u_c), u_c uniform in [-1, 1]; H = X^T X. */
static int make_hessian(long c, double *H)
{
    long n = 1024, k = 48;
    double *Z = malloc((size_t)(n * k) * sizeof *Z), *B = malloc((size_t)(k * c) * sizeof *B);
    double *X = malloc((size_t)(n * c) * sizeof *X), *scale = malloc((size_t)c * sizeof *scale);
    int rc = Z && B && X && scale ? 0 : -1;
    if (rc == 0) {
        for (long i = 0; i < n * k; i++)
            Z[i] = gaussian();
        for (long i = 0; i < k * c; i++)
            B[i] = gaussian() / sqrt((double)k);
        for (long j = 0; j < c; j++)
            scale[j] = exp(2.0 * uniform01() - 1.0);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)c, (int)k, 1.0, Z, (int)k, B, (int)c, 0.0,
                    X, (int)c);
        for (long i = 0; i < n; i++)
            for (long j = 0; j < c; j++)
                X[i * c + j] = (X[i * c + j] + 0.3 * gaussian()) * scale[j];
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)c, (int)c, (int)n, 1.0, X, (int)c, X, (int)c, 0.0,
                    H, (int)c);
        for (long i = 0; i < c; i++)
            for (long j = 0; j < i; j++)
                H[i * c + j] = H[j * c + i] = 0.5 * (H[i * c + j] + H[j * c + i]);
    }
    free(Z), free(B), free(X), free(scale);
    return rc;
}

/* SparseGPT on a copy of W with t threads. */
static int sparsegpt(const run_args *a, const float *W, const double *H, int t, float *out, uint8_t *data,
                     uint16_t *scales, uint8_t *zeros)
{
    mp_encoding w4 = {.kind = MP_ENC_W4, .group = a->joint, .sym = a->sym};
    mp_sparsegpt_options o = {.block = (int)a->block, .w4 = a->joint ? &w4 : NULL};
    mp_error err = {0};
    memcpy(out, W, (size_t)(a->rows * a->cols) * sizeof *W);
    omp_set_num_threads(t);
    if (mp_nm_sparsegpt(a->rows, a->cols, out, H, &o, data, scales, zeros, NULL, &err) != MP_OK) {
        fprintf(stderr, "nm_run: %s\n", err.msg);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    run_args a;
    if (parse_args(argc, argv, &a) != 0) {
        fprintf(stderr, "usage: nm_run OUTDIR [--rows R] [--cols C] [--seed S] [--block B] [--joint G] [--sym]\n");
        return 2;
    }
    rng_state = 0x9E3779B97F4A7C15ull ^ (uint64_t)a.seed;
    long R = a.rows, C = a.cols, G = a.joint ? C / a.joint : 1;
    size_t n = (size_t)(R * C);
    float *W = malloc(n * 4), *wanda = malloc(n * 4), *s1 = malloc(n * 4), *s2 = malloc(n * 4);
    double *H = malloc((size_t)(C * C) * sizeof *H);
    uint8_t *d1 = calloc(n / 2 + 1, 1), *d2 = calloc(n / 2 + 1, 1), *z1 = calloc((size_t)(R * G), 1);
    uint8_t *z2 = calloc((size_t)(R * G), 1), *codes = malloc(n);
    uint16_t *sc1 = calloc((size_t)(R * G), 2), *sc2 = calloc((size_t)(R * G), 2);
    if (!W || !wanda || !s1 || !s2 || !H || !d1 || !d2 || !z1 || !z2 || !codes || !sc1 || !sc2 || make_hessian(C, H))
        return 3;
    for (size_t i = 0; i < n; i++)
        W[i] = (float)(0.02 * gaussian());
    memcpy(wanda, W, n * 4);
    mp_nm_wanda(R, C, wanda, H);
    if (sparsegpt(&a, W, H, 1, s1, d1, sc1, z1) || sparsegpt(&a, W, H, 2, s2, d2, sc2, z2))
        return 2;
    if (memcmp(s1, s2, n * 4) || memcmp(d1, d2, n / 2) || memcmp(sc1, sc2, (size_t)(R * G) * 2) ||
        memcmp(z1, z2, (size_t)(R * G))) {
        fprintf(stderr, "nm_run: SparseGPT differs between 1 and 2 threads\n");
        return 1;
    }
    int bad = write_npy(a.out, "W.npy", "<f4", R, C, W, 4) | write_npy(a.out, "H.npy", "<f8", C, C, H, 8) |
              write_npy(a.out, "wanda.npy", "<f4", R, C, wanda, 4);
    if (a.joint) {
        for (size_t i = 0; i < n; i++)
            codes[i] = (i & 1) ? d1[i / 2] >> 4 : d1[i / 2] & 15;
        if (a.sym)
            memset(z1, 8, (size_t)(R * G));
        bad |= write_npy(a.out, "sgptq.npy", "<f4", R, C, s1, 4) | write_npy(a.out, "codes.npy", "|u1", R, C, codes, 1) |
               write_npy(a.out, "scales.npy", "<u2", R, G, sc1, 2) | write_npy(a.out, "zeros.npy", "|u1", R, G, z1, 1);
    } else
        bad |= write_npy(a.out, "sgpt.npy", "<f4", R, C, s1, 4);
    char path[4096];
    snprintf(path, sizeof path, "%s/meta.json", a.out);
    FILE *f = fopen(path, "w");
    if (!f)
        return 3;
    fprintf(f, "{\"rows\": %ld, \"cols\": %ld, \"joint\": %d, \"sym\": %s, \"damp\": 0.01}\n", R, C, a.joint,
            a.sym ? "true" : "false");
    bad |= fclose(f) != 0;
    free(W), free(wanda), free(s1), free(s2), free(H), free(d1), free(d2), free(z1), free(z2), free(codes), free(sc1),
        free(sc2);
    return bad ? 3 : 0;
}
