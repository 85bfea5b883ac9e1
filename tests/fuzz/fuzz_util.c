/* The file plumbing of the fuzz targets (see fuzz_util.h). A target runs in one
 * process for millions of inputs, so its directories are made once and reused. */
#include "fuzz_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

static const char *tmp_base(void)
{
    const char *env = getenv("TMPDIR");
    if (env && *env)
        return env;
    struct stat st;
    return stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
}

static char *make_dir(void)
{
    char *path = malloc(4096);
    if (!path)
        abort();
    snprintf(path, 4096, "%s/moepack-fuzz-XXXXXX", tmp_base());
    if (!mkdtemp(path)) {
        perror("fuzz: mkdtemp");
        abort();
    }
    return path;
}

/* Made on first use and kept for the life of the process (libFuzzer has no teardown
 * hook; the run script removes leftovers). */
static char *input_dir, *output_dir;

const char *fuzz_dir(void)
{
    if (!input_dir)
        input_dir = make_dir();
    return input_dir;
}

const char *fuzz_out_dir(void)
{
    if (!output_dir)
        output_dir = make_dir();
    return output_dir;
}

void fuzz_dir_clear(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
}

char *fuzz_write_file(const char *dir, const char *name, const uint8_t *data, size_t size)
{
    size_t cap = strlen(dir) + strlen(name) + 2;
    char *path = malloc(cap);
    if (!path)
        return NULL;
    snprintf(path, cap, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    size_t done = 0;
    while (fd >= 0 && done < size) {
        ssize_t n = write(fd, data + done, size - done);
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    if (fd >= 0)
        close(fd);
    if (fd < 0 || done != size) {
        free(path);
        return NULL;
    }
    return path;
}

static int valid_name(const uint8_t *s, size_t n)
{
    if (n == 0 || n > 64 || s[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(s[i] == '.' || s[i] == '_' || s[i] == '-' || (s[i] >= '0' && s[i] <= '9') ||
              (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
            return 0;
    return 1;
}

/* Offset of the next marker at or after from that starts the input or a line. */
static size_t next_marker(const uint8_t *data, size_t size, size_t from)
{
    size_t m = sizeof FUZZ_MARKER - 1;
    for (size_t i = from; i + m <= size; i++)
        if ((i == 0 || data[i - 1] == '\n') && memcmp(data + i, FUZZ_MARKER, m) == 0)
            return i;
    return size;
}

int fuzz_split_into(const char *dir, const uint8_t *data, size_t size)
{
    fuzz_dir_clear(dir);
    int n_files = 0;
    size_t at = next_marker(data, size, 0);
    while (at < size) {
        size_t name = at + sizeof FUZZ_MARKER - 1, eol = name;
        while (eol < size && data[eol] != '\n')
            eol++;
        size_t body = eol < size ? eol + 1 : size;
        size_t next = next_marker(data, size, body);
        size_t end = next < size ? next - 1 : size; /* the newline before a marker is not content */
        if (end < body)
            end = body;
        if (valid_name(data + name, eol - name)) {
            char fname[65];
            memcpy(fname, data + name, eol - name);
            fname[eol - name] = '\0';
            char *path = fuzz_write_file(dir, fname, data + body, end - body);
            n_files += path != NULL;
            free(path);
        }
        at = next;
    }
    return n_files;
}

uint8_t *fuzz_read_file(const char *dir, const char *name, size_t *size)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    uint8_t *buf = NULL;
    long len = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (len >= 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)len + 1)) != NULL &&
        fread(buf, 1, (size_t)len, f) != (size_t)len) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf)
        *size = (size_t)len;
    return buf;
}

uint64_t fuzz_get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

void fuzz_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void fill_manifest_sum(const char *dir)
{
    size_t n;
    uint8_t *sum = fuzz_read_file(dir, "manifest.xxh3", &n);
    if (sum) {
        free(sum);
        return;
    }
    uint8_t *text = fuzz_read_file(dir, "manifest.json", &n);
    if (!text)
        return;
    char hex[18];
    snprintf(hex, sizeof hex, "%016llx\n", (unsigned long long)XXH3_64bits(text, n));
    free(fuzz_write_file(dir, "manifest.xxh3", (const uint8_t *)hex, 17));
    free(text);
}

static void fill_tier_header(const char *dir, int tier)
{
    char name[32];
    snprintf(name, sizeof name, "tier-%d.bin", tier);
    size_t n;
    uint8_t *bytes = fuzz_read_file(dir, name, &n);
    if (bytes && n >= 64) {
        if (fuzz_get_u64(bytes + 16) == 0)
            fuzz_put_u64(bytes + 16, n);
        if (fuzz_get_u64(bytes + 56) == 0)
            fuzz_put_u64(bytes + 56, XXH3_64bits(bytes, 56));
        free(fuzz_write_file(dir, name, bytes, n));
    }
    free(bytes);
}

/* The checksum of the stored bytes a record names, or false when they are not in
 * its tier file. */
static bool record_sum(const char *dir, json_t *rec, char hex[17])
{
    json_int_t tier = json_integer_value(json_object_get(rec, "tier"));
    json_int_t off = json_integer_value(json_object_get(rec, "offset"));
    json_int_t len = json_integer_value(json_object_get(rec, "length"));
    char name[32];
    snprintf(name, sizeof name, "tier-%lld.bin", (long long)tier);
    size_t n;
    uint8_t *bytes = tier >= 0 && tier < 4 ? fuzz_read_file(dir, name, &n) : NULL;
    bool ok = bytes && off >= 0 && len >= 0 && (uint64_t)off <= n && (uint64_t)len <= n - (uint64_t)off;
    if (ok)
        snprintf(hex, 17, "%016llx", (unsigned long long)XXH3_64bits(bytes + off, (size_t)len));
    free(bytes);
    return ok;
}

/* Records whose xxh3 is all zeros get the checksum of their stored bytes, so the
 * fuzzer reaches the decoding behind the check (every read checks it). */
static void fill_record_sums(const char *dir)
{
    size_t n;
    uint8_t *text = fuzz_read_file(dir, "manifest.json", &n);
    json_t *root = text ? json_loadb((const char *)text, n, 0, NULL) : NULL;
    json_t *records = json_object_get(root, "records");
    bool changed = false;
    for (size_t i = 0; i < json_array_size(records); i++) {
        json_t *rec = json_array_get(records, i);
        char hex[17];
        const char *sum = json_string_value(json_object_get(rec, "xxh3"));
        if (sum && strcmp(sum, "0000000000000000") == 0 && record_sum(dir, rec, hex))
            changed |= json_object_set_new(rec, "xxh3", json_string(hex)) == 0;
    }
    char *out = changed ? json_dumps(root, JSON_PRESERVE_ORDER | JSON_COMPACT) : NULL;
    if (out)
        free(fuzz_write_file(dir, "manifest.json", (const uint8_t *)out, strlen(out)));
    free(out);
    json_decref(root);
    free(text);
}

void fuzz_fill_pack_sums(const char *dir)
{
    for (int t = 0; t < 4; t++)
        fill_tier_header(dir, t);
    fill_record_sums(dir);
    fill_manifest_sum(dir);
}

int fuzz_check(int rc, const mp_error *err)
{
    if (rc == MP_OK)
        return rc;
    if (getenv("FUZZ_VERBOSE"))
        fprintf(stderr, "exit %d: %s\n", rc, err->msg);
    if ((rc != MP_EXIT_INPUT && rc != MP_EXIT_IO) || err->code != rc || err->msg[0] == '\0' ||
        strchr(err->msg, '\n') != NULL) {
        fprintf(stderr, "fuzz: failure breaks the error rule: exit %d, code %d, message \"%s\"\n", rc, err->code,
                err->msg);
        abort();
    }
    return rc;
}

int fuzz_single_file(const char *dir, int (*build)(const char *dir), char *path, size_t cap)
{
    size_t n;
    uint8_t *whole = fuzz_read_file(dir, "file", &n);
    free(whole);
    if (!whole && !build(dir))
        return 0;
    snprintf(path, cap, "%s/file", dir);
    return 1;
}
