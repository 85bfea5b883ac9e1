/* formats/stats.c: a stats file, opened with its data checksum, every linear's array
 * read and every layer's routing row looked up.
 *
 * The input is a split input (see fuzz_util.h). A "header" section (the JSON) and a
 * "data" section (the arrays) are laid out as the writer lays them out: the 64-byte
 * prefix with the lengths and checksums that fit them, the header padded with zeros
 * to 64 bytes, the data; so mutations get past the checksums. A "file" section is the
 * whole file as is, prefix included. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "../../formats/stats.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int lay_out(const char *dir)
{
    size_t n_header, n_data;
    uint8_t *header = fuzz_read_file(dir, "header", &n_header);
    uint8_t *data = fuzz_read_file(dir, "data", &n_data);
    size_t start = (MP_STATS_PREFIX_BYTES + (header ? n_header : 0) + 63) / 64 * 64;
    uint8_t *file = header && data ? calloc(1, start + n_data + 1) : NULL;
    int ok = 0;
    if (file) {
        uint8_t *p = file;
        memcpy(p, MP_STATS_MAGIC, 8);
        p[8] = MP_STATS_VERSION;
        fuzz_put_u64(p + 16, n_header);
        fuzz_put_u64(p + 24, n_data);
        memcpy(file + MP_STATS_PREFIX_BYTES, header, n_header);
        memcpy(file + start, data, n_data);
        fuzz_put_u64(p + 32, XXH3_64bits(file + MP_STATS_PREFIX_BYTES, start - MP_STATS_PREFIX_BYTES));
        fuzz_put_u64(p + 40, XXH3_64bits(file + start, n_data));
        fuzz_put_u64(p + 56, XXH3_64bits(p, 56));
        char *path = fuzz_write_file(dir, "file", file, start + n_data);
        ok = path != NULL;
        free(path);
    }
    free(file);
    free(header);
    free(data);
    return ok;
}

static void read_all(const mp_stats *s)
{
    mp_error err = {0};
    for (int i = 0; i < s->n_linears; i++) {
        /* the reader bounds cols by the data section, which the input bounds */
        float *mean_sq = malloc(((size_t)s->linears[i].cols + 1) * sizeof *mean_sq);
        if (mean_sq)
            mp_stats_read_linear(s, i, mean_sq, &err);
        free(mean_sq);
        if (mp_stats_find(s, s->names[i]) != i)
            __builtin_trap(); /* the name index must find every linear it lists */
    }
    for (int layer = -1; layer <= 256; layer++)
        mp_stats_layer_row(s, layer);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *dir = fuzz_dir();
    if (fuzz_split_into(dir, data, size) == 0)
        return 0;
    char path[4096];
    if (!fuzz_single_file(dir, lay_out, path, sizeof path))
        return 0;
    mp_stats s;
    mp_error err = {0};
    if (fuzz_check(mp_stats_open(&s, path, true, &err), &err) != MP_OK)
        return 0;
    read_all(&s);
    mp_stats_close(&s);
    return 0;
}
