#include "quant_options.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../core/cli.h"
#include "../core/version.h"
#include "../quant/nm_sparse.h"
#include "convert_calib.h"

void mp_quant_opts_init(mp_quant_opts *o)
{
    memset(o, 0, sizeof *o);
    mp_policy_init(&o->policy, MP_SCHEME_W4A16, 128, false);
    o->zstd_level = 3;
    o->calib = (mp_calib_options){.calib_tokens = 131072, .calib_ctx = 512, .min_tokens = -1,
                                  .nm_method = MP_NM_SPARSEGPT};
}

void mp_quant_opts_free(mp_quant_opts *o)
{
    mp_policy_free(&o->policy);
}

static int add_rule(mp_quant_opts *o, const char *arg, bool keep, mp_error *err)
{
    size_t used = strlen(o->rules);
    snprintf(o->rules + used, sizeof o->rules - used, " %s '%s'", keep ? "--keep" : "--encode", arg);
    return mp_policy_add_rule(&o->policy, arg, keep, err);
}

/* 1 when consumed, negative on a usage error: the mp_cli_common convention. */
static int consumed(int rc)
{
    return rc == MP_OK ? 1 : -1;
}

static int parse_encoding_option(mp_quant_opts *o, int argc, char **argv, int *i, mp_error *err)
{
    const char *v;
    int got;
    if ((got = mp_cli_value("--scheme", argc, argv, i, &v, err)) != 0)
        return got < 0 ? got
               : consumed(mp_scheme_parse(v, &o->policy.scheme) == 0
                              ? MP_OK
                              : mp_fail(err, MP_EXIT_INPUT, "--scheme \"%s\": expected bf16, fp8, w4a16, mixed or a grid (q8_0, q6_k, q5_k, "
                                                 "q4_k, q4_1, q4_0, iq4_nl, iq4_xs)", v));
    if ((got = mp_cli_value("--group", argc, argv, i, &v, err)) != 0) {
        if (got < 0 || mp_cli_int("--group", v, 32, 128, &o->policy.group, err) != MP_OK)
            return -1;
        return consumed(o->policy.group == 32 || o->policy.group == 64 || o->policy.group == 128
                            ? MP_OK : mp_fail(err, MP_EXIT_INPUT, "--group %s: expected 32, 64 or 128", v));
    }
    if ((got = mp_cli_value("--method", argc, argv, i, &v, err)) != 0)
        return got < 0 ? got
               : consumed(mp_method_parse(v, &o->method) == 0
                              ? MP_OK
                              : mp_fail(err, MP_EXIT_INPUT, "--method \"%s\": expected rtn, mse, hqq, awq or gptq", v));
    if ((got = mp_cli_value("--keep", argc, argv, i, &v, err)) != 0)
        return got < 0 ? got : consumed(add_rule(o, v, true, err));
    if ((got = mp_cli_value("--encode", argc, argv, i, &v, err)) != 0)
        return got < 0 ? got : consumed(add_rule(o, v, false, err));
    if (strcmp(argv[*i], "--sym") == 0)
        return o->policy.sym = true, 1;
    if ((got = mp_cli_value("--nm", argc, argv, i, &v, err)) != 0)
        return got < 0 ? got
               : consumed(strcmp(v, "2:4") == 0 ? (o->policy.nm24 = true, MP_OK)
                                                 : mp_fail(err, MP_EXIT_INPUT, "--nm \"%s\": expected 2:4", v));
    if ((got = mp_cli_value("--nm-method", argc, argv, i, &v, err)) != 0) {
        mp_nm_method m;
        if (got < 0)
            return got;
        if (mp_nm_method_parse(v, &m) != 0)
            return consumed(mp_fail(err, MP_EXIT_INPUT, "--nm-method \"%s\": expected wanda or sparsegpt", v));
        o->calib.nm_method = (int)m;
        o->nm_method_given = true;
        return 1;
    }
    return 0;
}

