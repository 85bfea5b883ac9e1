/* For tests/cli/test_gptq_ref.sh: makes a synthetic GPTQ problem (weights W and the
 * Hessian H = X^T X of correlated calibration inputs X), runs mp_gptq_quantize on it and
 * writes everything as .npy files for the NumPy oracle tests/ref/gptq_ref.py:
 *
 *   gptq_run OUTDIR [--rows R] [--cols C] [--group G] [--sym] [--act-order] [--mse]
 *            [--block B] [--damp D] [--samples N] [--latent K] [--spread S] [--seed S]
 *            [--dead] [--threads T] [--no-write]
 *
 *   OUTDIR/W.npy        f32 [R, C]   the weights
 *   OUTDIR/H.npy        f64 [C, C]   the Hessian (sum x x^T, symmetric)
 *   OUTDIR/codes.npy    u8  [R, C]   the codes, natural column order, one per byte
 *   OUTDIR/scales.npy   u16 [R, G]   f16 bits
 *   OUTDIR/zeros.npy    u8  [R, G]   zero points (8 everywhere when symmetric)
 *   OUTDIR/dequant.npy  f32 [R, C]   the decoded weights, as returned
 *   OUTDIR/meta.json    the options, the loss, the RTN loss on the same data, timings
 *
 * X = Z B + 0.3 N with Z [N, K], N [N, C] standard normal and B [K, C] normal / sqrt(K)
 * (correlated columns, as real activations), then column c scaled by exp(S u_c), u_c
 * uniform in [-1, 1] (an uneven diag H; S = 0 leaves it even). --dead: columns 5, 42, 79, ...
 * (c % 37 == 5) get no input at all (diag H = 0). W is normal, sigma 0.02.
 * --no-write only prints the summary line (timing runs on large shapes). */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../core/error.h"
#include "../../quant/gptq.h"
#include "../../quant/w4.h"
#include "npy.h"

typedef struct {
    const char *out;
    long rows, cols, samples, latent, block, seed, threads;
    int group;
    double damp, spread;
    bool sym, act_order, mse, dead, write;
} run_args;

static int parse_args(int argc, char **argv, run_args *a)
{
    *a = (run_args){.rows = 256, .cols = 512, .samples = 2048, .latent = 64, .seed = 1, .group = 128,
                    .spread = 1.0, .write = true};
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(k, "--sym"))
            a->sym = true;
        else if (!strcmp(k, "--act-order"))
            a->act_order = true;
        else if (!strcmp(k, "--mse"))
            a->mse = true;
        else if (!strcmp(k, "--dead"))
            a->dead = true;
        else if (!strcmp(k, "--no-write"))
            a->write = false;
        else if (k[0] != '-' && !a->out)
            a->out = k;
        else if (!v)
            return -1;
        else {
            i++;
            if (!strcmp(k, "--rows"))
                a->rows = atol(v);
            else if (!strcmp(k, "--cols"))
                a->cols = atol(v);
            else if (!strcmp(k, "--group"))
                a->group = atoi(v);
            else if (!strcmp(k, "--block"))
                a->block = atol(v);
            else if (!strcmp(k, "--damp"))
                a->damp = atof(v);
            else if (!strcmp(k, "--samples"))
                a->samples = atol(v);
            else if (!strcmp(k, "--latent"))
                a->latent = atol(v);
            else if (!strcmp(k, "--spread"))
                a->spread = atof(v);
            else if (!strcmp(k, "--seed"))
                a->seed = atol(v);
            else if (!strcmp(k, "--threads"))
                a->threads = atol(v);
            else
                return -1;
        }
    }
    bool ok = a->out && a->rows > 0 && a->cols > 0 && a->samples > 0 && a->latent > 0 &&
              (a->group == 32 || a->group == 64 || a->group == 128) && a->cols % a->group == 0;
    return ok ? 0 : -1;
}

/* ---- the synthetic problem (xorshift64, fixed seed) ---- */

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

