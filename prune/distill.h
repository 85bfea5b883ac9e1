/* moepack distill: a pack (the student) fitted layer by layer to the outputs of the
 * model it came from (the teacher, checkpoint or pack) on calibration text, every
 * fitted tensor re-encoded on its own grid (quant/calib_teacher.c describes the fit),
 * everything else copied byte for byte. Students pruned by moepack prune map each
 * expert to its teacher expert by the manifest's provenance.prune record. */
#ifndef MP_PRUNE_DISTILL_H
#define MP_PRUNE_DISTILL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "../quant/calib.h"
#include "prune_write.h"

typedef struct {
    const char *teacher, *student, *out;
    const char *calib, *tokens; /* one of them */
    int64_t calib_tokens;
    int ctx;
    bool act_order, keep_router, force, quiet;
    bool allow_nonfinite;       /* a checkpoint teacher's NaN/infinite weights are read, not refused */
    const char *command;        /* for the provenance */
} mp_distill_options;

typedef struct {
    mp_calib_report calib;
    mp_prune_written written;
    int teacher_experts, student_experts;
} mp_distill_result;

int mp_distill(const mp_distill_options *o, mp_distill_result *r, mp_error *err);
void mp_distill_result_free(mp_distill_result *r);
/* The per-layer fit as JSON (the provenance's and --json's "layers"). */
json_t *mp_distill_layers_json(const mp_calib_report *r);

#endif
