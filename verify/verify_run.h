/* Measuring one pack against a reference: what moepack verify prints and moepack
 * compare tabulates, one pack at a time, computed by the same code so their figures
 * agree to the last digit. */
#ifndef MP_VERIFY_RUN_H
#define MP_VERIFY_RUN_H

#include "run_options.h"
#include "verify_result.h"

/* Runs the pack o->model over the reference o->reference (a reference file, or a
 * checkpoint directory run live, which needs o->text or o->tokens) and fills r: the
 * logit metrics and their summary, routing counts, and against a checkpoint the
 * per-layer and per-tensor errors. Thresholds are copied from o, not judged. what
 * labels the progress bar. r is reset first; release it with mp_verify_result_free
 * whatever the outcome. Exit 2 for a reference of another model or another text. */
int mp_verify_measure(const mp_run_options *o, const char *what, mp_verify_result *r, mp_error *err);

/* The checks of mp_verify_measure that need no run: the reference exists, a checkpoint
 * reference comes with a text, and o->model is the model of the reference (same
 * messages). For callers that measure many packs and want to fail before the first. */
int mp_verify_check_model(const mp_run_options *o, mp_error *err);

void mp_verify_result_free(mp_verify_result *r);

#endif