/* H = X^T X, X as described at the top; exactly symmetric. */
static int make_hessian(const run_args *a, double *H)
{
    long n = a->samples, k = a->latent, c = a->cols;
    double *Z = malloc((size_t)(n * k) * sizeof *Z), *B = malloc((size_t)(k * c) * sizeof *B);
    double *X = malloc((size_t)(n * c) * sizeof *X), *scale = malloc((size_t)c * sizeof *scale);
    if (!Z || !B || !X || !scale) {
        free(Z), free(B), free(X), free(scale);
        return -1;
    }
    for (long i = 0; i < n * k; i++)
        Z[i] = gaussian();
    for (long i = 0; i < k * c; i++)
        B[i] = gaussian() / sqrt((double)k);
    for (long j = 0; j < c; j++)
        scale[j] = exp(a->spread * (2.0 * uniform01() - 1.0));
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)c, (int)k, 1.0, Z, (int)k, B, (int)c, 0.0,
                X, (int)c);
    for (long i = 0; i < n; i++)
        for (long j = 0; j < c; j++)
            X[i * c + j] = a->dead && j % 37 == 5 ? 0.0 : (X[i * c + j] + 0.3 * gaussian()) * scale[j];
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)c, (int)c, (int)n, 1.0, X, (int)c, X, (int)c, 0.0, H,
                (int)c);
    for (long i = 0; i < c; i++)
        for (long j = 0; j < i; j++)
            H[i * c + j] = H[j * c + i] = 0.5 * (H[i * c + j] + H[j * c + i]);
    free(Z), free(B), free(X), free(scale);
    return 0;
}

/* ---- run ---- */

typedef struct {
    float *W, *dequant;
    double *H;
    uint8_t *data, *codes, *zeros;
    uint16_t *scales;
} problem;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* tr(dW H dW^T) of plain rounding (RTN grids) of W, for the summary. */
static double rtn_loss(const run_args *a, const mp_encoding *e, const problem *p)
{
    long R = a->rows, C = a->cols, G = C / a->group;
    uint8_t *d = malloc((size_t)(R * C / 2)), *z = malloc((size_t)(R * G));
    uint16_t *s = malloc((size_t)(R * G) * sizeof *s);
    double total = NAN;
    if (d && z && s) {
        mp_w4_quantize_rows(e, R, C, p->W, 0, R, NULL, d, s, z);
        total = 0.0;
        double *dw = malloc((size_t)C * sizeof *dw);
        for (long r = 0; dw && r < R; r++) {
            for (long c = 0; c < C; c++) {
                uint8_t q = (c & 1) ? d[(r * C + c) / 2] >> 4 : d[(r * C + c) / 2] & 15;
                long k = r * G + c / a->group;
                dw[c] = (double)mp_w4_decode(q, s[k], a->sym ? 8 : z[k]) - (double)p->W[r * C + c];
            }
            for (long i = 0; i < C; i++) {
                double acc = 0.0;
                for (long j = 0; j < C; j++)
                    acc += p->H[i * C + j] * dw[j];
                total += dw[i] * acc;
            }
        }
        free(dw);
    }
    free(d), free(z), free(s);
    return total;
}

