/* formats/safetensors_set.c: a checkpoint directory of shards and the
 * model.safetensors.index.json that lists them (a split input: see fuzz_util.h),
 * opened as moepack opens a checkpoint, then one read of every tensor. */
#include "../../formats/safetensors.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *dir = fuzz_dir();
    if (fuzz_split_into(dir, data, size) == 0)
        return 0;
    mp_st_set s;
    mp_error err = {0};
    if (fuzz_check(mp_st_set_open(&s, dir, &err), &err) != MP_OK)
        return 0;
    uint8_t buf[64];
    for (int i = 0; i < s.n_tensors; i++) {
        uint64_t n = mp_st_nbytes(s.tensors[i].info);
        mp_st_set_read(&s, i, 0, n < sizeof buf ? n : sizeof buf, buf, &err);
        if (mp_st_set_find(&s, s.names[i]) != i)
            __builtin_trap(); /* the name index must find every tensor it lists */
    }
    mp_st_set_close(&s);
    return 0;
}
