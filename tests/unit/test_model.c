/* config.json and canonical-model checks: each bad config is a one-line error with
 * exit 2 naming the file and field; each missing or mis-shaped tensor is a problem
 * line naming the tensor. Checkpoints are written here from the HF naming of
 * REFERENCE.md section 2, independently of the fixture generator. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../model/checkpoint.h"
#include "../../model/model_stats.h"

#define MIXTRAL_CONFIG                                                                            \
    "{\"architectures\":[\"MixtralForCausalLM\"],\"model_type\":\"mixtral\",\"hidden_size\":16,"  \
    "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,"               \
    "\"intermediate_size\":8,\"vocab_size\":32,\"num_local_experts\":4,\"num_experts_per_tok\":2," \
    "\"rms_norm_eps\":1e-5,\"rope_theta\":10000.0%s}"

typedef struct {
    char name[128];
    mp_dtype dt;
    int ndim;
    int64_t shape[2];
} spec;

typedef struct {
    spec t[256];
    int n;
} spec_list;

static void add(spec_list *l, mp_dtype dt, int64_t rows, int64_t cols, const char *fmt, ...)
{
    spec *s = &l->t[l->n++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->name, sizeof s->name, fmt, ap);
    va_end(ap);
    s->dt = dt;
    s->ndim = cols ? 2 : 1;
    s->shape[0] = rows;
    s->shape[1] = cols;
}

/* Mixtral, hidden 16, 4 heads x 4, 2 kv heads, 4 experts of width 8, vocab 32. */
static void mixtral_tensors(spec_list *l)
{
    add(l, MP_DT_BF16, 32, 16, "model.embed_tokens.weight");
    add(l, MP_DT_BF16, 16, 0, "model.norm.weight");
    add(l, MP_DT_BF16, 32, 16, "lm_head.weight");
    for (int i = 0; i < 2; i++) {
        add(l, MP_DT_BF16, 16, 0, "model.layers.%d.input_layernorm.weight", i);
        add(l, MP_DT_BF16, 16, 0, "model.layers.%d.post_attention_layernorm.weight", i);
        add(l, MP_DT_BF16, 16, 16, "model.layers.%d.self_attn.q_proj.weight", i);
        add(l, MP_DT_BF16, 8, 16, "model.layers.%d.self_attn.k_proj.weight", i);
        add(l, MP_DT_BF16, 8, 16, "model.layers.%d.self_attn.v_proj.weight", i);
        add(l, MP_DT_BF16, 16, 16, "model.layers.%d.self_attn.o_proj.weight", i);
        add(l, MP_DT_BF16, 4, 16, "model.layers.%d.block_sparse_moe.gate.weight", i);
        for (int e = 0; e < 4; e++) {
            add(l, MP_DT_BF16, 8, 16, "model.layers.%d.block_sparse_moe.experts.%d.w1.weight", i, e);
            add(l, MP_DT_BF16, 16, 8, "model.layers.%d.block_sparse_moe.experts.%d.w2.weight", i, e);
            add(l, MP_DT_BF16, 8, 16, "model.layers.%d.block_sparse_moe.experts.%d.w3.weight", i, e);
        }
    }
}

static char dir[64];

static int make_dir(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/mp-test-model-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd);
}

