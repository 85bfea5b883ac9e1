/* Tests for formats/safetensors*: the reader (mp_st_open), sharded checkpoints
 * (mp_st_set_open) and the streaming writer.
 *
 * Every input file is crafted byte by byte here (u64 little-endian header length,
 * JSON text, data bytes), never with our writer, so reader and writer are tested
 * independently. Each test gets a fresh directory from mkdtemp under /tmp, removed
 * by its teardown. A rejection must be exit code 2 (MP_EXIT_INPUT) with a one-line
 * message naming the offending file and, where a tensor is involved, the tensor.
 * Set MP_TEST_VERBOSE=1 to print every rejection message. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../core/error.h"
#include "../../formats/safetensors.h"

/* ---- per-test directory and file helpers ---- */

static char g_dir[64];
static unsigned char g_data[4096]; /* deterministic data bytes: g_data[i] = i*7+3 */

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/moepack-test-st-XXXXXX");
    if (!mkdtemp(g_dir))
        return -1;
    for (size_t i = 0; i < sizeof g_data; i++)
        g_data[i] = (unsigned char)(i * 7 + 3);
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    (void)state;
    return nftw(g_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* g_dir/name, in one of 8 rotating buffers (enough for any single expression). */
static const char *P(const char *name)
{
    static char buf[8][PATH_MAX];
    static unsigned k;
    char *b = buf[k++ % 8];
    snprintf(b, PATH_MAX, "%s/%s", g_dir, name);
    return b;
}

static void write_bytes(const char *path, const void *bytes, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(bytes, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

static void write_text(const char *path, const char *text)
{
    write_bytes(path, text, strlen(text));
}

/* A safetensors file: header length field hlen (normally hdr_len), hdr_len bytes
 * of header text, then the first dlen bytes of g_data. */
static void write_st_raw(const char *path, uint64_t hlen, const char *hdr, size_t hdr_len,
                         size_t dlen)
{
    assert_true(dlen <= sizeof g_data);
    size_t n = 8 + hdr_len + dlen;
    unsigned char *buf = malloc(n);
    assert_non_null(buf);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)(hlen >> (8 * i));
    memcpy(buf + 8, hdr, hdr_len);
    memcpy(buf + 8 + hdr_len, g_data, dlen);
    write_bytes(path, buf, n);
    free(buf);
}

static void write_st(const char *path, const char *hdr, size_t dlen)
{
    write_st_raw(path, strlen(hdr), hdr, strlen(hdr), dlen);
}

static int file_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static int count_dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static int count_open_fds(void)
{
    return count_dir_entries("/proc/self/fd");
}

/* ---- rejection checks ---- */

static void assert_contains(const char *msg, const char *needle)
{
    if (!strstr(msg, needle)) {
        print_error("message \"%s\" does not contain \"%s\"\n", msg, needle);
        fail();
    }
}

static void check_rejection(int rc, const mp_error *err, const char *path, const char *name)
{
    if (getenv("MP_TEST_VERBOSE"))
        print_message("  rc=%d msg: %s\n", rc, err->msg);
    if (rc != MP_EXIT_INPUT)
        print_error("expected exit code %d, got %d (%s)\n", MP_EXIT_INPUT, rc, err->msg);
    assert_int_equal(rc, MP_EXIT_INPUT);
    assert_int_equal(err->code, MP_EXIT_INPUT);
    assert_true(err->msg[0] != '\0');
    assert_null(strchr(err->msg, '\n'));
    assert_null(strchr(err->msg, '\r'));
    assert_contains(err->msg, path);
    if (name)
        assert_contains(err->msg, name);
}

/* mp_st_open(path) must fail with code 2 naming path (and tensor name when given)
 * and leave f closed. */
static void expect_bad_file(const char *path, const char *name)
{
    mp_st_file f;
    mp_error err;
    mp_error_clear(&err);
    int rc = mp_st_open(&f, path, &err);
    if (rc == MP_OK)
        mp_st_close(&f);
    check_rejection(rc, &err, path, name);
    assert_int_equal(f.fd, -1);
    assert_null(f.tensors);
    assert_null(f.path);
}

/* Writes g_dir/bad.safetensors from a header and dlen data bytes, expects rejection. */
static void bad_header(const char *hdr, size_t dlen, const char *name)
{
    const char *path = P("bad.safetensors");
    write_st(path, hdr, dlen);
    expect_bad_file(path, name);
}

/* mp_st_set_open(open_path) must fail naming msg_path (and name when given). */
static void expect_bad_set(const char *open_path, const char *msg_path, const char *name)
{
    mp_st_set s;
    mp_error err;
    mp_error_clear(&err);
    int rc = mp_st_set_open(&s, open_path, &err);
    if (rc == MP_OK)
        mp_st_set_close(&s);
    check_rejection(rc, &err, msg_path, name);
    assert_int_equal(s.n_files, 0);
    assert_null(s.files);
    assert_null(s.tensors);
}

static void open_ok(mp_st_file *f, const char *path)
{
    mp_error err;
    mp_error_clear(&err);
    int rc = mp_st_open(f, path, &err);
    if (rc != MP_OK)
        print_error("mp_st_open(%s): %d %s\n", path, rc, err.msg);
    assert_int_equal(rc, MP_OK);
    assert_int_equal(err.code, MP_OK);
}

static void set_open_ok(mp_st_set *s, const char *path)
{
    mp_error err;
    mp_error_clear(&err);
    int rc = mp_st_set_open(s, path, &err);
    if (rc != MP_OK)
        print_error("mp_st_set_open(%s): %d %s\n", path, rc, err.msg);
    assert_int_equal(rc, MP_OK);
}

static const mp_st_tensor *find_tensor(const mp_st_file *f, const char *name)
{
    for (int i = 0; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i].name, name) == 0)
            return &f->tensors[i];
    print_error("tensor '%s' not found\n", name);
    fail();
    return NULL;
}

/* Checks a tensor's descriptor and that mp_st_read returns g_data[data_off + begin ...]. */
static void check_tensor(const mp_st_file *f, const char *name, mp_dtype dt, int ndim,
                         const int64_t *shape, uint64_t begin, uint64_t end, size_t data_off)
{
    const mp_st_tensor *t = find_tensor(f, name);
    assert_int_equal(t->dtype, dt);
    assert_int_equal(t->ndim, ndim);
    for (int i = 0; i < ndim; i++)
        assert_int_equal(t->shape[i], shape[i]);
    assert_int_equal(t->begin, begin);
    assert_int_equal(t->end, end);
    assert_int_equal(mp_st_nbytes(t), end - begin);
    unsigned char buf[256];
    assert_true(end - begin <= sizeof buf);
    mp_error err;
    mp_error_clear(&err);
    memset(buf, 0xee, sizeof buf);
    assert_int_equal(mp_st_read(f, t, 0, end - begin, buf, &err), MP_OK);
    assert_memory_equal(buf, g_data + data_off + begin, end - begin);
}

static void assert_sorted_by_offset(const mp_st_file *f)
{
    for (int i = 1; i < f->n_tensors; i++) {
        assert_true(f->tensors[i - 1].begin <= f->tensors[i].begin);
        assert_true(f->tensors[i - 1].end <= f->tensors[i].begin);
    }
}

