/* Tests for the pieces calibration is built from: the Hessian accumulator (against a
 * plain double loop), the stage (bytes in, the same bytes out), and the --bits
 * allocation (against an exhaustive search over every choice on small instances). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../engine/linalg.h"
#include "../../quant/bit_plan.h"
#include "../../quant/hessian.h"
#include "../../quant/stage.h"

static uint64_t state = 88172645463325252ull;

static double uniform01(void)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return ((double)(state >> 11) + 0.5) / 9007199254740992.0;
}

static void test_hessian_matches_double_loop(void **unused)
{
    (void)unused;
    enum { N = 700, D = 48 };
    float *x = malloc(N * D * sizeof *x), w[N];
    for (int i = 0; i < N * D; i++)
        x[i] = (float)(uniform01() * 4 - 2) * (i % D == 3 ? 30.0f : 1.0f);
    for (int r = 0; r < N; r++)
        w[r] = (float)uniform01();
    mp_hessian H, Hw;
    mp_error err = {0};
    assert_int_equal(mp_hessian_init(&H, D, &err), MP_OK);
    assert_int_equal(mp_hessian_init(&Hw, D, &err), MP_OK);
    assert_int_equal(mp_hessian_add(&H, x, 300, &err), MP_OK); /* in two calls: sums carry over */
    assert_int_equal(mp_hessian_add(&H, x + 300 * D, N - 300, &err), MP_OK);
    assert_int_equal(mp_hessian_add_weighted(&Hw, x, w, N, &err), MP_OK);
    double worst = 0, worst_w = 0;
    for (int i = 0; i < D; i++)
        for (int j = 0; j < D; j++) {
            double h = 0, hw = 0;
            for (int r = 0; r < N; r++) {
                h += (double)x[r * D + i] * x[r * D + j];
                hw += (double)w[r] * w[r] * x[r * D + i] * x[r * D + j];
            }
            double scale = sqrt(H.h[i * D + i] * H.h[j * D + j]) + 1e-30;
            worst = fmax(worst, fabs(H.h[i * D + j] - h) / scale);
            worst_w = fmax(worst_w, fabs(Hw.h[i * D + j] - hw) / scale);
        }
    assert_true(worst < 1e-6);
    assert_true(worst_w < 1e-6);
    assert_int_equal(H.rows, N);
    float ms[D], ma[D];
    mp_hessian_mean_square(&H, ms);
    mp_hessian_mean_abs(&H, ma);
    double sq = 0, ab = 0;
    for (int r = 0; r < N; r++) {
        sq += (double)x[r * D + 3] * x[r * D + 3];
        ab += fabs(x[r * D + 3]);
    }
    assert_true(fabs(ms[3] - sq / N) < 1e-4 * sq / N);
    assert_true(fabs(ma[3] - ab / N) < 1e-4 * ab / N);
    /* row losses: e H e^T of one row equals the squared output error over the rows */
    float W[D], Dq[D];
    for (int j = 0; j < D; j++) {
        W[j] = (float)uniform01();
        Dq[j] = W[j] + (float)(uniform01() - 0.5) * 0.01f;
    }
    double loss, direct = 0;
    mp_hessian_row_losses(&H, W, Dq, 1, &loss);
    for (int r = 0; r < N; r++) {
        double y = 0;
        for (int j = 0; j < D; j++)
            y += ((double)Dq[j] - W[j]) * x[r * D + j];
        direct += y * y;
    }
    assert_true(fabs(loss - direct) < 1e-6 * direct);
    mp_hessian_free(&H);
    mp_hessian_free(&Hw);
    free(x);
}

static void test_stage_round_trip(void **unused)
{
    (void)unused;
    char path[] = "/tmp/moepack-stage-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    mp_stage s;
    mp_error err = {0};
    assert_int_equal(mp_stage_open(&s, path, &err), MP_OK);
    uint8_t a[100], b[7];
    for (int i = 0; i < 100; i++)
        a[i] = (uint8_t)(i * 7);
    memset(b, 0xab, sizeof b);
    mp_encoding enc = {.kind = MP_ENC_W4, .group = 32};
    assert_int_equal(mp_stage_put(&s, "layers.0.attn.q", &enc, a, 60, a + 60, 40, &err), MP_OK);
    assert_int_equal(mp_stage_put(&s, "layers.0.attn.k", &enc, b, 7, NULL, 0, &err), MP_OK);
    assert_int_equal(mp_stage_put(&s, "layers.0.attn.q", &enc, b, 3, NULL, 0, &err), MP_OK); /* replaced */
    const mp_staged *q = mp_stage_find(&s, "layers.0.attn.q"), *k = mp_stage_find(&s, "layers.0.attn.k");
    assert_non_null(q);
    assert_non_null(k);
    assert_null(mp_stage_find(&s, "layers.0.attn.v"));
    assert_int_equal(q->len, 3);
    assert_int_equal(k->len, 7);
    assert_int_equal(s.n, 2);
    mp_stage_close(&s);
    assert_int_equal(access(path, F_OK), -1); /* the scratch file is gone */
}

