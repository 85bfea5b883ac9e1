/* Everything one verify run measured: printed as text or JSON, drawn in the report. */
#ifndef MP_VERIFY_RESULT_H
#define MP_VERIFY_RESULT_H

#include <stdbool.h>

#include "metrics.h"
#include "weight_error.h"

typedef struct {
    const char *pack, *reference, *text;
    bool reference_is_file; /* a reference run (else a checkpoint run live) */
    int ctx, top_k;         /* top_k: of the reference file; 0 = full logits */
    int64_t chunks;
    const char *act;
    double seconds;
    mp_logit_metrics logits;
    mp_logit_summary summary;
    mp_layer_metrics layers;   /* hidden states and router overlap: checkpoint references only */
    bool have_layers;
    mp_weight_errors weights;  /* checkpoint references only */
    bool have_weights;
    double max_kld, min_top1;  /* negative: no threshold */
    bool passed;
    char failure[256];
} mp_verify_result;

/* Writes the self-contained HTML report (temp name, then renamed). */
int mp_verify_report_write(const mp_verify_result *r, const char *path, mp_error *err);

#endif