/* ================================================================== */
/* A. valid single files                                              */
/* ================================================================== */

/* Listed in reverse of file order; zero-size tensor between two others. */
static const char VALID_HDR[] =
    "{\"w.f6\":{\"dtype\":\"F6_E3M2\",\"shape\":[4],\"data_offsets\":[72,75]},"
    "\"w.f4\":{\"dtype\":\"F4\",\"shape\":[2,3],\"data_offsets\":[69,72]},"
    "\"w.i32\":{\"dtype\":\"I32\",\"shape\":[3],\"data_offsets\":[57,69]},"
    "\"w.u8\":{\"dtype\":\"U8\",\"shape\":[1,3],\"data_offsets\":[54,57]},"
    "\"w.e8m0\":{\"dtype\":\"F8_E8M0\",\"shape\":[2],\"data_offsets\":[52,54]},"
    "\"w.e5m2\":{\"dtype\":\"F8_E5M2\",\"shape\":[3],\"data_offsets\":[49,52]},"
    "\"w.e4m3\":{\"dtype\":\"F8_E4M3\",\"shape\":[5,1],\"data_offsets\":[44,49]},"
    "\"w.f16\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[36,44]},"
    "\"w.bf16\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[28,36]},"
    "\"w.scalar\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[24,28]},"
    "\"w.empty\":{\"dtype\":\"BF16\",\"shape\":[0,4],\"data_offsets\":[24,24]},"
    "\"w.f32\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}";
enum { VALID_DATA = 75 };

static void check_valid_file(const mp_st_file *f)
{
    assert_int_equal(f->n_tensors, 12);
    assert_sorted_by_offset(f);
    assert_string_equal(f->tensors[0].name, "w.f32");
    assert_string_equal(f->tensors[f->n_tensors - 1].name, "w.f6");
    check_tensor(f, "w.f32", MP_DT_F32, 2, (int64_t[]){2, 3}, 0, 24, 0);
    check_tensor(f, "w.empty", MP_DT_BF16, 2, (int64_t[]){0, 4}, 24, 24, 0);
    check_tensor(f, "w.scalar", MP_DT_F32, 0, NULL, 24, 28, 0);
    check_tensor(f, "w.bf16", MP_DT_BF16, 1, (int64_t[]){4}, 28, 36, 0);
    check_tensor(f, "w.f16", MP_DT_F16, 2, (int64_t[]){2, 2}, 36, 44, 0);
    check_tensor(f, "w.e4m3", MP_DT_F8_E4M3, 2, (int64_t[]){5, 1}, 44, 49, 0);
    check_tensor(f, "w.e5m2", MP_DT_F8_E5M2, 1, (int64_t[]){3}, 49, 52, 0);
    check_tensor(f, "w.e8m0", MP_DT_F8_E8M0, 1, (int64_t[]){2}, 52, 54, 0);
    check_tensor(f, "w.u8", MP_DT_U8, 2, (int64_t[]){1, 3}, 54, 57, 0);
    check_tensor(f, "w.i32", MP_DT_I32, 1, (int64_t[]){3}, 57, 69, 0);
    check_tensor(f, "w.f4", MP_DT_F4, 2, (int64_t[]){2, 3}, 69, 72, 0);
    check_tensor(f, "w.f6", MP_DT_F6_E3M2, 1, (int64_t[]){4}, 72, 75, 0);
    assert_int_equal(mp_st_nelem(find_tensor(f, "w.scalar")), 1);
    assert_int_equal(mp_st_nelem(find_tensor(f, "w.empty")), 0);
    assert_int_equal(mp_st_nelem(find_tensor(f, "w.f4")), 6);
}

static void test_valid_many_dtypes(void **state)
{
    (void)state;
    const char *path = P("ok.safetensors");
    write_st(path, VALID_HDR, VALID_DATA);
    mp_st_file f;
    open_ok(&f, path);
    assert_string_equal(f.path, path);
    assert_int_equal(f.data_start, 8 + strlen(VALID_HDR));
    assert_int_equal(f.file_size, 8 + strlen(VALID_HDR) + VALID_DATA);
    assert_int_equal(f.n_metadata, 0);
    check_valid_file(&f);
    mp_st_close(&f);
    assert_int_equal(f.fd, -1);
}

static void test_valid_padded_header_and_metadata(void **state)
{
    (void)state;
    /* __metadata__ in the middle of the tensors; header padded with spaces. */
    char hdr[2048];
    snprintf(hdr, sizeof hdr,
             "{\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[4,6]},"
             "\"__metadata__\":{\"format\":\"pt\",\"note\":\"two words\",\"empty\":\"\"},"
             "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}%13s", "");
    const char *path = P("padded.safetensors");
    write_st(path, hdr, 6);
    mp_st_file f;
    open_ok(&f, path);
    assert_int_equal(f.data_start, 8 + strlen(hdr));
    assert_int_equal(f.n_tensors, 2);
    check_tensor(&f, "a", MP_DT_F32, 1, (int64_t[]){1}, 0, 4, 0);
    check_tensor(&f, "b", MP_DT_U8, 1, (int64_t[]){2}, 4, 6, 0);
    assert_int_equal(f.n_metadata, 3);
    int seen = 0;
    for (int i = 0; i < f.n_metadata; i++) {
        const char *k = f.metadata_keys[i], *v = f.metadata_values[i];
        if (strcmp(k, "format") == 0 && strcmp(v, "pt") == 0)
            seen |= 1;
        if (strcmp(k, "note") == 0 && strcmp(v, "two words") == 0)
            seen |= 2;
        if (strcmp(k, "empty") == 0 && strcmp(v, "") == 0)
            seen |= 4;
    }
    assert_int_equal(seen, 7);
    mp_st_close(&f);
}

static void test_valid_empty_header(void **state)
{
    (void)state;
    const char *path = P("empty.safetensors");
    write_st(path, "{}      ", 0); /* 8-byte header, no tensors, no data */
    mp_st_file f;
    open_ok(&f, path);
    assert_int_equal(f.n_tensors, 0);
    assert_int_equal(f.data_start, 16);
    mp_st_close(&f);
}

static void test_valid_only_zero_size_tensors(void **state)
{
    (void)state;
    const char *path = P("zeros.safetensors");
    write_st(path,
             "{\"z1\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
             "\"z2\":{\"dtype\":\"F4\",\"shape\":[3,0,5],\"data_offsets\":[0,0]}}",
             0);
    mp_st_file f;
    open_ok(&f, path);
    assert_int_equal(f.n_tensors, 2);
    assert_int_equal(mp_st_nbytes(&f.tensors[0]), 0);
    assert_int_equal(mp_st_nbytes(&f.tensors[1]), 0);
    mp_st_close(&f);
}

