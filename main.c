/* moepack: one binary, one subcommand per stage. This file dispatches, once OpenBLAS
 * computes with the kernels the CPU supports. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "convert/convert_commands.h"
#include "core/cli.h"
#include "core/version.h"
#include "engine/linalg.h"
#include "export/export.h"
#include "prune/prune_commands.h"
#include "run/run_commands.h"
#include "verify/verify_commands.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv, mp_error *err);
    const char *summary;
} command;

static const command commands[] = {
    {"inspect", mp_cmd_inspect, "architecture, layers, experts, dtypes, sizes, parameter counts"},
    {"check", mp_cmd_check, "structure and checksums of every record of a pack"},
    {"convert", mp_cmd_convert, "HF checkpoint -> pack (bf16, fp8, w4a16, mixed) in one streaming pass"},
    {"quant", mp_cmd_quant, "re-quantize a pack into a new pack (schemes, methods, calibration as convert)"},
    {"prune", mp_cmd_prune, "drop the least salient routed experts (freq, REAP, EAN) on calibration text"},
    {"distill", mp_cmd_distill, "fit a quantized or pruned pack to its teacher layer by layer (GPTQ onto its grids)"},
    {"reference", mp_cmd_reference, "run the original model over a text; record a reference run"},
    {"profile", mp_cmd_profile, "routing counts and input statistics per expert and linear (calibration)"},
    {"verify", mp_cmd_verify, "PPL, KL divergence, top-1, per-layer and per-expert error against a reference"},
    {"compare", mp_cmd_compare, "packs side by side against one reference: bits/weight, PPL, KLD, top-1, a plot"},
    {"tokenize", mp_cmd_tokenize, "the ids or pieces of a text or of chat messages, as HF's tokenizer gives them"},
    {"export", mp_cmd_export, "a pack as GGUF (llama.cpp) or compressed-tensors (vLLM)"},
    {"run", mp_cmd_run, "generate text from a pack under a memory budget, experts paged from disk"},
};

static void usage(FILE *out)
{
    fprintf(out, "moepack %s: Mixture-of-Experts checkpoints into small deployable packs\n\n"
                 "usage: moepack COMMAND [options]   (moepack COMMAND --help for its options)\n\n"
                 "commands:\n",
            MP_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nexit codes: 0 ok, 1 verify thresholds not met, 2 bad input or usage, 3 I/O failure\n");
}

/* OpenBLAS chose its kernels before main (engine/linalg.h): when they are the generic
 * ones and the CPU has better, run again with OPENBLAS_CORETYPE naming them. A user's
 * own OPENBLAS_CORETYPE is left alone; if the exec fails, we go on as we are. */
static void use_best_blas_kernels(char **argv)
{
    const char *core = mp_linalg_better_blas_core();
    if (!core || getenv("OPENBLAS_CORETYPE") || setenv("OPENBLAS_CORETYPE", core, 0) != 0)
        return;
    execv("/proc/self/exe", argv);
}

int main(int argc, char **argv)
{
    /* Past a file-size limit (ulimit -f) the kernel would kill us with SIGXFSZ and leave
     * the temporary output; ignored, the write fails with EFBIG and the writer's error
     * path removes it and names the file. */
    signal(SIGXFSZ, SIG_IGN);
    use_best_blas_kernels(argv);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? MP_EXIT_INPUT : MP_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("moepack %s\n", MP_VERSION);
        return MP_OK;
    }
    mp_threads_apply(0);
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++) {
        if (strcmp(argv[1], commands[i].name) != 0)
            continue;
        mp_error err = {0};
        int rc = commands[i].run(argc - 1, argv + 1, &err);
        if (rc != MP_OK && err.msg[0])
            fprintf(stderr, "moepack %s: %s\n", commands[i].name, err.msg);
        return rc;
    }
    fprintf(stderr, "moepack: unknown command \"%s\"; run moepack --help for the list\n", argv[1]);
    return MP_EXIT_INPUT;
}
