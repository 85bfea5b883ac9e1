#include <stdio.h>
#include <string.h>

#include "../core/cli.h"
#include "export.h"

static const char *export_help =
    "usage: moepack export PACK --to gguf|compressed-tensors -o OUT [options]\n\n"
    "Writes a pack in a format other runtimes load. See docs/export.md for what maps\n"
    "exactly and what is re-encoded.\n\n"
    "  --to gguf                OUT is a GGUF v3 file for llama.cpp (Ollama, LM Studio): grid\n"
    "                           encodings (q8_0 ... iq4_xs) are copied bit for bit; other\n"
    "                           encodings are re-encoded to the nearest GGUF type at least as\n"
    "                           precise, and the command says which\n"
    "  --to compressed-tensors  OUT is a HF checkpoint directory for vLLM: w4 as\n"
    "                           pack-quantized int4, fp8 as float-quantized FP8\n"
    "  -o, --output OUT         the file or directory to write\n"
    "  --split-max-size SIZE    gguf: split into files of at most SIZE (e.g. 2G), named as\n"
    "                           llama.cpp's gguf-split names them (OUT-00001-of-0000N.gguf)\n"
    "  --shard-size SIZE        compressed-tensors: bytes per safetensors shard (default 5G)\n"
    "  --force                  replace an existing OUT\n"
    "  --json                   a machine-readable summary on stdout\n"
    "  --quiet                  no progress bar\n"
    "  -h, --help               this text\n\n"
    "exit codes: 0 ok, 2 bad input, or a pack the target format cannot hold (the reason\n"
    "is named), 3 I/O failure\n";

typedef struct {
    mp_common_opts common;
    mp_export_options export;
    const char *to;
} export_args;

static int parse_size(const char *name, const char *v, uint64_t *out, mp_error *err)
{
    if (mp_parse_size(v, out) == 0 && *out > 0)
        return 1;
    return mp_fail(err, MP_EXIT_INPUT, "%s \"%s\": expected a size such as 524288, 512K, 4M or 2G", name, v), -1;
}

static int parse_option(export_args *a, int argc, char **argv, int *i, mp_error *err)
{
    const char *v;
    int got = mp_cli_common(&a->common, argc, argv, i, err);
    if (got == 0)
        got = mp_cli_value("--to", argc, argv, i, &a->to, err);
    if (got == 0 && (got = mp_cli_value("--output", argc, argv, i, &a->export.out, err)) == 0)
        got = mp_cli_value("-o", argc, argv, i, &a->export.out, err);
    if (got == 0 && (got = mp_cli_value("--split-max-size", argc, argv, i, &v, err)) > 0)
        got = parse_size("--split-max-size", v, &a->export.split_max_size, err);
    if (got == 0 && (got = mp_cli_value("--shard-size", argc, argv, i, &v, err)) > 0)
        got = parse_size("--shard-size", v, &a->export.shard_size, err);
    if (got == 0 && strcmp(argv[*i], "--force") == 0)
        got = a->export.force = true;
    return got;
}

static int parse_args(export_args *a, int argc, char **argv, mp_error *err)
{
    memset(a, 0, sizeof *a);
    for (int i = 1; i < argc; i++) {
        int got = parse_option(a, argc, argv, &i, err);
        if (got < 0)
            return err->code;
        if (got > 0)
            continue;
        if (argv[i][0] == '-' || a->export.pack)
            return mp_fail(err, MP_EXIT_INPUT, "unexpected argument \"%s\"; see moepack export --help", argv[i]);
        a->export.pack = argv[i];
    }
    if (a->common.help)
        return MP_OK;
    if (!a->export.pack || !a->to || !a->export.out)
        return mp_fail(err, MP_EXIT_INPUT, "expected PACK --to gguf|compressed-tensors -o OUT; see moepack export --help");
    if (strcmp(a->to, "gguf") != 0 && strcmp(a->to, "compressed-tensors") != 0)
        return mp_fail(err, MP_EXIT_INPUT, "--to \"%s\": expected gguf or compressed-tensors", a->to);
    bool gguf = strcmp(a->to, "gguf") == 0;
    if (gguf ? a->export.shard_size != 0 : a->export.split_max_size != 0)
        return mp_fail(err, MP_EXIT_INPUT, "%s goes with --to %s", gguf ? "--shard-size" : "--split-max-size",
                       gguf ? "compressed-tensors" : "gguf");
    a->export.json = a->common.json;
    a->export.quiet = a->common.quiet;
    return MP_OK;
}

int mp_cmd_export(int argc, char **argv, mp_error *err)
{
    export_args a;
    int rc = parse_args(&a, argc, argv, err);
    if (rc != MP_OK)
        return rc;
    if (a.common.help) {
        fputs(export_help, stdout);
        return MP_OK;
    }
    mp_threads_apply(a.common.threads);
    if (strcmp(a.to, "gguf") == 0)
        return mp_export_gguf(&a.export, err);
    return mp_export_compressed_tensors(&a.export, err);
}
