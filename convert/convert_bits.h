/* convert --bits B: the mixed-precision plan (quant/bit_plan) for a checkpoint.
 * Importance (per-channel mean squares) and routing frequencies come from a stats
 * file of moepack profile; the chosen encodings go into the policy.
 *
 * Bytes are real bytes. Per tensor (the default, for moepack's own runtime) they are
 * the pack's: each part rounded up to 64 bytes and each routed expert's record to
 * 4 KiB, the padding counted against the budget (the plan is redone with a smaller
 * budget until the padded total fits). With `stacked` (for GGUF, whose layer holds all
 * experts of a projection as one tensor of one type) all experts of a layer's gate, up
 * or down share one encoding, and bytes are GGUF's: each tensor rounded up to 32. */
#ifndef MP_CONVERT_BITS_H
#define MP_CONVERT_BITS_H

#include <jansson.h>
#include <stdbool.h>

#include "../model/plan.h"
#include "../quant/policy.h"

typedef struct {
    double bits;             /* average bits per weight over the planned tensors */
    const char *encodings;   /* comma-separated options; NULL: w4g128,w4g64,w4g32,fp8-block,bf16 */
    bool stacked;            /* one encoding per layer and expert projection */
} mp_bits_request;

/* Checks the --bits-encodings list: 0, or -1 with err naming the bad entry. */
int mp_bits_encodings_check(const char *list, mp_error *err);
/* Plans every quantized linear not decided by a --keep/--encode rule so that their
 * average is at most req->bits bits per weight. *summary: the plan for the manifest. */
int mp_convert_plan_bits(const mp_model *m, const mp_plan *plan, mp_policy *policy, const mp_bits_request *req,
                         const char *stats_path, json_t **summary, mp_error *err);
/* Prints the plan's summary (from the JSON above). */
void mp_bit_plan_print(const json_t *summary);

#endif
