/* The stats file (docs/stats.md): a small file written through the API reads
 * back exactly; every single-byte flip after the magic is a checksum error (exit
 * 3); truncations and header fields that break the layout are exit 2 naming the
 * field. Files with edited headers are reassembled here from the spec's prefix
 * layout, independently of the writer. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "../../formats/stats.h"

static char dir[64], path[96];

/* 2 MoE layers (1 and 3) x 4 experts, top-2 over 5 tokens; linears of odd and even
 * widths, one never seen. */
static const int layers[2] = {1, 3};
static const uint64_t counts[8] = {5, 3, 0, 2, 4, 4, 0, 2};
static const double mass[8] = {2.5, 1.25, 0, 1.25, 2, 2, 0, 1};
static float q_mean[3] = {1.5f, 0.25f, 3e-7f};
static float down_mean[5] = {1, 2, 3, 4, 5};
static float unseen_mean[8] = {0};
static const mp_stats_linear linears[3] = {
    {"layers.1.attn.q", 3, 5, q_mean},
    {"layers.1.experts.0.down", 5, 5, down_mean},
    {"layers.3.experts.2.gate", 8, 0, unseen_mean},
};

static int write_sample(const char *to)
{
    mp_stats_data d = {5, 2, layers, 4, counts, mass, 3, linears};
    json_t *header = json_pack("{s:{s:s, s:i, s:i, s:i}, s:{s:s, s:i, s:i}}", "model", "architecture",
                               "TestForCausalLM", "layers", 4, "experts", 4, "top_k", 2, "text", "path", "calib.txt",
                               "ctx", 5, "n_chunks", 1);
    mp_error err = {0};
    return mp_stats_write(to, header, &d, &err);
}

static int setup(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/mp-test-stats-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof path, "%s/s.stats", dir);
    return write_sample(path);
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd);
}