static void test_read_partial_and_out_of_range(void **state)
{
    (void)state;
    const char *path = P("ok.safetensors");
    write_st(path, VALID_HDR, VALID_DATA);
    mp_st_file f;
    open_ok(&f, path);
    const mp_st_tensor *t = find_tensor(&f, "w.i32");
    unsigned char buf[16];
    mp_error err;
    mp_error_clear(&err);
    assert_int_equal(mp_st_read(&f, t, 5, 7, buf, &err), MP_OK);
    assert_memory_equal(buf, g_data + 57 + 5, 7);
    assert_int_equal(mp_st_read(&f, t, 12, 0, buf, &err), MP_OK);
    assert_int_equal(mp_st_read(&f, t, 6, 7, buf, &err), MP_EXIT_INPUT);
    assert_contains(err.msg, path);
    assert_contains(err.msg, "w.i32");
    mp_error_clear(&err);
    assert_int_equal(mp_st_read(&f, t, UINT64_MAX, 2, buf, &err), MP_EXIT_INPUT);
    mp_error_clear(&err);
    assert_int_equal(mp_st_read(&f, t, 2, UINT64_MAX - 1, buf, &err), MP_EXIT_INPUT);
    mp_st_close(&f);
}

/* ================================================================== */
/* A. valid sets                                                      */
/* ================================================================== */

#define SHARD1 "model-00001-of-00003.safetensors"
#define SHARD2 "model-00002-of-00003.safetensors"
#define SHARD3 "model-00003-of-00003.safetensors"
#define INDEX "model.safetensors.index.json"

/* Shard k holds data bytes g_data[100k ...]. */
static void write_shard(const char *dir_path, int k, const char *hdr, size_t dlen)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/model-%05d-of-00003.safetensors", dir_path, k);
    size_t n = 8 + strlen(hdr) + dlen;
    unsigned char *buf = malloc(n);
    assert_non_null(buf);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)((uint64_t)strlen(hdr) >> (8 * i));
    memcpy(buf + 8, hdr, strlen(hdr));
    memcpy(buf + 8 + strlen(hdr), g_data + 100 * k, dlen);
    write_bytes(path, buf, n);
    free(buf);
}

static const char SHARD1_HDR[] =
    "{\"__metadata__\":{\"format\":\"pt\"},"
    "\"a.weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
    "\"b.weight\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[8,14]}}";
static const char SHARD2_HDR[] = "{\"c.weight\":{\"dtype\":\"U8\",\"shape\":[5],\"data_offsets\":[0,5]}}";
static const char SHARD3_HDR[] =
    "{\"f.scalar\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[8,12]},"
    "\"d.weight\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]},"
    "\"e.weight\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[4,8]}}";

static void write_std_shards(const char *dir_path)
{
    write_shard(dir_path, 1, SHARD1_HDR, 14);
    write_shard(dir_path, 2, SHARD2_HDR, 5);
    write_shard(dir_path, 3, SHARD3_HDR, 12);
}

/* Writes g_dir/model.safetensors.index.json with the given weight_map body. */
static void write_index(const char *weight_map)
{
    char text[4096];
    snprintf(text, sizeof text, "{\"metadata\":{\"total_size\":31},\"weight_map\":{%s}}", weight_map);
    write_text(P(INDEX), text);
}

#define MAP_A "\"a.weight\":\"" SHARD1 "\""
#define MAP_B "\"b.weight\":\"" SHARD1 "\""
#define MAP_C "\"c.weight\":\"" SHARD2 "\""
#define MAP_DEF "\"d.weight\":\"" SHARD3 "\",\"e.weight\":\"" SHARD3 "\",\"f.scalar\":\"" SHARD3 "\""
#define STD_MAP MAP_A "," MAP_B "," MAP_C "," MAP_DEF

static void check_std_set(const char *open_path)
{
    static const struct {
        const char *name, *shard;
        int k;
        uint64_t begin, end;
    } want[] = {
        {"a.weight", SHARD1, 1, 0, 8},  {"b.weight", SHARD1, 1, 8, 14},
        {"c.weight", SHARD2, 2, 0, 5},  {"d.weight", SHARD3, 3, 0, 4},
        {"e.weight", SHARD3, 3, 4, 8},  {"f.scalar", SHARD3, 3, 8, 12},
    };
    mp_st_set s;
    set_open_ok(&s, open_path);
    assert_int_equal(s.n_files, 3);
    assert_int_equal(s.n_tensors, 6);
    for (int i = 1; i < s.n_tensors; i++)
        assert_true(strcmp(s.tensors[i - 1].info->name, s.tensors[i].info->name) < 0);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        int idx = mp_st_set_find(&s, want[i].name);
        assert_true(idx >= 0 && idx < s.n_tensors);
        const mp_st_entry *e = &s.tensors[idx];
        assert_string_equal(e->info->name, want[i].name);
        assert_string_equal(s.files[e->file].path, P(want[i].shard));
        assert_int_equal(e->info->begin, want[i].begin);
        assert_int_equal(e->info->end, want[i].end);
        unsigned char buf[16];
        mp_error err;
        mp_error_clear(&err);
        uint64_t n = want[i].end - want[i].begin;
        assert_int_equal(mp_st_set_read(&s, idx, 0, n, buf, &err), MP_OK);
        assert_memory_equal(buf, g_data + 100 * want[i].k + want[i].begin, n);
        if (n > 1) { /* a read at an offset inside the tensor */
            assert_int_equal(mp_st_set_read(&s, idx, 1, n - 1, buf, &err), MP_OK);
            assert_memory_equal(buf, g_data + 100 * want[i].k + want[i].begin + 1, n - 1);
        }
    }
    assert_int_equal(mp_st_set_find(&s, "no.such.tensor"), -1);
    assert_int_equal(mp_st_set_find(&s, ""), -1);
    assert_int_equal(mp_st_set_find(&s, "a.weigh"), -1);
    assert_int_equal(mp_st_set_find(&s, "__metadata__"), -1);
    mp_st_set_close(&s);
}

static void test_set_sharded_by_directory(void **state)
{
    (void)state;
    write_std_shards(g_dir);
    write_index(STD_MAP);
    write_text(P("config.json"), "{}");
    check_std_set(g_dir);
}

static void test_set_sharded_by_index_path(void **state)
{
    (void)state;
    write_std_shards(g_dir);
    write_index(STD_MAP);
    check_std_set(P(INDEX));
}

static void test_set_single_file_directory(void **state)
{
    (void)state;
    write_st(P("weights.safetensors"), VALID_HDR, VALID_DATA);
    write_text(P("config.json"), "{\"model_type\":\"x\"}");
    write_text(P("notes.safetensors.txt"), "not a checkpoint");
    mp_st_set s;
    set_open_ok(&s, g_dir);
    assert_int_equal(s.n_files, 1);
    assert_int_equal(s.n_tensors, 12);
    check_valid_file(&s.files[0]);
    for (int i = 0; i < s.files[0].n_tensors; i++) {
        const char *name = s.files[0].tensors[i].name;
        int idx = mp_st_set_find(&s, name);
        assert_true(idx >= 0);
        assert_string_equal(s.tensors[idx].info->name, name);
    }
    int idx = mp_st_set_find(&s, "w.u8");
    unsigned char buf[3];
    mp_error err;
    mp_error_clear(&err);
    assert_int_equal(mp_st_set_read(&s, idx, 0, 3, buf, &err), MP_OK);
    assert_memory_equal(buf, g_data + 54, 3);
    assert_int_equal(mp_st_set_find(&s, "w.missing"), -1);
    mp_st_set_close(&s);
}

