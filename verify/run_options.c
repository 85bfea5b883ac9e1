#include "run_options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_number(const char *name, const char *text, double *out, mp_error *err)
{
    char *end;
    *out = strtod(text, &end);
    if (end == text || *end || *out < 0)
        return mp_fail(err, MP_EXIT_INPUT, "%s: expected a non-negative number, got \"%s\"", name, text);
    return MP_OK;
}

int mp_run_options_parse_input(mp_run_options *o, int argc, char **argv, int *i, mp_error *err)
{
    const char *v;
    int got, n;
    if ((got = mp_cli_value("--text", argc, argv, i, &o->text, err)) != 0) return got;
    if ((got = mp_cli_value("--tokens", argc, argv, i, &o->tokens, err)) != 0) return got;
    if ((got = mp_cli_value("--ctx", argc, argv, i, &v, err)) != 0)
        return got < 0 ? got : (mp_cli_int("--ctx", v, 4, 1 << 20, &o->ctx, err) ? -1 : 1);
    if ((got = mp_cli_value("--chunks", argc, argv, i, &v, err)) != 0) {
        if (got < 0 || mp_cli_int("--chunks", v, 1, 1 << 30, &n, err))
            return -1;
        o->max_chunks = n;
        return 1;
    }
    if (strcmp(argv[*i], "--allow-nonfinite") == 0)
        return o->allow_nonfinite = true, 1;
    if ((got = mp_cli_value("--act", argc, argv, i, &o->act_name, err)) != 0) {
        if (got > 0 && mp_act_parse(o->act_name, &o->act) != 0)
            return mp_fail(err, MP_EXIT_INPUT, "--act: expected f32, bf16 or fp8, got \"%s\"", o->act_name), -1;
        return got;
    }
    return 0;
}

void mp_run_options_init(mp_run_options *o)
{
    memset(o, 0, sizeof *o);
    o->ctx = 256;
    o->act_name = "f32";
    o->max_kld = o->min_top1 = -1;
}

/* One option at argv[*i]: 1 consumed, 0 not ours, negative on a usage error. */
static int parse_one(mp_run_options *o, int argc, char **argv, int *i, int flags, mp_error *err)
{
    const char *v;
    int got = mp_run_options_parse_input(o, argc, argv, i, err);
    if (got != 0) return got;
    if ((got = mp_cli_value("-o", argc, argv, i, &o->output, err)) != 0) return got;
    if ((got = mp_cli_value("--top-k", argc, argv, i, &v, err)) != 0)
        return got < 0 ? got : (mp_cli_int("--top-k", v, 0, 1 << 20, &o->top_k, err) ? -1 : 1);
    if (!(flags & MP_RUN_VERIFY))
        return 0;
    if ((got = mp_cli_value("--reference", argc, argv, i, &o->reference, err)) != 0) return got;
    if ((got = mp_cli_value("--report", argc, argv, i, &o->report, err)) != 0) return got;
    if ((got = mp_cli_value("--max-kld", argc, argv, i, &v, err)) != 0)
        return got < 0 ? got : (parse_number("--max-kld", v, &o->max_kld, err) ? -1 : 1);
    if ((got = mp_cli_value("--min-top1", argc, argv, i, &v, err)) != 0)
        return got < 0 ? got : (parse_number("--min-top1", v, &o->min_top1, err) ? -1 : 1);
    return 0;
}

static int check_required(const mp_run_options *o, int flags, const char *cmd, mp_error *err)
{
    if (!o->model)
        return mp_fail(err, MP_EXIT_INPUT, "missing the model (CKPT or PACK); see moepack %s --help", cmd);
    if ((flags & MP_RUN_NEEDS_OUTPUT) && !o->output)
        return mp_fail(err, MP_EXIT_INPUT, "missing -o FILE; see moepack %s --help", cmd);
    if (o->text && o->tokens)
        return mp_fail(err, MP_EXIT_INPUT, "give --text or --tokens, not both");
    if (!(flags & MP_RUN_VERIFY) && !o->text && !o->tokens)
        return mp_fail(err, MP_EXIT_INPUT, "missing --text FILE (or --tokens FILE); see moepack %s --help", cmd);
    if ((flags & MP_RUN_VERIFY) && !o->reference)
        return mp_fail(err, MP_EXIT_INPUT, "missing --reference REF|CKPT; see moepack %s --help", cmd);
    return MP_OK;
}

int mp_run_options_parse(mp_run_options *o, int argc, char **argv, int flags, const char *help, mp_error *err)
{
    mp_run_options_init(o);
    for (int i = 1; i < argc; i++) {
        int got = mp_cli_common(&o->common, argc, argv, &i, err);
        if (got == 0)
            got = parse_one(o, argc, argv, &i, flags, err);
        if (got < 0)
            return err->code ? err->code : MP_EXIT_INPUT;
        if (got == 0 && (argv[i][0] == '-' || o->model))
            return mp_fail(err, MP_EXIT_INPUT, "unexpected argument \"%s\"; see moepack %s --help", argv[i], argv[0]);
        if (got == 0)
            o->model = argv[i];
    }
    if (o->common.help) {
        fputs(help, stdout);
        return MP_OK;
    }
    mp_threads_apply(o->common.threads);
    return check_required(o, flags, argv[0], err);
}
