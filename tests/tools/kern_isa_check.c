/* One SIMD instruction set against the portable kernels, both modes, every encoding
 * kind: a standalone check for builds without cmocka, e.g. arm64 under qemu:
 *   aarch64-linux-gnu-gcc -std=c11 -D_GNU_SOURCE -O2 -march=armv8.2-a+dotprod -fopenmp -static \
 *     tests/tools/kern_isa_check.c engine/kern*.c formats/encoding.c formats/ggml_blocks.c core/dtype.c \
 *     -lm -o kern_isa_check && qemu-aarch64 ./kern_isa_check neon
 * Exits 1 when an output differs from portable's by more than the f32 rounding bound
 * (exact) or 1e-4 of Σ|w·x| (fast; tests/unit/test_kernels.c has the derived bounds). */
#include "../../core/dtype.h"
#include "../../engine/kernels.h"
#include "../../formats/ggml_blocks.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static uint64_t st = 12345;
static uint64_t nx(void)
{
    st ^= st << 13;
    st ^= st >> 7;
    st ^= st << 17;
    return st;
}
int main(int argc, char **argv)
{
    const char *isa = argc > 1 ? argv[1] : "neon";
    const char *names[] = {"q4_0",   "w4g128", "w4g32-sym", "q4_k", "q5_k", "q8_0",      "q4_1",
                           "iq4_nl", "iq4_xs", "q6_k",      "bf16", "f16",  "fp8-block", "f32"};
    int bad = 0;
    printf("checking %s against portable\n", isa);
    for (size_t e = 0; e < sizeof names / sizeof *names; e++) {
        mp_packed w = {.rows = 37, .cols = 512};
        mp_encoding_parse(names[e], &w.enc);
        mp_enc_layout L;
        mp_encoding_layout(&w.enc, w.rows, w.cols, &L);
        uint8_t *raw = malloc(L.total);
        for (uint64_t i = 0; i < L.total; i++)
            raw[i] = (uint8_t)nx();
        uint64_t n = (uint64_t)(w.rows * w.cols);
        if (w.enc.kind == MP_ENC_F32)
            for (uint64_t i = 0; i < n; i++) {
                float v = (float)((int)(nx() % 2001) - 1000) / 1000;
                memcpy(raw + 4 * i, &v, 4);
            }
        else if (w.enc.kind == MP_ENC_BF16 || w.enc.kind == MP_ENC_F16)
            for (uint64_t i = 0; i < n; i++) {
                uint16_t h = w.enc.kind == MP_ENC_BF16 ? mp_f32_to_bf16((float)(nx() % 2001) / 1000 - 1)
                                                       : mp_f32_to_f16((float)(nx() % 2001) / 1000 - 1);
                raw[2 * i] = (uint8_t)h;
                raw[2 * i + 1] = (uint8_t)(h >> 8);
            }
        else if (w.enc.kind == MP_ENC_FP8) {
            for (uint64_t i = 0; i < n; i++)
                if ((raw[i] & 0x7f) == 0x7f)
                    raw[i] = 0;
            for (uint64_t i = 0; i < L.n_scales; i++) {
                float s = 0.01f;
                memcpy(raw + L.scales_offset + 4 * i, &s, 4);
            }
        } else if (w.enc.kind == MP_ENC_W4)
            for (uint64_t i = 0; i < L.n_scales; i++) {
                uint16_t h = mp_f32_to_f16(0.02f);
                raw[L.scales_offset + 2 * i] = (uint8_t)h;
                raw[L.scales_offset + 2 * i + 1] = (uint8_t)(h >> 8);
            }
        else {
            int S = mp_ggml_block_bytes(w.enc.kind), at = w.enc.kind == MP_ENC_Q6_K ? 208 : 0;
            uint16_t h = mp_f32_to_f16(0.02f);
            for (uint64_t b = 0; b < L.data_bytes / (uint64_t)S; b++) {
                raw[b * S + at] = (uint8_t)h;
                raw[b * S + at + 1] = (uint8_t)(h >> 8);
                if (w.enc.kind == MP_ENC_Q4_1 || w.enc.kind == MP_ENC_Q4_K || w.enc.kind == MP_ENC_Q5_K) {
                    raw[b * S + 2] = (uint8_t)h;
                    raw[b * S + 3] = (uint8_t)(h >> 8);
                }
            }
        }
        w.raw = raw;
        int64_t nt = 5;
        float *x = malloc(4 * nt * w.cols), *y1 = malloc(4 * nt * w.rows), *y2 = malloc(4 * nt * w.rows),
              *dec = malloc(4 * n);
        for (int64_t i = 0; i < nt * w.cols; i++)
            x[i] = (float)((int)(nx() % 2001) - 1000) / 1000;
        mp_encoding_decode_rows(&w.enc, w.rows, w.cols, raw, 0, w.rows, dec);
        for (int mode = 0; mode < 2; mode++) {
            mp_kern_force_isa("portable");
            mp_kern_matmul(&w, x, nt, y1, mode);
            if (mp_kern_force_isa(isa)) {
                printf("%s: not available here\n", isa);
                return 2;
            }
            mp_kern_matmul(&w, x, nt, y2, mode);
            double worst = 0;
            for (int64_t t = 0; t < nt; t++)
                for (int64_t r = 0; r < w.rows; r++) {
                    double mag = 0;
                    for (int64_t c = 0; c < w.cols; c++)
                        mag += fabs((double)dec[r * w.cols + c] * x[t * w.cols + c]);
                    double err = fabs((double)y1[t * w.rows + r] - y2[t * w.rows + r]) / (mag > 0 ? mag : 1);
                    if (err > worst)
                        worst = err;
                }
            double lim = mode == 0 ? 2.0 * (w.cols + 1) * 0x1p-24 : 1e-4;
            printf("%-10s %s max |isa-portable|/sum|wx| = %.2e (limit %.1e)%s\n", names[e], mode ? "fast " : "exact",
                   worst, lim, worst <= lim ? "" : "  FAIL");
            bad |= worst > lim;
        }
        free(raw);
        free(x);
        free(y1);
        free(y2);
        free(dec);
    }
    return bad;
}