static void test_set_single_file_path(void **state)
{
    (void)state;
    write_st(P("weights.safetensors"), VALID_HDR, VALID_DATA);
    write_st(P("other.safetensors"), "{}", 0); /* ignored: the file is named */
    mp_st_set s;
    set_open_ok(&s, P("weights.safetensors"));
    assert_int_equal(s.n_files, 1);
    assert_int_equal(s.n_tensors, 12);
    assert_true(mp_st_set_find(&s, "w.f4") >= 0);
    mp_st_set_close(&s);
}

/* ================================================================== */
/* B. malformed single files                                          */
/* ================================================================== */

#define T_OK(name, off) "\"" name "\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[" off "]}"

static void test_bad_file_shorter_than_8_bytes(void **state)
{
    (void)state;
    write_bytes(P("short.safetensors"), "\x02\0\0\0{}", 6);
    expect_bad_file(P("short.safetensors"), NULL);
}

static void test_bad_file_empty(void **state)
{
    (void)state;
    write_bytes(P("zero.safetensors"), "", 0);
    expect_bad_file(P("zero.safetensors"), NULL);
}

static void test_bad_header_length_past_eof(void **state)
{
    (void)state;
    const char *hdr = "{}";
    write_st_raw(P("bad.safetensors"), 3, hdr, 2, 0);
    expect_bad_file(P("bad.safetensors"), NULL);
}

static void test_bad_header_length_too_large(void **state)
{
    (void)state;
    const char *hdr = "{}";
    write_st_raw(P("bad.safetensors"), 100000001, hdr, 2, 0);
    expect_bad_file(P("bad.safetensors"), NULL);
}

static void test_bad_header_length_u64_max(void **state)
{
    (void)state;
    const char *hdr = "{}";
    write_st_raw(P("bad.safetensors"), UINT64_MAX, hdr, 2, 0);
    expect_bad_file(P("bad.safetensors"), NULL);
}

static void test_bad_header_length_zero(void **state)
{
    (void)state;
    write_st_raw(P("bad.safetensors"), 0, "", 0, 0);
    expect_bad_file(P("bad.safetensors"), NULL);
}

static void test_bad_header_not_starting_with_brace(void **state)
{
    (void)state;
    bad_header(" {\"t.alpha\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", 4, NULL);
}

static void test_bad_header_json_array(void **state)
{
    (void)state;
    bad_header("[{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}]", 4, NULL);
}

static void test_bad_header_json_string(void **state)
{
    (void)state;
    bad_header("\"{not an object}\"", 0, NULL);
}

static void test_bad_header_only_spaces(void **state)
{
    (void)state;
    bad_header("        ", 0, NULL);
}

static void test_bad_header_invalid_json(void **state)
{
    (void)state;
    bad_header("{\"t.alpha\":{\"dtype\":F32,\"shape\":[],\"data_offsets\":[0,4]}}", 4, NULL);
}

static void test_bad_header_truncated_json(void **state)
{
    (void)state;
    bad_header("{\"t.alpha\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]", 4, NULL);
}

static void test_bad_header_trailing_garbage(void **state)
{
    (void)state;
    bad_header("{\"t.alpha\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}x", 4, NULL);
}

static void test_bad_header_nul_byte(void **state)
{
    (void)state;
    static const char hdr[] = "{\"t.alpha\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}\0  ";
    write_st_raw(P("bad.safetensors"), sizeof hdr - 1, hdr, sizeof hdr - 1, 4);
    expect_bad_file(P("bad.safetensors"), NULL);
}

static void test_bad_duplicate_tensor_keys(void **state)
{
    (void)state;
    bad_header("{" T_OK("t.dup", "0,8") "," T_OK("t.dup", "8,16") "}", 16, "t.dup");
}

static void test_bad_duplicate_metadata_key(void **state)
{
    (void)state;
    bad_header("{\"__metadata__\":{},\"__metadata__\":{}," T_OK("t.alpha", "0,8") "}", 8, NULL);
}

