/* Command-line options shared by reference, verify and profile. */
#ifndef MP_RUN_OPTIONS_H
#define MP_RUN_OPTIONS_H

#include <stdint.h>

#include "../core/cli.h"
#include "../engine/engine.h"

enum {
    MP_RUN_NEEDS_OUTPUT = 1, /* -o FILE is required */
    MP_RUN_VERIFY = 2        /* --reference, --report and thresholds are accepted */
};

typedef struct {
    mp_common_opts common;
    const char *model;      /* the positional CKPT|PACK */
    const char *text, *tokens, *output, *reference, *report;
    int ctx, top_k; /* top_k 0: the whole distribution */
    int64_t max_chunks;
    mp_act_mode act;
    const char *act_name;
    double max_kld, min_top1; /* negative: no threshold */
    bool allow_nonfinite;     /* --allow-nonfinite: run a checkpoint's NaN/infinite weights */
} mp_run_options;

/* Defaults: ctx 256, f32 activations, no thresholds. */
void mp_run_options_init(mp_run_options *o);
/* The options that say what to run over (--text, --tokens, --ctx, --chunks, --act,
 * --allow-nonfinite),
 * at argv[*i]: 1 consumed, 0 not one of them, negative on a usage error. */
int mp_run_options_parse_input(mp_run_options *o, int argc, char **argv, int *i, mp_error *err);
/* Parses argv; prints help (and returns 0 with common.help set) on --help. Applies --threads. */
int mp_run_options_parse(mp_run_options *o, int argc, char **argv, int flags, const char *help, mp_error *err);

#endif
