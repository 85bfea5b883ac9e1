/* export/gguf_*.c: `moepack export --to gguf` of a pack directory (a split input, see
 * fuzz_util.h: manifest.json, tier-N.bin, config.json, tokenizer.json,
 * tokenizer_config.json; checksums filled in by fuzz_fill_pack_sums): the plan, the
 * metadata from config and tokenizer, and the whole file written to a scratch
 * directory. */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "../../export/export.h"
#include "fuzz_util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The export prints its summary on stdout: dropped, as libFuzzer reports on stderr. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0) {
        dup2(null, STDOUT_FILENO);
        close(null);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *dir = fuzz_dir(), *out_dir = fuzz_out_dir();
    if (fuzz_split_into(dir, data, size) == 0)
        return 0;
    fuzz_fill_pack_sums(dir);
    fuzz_dir_clear(out_dir);
    char out[4096];
    snprintf(out, sizeof out, "%s/out.gguf", out_dir);
    mp_export_options o = {.pack = dir, .out = out, .force = true, .quiet = true};
    mp_error err = {0};
    fuzz_check(mp_export_gguf(&o, &err), &err);
    return 0;
}
