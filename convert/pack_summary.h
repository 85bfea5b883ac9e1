/* What convert and quant report about the pack they wrote: weights and bytes per
 * tensor class, bytes in and out, time; the same table and JSON keys for both. And
 * build.json, and the files a pack's temporary directory may hold (for cleanup). */
#ifndef MP_PACK_SUMMARY_H
#define MP_PACK_SUMMARY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "../quant/policy.h"

typedef struct {
    uint64_t params[MP_CLASS_COUNT], bytes[MP_CLASS_COUNT];
    uint64_t source_bytes, pack_bytes; /* read, and written to tier files */
    int tensors, records, fallbacks;   /* fallbacks: a smaller w4 group or bf16 */
    double seconds;
} mp_pack_tally;

void mp_tally_tensor(mp_pack_tally *t, mp_tensor_class cls, int64_t rows, int64_t cols, const mp_encoding *enc,
                     bool fell_back);
/* The class table: weights, bytes, bits per weight per class and overall. */
void mp_tally_print_classes(const mp_pack_tally *t);
/* Bytes read and written, time, throughput, peak RSS, and the fallbacks (fallback_text:
 * mp_policy_fallback_text). */
void mp_tally_print_totals(const mp_pack_tally *t, const char *fallback_text);
/* {source, pack, scheme, tensors, records, classes, bits_per_weight, bytes_in,
 * bytes_out, seconds, mb_per_s, peak_rss_kb, fallbacks}: callers add their keys. */
json_t *mp_tally_json(const mp_pack_tally *t, const char *source, const char *pack, const char *scheme);
/* Prints a summary on stdout, indented, and frees it. */
void mp_summary_print_json(json_t *root);
/* build.json in dir: how long the pack took to make, for moepack compare. */
int mp_write_build_info(const char *dir, double seconds, double calibration_seconds, mp_error *err);

#endif
