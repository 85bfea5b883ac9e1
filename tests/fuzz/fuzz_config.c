/* model/config.c and the model building over a checkpoint: a split input (see
 * fuzz_util.h) of config.json and a tiny model.safetensors (its header is what the
 * building reads), opened as `moepack inspect` opens a checkpoint. */
#include "../../model/checkpoint.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *dir = fuzz_dir();
    if (fuzz_split_into(dir, data, size) == 0)
        return 0;
    mp_checkpoint c;
    mp_error err = {0};
    if (fuzz_check(mp_checkpoint_open(&c, dir, &err), &err) != MP_OK)
        return 0;
    uint64_t params = 0;
    for (int i = 0; i < c.st.n_tensors; i++)
        params += mp_model_tensor_params(&c.model, i);
    (void)params;
    mp_checkpoint_close(&c);
    return 0;
}