static int parse_count(const char *name, const char *v, int min, int64_t *out, mp_error *err)
{
    int n;
    if (mp_cli_int(name, v, min, 1 << 30, &n, err) != MP_OK)
        return -1;
    *out = n;
    return 1;
}

static int parse_calib_option(mp_quant_opts *o, int argc, char **argv, int *i, mp_error *err)
{
    const char *v;
    int got;
    if ((got = mp_cli_value("--calib", argc, argv, i, &v, err)) != 0)
        return got < 0 ? got : (o->calib.calib_path = v, 1);
    if ((got = mp_cli_value("--calib-ctx", argc, argv, i, &v, err)) != 0)
        return got < 0 ? got : consumed(mp_cli_int("--calib-ctx", v, 16, 1 << 16, &o->calib.calib_ctx, err));
    if ((got = mp_cli_value("--calib-tokens", argc, argv, i, &v, err)) != 0)
        return got < 0 ? got : parse_count("--calib-tokens", v, 16, &o->calib.calib_tokens, err);
    if ((got = mp_cli_value("--calib-min-tokens", argc, argv, i, &v, err)) != 0)
        return got < 0 ? got : parse_count("--calib-min-tokens", v, 0, &o->calib.min_tokens, err);
    if (strcmp(argv[*i], "--calib-all-experts") == 0)
        return o->calib.all_experts = true, 1;
    if (strcmp(argv[*i], "--act-order") == 0)
        return o->calib.act_order = true, 1;
    if ((got = mp_cli_value("--gptq-target", argc, argv, i, &v, err)) != 0) {
        if (got < 0)
            return got;
        if (strcmp(v, "original") != 0 && strcmp(v, "layer") != 0)
            return consumed(mp_fail(err, MP_EXIT_INPUT, "--gptq-target \"%s\": expected original or layer", v));
        o->calib.gptq_layer_target = strcmp(v, "layer") == 0;
        o->gptq_target_given = true;
        return 1;
    }
    return 0;
}

static int parse_output_option(mp_quant_opts *o, int argc, char **argv, int *i, mp_error *err)
{
    const char *v;
    int got;
    if ((got = mp_cli_value("--output", argc, argv, i, &v, err)) != 0 || (got = mp_cli_value("-o", argc, argv, i, &v, err)) != 0)
        return got < 0 ? got : (o->out = v, 1);
    if ((got = mp_cli_value("--cold-codec", argc, argv, i, &v, err)) != 0) {
        if (got < 0)
            return got;
        if (strcmp(v, "none") != 0 && strcmp(v, "zstd") != 0)
            return consumed(mp_fail(err, MP_EXIT_INPUT, "--cold-codec \"%s\": expected none or zstd", v));
        o->zstd = strcmp(v, "zstd") == 0;
        o->zstd_given = true;
        return 1;
    }
    if ((got = mp_cli_value("--zstd-level", argc, argv, i, &v, err)) != 0)
        return got < 0 ? got : consumed(mp_cli_int("--zstd-level", v, 1, 19, &o->zstd_level, err));
    if (strcmp(argv[*i], "--force") == 0)
        return o->force = true, 1;
    return 0;
}

int mp_quant_opts_parse(mp_quant_opts *o, int argc, char **argv, int *i, mp_error *err)
{
    int got = parse_encoding_option(o, argc, argv, i, err);
    if (got == 0)
        got = parse_calib_option(o, argc, argv, i, err);
    if (got == 0)
        got = parse_output_option(o, argc, argv, i, err);
    return got;
}