static void write_text(const char *name, const char *text)
{
    char path[160];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void write_weights(const spec_list *l)
{
    char path[160];
    mp_error err = {0};
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    mp_st_writer *w = mp_st_writer_new(path);
    assert_non_null(w);
    for (int i = 0; i < l->n; i++)
        assert_int_equal(mp_st_writer_add(w, l->t[i].name, l->t[i].dt, l->t[i].ndim, l->t[i].shape, &err), 0);
    static unsigned char zeros[4096];
    for (int i = 0; i < l->n; i++) {
        mp_st_tensor t = {.dtype = l->t[i].dt, .ndim = l->t[i].ndim};
        memcpy(t.shape, l->t[i].shape, sizeof l->t[i].shape);
        assert_true(mp_st_nbytes(&t) <= sizeof zeros);
        assert_int_equal(mp_st_writer_write(w, zeros, mp_st_nbytes(&t), &err), 0);
    }
    assert_int_equal(mp_st_writer_finish(w, &err), 0);
}

static void write_mixtral(const char *extra_config, spec_list *l)
{
    char config[2048];
    snprintf(config, sizeof config, MIXTRAL_CONFIG, extra_config);
    write_text("config.json", config);
    write_weights(l);
}

/* Opens the checkpoint expecting exit 2 and a one-line message containing want. */
static void expect_config_error(const char *config, const char *want)
{
    spec_list l = {0};
    mixtral_tensors(&l);
    write_weights(&l);
    write_text("config.json", config);
    mp_checkpoint ck;
    mp_error err = {0};
    assert_int_equal(mp_checkpoint_open(&ck, dir, &err), MP_EXIT_INPUT);
    assert_null(strchr(err.msg, '\n'));
    if (!strstr(err.msg, want) || !strstr(err.msg, "config.json"))
        fail_msg("message \"%s\" lacks \"%s\" or the file name", err.msg, want);
}

static void expect_problem(spec_list *l, const char *extra_config, const char *want)
{
    write_mixtral(extra_config, l);
    mp_checkpoint ck;
    mp_error err = {0};
    assert_int_equal(mp_checkpoint_open(&ck, dir, &err), 0);
    bool found = false;
    for (int i = 0; i < ck.model.n_problems; i++)
        found |= strstr(ck.model.problems[i], want) != NULL;
    if (!found)
        fail_msg("no problem line mentions \"%s\" (%d problems%s%s)", want, ck.model.n_problems,
                 ck.model.n_problems ? ", first: " : "", ck.model.n_problems ? ck.model.problems[0] : "");
    mp_checkpoint_close(&ck);
}

static void test_valid_mixtral(void **state)
{
    (void)state;
    spec_list l = {0};
    mixtral_tensors(&l);
    write_mixtral("", &l);
    mp_checkpoint ck;
    mp_error err = {0};
    assert_int_equal(mp_checkpoint_open(&ck, dir, &err), 0);
    assert_int_equal(ck.model.n_problems, 0);
    assert_int_equal(ck.model.cfg.family, MP_FAMILY_MIXTRAL);
    assert_int_equal(ck.model.cfg.routing.top_k, 2);
    assert_true(ck.model.cfg.routing.norm_topk);
    mp_model_stats s;
    assert_int_equal(mp_model_stats_compute(&s, &ck.model, &err), 0);
    /* per layer: norms 32, attention 16*16*2 + 8*16*2 = 768, router 64, experts 4*3*128 = 1536 */
    uint64_t per_layer = 32 + 768 + 64 + 1536;
    assert_int_equal(s.total_params, 2 * 32 * 16 + 16 + 2 * per_layer);
    assert_int_equal(s.active_params, s.total_params - 2 * 2 * 3 * 128);
    assert_int_equal(s.moe_layers, 2);
    assert_int_equal(s.unused_tensors, 0);
    mp_model_stats_free(&s);
    mp_checkpoint_close(&ck);
}

static void test_missing_config(void **state)
{
    (void)state;
    spec_list l = {0};
    mixtral_tensors(&l);
    write_weights(&l);
    mp_checkpoint ck;
    mp_error err = {0};
    assert_int_equal(mp_checkpoint_open(&ck, dir, &err), MP_EXIT_INPUT);
    assert_non_null(strstr(err.msg, "config.json"));
}

static void test_config_not_json(void **state) { (void)state; expect_config_error("{\"model_type\": mixtral", "JSON"); }
static void test_config_array(void **state) { (void)state; expect_config_error("[1, 2]", "object"); }
static void test_config_duplicate_key(void **state)
{
    (void)state;
    expect_config_error("{\"model_type\":\"mixtral\",\"hidden_size\":16,\"hidden_size\":32}", "duplicate");
}
static void test_config_unsupported(void **state)
{
    (void)state;
    expect_config_error("{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\"}",
                        "supported families: Mixtral");
}
static void test_config_missing_hidden(void **state)
{
    (void)state;
    expect_config_error("{\"model_type\":\"mixtral\",\"num_hidden_layers\":2}", "\"hidden_size\"");
}
static void test_config_hidden_not_int(void **state)
{
    (void)state;
    expect_config_error("{\"model_type\":\"mixtral\",\"num_hidden_layers\":2,\"hidden_size\":\"16\"}", "\"hidden_size\"");
}
static void test_config_topk_too_large(void **state)
{
    (void)state;
    char config[2048];
    snprintf(config, sizeof config, MIXTRAL_CONFIG, "");
    char *p = strstr(config, "\"num_experts_per_tok\":2");
    p[22] = '9';
    expect_config_error(config, "num_experts_per_tok");
}
static void test_config_heads_not_multiple(void **state)
{
    (void)state;
    char config[2048];
    snprintf(config, sizeof config, MIXTRAL_CONFIG, "");
    char *p = strstr(config, "\"num_key_value_heads\":2");
    p[22] = '3';
    expect_config_error(config, "num_key_value_heads");
}
static void test_config_quantized_gptq(void **state)
{
    (void)state;
    char config[2048];
    snprintf(config, sizeof config, MIXTRAL_CONFIG, ",\"quantization_config\":{\"quant_method\":\"gptq\"}");
    expect_config_error(config, "gptq");
}
static void test_config_mlp_only_out_of_range(void **state)
{
    (void)state;
    expect_config_error("{\"model_type\":\"qwen2_moe\",\"num_hidden_layers\":2,\"hidden_size\":16,"
                        "\"vocab_size\":32,\"num_attention_heads\":4,\"num_experts\":4,\"num_experts_per_tok\":2,"
                        "\"moe_intermediate_size\":8,\"mlp_only_layers\":[5]}",
                        "mlp_only_layers");
}

static void test_missing_expert_tensor(void **state)
{
    (void)state;
    spec_list l = {0};
    mixtral_tensors(&l);
    for (int i = 0; i < l.n; i++)
        if (strcmp(l.t[i].name, "model.layers.1.block_sparse_moe.experts.3.w2.weight") == 0)
            l.t[i] = l.t[--l.n];
    expect_problem(&l, "", "model.layers.1.block_sparse_moe.experts.3.w2.weight: missing");
}

static void test_misshaped_tensor(void **state)
{
    (void)state;
    spec_list l = {0};
    mixtral_tensors(&l);
    for (int i = 0; i < l.n; i++)
        if (strcmp(l.t[i].name, "model.layers.0.self_attn.k_proj.weight") == 0)
            l.t[i].shape[0] = 16;
    expect_problem(&l, "", "model.layers.0.self_attn.k_proj.weight: shape [16, 16], expected [8, 16]");
}

static void test_missing_lm_head(void **state)
{
    (void)state;
    spec_list l = {0};
    mixtral_tensors(&l);
    l.t[2] = l.t[--l.n];
    expect_problem(&l, "", "lm_head.weight: missing");
}

static void test_fp8_weight_without_scale(void **state)
{
    (void)state;
    spec_list l = {0};
    mixtral_tensors(&l);
    l.t[5].dt = MP_DT_F8_E4M3; /* layer 0 q_proj */
    expect_problem(&l, ",\"quantization_config\":{\"quant_method\":\"fp8\",\"weight_block_size\":[128,128]}",
                   "model.layers.0.self_attn.q_proj.weight_scale_inv: missing");
}

static void test_fp8_partial_block_scale(void **state)
{
    (void)state;
    spec_list l = {0};
    mixtral_tensors(&l);
    l.t[5].dt = MP_DT_F8_E4M3;
    /* 16x16 with 8x8 blocks: 2x2 scales; give 2x3 */
    add(&l, MP_DT_F32, 2, 3, "model.layers.0.self_attn.q_proj.weight_scale_inv");
    expect_problem(&l, ",\"quantization_config\":{\"quant_method\":\"fp8\",\"weight_block_size\":[8,8]}",
                   "q_proj.weight_scale_inv: shape [2, 3], expected [2, 2]");
}

static void test_fp8_scale_ok(void **state)
{
    (void)state;
    spec_list l = {0};
    mixtral_tensors(&l);
    l.t[5].dt = MP_DT_F8_E4M3;
    add(&l, MP_DT_F32, 2, 2, "model.layers.0.self_attn.q_proj.weight_scale_inv"); /* ceil(16/12) = 2 */
    write_mixtral(",\"quantization_config\":{\"quant_method\":\"fp8\",\"weight_block_size\":[12,12]}", &l);
    mp_checkpoint ck;
    mp_error err = {0};
    assert_int_equal(mp_checkpoint_open(&ck, dir, &err), 0);
    assert_int_equal(ck.model.n_problems, 0);
    assert_true(ck.model.layers[0].attn.q.scale >= 0);
    mp_checkpoint_close(&ck);
}

static void test_unused_tensor_counted(void **state)
{
    (void)state;
    spec_list l = {0};
    mixtral_tensors(&l);
    add(&l, MP_DT_F32, 8, 0, "model.layers.0.self_attn.rotary_emb.inv_freq");
    write_mixtral("", &l);
    mp_checkpoint ck;
    mp_error err = {0};
    assert_int_equal(mp_checkpoint_open(&ck, dir, &err), 0);
    mp_model_stats s;
    assert_int_equal(mp_model_stats_compute(&s, &ck.model, &err), 0);
    assert_int_equal(s.unused_tensors, 1);
    mp_model_stats_free(&s);
    mp_checkpoint_close(&ck);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_valid_mixtral, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_missing_config, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_config_not_json, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_config_array, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_config_duplicate_key, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_config_unsupported, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_config_missing_hidden, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_config_hidden_not_int, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_config_topk_too_large, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_config_heads_not_multiple, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_config_quantized_gptq, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_config_mlp_only_out_of_range, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_missing_expert_tensor, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_misshaped_tensor, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_missing_lm_head, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_fp8_weight_without_scale, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_fp8_partial_block_scale, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_fp8_scale_ok, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_unused_tensor_counted, make_dir, remove_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