static int write_outputs(const run_args *a, const problem *p, double loss, double loss_rtn, bool fell_back,
                         double seconds)
{
    long R = a->rows, C = a->cols, G = C / a->group;
    for (long i = 0; i < R * C; i++)
        p->codes[i] = (i & 1) ? p->data[i / 2] >> 4 : p->data[i / 2] & 15;
    if (a->sym)
        memset(p->zeros, 8, (size_t)(R * G));
    int bad = write_npy(a->out, "W.npy", "<f4", R, C, p->W, 4) | write_npy(a->out, "H.npy", "<f8", C, C, p->H, 8) |
              write_npy(a->out, "codes.npy", "|u1", R, C, p->codes, 1) |
              write_npy(a->out, "scales.npy", "<u2", R, G, p->scales, 2) |
              write_npy(a->out, "zeros.npy", "|u1", R, G, p->zeros, 1) |
              write_npy(a->out, "dequant.npy", "<f4", R, C, p->dequant, 4);
    char path[4096];
    snprintf(path, sizeof path, "%s/meta.json", a->out);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f,
            "{\"rows\": %ld, \"cols\": %ld, \"group\": %d, \"sym\": %s, \"act_order\": %s, \"mse_grid\": %s, "
            "\"block\": %ld, \"damp\": %.17g, \"loss\": %.17g, \"loss_rtn\": %.17g, \"fell_back\": %s, "
            "\"seconds\": %.3f}\n",
            R, C, a->group, a->sym ? "true" : "false", a->act_order ? "true" : "false", a->mse ? "true" : "false",
            a->block, a->damp, loss, loss_rtn, fell_back ? "true" : "false", seconds);
    return (fclose(f) | bad) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    run_args a;
    if (parse_args(argc, argv, &a) != 0) {
        fprintf(stderr, "usage: gptq_run OUTDIR [--rows R] [--cols C] [--group 32|64|128] [--sym] [--act-order] "
                        "[--mse] [--block B] [--damp D] [--samples N] [--latent K] [--spread S] [--seed S] "
                        "[--dead] [--threads T] [--no-write]\n");
        return 2;
    }
    openblas_set_num_threads(1); /* as mp_linalg_init: OpenBLAS inside our OpenMP tasks */
    if (a.threads > 0)
        omp_set_num_threads((int)a.threads);
    rng_state = 0x9e3779b97f4a7c15ull ^ (uint64_t)a.seed;
    long R = a.rows, C = a.cols, G = C / a.group;
    problem p = {
        .W = malloc((size_t)(R * C) * sizeof(float)), .dequant = malloc((size_t)(R * C) * sizeof(float)),
        .H = malloc((size_t)(C * C) * sizeof(double)), .data = malloc((size_t)(R * C / 2)),
        .codes = malloc((size_t)(R * C)), .zeros = malloc((size_t)(R * G)),
        .scales = malloc((size_t)(R * G) * sizeof(uint16_t)),
    };
    if (!p.W || !p.dequant || !p.H || !p.data || !p.codes || !p.zeros || !p.scales || make_hessian(&a, p.H) != 0) {
        fprintf(stderr, "gptq_run: out of memory\n");
        return 3;
    }
    for (long i = 0; i < R * C; i++)
        p.W[i] = (float)(0.02 * gaussian());

    mp_encoding e = {.kind = MP_ENC_W4, .group = a.group, .sym = a.sym};
    mp_gptq_options opt = {.damp = a.damp, .block = (int)a.block, .act_order = a.act_order, .mse_grid = a.mse};
    mp_error err = {0};
    double loss = 0.0, t0 = now();
    bool fell_back = false;
    int rc = mp_gptq_quantize(&e, R, C, p.W, p.H, &opt, p.data, p.scales, p.zeros, p.dequant, &loss, &fell_back, &err);
    double seconds = now() - t0;
    if (rc != MP_OK) {
        fprintf(stderr, "gptq_run: %s\n", err.msg);
        return rc;
    }
    double loss_rtn = a.write ? rtn_loss(&a, &e, &p) : NAN;
    printf("rows %ld cols %ld group %d %s%s%s: loss %.6g rtn %.6g ratio %.4f fell_back %d seconds %.3f\n", R, C,
           a.group, a.sym ? "sym" : "asym", a.act_order ? " act_order" : "", a.mse ? " mse" : "", loss, loss_rtn,
           loss / loss_rtn, (int)fell_back, seconds);
    if (a.write && write_outputs(&a, &p, loss, loss_rtn, fell_back, seconds) != 0) {
        fprintf(stderr, "gptq_run: cannot write into %s\n", a.out);
        return 3;
    }
    free(p.W), free(p.dequant), free(p.H), free(p.data), free(p.codes), free(p.zeros), free(p.scales);
    return 0;
}