int mp_quant_opts_check(mp_quant_opts *o, mp_error *err)
{
    o->calib.method = o->method;
    if (mp_method_needs_calib(o->method) && !o->calib.calib_path)
        return mp_fail(err, MP_EXIT_INPUT, "--method %s needs calibration text: --calib FILE", mp_method_name(o->method));
    if (o->calib.calib_path && o->method != MP_METHOD_MSE && !mp_method_needs_calib(o->method))
        return mp_fail(err, MP_EXIT_INPUT, "--calib is used by --method mse, awq or gptq, not %s",
                       mp_method_name(o->method));
    if (o->calib.act_order && o->method != MP_METHOD_GPTQ)
        return mp_fail(err, MP_EXIT_INPUT, "--act-order is a gptq option (--method gptq)");
    if (o->gptq_target_given && o->method != MP_METHOD_GPTQ)
        return mp_fail(err, MP_EXIT_INPUT, "--gptq-target is a gptq option (--method gptq)");
    if (o->policy.nm24 && !o->calib.calib_path)
        return mp_fail(err, MP_EXIT_INPUT, "--nm 2:4 prunes from calibration activations: --calib FILE (with --method mse, awq or gptq)");
    if (o->policy.nm24 && o->policy.scheme != MP_SCHEME_W4A16 && o->policy.scheme != MP_SCHEME_FP8 &&
        o->policy.scheme != MP_SCHEME_MIXED)
        return mp_fail(err, MP_EXIT_INPUT, "--nm 2:4 applies to fp8 and w4 linears: --scheme w4a16, fp8 or mixed, not %s",
                       mp_scheme_name(o->policy.scheme));
    return MP_OK;
}

int mp_quant_opts_check_output(const mp_quant_opts *o, mp_error *err)
{
    struct stat st;
    if (!o->force && lstat(o->out, &st) == 0)
        return mp_fail(err, MP_EXIT_INPUT, "%s already exists (use --force to replace it)", o->out);
    return MP_OK;
}

void mp_quant_opts_command(const mp_quant_opts *o, bool calibrated, char *buf, size_t cap)
{
    char calib[1400] = "";
    if (calibrated)
        snprintf(calib, sizeof calib, " --calib %s --calib-tokens %lld --calib-ctx %d%s%s%s", o->calib.calib_path,
                 (long long)o->calib.calib_tokens, o->calib.calib_ctx, o->calib.all_experts ? " --calib-all-experts" : "",
                 o->calib.act_order ? " --act-order" : "", o->calib.gptq_layer_target ? " --gptq-target layer" : "");
    char nm[64] = "";
    if (o->policy.nm24)
        snprintf(nm, sizeof nm, " --nm 2:4 --nm-method %s", mp_nm_method_name((mp_nm_method)o->calib.nm_method));
    snprintf(buf, cap, " --scheme %s --group %d%s%s --method %s%s --cold-codec %s%s", mp_scheme_name(o->policy.scheme),
             o->policy.group, o->policy.sym ? " --sym" : "", nm, mp_method_name(o->method), calib,
             o->zstd ? "zstd" : "none", o->rules);
}

json_t *mp_quant_provenance(const mp_quant_opts *o, const char *command, const char *source, const char *key,
                            json_t *value, const mp_calib_report *calib)
{
    json_t *p = json_pack("{s:s, s:s, s:s, s:o, s:s, s:s, s:i, s:b}", "tool", "moepack " MP_VERSION, "command", command,
                          "source", source, key, value, "scheme", mp_scheme_name(o->policy.scheme), "method",
                          mp_method_name(o->method), "group", o->policy.group, "sym", o->policy.sym);
    if (calib)
        json_object_set_new(p, "calibration", mp_calib_provenance(&o->calib, calib));
    if (o->policy.nm24)
        json_object_set_new(p, "sparsity", json_pack("{s:s, s:s}", "nm", "2:4", "method",
                                                     mp_nm_method_name((mp_nm_method)o->calib.nm_method)));
    return p;
}

mp_w4_options mp_quant_opts_w4(const mp_quant_opts *o)
{
    return (mp_w4_options){.method = o->method == MP_METHOD_MSE ? MP_W4_MSE
                                     : o->method == MP_METHOD_HQQ ? MP_W4_HQQ
                                                                  : MP_W4_RTN};
}
