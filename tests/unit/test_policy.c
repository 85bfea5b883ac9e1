/* Tests for quant/policy's class of a canonical name (docs/FORMAT.md "Tensor names"):
 * every name of the table, as convert's plan classes them (the CLI test
 * test_quant.sh compares whole packs of every family with convert's), and names that
 * are not canonical. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../quant/policy.h"

static const struct {
    const char *name;
    mp_tensor_class cls;
} canonical[] = {
    {"embed", MP_CLASS_EMBED},
    {"lm_head", MP_CLASS_HEAD},
    {"final_norm", MP_CLASS_NORM},
    {"layers.0.input_norm", MP_CLASS_NORM},
    {"layers.12.post_attn_norm", MP_CLASS_NORM},
    {"layers.3.attn.q", MP_CLASS_ATTN},
    {"layers.3.attn.k", MP_CLASS_ATTN},
    {"layers.3.attn.v", MP_CLASS_ATTN},
    {"layers.3.attn.o", MP_CLASS_ATTN},
    {"layers.3.attn.q_a", MP_CLASS_ATTN},
    {"layers.3.attn.q_b", MP_CLASS_ATTN},
    {"layers.3.attn.kv_a", MP_CLASS_ATTN},
    {"layers.3.attn.kv_b", MP_CLASS_ATTN},
    {"layers.3.attn.q.bias", MP_CLASS_NORM},
    {"layers.3.attn.q_a_norm", MP_CLASS_NORM},
    {"layers.3.attn.kv_a_norm", MP_CLASS_NORM},
    {"layers.3.attn.q_norm", MP_CLASS_NORM},
    {"layers.3.attn.k_norm", MP_CLASS_NORM},
    {"layers.3.attn.sinks", MP_CLASS_NORM},
    {"layers.0.mlp.gate", MP_CLASS_DENSE},
    {"layers.0.mlp.up", MP_CLASS_DENSE},
    {"layers.0.mlp.down", MP_CLASS_DENSE},
    {"layers.5.router", MP_CLASS_ROUTER},
    {"layers.5.router.bias", MP_CLASS_NORM},
    {"layers.5.correction_bias", MP_CLASS_NORM},
    {"layers.5.shared.gate", MP_CLASS_SHARED},
    {"layers.5.shared.up", MP_CLASS_SHARED},
    {"layers.5.shared.down", MP_CLASS_SHARED},
    {"layers.5.shared_gate", MP_CLASS_ROUTER},
    {"layers.5.experts.0.gate", MP_CLASS_EXPERT},
    {"layers.5.experts.255.up", MP_CLASS_EXPERT},
    {"layers.5.experts.17.down", MP_CLASS_EXPERT},
    {"layers.5.experts.17.down.bias", MP_CLASS_NORM},
    {"mtp.0.embed", MP_CLASS_EMBED},
    {"mtp.0.enorm", MP_CLASS_NORM},
    {"mtp.0.hnorm", MP_CLASS_NORM},
    {"mtp.0.eh_proj", MP_CLASS_DENSE},
    {"mtp.0.head_norm", MP_CLASS_NORM},
    {"mtp.0.head", MP_CLASS_HEAD},
    {"mtp.1.attn.kv_b", MP_CLASS_ATTN},
    {"mtp.1.experts.3.gate", MP_CLASS_EXPERT},
    {"mtp.1.shared.down", MP_CLASS_SHARED},
};

static void test_canonical_names(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof canonical / sizeof *canonical; i++) {
        mp_tensor_class c = MP_CLASS_COUNT;
        assert_int_equal(mp_class_of_name(canonical[i].name, &c), 0);
        if (c != canonical[i].cls)
            fail_msg("%s: class %s, expected %s", canonical[i].name, mp_class_name(c), mp_class_name(canonical[i].cls));
    }
}

static void test_other_names(void **state)
{
    (void)state;
    static const char *const names[] = {
        "", "embed.weight", "model.embed_tokens.weight", "layers.attn.q", "layers.x.attn.q", "layers.0",
        "layers.0.", "layers.0.attn.w", "layers.0.attn", "layers.0.experts.gate", "layers.0.experts.1.w1",
        "layers.0.experts.1", "layers.0.embed", "layers.0.head", "layers.0.eh_proj", "mtp.0.lm_head",
        "layers.0.mlp.gate.weight", ".bias", "foo.bias", "layers.0.router.bias.bias.x", "layers.-1.router",
    };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        mp_tensor_class c;
        if (mp_class_of_name(names[i], &c) == 0)
            fail_msg("'%s' was given class %s", names[i], mp_class_name(c));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canonical_names),
        cmocka_unit_test(test_other_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
