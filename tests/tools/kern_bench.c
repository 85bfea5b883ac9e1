/* For bench/bench_kernels.sh: the packed-weight kernels' speed beside this machine's
 * memory bandwidth, measured in the same run.
 *
 *   kern_bench [ENCODING ...]   (default: every encoding)
 *   kern_bench --bandwidth      the bandwidth line only
 *
 * Prints the read bandwidth (a sum over a 1 GiB buffer) at 1 and 2 threads, then per
 * encoding: GB/s of weight bytes streamed by the n = 1 kernel (a matrix of 4096 columns
 * and ~512 MiB, well past the caches) at 1 and 2 threads and its share of the
 * bandwidth, and prefill GFLOP/s at n = 512 on a 2048 x 4096 matrix at 2 threads. */
#include <omp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../core/dtype.h"
#include "../../engine/kernels.h"
#include "../../formats/ggml_blocks.h"

#define COLS 4096
#define STREAM_BYTES (512ull << 20)

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

/* Random codes with finite scales (NaN or subnormal operands could change the speed). */
static void fill(const mp_encoding *e, int64_t rows, uint8_t *raw)
{
    mp_enc_layout L;
    mp_encoding_layout(e, rows, COLS, &L);
    uint64_t s = 88172645463325252ull;
    for (uint64_t i = 0; i + 8 <= L.total; i += 8) {
        uint64_t v = next(&s);
        memcpy(raw + i, &v, 8);
    }
    uint64_t n = (uint64_t)rows * COLS;
    uint16_t half = mp_f32_to_f16(0.01f);
    if (e->kind == MP_ENC_F32)
        for (uint64_t i = 0; i < n; i++) {
            float v = (float)(int)(next(&s) % 2001 - 1000) / 1000;
            memcpy(raw + 4 * i, &v, 4);
        }
    else if (e->kind == MP_ENC_BF16 || e->kind == MP_ENC_F16)
        for (uint64_t i = 0; i < n; i++)
            put16(raw + 2 * i, e->kind == MP_ENC_BF16 ? (uint16_t)(0x3c00 | (next(&s) & 0x80ff)) : half ^ (uint16_t)(next(&s) & 0x83ff));
    else if (e->kind == MP_ENC_FP8)
        for (uint64_t i = 0; i < L.n_scales; i++) {
            float v = 0.01f;
            memcpy(raw + L.scales_offset + 4 * i, &v, 4);
        }
    else if (e->kind == MP_ENC_W4)
        for (uint64_t i = 0; i < L.n_scales; i++)
            put16(raw + L.scales_offset + 2 * i, half);
    else {
        int S = mp_ggml_block_bytes(e->kind), at = e->kind == MP_ENC_Q6_K ? 208 : 0;
        for (uint64_t b = 0; b < L.data_bytes / (uint64_t)S; b++) {
            put16(raw + b * S + at, half);
            if (e->kind == MP_ENC_Q4_1 || e->kind == MP_ENC_Q4_K || e->kind == MP_ENC_Q5_K)
                put16(raw + b * S + 2, half);
        }
    }
}

/* Best of 3 passes over n words; four independent sums so the loop is limited by
 * memory, not by one addition chain. */
static double read_bandwidth(const uint64_t *buf, size_t n, int threads)
{
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        uint64_t sum = 0;
        double t = now();
#pragma omp parallel for reduction(+ : sum) num_threads(threads) schedule(static)
        for (size_t i = 0; i < n; i += 4)
            sum += (buf[i] + buf[i + 1]) ^ (buf[i + 2] + buf[i + 3]);
        t = now() - t;
        if (sum == 42)
            printf(" ");
        best = best > 8.0 * (double)n / t ? best : 8.0 * (double)n / t;
    }
    return best / 1e9;
}

/* Best-of-3 seconds of one call. */
static double time_call(const mp_packed *w, const float *x, int64_t n, float *y, mp_kern_mode mode)
{
    double best = 1e30;
    mp_kern_matmul(w, x, n, y, mode); /* warm-up */
    for (int rep = 0; rep < 3; rep++) {
        double t = now();
        mp_kern_matmul(w, x, n, y, mode);
        t = now() - t;
        best = t < best ? t : best;
    }
    return best;
}

static void bench_encoding(const char *name, const double bw[2], uint8_t *raw, const float *x, float *y)
{
    mp_packed w = {.cols = COLS, .raw = raw};
    if (mp_encoding_parse(name, &w.enc) != 0) {
        fprintf(stderr, "kern_bench: unknown encoding %s\n", name);
        exit(2);
    }
    mp_enc_layout L;
    mp_encoding_layout(&w.enc, 1, COLS, &L);
    w.rows = (int64_t)(STREAM_BYTES / L.total);
    mp_encoding_layout(&w.enc, w.rows, COLS, &L);
    fill(&w.enc, w.rows, raw);
    printf("%-12s", name);
    for (int th = 1; th <= 2; th++) {
        omp_set_num_threads(th);
        double gbs = (double)L.total / time_call(&w, x, 1, y, MP_KERN_FAST) / 1e9;
        printf("  n=1 %dT %6.2f GB/s (%3.0f%%)", th, gbs, 100 * gbs / bw[th - 1]);
    }
    w.rows = 2048;
    double flop = 2.0 * (double)w.rows * COLS * 512;
    printf("  n=512 2T fast %6.1f GFLOP/s", flop / time_call(&w, x, 512, y, MP_KERN_FAST) / 1e9);
    printf("  exact %6.1f\n", flop / time_call(&w, x, 512, y, MP_KERN_EXACT) / 1e9);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    static const char *const all[] = {"q4_0", "w4g128", "w4g128-sym", "w4g32", "q4_k", "q8_0", "q4_1", "q5_k",
                                      "q6_k", "iq4_nl", "iq4_xs", "fp8-block", "bf16", "f16", "f32"};
    size_t words = (1ull << 30) / 8;
    uint64_t *buf = malloc(words * 8);
    uint8_t *raw = malloc(STREAM_BYTES + 4096);
    float *x = malloc(sizeof(float) * 512 * COLS), *y = malloc(sizeof(float) * (STREAM_BYTES / 1024 + 2048 * 512));
    if (!buf || !raw || !x || !y) {
        fprintf(stderr, "kern_bench: out of memory\n");
        return 3;
    }
    for (size_t i = 0; i < words; i++)
        buf[i] = i * 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < 512 * COLS; i++)
        x[i] = (float)((int)(i * 2654435761u % 2001) - 1000) / 1000;
    double bw[2] = {read_bandwidth(buf, words, 1), read_bandwidth(buf, words, 2)};
    free(buf);
    printf("isa %s  memory read bandwidth: 1T %.2f GB/s  2T %.2f GB/s\n", mp_kern_isa(), bw[0], bw[1]);
    bool bandwidth_only = argc > 1 && strcmp(argv[1], "--bandwidth") == 0;
    if (bandwidth_only)
        ; /* the bandwidth line is all that is asked for */
    else if (argc > 1)
        for (int i = 1; i < argc; i++)
            bench_encoding(argv[i], bw, raw, x, y);
    else
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
            bench_encoding(all[i], bw, raw, x, y);
    free(raw);
    free(x);
    free(y);
    return 0;
}