static void test_bad_unknown_dtype(void **state)
{
    (void)state;
    bad_header("{\"t.alpha\":{\"dtype\":\"F12\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "t.alpha");
}

static void test_bad_dtype_lowercase(void **state)
{
    (void)state;
    bad_header("{\"t.alpha\":{\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "t.alpha");
}

static void test_bad_dtype_not_string(void **state)
{
    (void)state;
    bad_header("{\"t.alpha\":{\"dtype\":17,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "t.alpha");
}

static void test_bad_dtype_missing(void **state)
{
    (void)state;
    bad_header("{\"t.alpha\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "t.alpha");
}

static void test_bad_tensor_not_object(void **state)
{
    (void)state;
    bad_header("{\"t.alpha\":[\"F32\",[2],[0,8]]}", 8, "t.alpha");
}

static void test_bad_shape_not_array(void **state)
{
    (void)state;
    bad_header("{\"t.alpha\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8, "t.alpha");
}

static void test_bad_shape_missing(void **state)
{
    (void)state;
    bad_header("{\"t.alpha\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "t.alpha");
}

static void test_bad_shape_negative_dim(void **state)
{
    (void)state;
    bad_header("{\"t.alpha\":{\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,8]}}", 8, "t.alpha");
}

static void test_bad_shape_float_dim(void **state)
{
    (void)state;
    bad_header("{\"t.alpha\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", 8, "t.alpha");
}

static void test_bad_shape_string_dim(void **state)
{
    (void)state;
    bad_header("{\"t.alpha\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8, "t.alpha");
}

static void test_bad_shape_too_many_dims(void **state)
{
    (void)state;
    bad_header("{\"t.alpha\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],\"data_offsets\":[0,8]}}", 8,
               "t.alpha");
}

static void test_bad_shape_product_overflow(void **state)
{
    (void)state;
    /* 2^32 * 2^32 * 16 wraps to 0 in 64 bits, which would match an empty span. */
    bad_header("{\"t.alpha\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,0]}}",
               0, "t.alpha");
}

static void test_bad_shape_bytes_overflow(void **state)
{
    (void)state;
    /* 2^62 elements of F32: the element count fits, the byte count does not. */
    bad_header("{\"t.alpha\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],\"data_offsets\":[0,0]}}", 0,
               "t.alpha");
}

static void test_bad_offsets_missing(void **state)
{
    (void)state;
    bad_header("{\"t.alpha\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "t.alpha");
}

static void test_bad_offsets_one_element(void **state)
{
    (void)state;
    bad_header("{\"t.alpha\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8]}}", 8, "t.alpha");
}

static void test_bad_offsets_three_elements(void **state)
{
    (void)state;
    bad_header("{\"t.alpha\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,8]}}", 8, "t.alpha");
}

static void test_bad_offsets_negative(void **state)
{
    (void)state;
    bad_header("{\"t.alpha\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8, "t.alpha");
}

static void test_bad_offsets_not_integers(void **state)
{
    (void)state;
    bad_header("{\"t.alpha\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0.0,8.0]}}", 8, "t.alpha");
}

static void test_bad_offsets_end_before_begin(void **state)
{
    (void)state;
    bad_header("{\"t.alpha\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "t.alpha");
}

static void test_bad_span_too_big(void **state)
{
    (void)state;
    bad_header("{\"t.alpha\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,12]}}", 12, "t.alpha");
}

static void test_bad_span_too_small(void **state)
{
    (void)state;
    bad_header("{\"t.alpha\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,6]}}", 6, "t.alpha");
}

static void test_bad_span_nonempty_for_empty_tensor(void **state)
{
    (void)state;
    bad_header("{\"t.alpha\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[0,4]}}", 4, "t.alpha");
}

static void test_bad_f4_odd_element_count(void **state)
{
    (void)state;
    /* 3 nibbles = 12 bits: rounding either way (1 or 2 bytes) must not be accepted. */
    bad_header("{\"t.alpha\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,1]}}", 1, "t.alpha");
}

static void test_bad_f4_odd_element_count_rounded_up(void **state)
{
    (void)state;
    bad_header("{\"t.alpha\":{\"dtype\":\"F4\",\"shape\":[1,3],\"data_offsets\":[0,2]}}", 2, "t.alpha");
}

static void test_bad_f6_partial_byte(void **state)
{
    (void)state;
    bad_header("{\"t.alpha\":{\"dtype\":\"F6_E2M3\",\"shape\":[3],\"data_offsets\":[0,2]}}", 2, "t.alpha");
}

static void test_bad_first_tensor_not_at_zero(void **state)
{
    (void)state;
    bad_header("{" T_OK("t.alpha", "4,12") "}", 12, "t.alpha");
}

static void test_bad_gap_between_tensors(void **state)
{
    (void)state;
    bad_header("{" T_OK("t.alpha", "0,8") "," T_OK("t.beta", "12,20") "}", 20, "t.beta");
}

static void test_bad_overlapping_tensors(void **state)
{
    (void)state;
    bad_header("{" T_OK("t.alpha", "0,8") "," T_OK("t.beta", "4,12") "}", 12, "t.beta");
}

static void test_bad_same_span_twice(void **state)
{
    (void)state;
    bad_header("{" T_OK("t.alpha", "0,8") "," T_OK("t.beta", "0,8") "}", 8, "t.beta");
}

static void test_bad_empty_tensor_inside_another(void **state)
{
    (void)state;
    bad_header("{" T_OK("t.alpha", "0,8") ",\"t.beta\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,4]}}",
               8, "t.beta");
}

static void test_bad_trailing_bytes(void **state)
{
    (void)state;
    bad_header("{" T_OK("t.alpha", "0,8") "}", 9, NULL);
}

static void test_bad_trailing_bytes_no_tensors(void **state)
{
    (void)state;
    bad_header("{}", 4, NULL);
}

static void test_bad_truncated_data(void **state)
{
    (void)state;
    bad_header("{" T_OK("t.alpha", "0,8") "," T_OK("t.beta", "8,16") "}", 15, NULL);
}

static void test_bad_metadata_not_object(void **state)
{
    (void)state;
    bad_header("{\"__metadata__\":\"format=pt\"," T_OK("t.alpha", "0,8") "}", 8, "__metadata__");
}

static void test_bad_metadata_array(void **state)
{
    (void)state;
    bad_header("{\"__metadata__\":[[\"format\",\"pt\"]]," T_OK("t.alpha", "0,8") "}", 8, "__metadata__");
}

static void test_bad_metadata_non_string_value(void **state)
{
    (void)state;
    bad_header("{\"__metadata__\":{\"format\":\"pt\",\"m.count\":3}," T_OK("t.alpha", "0,8") "}", 8, "m.count");
}

static void test_bad_metadata_nested_object(void **state)
{
    (void)state;
    bad_header("{" T_OK("t.alpha", "0,8") ",\"__metadata__\":{\"m.nested\":{\"a\":\"b\"}}}", 8, "m.nested");
}

static void test_bad_invalid_utf8_name(void **state)
{
    (void)state;
    bad_header("{\"t.\xff\xfe\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, NULL);
}

static void test_bad_invalid_utf8_surrogate(void **state)
{
    (void)state;
    /* CESU-style encoded surrogate U+D800 is not valid UTF-8. */
    bad_header("{\"t.\xed\xa0\x80\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, NULL);
}

static void test_bad_invalid_utf8_overlong(void **state)
{
    (void)state;
    /* Overlong encoding of '/'. */
    bad_header("{\"t.\xc0\xaf\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, NULL);
}

static void test_bad_nul_escape_in_name(void **state)
{
    (void)state;
    bad_header("{\"t.a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, NULL);
}

static void test_bad_integer_beyond_int64(void **state)
{
    (void)state;
    bad_header("{\"t.alpha\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,18446744073709551624]}}",
               8, NULL);
}

static void test_bad_path_is_directory(void **state)
{
    (void)state;
    assert_int_equal(mkdir(P("dir.safetensors"), 0755), 0);
    expect_bad_file(P("dir.safetensors"), NULL);
}

static void test_bad_file_nonexistent(void **state)
{
    (void)state;
    expect_bad_file(P("missing.safetensors"), NULL);
}

/* ================================================================== */
/* B. malformed sets                                                  */
/* ================================================================== */

static void test_bad_index_not_json(void **state)
{
    (void)state;
    write_std_shards(g_dir);
    write_text(P(INDEX), "{\"weight_map\": {\"a.weight\": ");
    expect_bad_set(g_dir, P(INDEX), NULL);
}

static void test_bad_index_array(void **state)
{
    (void)state;
    write_std_shards(g_dir);
    write_text(P(INDEX), "[{\"weight_map\":{\"a.weight\":\"" SHARD1 "\"}}]");
    expect_bad_set(g_dir, P(INDEX), NULL);
}

static void test_bad_index_missing_weight_map(void **state)
{
    (void)state;
    write_std_shards(g_dir);
    write_text(P(INDEX), "{\"metadata\":{\"total_size\":31}}");
    expect_bad_set(g_dir, P(INDEX), NULL);
}

static void test_bad_index_weight_map_array(void **state)
{
    (void)state;
    write_std_shards(g_dir);
    write_text(P(INDEX), "{\"weight_map\":[\"" SHARD1 "\"]}");
    expect_bad_set(P(INDEX), P(INDEX), NULL);
}

static void test_bad_index_weight_map_empty(void **state)
{
    (void)state;
    write_std_shards(g_dir);
    write_index("");
    expect_bad_set(g_dir, P(INDEX), NULL);
}

static void test_bad_index_value_not_string(void **state)
{
    (void)state;
    write_std_shards(g_dir);
    write_index(MAP_A "," MAP_B ",\"c.weight\":2," MAP_DEF);
    expect_bad_set(g_dir, P(INDEX), "c.weight");
}

static void test_bad_index_absolute_path(void **state)
{
    (void)state;
    write_std_shards(g_dir);
    write_index(MAP_A "," MAP_B ",\"c.weight\":\"/etc/passwd\"," MAP_DEF);
    expect_bad_set(g_dir, P(INDEX), "c.weight");
}

static void test_bad_index_dotdot_path(void **state)
{
    (void)state;
    write_std_shards(g_dir);
    write_index(MAP_A "," MAP_B ",\"c.weight\":\"../" SHARD2 "\"," MAP_DEF);
    expect_bad_set(g_dir, P(INDEX), "c.weight");
}

static void test_bad_index_dotdot_inside_path(void **state)
{
    (void)state;
    assert_int_equal(mkdir(P("sub"), 0755), 0);
    write_std_shards(g_dir);
    write_index(MAP_A "," MAP_B ",\"c.weight\":\"sub/../../" SHARD2 "\"," MAP_DEF);
    expect_bad_set(g_dir, P(INDEX), "c.weight");
}

static void test_bad_index_empty_shard_name(void **state)
{
    (void)state;
    write_std_shards(g_dir);
    write_index(MAP_A "," MAP_B ",\"c.weight\":\"\"," MAP_DEF);
    expect_bad_set(g_dir, P(INDEX), "c.weight");
}

static void test_bad_index_symlink_outside(void **state)
{
    (void)state;
    /* checkpoint in g_dir/ckpt; shard 2 is a link to g_dir/outside.safetensors */
    assert_int_equal(mkdir(P("ckpt"), 0755), 0);
    char ckpt[PATH_MAX], index[PATH_MAX + 64], link[PATH_MAX + 64];
    snprintf(ckpt, sizeof ckpt, "%s", P("ckpt"));
    write_std_shards(ckpt);
    snprintf(link, sizeof link, "%s/%s", ckpt, SHARD2);
    assert_int_equal(rename(link, P("outside.safetensors")), 0);
    assert_int_equal(symlink("../outside.safetensors", link), 0);
    snprintf(index, sizeof index, "%s/%s", ckpt, INDEX);
    write_text(index, "{\"weight_map\":{" STD_MAP "}}");
    expect_bad_set(ckpt, index, "c.weight");
}

static void test_bad_index_subdir_symlink_outside(void **state)
{
    (void)state;
    /* checkpoint in g_dir/ckpt; g_dir/ckpt/sub links to g_dir/elsewhere */
    assert_int_equal(mkdir(P("ckpt"), 0755), 0);
    assert_int_equal(mkdir(P("elsewhere"), 0755), 0);
    assert_int_equal(symlink("../elsewhere", P("ckpt/sub")), 0);
    write_shard(P("ckpt"), 1, SHARD1_HDR, 14);
    write_shard(P("elsewhere"), 2, SHARD2_HDR, 5);
    write_shard(P("ckpt"), 3, SHARD3_HDR, 12);
    write_text(P("ckpt/" INDEX), "{\"weight_map\":{" MAP_A "," MAP_B ",\"c.weight\":\"sub/" SHARD2 "\","
                                 MAP_DEF "}}");
    expect_bad_set(P("ckpt"), P("ckpt/" INDEX), "c.weight");
}

static void test_bad_index_missing_shard(void **state)
{
    (void)state;
    write_std_shards(g_dir);
    assert_int_equal(unlink(P(SHARD2)), 0);
    write_index(STD_MAP);
    expect_bad_set(g_dir, P(INDEX), "c.weight");
}

static void test_bad_index_tensor_absent_from_shard(void **state)
{
    (void)state;
    write_std_shards(g_dir);
    write_index(STD_MAP ",\"x.ghost\":\"" SHARD2 "\"");
    expect_bad_set(g_dir, P(INDEX), "x.ghost");
}

static void test_bad_index_tensor_missing_from_index(void **state)
{
    (void)state;
    write_std_shards(g_dir);
    write_index(MAP_A "," MAP_C "," MAP_DEF); /* b.weight of shard 1 not listed */
    expect_bad_set(g_dir, P(INDEX), "b.weight");
}

static void test_bad_index_tensor_under_wrong_shard(void **state)
{
    (void)state;
    write_std_shards(g_dir);
    write_index("\"a.weight\":\"" SHARD3 "\"," MAP_B "," MAP_C "," MAP_DEF);
    expect_bad_set(g_dir, P(INDEX), "a.weight");
}

static void test_bad_index_tensor_in_two_shards(void **state)
{
    (void)state;
    write_shard(g_dir, 1, SHARD1_HDR, 14);
    write_shard(g_dir, 2,
                "{\"c.weight\":{\"dtype\":\"U8\",\"shape\":[5],\"data_offsets\":[0,5]},"
                "\"a.weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[5,13]}}",
                13);
    write_shard(g_dir, 3, SHARD3_HDR, 12);
    write_index(STD_MAP);
    /* Both shards are named; the message must name the tensor and a shard path. */
    expect_bad_set(g_dir, P(SHARD2), "a.weight");
}

static void test_bad_index_duplicate_keys(void **state)
{
    (void)state;
    write_std_shards(g_dir);
    write_index(STD_MAP ",\"c.weight\":\"" SHARD2 "\"");
    expect_bad_set(g_dir, P(INDEX), "c.weight");
}

static void test_bad_index_truncated_shard(void **state)
{
    (void)state;
    write_shard(g_dir, 1, SHARD1_HDR, 14);
    write_shard(g_dir, 2, SHARD2_HDR, 3); /* 2 of 5 bytes of c.weight missing */
    write_shard(g_dir, 3, SHARD3_HDR, 12);
    write_index(STD_MAP);
    expect_bad_set(g_dir, P(SHARD2), NULL);
}

static void test_bad_index_shard_bad_header(void **state)
{
    (void)state;
    write_shard(g_dir, 1, SHARD1_HDR, 14);
    write_shard(g_dir, 2, SHARD2_HDR, 5);
    write_shard(g_dir, 3,
                "{\"d.weight\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                "\"e.weight\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[4,8]},"
                "\"f.scalar\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[8,12]}}",
                12);
    write_index(STD_MAP);
    expect_bad_set(P(INDEX), P(SHARD3), "e.weight");
}

static void test_bad_dir_without_safetensors(void **state)
{
    (void)state;
    write_text(P("config.json"), "{}");
    write_text(P("model.bin"), "x");
    expect_bad_set(g_dir, g_dir, NULL);
}

static void test_bad_dir_two_files_no_index(void **state)
{
    (void)state;
    write_st(P("a.safetensors"), "{}", 0);
    write_st(P("b.safetensors"), "{}", 0);
    expect_bad_set(g_dir, g_dir, NULL);
}

static void test_bad_dir_single_file_malformed(void **state)
{
    (void)state;
    write_st(P("model.safetensors"), "{" T_OK("t.alpha", "0,8") "}", 7);
    expect_bad_set(g_dir, P("model.safetensors"), NULL);
}

static void test_bad_set_nonexistent_path(void **state)
{
    (void)state;
    expect_bad_set(P("no/such/checkpoint"), P("no/such/checkpoint"), NULL);
}

/* ================================================================== */
/* C. writer                                                          */
/* ================================================================== */

static uint64_t header_length(const char *path)
{
    unsigned char b[8];
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    assert_int_equal(fread(b, 1, 8, fp), 8);
    fclose(fp);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | b[i];
    return n;
}

static void writer_ok(int rc, const mp_error *err)
{
    if (rc != MP_OK)
        print_error("writer: %d %s\n", rc, err->msg);
    assert_int_equal(rc, MP_OK);
}

/* Declares w.a F32[3,5] (60 B), w.empty BF16[0] (0 B), w.b BF16[7] (14 B),
 * w.s F32[] (4 B), w.c F4[2,3] (3 B): 81 bytes of data. */
static void declare_writer_tensors(mp_st_writer *w)
{
    mp_error err;
    mp_error_clear(&err);
    writer_ok(mp_st_writer_metadata(w, "format", "pt", &err), &err);
    writer_ok(mp_st_writer_add(w, "w.a", MP_DT_F32, 2, (int64_t[]){3, 5}, &err), &err);
    writer_ok(mp_st_writer_add(w, "w.empty", MP_DT_BF16, 1, (int64_t[]){0}, &err), &err);
    writer_ok(mp_st_writer_add(w, "w.b", MP_DT_BF16, 1, (int64_t[]){7}, &err), &err);
    writer_ok(mp_st_writer_add(w, "w.s", MP_DT_F32, 0, (int64_t[]){0}, &err), &err);
    writer_ok(mp_st_writer_add(w, "w.c", MP_DT_F4, 2, (int64_t[]){2, 3}, &err), &err);
}
enum { WRITER_BYTES = 81 };

static void test_writer_roundtrip(void **state)
{
    (void)state;
    const char *path = P("out.safetensors");
    mp_st_writer *w = mp_st_writer_new(path);
    assert_non_null(w);
    declare_writer_tensors(w);
    mp_error err;
    mp_error_clear(&err);
    /* chunks of 7 bytes cross every tensor boundary */
    for (size_t off = 0; off < WRITER_BYTES; off += 7) {
        size_t n = WRITER_BYTES - off < 7 ? WRITER_BYTES - off : 7;
        writer_ok(mp_st_writer_write(w, g_data + off, n, &err), &err);
        assert_false(file_exists(path));
    }
    writer_ok(mp_st_writer_write(w, g_data, 0, &err), &err); /* empty write is harmless */
    assert_false(file_exists(path));
    assert_int_equal(count_dir_entries(g_dir), 1); /* only the temporary file */
    writer_ok(mp_st_writer_finish(w, &err), &err);
    assert_true(file_exists(path));
    assert_int_equal(count_dir_entries(g_dir), 1); /* temporary renamed, not copied */

    uint64_t hlen = header_length(path);
    assert_int_equal(hlen % 8, 0);
    mp_st_file f;
    open_ok(&f, path);
    assert_int_equal(f.data_start, 8 + hlen);
    assert_int_equal(f.file_size, 8 + hlen + WRITER_BYTES);
    assert_int_equal(f.n_tensors, 5);
    check_tensor(&f, "w.a", MP_DT_F32, 2, (int64_t[]){3, 5}, 0, 60, 0);
    check_tensor(&f, "w.empty", MP_DT_BF16, 1, (int64_t[]){0}, 60, 60, 0);
    check_tensor(&f, "w.b", MP_DT_BF16, 1, (int64_t[]){7}, 60, 74, 0);
    check_tensor(&f, "w.s", MP_DT_F32, 0, NULL, 74, 78, 0);
    check_tensor(&f, "w.c", MP_DT_F4, 2, (int64_t[]){2, 3}, 78, 81, 0);
    assert_int_equal(f.n_metadata, 1);
    assert_string_equal(f.metadata_keys[0], "format");
    assert_string_equal(f.metadata_values[0], "pt");
    mp_st_close(&f);
}

static void test_writer_one_write_per_tensor(void **state)
{
    (void)state;
    const char *path = P("out.safetensors");
    mp_st_writer *w = mp_st_writer_new(path);
    assert_non_null(w);
    declare_writer_tensors(w);
    mp_error err;
    mp_error_clear(&err);
    static const size_t sizes[] = {60, 0, 14, 4, 3};
    size_t off = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        writer_ok(mp_st_writer_write(w, g_data + off, sizes[i], &err), &err);
        off += sizes[i];
    }
    writer_ok(mp_st_writer_finish(w, &err), &err);
    assert_int_equal(header_length(path) % 8, 0);
    mp_st_file f;
    open_ok(&f, path);
    check_tensor(&f, "w.b", MP_DT_BF16, 1, (int64_t[]){7}, 60, 74, 0);
    check_tensor(&f, "w.c", MP_DT_F4, 2, (int64_t[]){2, 3}, 78, 81, 0);
    mp_st_close(&f);
}

static void test_writer_no_tensors(void **state)
{
    (void)state;
    const char *path = P("out.safetensors");
    mp_st_writer *w = mp_st_writer_new(path);
    assert_non_null(w);
    mp_error err;
    mp_error_clear(&err);
    writer_ok(mp_st_writer_finish(w, &err), &err);
    assert_int_equal(header_length(path) % 8, 0);
    mp_st_file f;
    open_ok(&f, path);
    assert_int_equal(f.n_tensors, 0);
    assert_int_equal(f.n_metadata, 0);
    mp_st_close(&f);
}

static void test_writer_abort_before_data(void **state)
{
    (void)state;
    mp_st_writer *w = mp_st_writer_new(P("out.safetensors"));
    assert_non_null(w);
    declare_writer_tensors(w);
    mp_st_writer_abort(w);
    assert_int_equal(count_dir_entries(g_dir), 0);
    mp_st_writer_abort(NULL);
}

static void test_writer_abort_after_data(void **state)
{
    (void)state;
    int fds = count_open_fds();
    mp_st_writer *w = mp_st_writer_new(P("out.safetensors"));
    assert_non_null(w);
    declare_writer_tensors(w);
    mp_error err;
    mp_error_clear(&err);
    writer_ok(mp_st_writer_write(w, g_data, 30, &err), &err);
    assert_int_equal(count_dir_entries(g_dir), 1);
    assert_false(file_exists(P("out.safetensors")));
    mp_st_writer_abort(w);
    assert_int_equal(count_dir_entries(g_dir), 0);
    assert_int_equal(count_open_fds(), fds);
}

static void test_writer_too_many_bytes(void **state)
{
    (void)state;
    const char *path = P("out.safetensors");
    mp_st_writer *w = mp_st_writer_new(path);
    assert_non_null(w);
    declare_writer_tensors(w);
    mp_error err;
    mp_error_clear(&err);
    writer_ok(mp_st_writer_write(w, g_data, WRITER_BYTES - 1, &err), &err);
    int rc = mp_st_writer_write(w, g_data, 2, &err);
    check_rejection(rc, &err, path, NULL);
    mp_st_writer_abort(w);
    assert_int_equal(count_dir_entries(g_dir), 0);
}

static void test_writer_bytes_after_complete(void **state)
{
    (void)state;
    const char *path = P("out.safetensors");
    mp_st_writer *w = mp_st_writer_new(path);
    assert_non_null(w);
    declare_writer_tensors(w);
    mp_error err;
    mp_error_clear(&err);
    writer_ok(mp_st_writer_write(w, g_data, WRITER_BYTES, &err), &err);
    int rc = mp_st_writer_write(w, g_data, 1, &err);
    check_rejection(rc, &err, path, NULL);
    mp_st_writer_abort(w);
    assert_int_equal(count_dir_entries(g_dir), 0);
}

static void test_writer_finish_with_missing_bytes(void **state)
{
    (void)state;
    int fds = count_open_fds();
    const char *path = P("out.safetensors");
    mp_st_writer *w = mp_st_writer_new(path);
    assert_non_null(w);
    declare_writer_tensors(w);
    mp_error err;
    mp_error_clear(&err);
    writer_ok(mp_st_writer_write(w, g_data, WRITER_BYTES - 1, &err), &err);
    int rc = mp_st_writer_finish(w, &err);
    check_rejection(rc, &err, path, NULL);
    assert_false(file_exists(path));
    assert_int_equal(count_dir_entries(g_dir), 0);
    int now = count_open_fds();
    if (now != fds)
        print_error("mp_st_writer_finish left %d descriptor(s) open after failing\n", now - fds);
    assert_int_equal(now, fds);
}

static void test_writer_finish_without_data(void **state)
{
    (void)state;
    const char *path = P("out.safetensors");
    mp_st_writer *w = mp_st_writer_new(path);
    assert_non_null(w);
    declare_writer_tensors(w);
    mp_error err;
    mp_error_clear(&err);
    int rc = mp_st_writer_finish(w, &err);
    check_rejection(rc, &err, path, NULL);
    assert_int_equal(count_dir_entries(g_dir), 0);
}

static void test_writer_rejects_bad_declarations(void **state)
{
    (void)state;
    const char *path = P("out.safetensors");
    mp_st_writer *w = mp_st_writer_new(path);
    assert_non_null(w);
    mp_error err;
    mp_error_clear(&err);
    writer_ok(mp_st_writer_add(w, "w.x", MP_DT_U8, 1, (int64_t[]){4}, &err), &err);
    check_rejection(mp_st_writer_add(w, "w.x", MP_DT_U8, 1, (int64_t[]){4}, &err), &err, path, "w.x");
    mp_error_clear(&err);
    check_rejection(mp_st_writer_add(w, "w.odd", MP_DT_F4, 1, (int64_t[]){3}, &err), &err, path, "w.odd");
    mp_error_clear(&err);
    check_rejection(mp_st_writer_add(w, "w.rank", MP_DT_U8, 9, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1}, &err),
                    &err, path, "w.rank");
    mp_error_clear(&err);
    check_rejection(mp_st_writer_add(w, "__metadata__", MP_DT_U8, 1, (int64_t[]){1}, &err), &err, path,
                    "__metadata__");
    mp_error_clear(&err);
    writer_ok(mp_st_writer_write(w, g_data, 1, &err), &err);
    check_rejection(mp_st_writer_add(w, "w.late", MP_DT_U8, 1, (int64_t[]){1}, &err), &err, path, "w.late");
    mp_error_clear(&err);
    check_rejection(mp_st_writer_metadata(w, "m.late", "v", &err), &err, path, "m.late");
    mp_st_writer_abort(w);
    assert_int_equal(count_dir_entries(g_dir), 0);
}

/* ================================================================== */

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* A. valid inputs */
        T(test_valid_many_dtypes),
        T(test_valid_padded_header_and_metadata),
        T(test_valid_empty_header),
        T(test_valid_only_zero_size_tensors),
        T(test_read_partial_and_out_of_range),
        T(test_set_sharded_by_directory),
        T(test_set_sharded_by_index_path),
        T(test_set_single_file_directory),
        T(test_set_single_file_path),
        /* B. malformed files */
        T(test_bad_file_shorter_than_8_bytes),
        T(test_bad_file_empty),
        T(test_bad_header_length_past_eof),
        T(test_bad_header_length_too_large),
        T(test_bad_header_length_u64_max),
        T(test_bad_header_length_zero),
        T(test_bad_header_not_starting_with_brace),
        T(test_bad_header_json_array),
        T(test_bad_header_json_string),
        T(test_bad_header_only_spaces),
        T(test_bad_header_invalid_json),
        T(test_bad_header_truncated_json),
        T(test_bad_header_trailing_garbage),
        T(test_bad_header_nul_byte),
        T(test_bad_duplicate_tensor_keys),
        T(test_bad_duplicate_metadata_key),
        T(test_bad_unknown_dtype),
        T(test_bad_dtype_lowercase),
        T(test_bad_dtype_not_string),
        T(test_bad_dtype_missing),
        T(test_bad_tensor_not_object),
        T(test_bad_shape_not_array),
        T(test_bad_shape_missing),
        T(test_bad_shape_negative_dim),
        T(test_bad_shape_float_dim),
        T(test_bad_shape_string_dim),
        T(test_bad_shape_too_many_dims),
        T(test_bad_shape_product_overflow),
        T(test_bad_shape_bytes_overflow),
        T(test_bad_offsets_missing),
        T(test_bad_offsets_one_element),
        T(test_bad_offsets_three_elements),
        T(test_bad_offsets_negative),
        T(test_bad_offsets_not_integers),
        T(test_bad_offsets_end_before_begin),
        T(test_bad_span_too_big),
        T(test_bad_span_too_small),
        T(test_bad_span_nonempty_for_empty_tensor),
        T(test_bad_f4_odd_element_count),
        T(test_bad_f4_odd_element_count_rounded_up),
        T(test_bad_f6_partial_byte),
        T(test_bad_first_tensor_not_at_zero),
        T(test_bad_gap_between_tensors),
        T(test_bad_overlapping_tensors),
        T(test_bad_same_span_twice),
        T(test_bad_empty_tensor_inside_another),
        T(test_bad_trailing_bytes),
        T(test_bad_trailing_bytes_no_tensors),
        T(test_bad_truncated_data),
        T(test_bad_metadata_not_object),
        T(test_bad_metadata_array),
        T(test_bad_metadata_non_string_value),
        T(test_bad_metadata_nested_object),
        T(test_bad_invalid_utf8_name),
        T(test_bad_invalid_utf8_surrogate),
        T(test_bad_invalid_utf8_overlong),
        T(test_bad_nul_escape_in_name),
        T(test_bad_integer_beyond_int64),
        T(test_bad_path_is_directory),
        T(test_bad_file_nonexistent),
        /* B. malformed sets */
        T(test_bad_index_not_json),
        T(test_bad_index_array),
        T(test_bad_index_missing_weight_map),
        T(test_bad_index_weight_map_array),
        T(test_bad_index_weight_map_empty),
        T(test_bad_index_value_not_string),
        T(test_bad_index_absolute_path),
        T(test_bad_index_dotdot_path),
        T(test_bad_index_dotdot_inside_path),
        T(test_bad_index_empty_shard_name),
        T(test_bad_index_symlink_outside),
        T(test_bad_index_subdir_symlink_outside),
        T(test_bad_index_missing_shard),
        T(test_bad_index_tensor_absent_from_shard),
        T(test_bad_index_tensor_missing_from_index),
        T(test_bad_index_tensor_under_wrong_shard),
        T(test_bad_index_tensor_in_two_shards),
        T(test_bad_index_duplicate_keys),
        T(test_bad_index_truncated_shard),
        T(test_bad_index_shard_bad_header),
        T(test_bad_dir_without_safetensors),
        T(test_bad_dir_two_files_no_index),
        T(test_bad_dir_single_file_malformed),
        T(test_bad_set_nonexistent_path),
        /* C. writer */
        T(test_writer_roundtrip),
        T(test_writer_one_write_per_tensor),
        T(test_writer_no_tensors),
        T(test_writer_abort_before_data),
        T(test_writer_abort_after_data),
        T(test_writer_too_many_bytes),
        T(test_writer_bytes_after_complete),
        T(test_writer_finish_with_missing_bytes),
        T(test_writer_finish_without_data),
        T(test_writer_rejects_bad_declarations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
