/* formats/reference.c: a reference file, opened and every chunk read.
 *
 * The input is a split input (see fuzz_util.h). A "payload" section (the zstd stream)
 * and a "footer" section (the JSON) are framed as the writer frames them: magic,
 * payload, footer, its length, end magic; so a mutated footer keeps a length that
 * fits. A "file" section is the whole file as is, framing included. */
#include <stdlib.h>
#include <string.h>

#include "../../formats/reference.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What the reader's caller allocates per chunk, from the footer's sizes: beyond this
 * the harness stops rather than have the fuzzer report the allocation. */
#define MAX_CHUNK_BYTES (64ull << 20)

static int frame(const char *dir)
{
    size_t n_payload, n_footer;
    uint8_t *payload = fuzz_read_file(dir, "payload", &n_payload);
    uint8_t *footer = fuzz_read_file(dir, "footer", &n_footer);
    uint8_t *file = payload && footer ? malloc(8 + n_payload + n_footer + 16) : NULL;
    int ok = 0;
    if (file) {
        memcpy(file, MP_REF_MAGIC, 8);
        memcpy(file + 8, payload, n_payload);
        memcpy(file + 8 + n_payload, footer, n_footer);
        fuzz_put_u64(file + 8 + n_payload + n_footer, n_footer);
        memcpy(file + 16 + n_payload + n_footer, MP_REF_END_MAGIC, 8);
        char *path = fuzz_write_file(dir, "file", file, 8 + n_payload + n_footer + 16);
        ok = path != NULL;
        free(path);
    }
    free(file);
    free(payload);
    free(footer);
    return ok;
}

static void read_chunks(mp_ref_reader *r)
{
    uint64_t row = r->k > 0 ? 8ull * (uint64_t)r->k : 2ull * (uint64_t)r->vocab;
    if (4ull * (uint64_t)r->ctx + (uint64_t)r->n_scored * (8 + row) > MAX_CHUNK_BYTES)
        return;
    mp_ref_chunk c;
    if (mp_ref_chunk_alloc(&c, r->ctx, r->n_scored, r->k, r->vocab) == 0) {
        mp_error err = {0};
        while (r->next_chunk < r->n_chunks && mp_ref_read_chunk(r, &c, &err) == MP_OK)
            ;
    }
    mp_ref_chunk_free(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *dir = fuzz_dir();
    if (fuzz_split_into(dir, data, size) == 0)
        return 0;
    char path[4096];
    if (!fuzz_single_file(dir, frame, path, sizeof path))
        return 0;
    mp_ref_reader r;
    mp_error err = {0};
    if (fuzz_check(mp_ref_open(&r, path, &err), &err) != MP_OK)
        return 0;
    read_chunks(&r);
    mp_ref_close(&r);
    return 0;
}