/* The least total loss within the budget, by dynamic programming over the bytes
 * (every item's bytes are multiples of UNIT here). */
enum { UNIT = 125 };

static double optimum(const mp_bit_item *items, int n, uint64_t budget)
{
    int64_t cap = (int64_t)(budget / UNIT);
    double *best = malloc((size_t)(cap + 1) * sizeof *best), *next = malloc((size_t)(cap + 1) * sizeof *next);
    for (int64_t b = 0; b <= cap; b++)
        best[b] = 0;
    for (int i = 0; i < n; i++) {
        for (int64_t b = 0; b <= cap; b++) {
            next[b] = INFINITY;
            for (int k = 0; k < items[i].n_options; k++) {
                int64_t u = (int64_t)(items[i].bytes[k] / UNIT);
                if (u <= b && best[b - u] + items[i].loss[k] < next[b])
                    next[b] = best[b - u] + items[i].loss[k];
            }
        }
        double *t = best;
        best = next;
        next = t;
    }
    double v = best[cap];
    free(best);
    free(next);
    return v;
}

/* Realistic instances (40 tensors, losses falling about 4x per extra bit): the plan
 * fits the budget, within 1 % of the optimum on average and 5 % at worst. */
static void test_bit_allocation_near_optimal(void **unused)
{
    (void)unused;
    int cases = 100;
    double worst = 1, sum = 0;
    for (int t = 0; t < cases; t++) {
        enum { N = 40 };
        mp_bit_item items[N];
        uint64_t least = 0, most = 0;
        for (int i = 0; i < N; i++) {
            mp_bit_item *it = &items[i];
            memset(it, 0, sizeof *it);
            it->n_options = 4;
            it->params = 8000 * (1 + (int64_t)(uniform01() * 8));
            double bits[4] = {4.125, 4.25, 4.5, 8.0}, base = uniform01() * 100;
            for (int k = 0; k < 4; k++) {
                it->bytes[k] = (uint64_t)(bits[k] * (double)it->params / 8);
                it->loss[k] = base * pow(2.0, -2.0 * (bits[k] - 4)) * (0.8 + 0.4 * uniform01());
            }
            least += it->bytes[0];
            most += it->bytes[3];
        }
        uint64_t budget = least + (uint64_t)((double)(most - least) * uniform01() * 0.5);
        mp_error err = {0};
        assert_int_equal(mp_bit_allocate(items, N, budget, &err), MP_OK);
        uint64_t used = 0;
        double loss = 0;
        for (int i = 0; i < N; i++) {
            used += items[i].bytes[items[i].choice];
            loss += items[i].loss[items[i].choice];
        }
        assert_true(used <= budget);
        double ratio = loss / optimum(items, N, budget);
        worst = fmax(worst, ratio);
        sum += ratio;
    }
    printf("bit allocation: mean %.5f, worst %.4f x the optimum over %d instances of 40 tensors\n", sum / cases,
           worst, cases);
    assert_true(worst < 1.05);
    assert_true(sum / cases < 1.01);
}

static void test_bit_allocation_rejects_impossible_budget(void **unused)
{
    (void)unused;
    mp_bit_item it = {.n_options = 2, .bytes = {100, 200}, .loss = {2, 1}, .params = 200};
    mp_error err = {0};
    assert_int_equal(mp_bit_allocate(&it, 1, 99, &err), MP_EXIT_INPUT);
    assert_non_null(strstr(err.msg, "4.000 bits per weight"));
    assert_int_equal(mp_bit_allocate(&it, 1, 200, &err), MP_OK);
    assert_int_equal(it.choice, 1);
}

int main(void)
{
    mp_linalg_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hessian_matches_double_loop),
        cmocka_unit_test(test_stage_round_trip),
        cmocka_unit_test(test_bit_allocation_near_optimal),
        cmocka_unit_test(test_bit_allocation_rejects_impossible_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
