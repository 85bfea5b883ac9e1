/* The pack writer and reader: a small pack written through the API (a tier-0
 * record per tensor, zstd expert records in tier 1) reads back byte for byte, and
 * flipping ANY single byte of either tier file makes mp_pack_check fail. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../verify/check.h"

static char dir[64], pack[96];

static void fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)((i * 2654435761u + seed) >> 13);
}

/* Writes one part with deterministic bytes of the encoding's size. */
static void write_part(mp_pack_writer *w, const char *name, int64_t rows, int64_t cols, const char *enc_name,
                       unsigned seed)
{
    mp_encoding e;
    mp_enc_layout L;
    mp_error err = {0};
    assert_int_equal(mp_encoding_parse(enc_name, &e), 0);
    mp_encoding_layout(&e, rows, cols, &L);
    uint8_t *bytes = malloc(L.total);
    fill(bytes, L.total, seed);
    int64_t shape[2] = {rows, cols};
    assert_int_equal(mp_pack_part_begin(w, name, "src", 2, shape, &e, &err), 0);
    assert_int_equal(mp_pack_part_write(w, bytes, L.total, &err), 0);
    assert_int_equal(mp_pack_part_end(w, &err), 0);
    free(bytes);
}

static int make_pack(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/mp-test-pack-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(pack, sizeof pack, "%s/p.mpk", dir);
    bool zstd[2] = {false, true};
    mp_error err = {0};
    mp_pack_writer *w = mp_pack_writer_new(pack, 2, zstd, 3, &err);
    assert_non_null(w);
    const char *encodings[] = {"bf16", "f32", "fp8-block", "w4g32"};
    const char *roles[] = {"q", "k", "v", "o"};
    for (int i = 0; i < 4; i++) {
        char name[32];
        snprintf(name, sizeof name, "layers.0.attn.%s", roles[i]);
        assert_int_equal(mp_pack_record_begin(w, 0, 0, -1, &err), 0);
        write_part(w, name, 3, 64, encodings[i], (unsigned)i);
        assert_int_equal(mp_pack_record_end(w, &err), 0);
    }
    for (int e = 0; e < 2; e++) {
        char name[48];
        assert_int_equal(mp_pack_record_begin(w, 1, 0, e, &err), 0);
        snprintf(name, sizeof name, "layers.0.experts.%d.gate", e);
        write_part(w, name, 5, 32, "bf16", 10u + (unsigned)e);
        snprintf(name, sizeof name, "layers.0.experts.%d.down", e);
        write_part(w, name, 3, 64, "fp8-channel", 20u + (unsigned)e); /* odd element count: nibble planes */
        snprintf(name, sizeof name, "layers.0.experts.%d.up", e);
        write_part(w, name, 5, 32, "w4g32", 30u + (unsigned)e);
        assert_int_equal(mp_pack_record_end(w, &err), 0);
    }
    /* check opens packs as commands do: the names must be the model's */
    json_t *model = json_pack("{s:i, s:i, s:{s:i}, s:[b]}", "layers", 1, "mtp_layers", 0, "routing", "experts", 2,
                              "moe_layers", 1);
    return mp_pack_writer_finish(w, model, NULL, NULL, NULL, false, &err);
}

static int remove_pack(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd);
}

static void test_reads_back(void **state)
{
    (void)state;
    mp_pack p;
    mp_error err = {0};
    assert_int_equal(mp_pack_open(&p, pack, &err), 0);
    assert_int_equal(p.n_tiers, 2);
    assert_int_equal(p.n_records, 6);
    assert_int_equal(p.n_tensors, 10);
    for (int t = 0; t < p.n_tensors; t++) {
        const mp_pack_tensor *x = &p.tensors[t];
        const mp_pack_record *r = &p.records[x->record];
        uint8_t *raw = malloc(r->raw_length), *want = malloc(r->raw_length);
        assert_int_equal(mp_pack_read_record(&p, x->record, raw, &err), 0);
        unsigned seed = r->expert < 0 ? (unsigned)x->record : 10u * (unsigned)(x->part + 1) + (unsigned)r->expert;
        fill(want, r->parts[x->part].length, seed);
        assert_memory_equal(raw + r->parts[x->part].offset, want, r->parts[x->part].length);
        assert_int_equal(r->parts[x->part].offset % 64, 0);
        assert_int_equal(r->offset % (r->tier == 0 ? 64 : 4096), 0);
        free(raw);
        free(want);
    }
    mp_pack_close(&p);
    mp_check_result res;
    assert_int_equal(mp_pack_check(pack, true, &res, &err), 0);
}

static void flip_every_byte(const char *tier)
{
    char path[160];
    snprintf(path, sizeof path, "%s/%s", pack, tier);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    int missed = 0;
    for (long off = 0; off < size; off++) {
        fseek(f, off, SEEK_SET);
        int byte = fgetc(f);
        fseek(f, off, SEEK_SET);
        fputc(byte ^ 0x20, f);
        fflush(f);
        mp_check_result res;
        mp_error err = {0};
        if (mp_pack_check(pack, true, &res, &err) == MP_OK && missed++ < 5)
            print_error("%s: flip of byte %ld not detected\n", tier, off);
        fseek(f, off, SEEK_SET);
        fputc(byte, f);
        fflush(f);
    }
    fclose(f);
    assert_int_equal(missed, 0);
    assert_true(size > 512); /* header, records and padding all exercised */
}

static void test_flips_in_tier0(void **state)
{
    (void)state;
    flip_every_byte("tier-0.bin");
}

static void test_flips_in_tier1(void **state)
{
    (void)state;
    flip_every_byte("tier-1.bin");
}

static void test_writer_rejects_wrong_sizes(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/q.mpk", dir);
    mp_error err = {0};
    mp_pack_writer *w = mp_pack_writer_new(path, 1, NULL, 3, &err);
    assert_non_null(w);
    mp_encoding e = {.kind = MP_ENC_BF16};
    int64_t shape[2] = {2, 2};
    uint8_t bytes[16] = {0};
    assert_int_equal(mp_pack_record_begin(w, 0, -1, -1, &err), 0);
    assert_int_equal(mp_pack_part_begin(w, "x", "src", 2, shape, &e, &err), 0);
    assert_int_equal(mp_pack_part_write(w, bytes, 6, &err), 0);
    assert_int_equal(mp_pack_part_end(w, &err), MP_EXIT_INPUT); /* 6 of 8 bytes */
    mp_pack_writer_abort(w);
    assert_int_equal(access(path, F_OK), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_back),
        cmocka_unit_test(test_flips_in_tier0),
        cmocka_unit_test(test_flips_in_tier1),
        cmocka_unit_test(test_writer_rejects_wrong_sizes),
    };
    return cmocka_run_group_tests(tests, make_pack, remove_pack);
}
