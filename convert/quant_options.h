/* The options moepack convert and moepack quant share: how tensors are encoded
 * (--scheme, --group, --sym, --method, --keep, --encode), calibration (--calib and
 * its companions), the expert tiers' codec and the output (-o, --force); and what
 * of them the manifest's provenance records. One parser, so both commands accept
 * and refuse the same spellings with the same messages. */
#ifndef MP_QUANT_OPTIONS_H
#define MP_QUANT_OPTIONS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "../quant/calib.h"
#include "../quant/policy.h"
#include "../quant/w4.h"

typedef struct {
    const char *out;
    mp_policy policy;
    mp_quant_method method;
    mp_calib_options calib;
    bool zstd, zstd_given, force;
    bool nm_method_given;
    bool gptq_target_given;
    int zstd_level;
    char rules[2048]; /* --keep/--encode as given, for provenance */
} mp_quant_opts;

/* Defaults: w4a16, group 128, asymmetric, rtn, no codec, zstd level 3, and the
 * calibration defaults (131072 tokens of ctx 512, 0.5 % minimum per expert). */
void mp_quant_opts_init(mp_quant_opts *o);
void mp_quant_opts_free(mp_quant_opts *o);
/* Consumes argv[*i] (and its value) when it is one of these options: returns 1;
 * 0 when it is another argument; negative after recording a usage error in err. */
int mp_quant_opts_parse(mp_quant_opts *o, int argc, char **argv, int *i, mp_error *err);
/* Checks between the options: a method that needs --calib, --calib with a method
 * that cannot use it, --act-order without gptq. */
int mp_quant_opts_check(mp_quant_opts *o, mp_error *err);
/* An existing output is refused unless --force. */
int mp_quant_opts_check_output(const mp_quant_opts *o, mp_error *err);

/* The part of the provenance command these options shape: " --scheme S --group G
 * [--sym] --method M [--calib ...] --cold-codec C [--keep/--encode ...]". */
void mp_quant_opts_command(const mp_quant_opts *o, bool calibrated, char *buf, size_t cap);
/* The manifest's provenance: tool, command, source, then key: value (taken over),
 * scheme, method, group, sym and, when calib is not NULL, the calibration. */
json_t *mp_quant_provenance(const mp_quant_opts *o, const char *command, const char *source, const char *key,
                            json_t *value, const mp_calib_report *calib);
/* How a tensor calibration did not encode is quantized to w4 (awq and gptq need
 * calibration: without it, rtn). */
mp_w4_options mp_quant_opts_w4(const mp_quant_opts *o);

#endif
