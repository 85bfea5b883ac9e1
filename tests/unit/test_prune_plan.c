/* Tests for prune/prune_plan.c's merge assignment: a dropped expert goes into the kept
 * expert of its own group with the highest similarity (never across groups, even when a
 * kept expert of another group is more similar), ties to the lower id; a layer that was
 * not scored (MTP) merges nothing. Expected targets are worked out by hand below. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "../../prune/prune_plan.h"

enum { E = 8 };

static void set_sim(double *sim, int a, int b, double v)
{
    sim[a * E + b] = v;
    sim[b * E + a] = v;
}

static void test_merge_within_groups(void **state)
{
    (void)state;
    mp_routing r = {.n_experts = E, .top_k = 2, .n_group = 2, .topk_group = 1, .group_rule = MP_GROUPS_MAX};
    mp_prune_plan p;
    mp_error err = {0};
    assert_int_equal(mp_prune_plan_init(&p, &r, 4, 2, &err), MP_OK);
    /* group 0 = 0..3, group 1 = 4..7; keep the two most salient per group: 1, 2 and 5, 7 */
    const double sal[E] = {0.1, 0.9, 0.8, 0.2, 0.3, 0.7, 0.1, 0.6};
    mp_prune_plan_layer(&p, 0, 0, sal);
    mp_prune_plan_layer(&p, 1, 1, NULL);
    double sim[E * E];
    memset(sim, 0, sizeof sim);
    set_sim(sim, 0, 5, 0.99); /* most similar overall, but in the other group */
    set_sim(sim, 0, 2, 0.40);
    set_sim(sim, 0, 1, 0.30);
    set_sim(sim, 3, 1, 0.50); /* a tie: the lower id wins */
    set_sim(sim, 3, 2, 0.50);
    set_sim(sim, 4, 7, 0.20);
    set_sim(sim, 4, 5, -0.10);
    set_sim(sim, 6, 5, 0.60);
    mp_prune_plan_merge(&p, 0, sim);
    mp_prune_plan_merge(&p, 1, sim);
    const int want[E] = {2, -1, -1, 1, 7, -1, 5, -1};
    for (int e = 0; e < E; e++)
        assert_int_equal(p.layers[0].into[e], want[e]);
    assert_true(p.layers[0].into_similarity[0] == 0.40);
    assert_true(p.layers[0].into_similarity[6] == 0.60);
    for (int e = 0; e < E; e++) /* not scored: dropped outright */
        assert_int_equal(p.layers[1].into[e], -1);
    mp_prune_plan_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge_within_groups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
