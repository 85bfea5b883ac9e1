/* moepack export: a pack into the files other runtimes load. export_cmd.c parses the
 * command line; each target format has its own file: export_gguf.c (llama.cpp, GGUF v3)
 * and export_ct.c (vLLM, compressed-tensors). */
#ifndef MP_EXPORT_H
#define MP_EXPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "../core/error.h"

typedef struct {
    const char *pack;        /* the input pack directory */
    const char *out;         /* gguf: the output file; compressed-tensors: the output directory */
    uint64_t split_max_size; /* gguf --split-max-size: bytes per file, 0 = one file */
    uint64_t shard_size;     /* compressed-tensors --shard-size: bytes per safetensors shard, 0 = 5 GB */
    bool force;              /* replace an existing output */
    bool json;               /* a machine-readable summary on stdout */
    bool quiet;              /* no progress bar */
} mp_export_options;

int mp_cmd_export(int argc, char **argv, mp_error *err);

/* Each writes under a temporary name and renames when complete; on failure nothing is
 * left behind. Exit codes: 2 for what the target cannot hold (with the reason), 3 I/O. */
int mp_export_gguf(const mp_export_options *o, mp_error *err);
int mp_export_compressed_tensors(const mp_export_options *o, mp_error *err);

#endif
