#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

int mp_cli_value(const char *name, int argc, char **argv, int *i, const char **value, mp_error *err)
{
    const char *arg = argv[*i];
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0)
        return 0;
    if (arg[n] == '=') {
        *value = arg + n + 1;
        return 1;
    }
    if (arg[n] != '\0')
        return 0;
    if (*i + 1 >= argc) {
        mp_fail(err, MP_EXIT_INPUT, "option %s needs a value", name);
        return -1;
    }
    *value = argv[++*i];
    return 1;
}

int mp_cli_int(const char *name, const char *text, int min, int max, int *out, mp_error *err)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end != '\0' || v < min || v > max)
        return mp_fail(err, MP_EXIT_INPUT, "option %s: \"%s\", expected an integer from %d to %d", name,
                       text, min, max);
    *out = (int)v;
    return MP_OK;
}

int mp_cli_common(mp_common_opts *o, int argc, char **argv, int *i, mp_error *err)
{
    const char *arg = argv[*i], *value;
    if (strcmp(arg, "--quiet") == 0 || strcmp(arg, "-q") == 0)
        return o->quiet = true, 1;
    if (strcmp(arg, "--json") == 0)
        return o->json = true, 1;
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
        return o->help = true, 1;
    int got = mp_cli_value("--threads", argc, argv, i, &value, err);
    if (got <= 0)
        return got;
    if (mp_cli_int("--threads", value, 1, 4096, &o->threads, err) != MP_OK)
        return -1;
    mp_threads_apply(o->threads);
    return 1;
}

/* Work is split at one level (bands into chunks, or rows inside a quantizer called
 * alone); a quantizer called from a chunk runs on its caller's thread. */
void mp_threads_apply(int threads)
{
    omp_set_max_active_levels(1);
    if (threads > 0)
        omp_set_num_threads(threads);
}

int mp_parse_size(const char *text, uint64_t *out)
{
    char *end;
    if (!isdigit((unsigned char)text[0]))
        return -1;
    unsigned long long v = strtoull(text, &end, 10);
    int shift = 0;
    switch (toupper((unsigned char)*end)) {
    case 'K': shift = 10; end++; break;
    case 'M': shift = 20; end++; break;
    case 'G': shift = 30; end++; break;
    default: break;
    }
    if (*end || v == 0 || v > (UINT64_MAX >> shift))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}
