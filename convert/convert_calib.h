/* convert --calib: the calibrated quantization of quant/calib run before the pack
 * is written, with the encodings the policy gives each tensor. */
#ifndef MP_CONVERT_CALIB_H
#define MP_CONVERT_CALIB_H

#include <jansson.h>

#include "../model/plan.h"
#include "../quant/calib.h"
#include "../quant/policy.h"

/* Calibrates the model at model_path (a checkpoint or a pack), staging into a
 * scratch file at stage_path; encoding(user, ...) gives each tensor's encoding. */
int mp_calibrate_staged(const char *model_path, mp_calib_options *o, mp_encoding_fn encoding, void *user,
                        const char *stage_path, mp_stage *stage, mp_calib_report *report, mp_error *err);
/* The same for a checkpoint, the encodings the policy gives its plan's tensors. */
int mp_convert_calibrate(const char *ckpt, const mp_model *m, const mp_plan *plan, const mp_policy *policy,
                         mp_calib_options *o, const char *stage_path, mp_stage *stage, mp_calib_report *report,
                         mp_error *err);
/* Writes a staged tensor as a pack part (shape: ndim dims). */
int mp_write_staged(const char *name, const char *source, int ndim, const int64_t *shape, const mp_stage *s,
                    const mp_staged *t, mp_pack_writer *w, mp_error *err);
/* Writes a staged tensor as the pack part of plan part `part`. */
int mp_convert_staged_part(const mp_plan_part *part, const mp_stage *s, const mp_staged *t, mp_pack_writer *w,
                           mp_error *err);
/* What the manifest records of the calibration. */
json_t *mp_calib_provenance(const mp_calib_options *o, const mp_calib_report *r);
/* The calibration block of a --json summary: the provenance and the time. */
json_t *mp_calib_summary_json(const mp_calib_options *o, const mp_calib_report *r);
/* The summary lines: tokens, time, experts that fell back. */
void mp_calib_print(const mp_calib_options *o, const mp_calib_report *r);

#endif