static uint8_t *slurp(const char *from, size_t *len)
{
    FILE *f = fopen(from, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(*len + 1);
    assert_int_equal(fread(buf, 1, *len, f), *len);
    fclose(f);
    return buf;
}

static void spit(const char *to, const uint8_t *buf, size_t len)
{
    FILE *f = fopen(to, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    fclose(f);
}

/* Opens to and returns the exit code, keeping the message in msg. */
static int try_open(const char *to, char *msg, size_t cap)
{
    mp_stats s;
    mp_error err = {0};
    int rc = mp_stats_open(&s, to, true, &err);
    if (rc == 0)
        mp_stats_close(&s);
    snprintf(msg, cap, "%s", err.msg);
    return rc;
}

static void test_round_trip(void **state)
{
    (void)state;
    mp_stats s;
    mp_error err = {0};
    assert_int_equal(mp_stats_open(&s, path, true, &err), 0);
    assert_int_equal(s.tokens, 5);
    assert_int_equal(s.n_layers, 2);
    assert_int_equal(s.n_experts, 4);
    assert_int_equal(mp_stats_layer_row(&s, 3), 1);
    assert_int_equal(mp_stats_layer_row(&s, 0), -1);
    assert_memory_equal(s.counts, counts, sizeof counts);
    assert_memory_equal(s.mass, mass, sizeof mass);
    assert_string_equal(json_string_value(json_object_get(json_object_get(s.header, "text"), "path")), "calib.txt");
    assert_int_equal(s.n_linears, 3);
    for (int i = 0; i < 3; i++) {
        int at = mp_stats_find(&s, linears[i].name);
        assert_int_equal(at, i);
        assert_int_equal(s.linears[at].cols, linears[i].cols);
        assert_int_equal(s.linears[at].rows, linears[i].rows);
        float got[8];
        assert_int_equal(mp_stats_read_linear(&s, at, got, &err), 0);
        assert_memory_equal(got, linears[i].mean_sq, (size_t)linears[i].cols * sizeof *got);
    }
    assert_int_equal(mp_stats_find(&s, "layers.1.attn.k"), -1);
    mp_stats_close(&s);
}

/* The same inputs give the same bytes. */
static void test_deterministic(void **state)
{
    (void)state;
    char again[128];
    snprintf(again, sizeof again, "%s/again.stats", dir);
    assert_int_equal(write_sample(again), 0);
    size_t a, b;
    uint8_t *x = slurp(path, &a), *y = slurp(again, &b);
    assert_int_equal(a, b);
    assert_memory_equal(x, y, a);
    free(x);
    free(y);
}

static void test_every_flip(void **state)
{
    (void)state;
    size_t len;
    uint8_t *buf = slurp(path, &len);
    char flipped[128], msg[1024];
    snprintf(flipped, sizeof flipped, "%s/flip.stats", dir);
    for (size_t i = 0; i < len; i++) {
        buf[i] ^= 0x20;
        spit(flipped, buf, len);
        buf[i] ^= 0x20;
        int rc = try_open(flipped, msg, sizeof msg);
        if (rc != (i < 8 ? 2 : 3))
            fail_msg("flip at byte %zu of %zu: exit %d (%s)", i, len, rc, msg);
    }
    free(buf);
}

static void test_truncated(void **state)
{
    (void)state;
    size_t len;
    uint8_t *buf = slurp(path, &len);
    char cut[128], msg[1024];
    snprintf(cut, sizeof cut, "%s/cut.stats", dir);
    size_t lengths[] = {0, 7, 63, 64, 100, len - 8, len - 1};
    for (size_t k = 0; k < sizeof lengths / sizeof *lengths; k++) {
        spit(cut, buf, lengths[k]);
        assert_int_equal(try_open(cut, msg, sizeof msg), 2);
        assert_non_null(strstr(msg, cut));
        assert_non_null(strstr(msg, "truncated"));
    }
    free(buf);
    assert_int_equal(try_open("/nonexistent/x.stats", msg, sizeof msg), 2);
}

/* Rebuilds a file around header (the data section kept) with correct checksums,
 * from the prefix layout of docs/stats.md. */
static void reassemble(const char *to, json_t *header, const uint8_t *data, uint64_t data_bytes)
{
    char *text = json_dumps(header, JSON_PRESERVE_ORDER);
    uint64_t h = strlen(text), start = (64 + h + 63) / 64 * 64;
    uint8_t *buf = calloc(start + data_bytes, 1);
    memcpy(buf + 64, text, h);
    memcpy(buf + start, data, data_bytes);
    memcpy(buf, "MPSTATS1", 8);
    uint32_t version = 1;
    uint64_t fields[4] = {h, data_bytes, XXH3_64bits(buf + 64, start - 64), XXH3_64bits(data, data_bytes)};
    memcpy(buf + 8, &version, 4);
    memcpy(buf + 16, fields, sizeof fields);
    uint64_t self = XXH3_64bits(buf, 56);
    memcpy(buf + 56, &self, 8);
    spit(to, buf, start + data_bytes);
    free(buf);
    free(text);
}

/* Sets key in the object at "linears[i]" / "routing" / top level. */
static void set_field(json_t *root, const char *where, const char *key, json_t *value)
{
    json_t *obj = root;
    int i;
    if (sscanf(where, "linears[%d]", &i) == 1)
        obj = json_array_get(json_object_get(root, "linears"), (size_t)i);
    else if (where[0])
        obj = json_object_get(root, where);
    json_object_set_new(obj, key, value);
}

static void test_bad_fields(void **state)
{
    (void)state;
    size_t len;
    uint8_t *buf = slurp(path, &len);
    uint64_t h, data_bytes;
    memcpy(&h, buf + 16, 8);
    memcpy(&data_bytes, buf + 24, 8);
    const uint8_t *data = buf + len - data_bytes;
    struct {
        const char *where, *key;
        json_t *value;
        const char *expect;
    } cases[] = {
        {"", "format", json_string("moepack-pack"), "header field format"},
        {"", "tokens", json_integer(-1), "header field tokens"},
        {"", "tokens", json_integer(4), "layer 1 expert 0 routed 5 times"},
        {"", "model", json_null(), "header field model"},
        {"routing", "experts", json_integer(5), "header field routing.counts"},
        {"routing", "layers", json_pack("[i, i]", 3, 1), "header field routing.layers[1]"},
        {"linears[1]", "cols", json_integer(0), "header field linears[1].cols"},
        {"linears[1]", "cols", json_integer(7), "header field linears[2].offset"},
        {"linears[2]", "cols", json_integer(10), "the arrays end at byte"},
        {"linears[0]", "offset", json_integer(136), "header field linears[0].offset"},
        {"linears[2]", "name", json_string("layers.1.attn.q"), "appears twice"},
        {"linears[0]", "name", json_integer(3), "header field linears[0].name"},
        {"linears[1]", "rows", json_string("5"), "header field linears[1].rows"},
        /* The counts against each other. */
        {"", "tokens", json_integer(6), "header field tokens: 6, text.n_chunks 1 x text.ctx 5"},
        {"text", "ctx", json_integer(4), "header field tokens: 5, text.n_chunks 1 x text.ctx 4"},
        {"text", "n_chunks", json_null(), "header field text.n_chunks"},
        {"model", "top_k", json_integer(1), "layer 1 sums to 10"},
        {"model", "experts", json_integer(8), "header field model.experts"},
        {"model", "layers", json_integer(3), "header field routing.layers[1]: layer 3"},
        {"linears[0]", "rows", json_integer(4), "header field linears[0].rows: 4 for layers.1.attn.q, expected 5"},
        {"linears[1]", "rows", json_integer(4), "header field linears[1].rows: 4 for layers.1.experts.0.down"},
        {"linears[2]", "name", json_string("layers.2.experts.0.gate"), "header field linears[2].name"},
        {"linears[2]", "name", json_string("layers.3.experts.4.gate"), "header field linears[2].name"},
    };
    char bad[128], msg[1024];
    snprintf(bad, sizeof bad, "%s/bad.stats", dir);
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        json_t *header = json_loadb((const char *)buf + 64, h, 0, NULL);
        assert_non_null(header);
        set_field(header, cases[k].where, cases[k].key, cases[k].value);
        reassemble(bad, header, data, data_bytes);
        json_decref(header);
        int rc = try_open(bad, msg, sizeof msg);
        if (rc != 2 || !strstr(msg, cases[k].expect) || !strstr(msg, bad))
            fail_msg("case %zu (%s.%s): exit %d, \"%s\"; wanted exit 2 and \"%s\"", k, cases[k].where, cases[k].key,
                     rc, msg, cases[k].expect);
    }
    /* The unedited header reassembled opens: the cases above fail for their edit alone. */
    json_t *header = json_loadb((const char *)buf + 64, h, 0, NULL);
    reassemble(bad, header, data, data_bytes);
    json_decref(header);
    assert_int_equal(try_open(bad, msg, sizeof msg), 0);
    free(buf);
}

static void test_unwritable(void **state)
{
    (void)state;
    mp_stats_data d = {0, 0, NULL, 1, NULL, NULL, 0, NULL};
    mp_error err = {0};
    assert_int_equal(mp_stats_write("/nonexistent/dir/x.stats", json_object(), &d, &err), 3);
    assert_non_null(strstr(err.msg, "/nonexistent/dir/x.stats"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_every_flip),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_bad_fields),
        cmocka_unit_test(test_unwritable),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
