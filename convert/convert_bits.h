/* convert --bits B: the mixed-precision plan (quant/bit_plan) for a checkpoint.
 * Importance (per-channel mean squares) and routing frequencies come from a stats
 * file of moepack profile; the chosen encodings go into the policy. */
#ifndef MP_CONVERT_BITS_H
#define MP_CONVERT_BITS_H

#include <jansson.h>

#include "../model/plan.h"
#include "../quant/policy.h"

/* Plans every quantized linear not decided by a --keep/--encode rule so that their
 * average is at most bits per weight. *summary: the plan for the manifest. */
int mp_convert_plan_bits(const mp_model *m, const mp_plan *plan, mp_policy *policy, double bits,
                         const char *stats_path, json_t **summary, mp_error *err);
/* Prints the plan's summary (from the JSON above). */
void mp_bit_plan_print(const json_t *summary);

#endif
