/* Calibrated quantization, layer by layer (GPTQ's and llm-compressor's sequential
 * pipeline): the calibration text runs through the model one layer at a time; each
 * layer's linears are quantized from the rows that reach them, and the layer is
 * then run again with its quantized weights, so every later layer is calibrated on
 * what the quantized model will really feed it. Within a layer the attention is
 * quantized first and the MLP is calibrated on the quantized attention's output.
 *
 * Routed experts are calibrated on the tokens routed to them (or on every token
 * with all_experts; outputs still follow the router). One expert at a time holds
 * its Hessians (d x d for gate/up, width x width for down), experts in parallel.
 * An expert that saw fewer than min_tokens tokens falls back to calibration-free
 * MSE search and is reported.
 *
 * Results: every tensor calibration encodes (each w4 linear, and each tensor AWQ
 * rescaled) goes to the stage, from which the pack writer copies it. */
#ifndef MP_QUANT_CALIB_H
#define MP_QUANT_CALIB_H

#include <stdbool.h>

#include "../engine/engine.h"
#include "stage.h"

typedef enum { MP_METHOD_RTN, MP_METHOD_MSE, MP_METHOD_HQQ, MP_METHOD_AWQ, MP_METHOD_GPTQ } mp_quant_method;

const char *mp_method_name(mp_quant_method m);
/* "rtn", "mse", "hqq", "awq", "gptq"; -1 when unknown. */
int mp_method_parse(const char *text, mp_quant_method *m);
/* Whether the method needs calibration text (awq, gptq) or can use it (mse). */
bool mp_method_needs_calib(mp_quant_method m);

/* The encoding of a tensor (canonical name, shape) as the pack will store it. */
typedef int (*mp_encoding_fn)(void *user, const char *name, int64_t rows, int64_t cols, mp_encoding *enc,
                              mp_error *err);

/* Distillation (moepack distill): the model calibrated is a student pack, fitted
 * to the outputs of a teacher run beside it (quant/calib_teacher.c). */
typedef struct {
    const char *path;     /* the teacher: checkpoint or pack of the same model */
    const int *expert_of; /* [n_layers * student experts]: the teacher's id of each student expert (pruned
                             students); NULL: the same id */
    bool keep_router;     /* routers not refit */
    bool same_model;      /* the teacher is the model being quantized (gptq's default objective): what is
                             not fitted is quantized as in ordinary calibration, never left as it was */
} mp_calib_teacher;

typedef struct {
    mp_quant_method method;
    const char *calib_path; /* text to calibrate on */
    const char *tokens_path; /* or its token ids (then calib_path NULL) */
    int64_t calib_tokens;   /* at most this many tokens (whole sequences of calib_ctx) */
    int calib_ctx;
    bool all_experts;       /* statistics of every expert from every token */
    int64_t min_tokens;     /* fewer routed tokens: fallback; < 0: 0.5 % of the calibration tokens */
    bool act_order;         /* gptq: columns by decreasing activation energy */
    bool gptq_layer_target; /* gptq: each linear's target is its own output on the quantized stream's
                               inputs (gptq.py); else the original model's output at the same tokens */
    int nm_method;          /* 2:4 tensors (encodings with nm24): mp_nm_method of quant/nm_sparse.h */
    const mp_calib_teacher *teacher; /* NULL: ordinary calibration */
    bool allow_nonfinite;   /* checkpoints' NaN/infinite weights are read, not refused */
    bool quiet;
    mp_encoding_fn encoding;
    void *encoding_user;
} mp_calib_options;

typedef struct {
    int layer, expert, tokens;
} mp_calib_fallback;

/* Distillation, per layer: sum ||W_t x_t - Q x_s||^2 over the fitted linears with the
 * student's tensors as they were (before) and as stored (after), and sum ||W_t x_t||^2
 * (norm); the router's ||X W^T - L||^2 / ||L||^2 before and after its refit. */
typedef struct {
    double before, after, norm;
    double router_before, router_after;
    int tensors;
} mp_calib_fit;

typedef struct {
    int64_t tokens, sequences;
    int tensors;        /* quantized with calibration */
    int gptq_rounded;   /* gptq: Hessians no damping made positive definite; rounded on the same grids */
    int n_fallbacks;
    mp_calib_fallback *fallbacks;
    int nm_tensors;     /* tensors pruned 2:4 with a Hessian */
    double nm_error;    /* their summed output error sum_r (w_r - d_r) H (w_r - d_r)^T, d = as stored */
    int n_fits;         /* distillation: one per layer */
    mp_calib_fit *fits;
    double seconds;
} mp_calib_report;

/* Runs calibration on the model at model_path (a checkpoint directory), staging
 * results into stage. */
int mp_calibrate(const char *model_path, const mp_calib_options *o, mp_stage *stage, mp_calib_report *report,
                 mp_error *err);
void mp_calib_report_free(mp_calib_report *r);

#endif
