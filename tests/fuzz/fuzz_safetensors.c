/* formats/safetensors.c: one .safetensors file (header, then every tensor's bytes
 * read and mapped back). */
#include <stdlib.h>

#include "../../formats/safetensors.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void read_tensors(const mp_st_file *f)
{
    uint8_t buf[256];
    for (int i = 0; i < f->n_tensors; i++) {
        const mp_st_tensor *t = &f->tensors[i];
        uint64_t n = mp_st_nbytes(t);
        uint64_t len = n < sizeof buf ? n : sizeof buf;
        mp_error err = {0};
        mp_st_read(f, t, n - len, len, buf, &err);
        mp_st_map map;
        if (len && mp_st_map_range(f, t, 0, len, &map, &err) == MP_OK)
            mp_st_unmap(&map);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *path = fuzz_write_file(fuzz_dir(), "model.safetensors", data, size);
    if (!path)
        return 0;
    mp_st_file f;
    mp_error err = {0};
    if (fuzz_check(mp_st_open(&f, path, &err), &err) == MP_OK) {
        read_tensors(&f);
        mp_st_close(&f);
    }
    free(path);
    return 0;
}
