/* Tests for prune/align.c: the assignment is optimal (its total equals the best over all
 * permutations, enumerated, on random matrices with and without ties), and aligning an
 * expert whose neurons are a shuffled, slightly perturbed copy of another recovers the
 * shuffle on gate and up rows, their biases and down columns. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "../../engine/linalg.h"
#include "../../prune/align.h"
#include "random.h"

/* The least total over all permutations of 0..n-1 (Heap's algorithm, n <= 8). */
static double brute_best(int n, const double *cost)
{
    int perm[8], c[8] = {0};
    for (int i = 0; i < n; i++)
        perm[i] = i;
    double best = 0;
    for (int i = 0; i < n; i++)
        best += cost[i * n + perm[i]];
    for (int i = 1; i < n;) {
        if (c[i] < i) {
            int j = i % 2 ? c[i] : 0, t = perm[j];
            perm[j] = perm[i];
            perm[i] = t;
            double total = 0;
            for (int r = 0; r < n; r++)
                total += cost[r * n + perm[r]];
            best = total < best ? total : best;
            c[i]++;
            i = 1;
        } else {
            c[i++] = 0;
        }
    }
    return best;
}

static void test_assignment_is_optimal(void **state)
{
    (void)state;
    rng r = {77};
    for (int trial = 0; trial < 300; trial++) {
        int n = 1 + trial % 8;
        double cost[64];
        for (int i = 0; i < n * n; i++) /* every third trial on a coarse grid: many ties */
            cost[i] = trial % 3 == 0 ? (double)(int)(4 * uniform01(&r)) : 10 * gaussian(&r);
        int match[8];
        mp_error err = {0};
        assert_int_equal(mp_assign_min_cost(n, cost, match, &err), MP_OK);
        int seen[8] = {0};
        double total = 0;
        for (int i = 0; i < n; i++) {
            assert_true(match[i] >= 0 && match[i] < n);
            assert_int_equal(seen[match[i]]++, 0);
            total += cost[i * n + match[i]];
        }
        double best = brute_best(n, cost);
        if (total > best + 1e-9)
            fail_msg("trial %d (n = %d): total %.9g, the best permutation %.9g", trial, n, total, best);
    }
}

static void test_shuffled_expert_is_realigned(void **state)
{
    (void)state;
    enum { I = 48, H = 20 };
    rng r = {5};
    float *kept[5], *member[5];
    int64_t sizes[5] = {I * H, I * H, H * I, I, I};
    for (int p = 0; p < 5; p++) {
        kept[p] = malloc(sizeof(float) * (size_t)sizes[p]);
        member[p] = malloc(sizeof(float) * (size_t)sizes[p]);
        assert_true(kept[p] && member[p]);
        fill_gaussian(&r, kept[p], sizes[p], 1.0);
    }
    int shuffle[I];
    for (int i = 0; i < I; i++)
        shuffle[i] = i;
    for (int i = I - 1; i > 0; i--) {
        int j = (int)(uniform01(&r) * (i + 1)), t = shuffle[i];
        shuffle[i] = shuffle[j];
        shuffle[j] = t;
    }
    /* member neuron shuffle[a] is kept neuron a, plus 10% noise */
    for (int a = 0; a < I; a++) {
        int b = shuffle[a];
        for (int h = 0; h < H; h++) {
            member[0][b * H + h] = kept[0][a * H + h] + 0.1f * (float)gaussian(&r);
            member[1][b * H + h] = kept[1][a * H + h] + 0.1f * (float)gaussian(&r);
            member[2][h * I + b] = kept[2][h * I + a] + 0.1f * (float)gaussian(&r);
        }
        member[3][b] = kept[3][a] + 1000; /* biases do not vote, they only follow */
        member[4][b] = kept[4][a] - 1000;
    }
    mp_expert_parts ep = {.gate = 0, .up = 1, .down = 2, .gate_bias = 3, .up_bias = 4, .inter = I, .hidden = H};
    mp_error err = {0};
    assert_int_equal(mp_align_expert(&ep, kept, member, &err), MP_OK);
    for (int a = 0; a < I; a++) {
        for (int h = 0; h < H; h++) {
            assert_true(fabsf(member[0][a * H + h] - kept[0][a * H + h]) < 0.6f);
            assert_true(fabsf(member[2][h * I + a] - kept[2][h * I + a]) < 0.6f);
        }
        assert_float_equal(member[3][a], kept[3][a] + 1000, 1e-3);
        assert_float_equal(member[4][a], kept[4][a] - 1000, 1e-3);
    }
    for (int p = 0; p < 5; p++) {
        free(kept[p]);
        free(member[p]);
    }
}

int main(void)
{
    mp_linalg_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_assignment_is_optimal),
        cmocka_unit_test(test_shuffled_expert_is_realigned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
