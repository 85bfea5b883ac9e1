/* formats/pack_reader.c and model/pack_open.c: a pack directory (a split input, see
 * fuzz_util.h: manifest.json, tier-N.bin, ...; checksums filled in by
 * fuzz_fill_pack_sums), opened as every command opens it, every record read, every
 * tier's padding checked and every tensor looked up. */
#include <stdlib.h>

#include "../../model/pack_open.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A caller allocates raw_length bytes for a record: beyond this the harness skips it
 * rather than have the fuzzer report the allocation. */
#define MAX_RAW (64u << 20)

static void read_pack(const mp_pack *p)
{
    mp_error err = {0};
    for (int r = 0; r < p->n_records; r++) {
        uint64_t raw = p->records[r].raw_length;
        uint8_t *buf = raw <= MAX_RAW ? malloc(raw ? raw : 1) : NULL;
        if (buf)
            fuzz_check(mp_pack_read_record(p, r, buf, &err), &err);
        free(buf);
        char label[128];
        mp_pack_record_label(p, r, label, sizeof label);
    }
    for (int t = 0; t < p->n_tiers; t++)
        fuzz_check(mp_pack_check_padding(p, t, &err), &err);
    for (int i = 0; i < p->n_tensors; i++)
        if (mp_pack_find(p, p->names[i]) != i)
            __builtin_trap(); /* the name index must find every tensor it lists */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *dir = fuzz_dir();
    if (fuzz_split_into(dir, data, size) == 0)
        return 0;
    fuzz_fill_pack_sums(dir);
    mp_pack p;
    mp_error err = {0};
    if (fuzz_check(mp_model_pack_open(&p, dir, false, &err), &err) != MP_OK)
        return 0;
    read_pack(&p);
    mp_pack_close(&p);
    return 0;
}
