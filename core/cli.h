/* Command-line plumbing shared by every subcommand. */
#ifndef MP_CLI_H
#define MP_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"

typedef struct {
    int threads; /* 0 = all cores */
    bool quiet, json, help;
} mp_common_opts;

/* Consumes argv[*i] (and its value) when it is --threads N, --quiet, --json or
 * -h/--help. Returns 1 when consumed, 0 when not a common option, or a negative
 * value after recording a usage error in err. */
int mp_cli_common(mp_common_opts *o, int argc, char **argv, int *i, mp_error *err);

/* Matches "--name VALUE" or "--name=VALUE" at argv[*i]; returns 1 and sets *value,
 * 0 when argv[*i] is another option, negative (usage error) when the value is missing. */
int mp_cli_value(const char *name, int argc, char **argv, int *i, const char **value, mp_error *err);

/* Parses a positive integer option value. */
int mp_cli_int(const char *name, const char *text, int min, int max, int *out, mp_error *err);

/* Parses "4M", "512K", "1G", "123" (bytes; K/M/G are powers of 1024). */
int mp_parse_size(const char *text, uint64_t *out);

/* Applies the thread count (OpenMP) for the rest of the process. */
void mp_threads_apply(int threads);

#endif
