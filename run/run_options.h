/* moepack run's command line. */
#ifndef MP_RUN_CLI_OPTIONS_H
#define MP_RUN_CLI_OPTIONS_H

#include "../core/cli.h"
#include "runtime.h"
#include "sampler.h"

typedef struct {
    mp_common_opts common;
    const char *pack, *prompt, *prompt_file, *prompt_ids, *perplexity;
    bool interactive, chat, stats, ignore_eos;
    int max_tokens, ctx, chunks;
    mp_sampler_opts sampling;
    mp_runtime_opts runtime;
    const char *budget_text;
} mp_run_cli;

extern const char *mp_run_help;

/* Parses argv (applies --threads); on --help returns 0 with common.help set. */
int mp_run_cli_parse(mp_run_cli *o, int argc, char **argv, mp_error *err);

#endif
