/* Shared by calib*.c only. */
#ifndef MP_QUANT_CALIB_INTERNAL_H
#define MP_QUANT_CALIB_INTERNAL_H

#include "../core/progress.h"
#include "calib.h"
#include "hessian.h"

/* Distillation sums of one slot (attention, shared and dense MLPs: 0; routed expert
 * x: x + 1), added up in slot order at the end of each layer. */
typedef struct {
    double before, after, norm;
    int tensors;
} calib_fit_slot;

typedef struct {
    const mp_calib_options *o;
    mp_engine *engine;
    const mp_config *cfg;
    mp_stage *stage;
    mp_calib_report *report;
    float *x;          /* residual stream of every calibration token [n, hidden] */
    int n_seq, ctx;
    int64_t n;         /* n_seq * ctx */
    int batch_seqs;    /* sequences per attention pass */
    int64_t min_tokens;
    mp_progress progress;
    mp_engine *teacher;       /* distillation: the teacher's engine, else NULL */
    float *xt;                /* the teacher's residual stream [n, hidden] */
    calib_fit_slot *fit_slots; /* [n_experts + 1] */
} calib_run;

/* The rows one MLP is calibrated on: n rows of x (and of the teacher's xt at the same
 * tokens when distilling); weight (routed experts): each row's gate weight. */
typedef struct {
    int which, teacher_which;
    const float *x, *xt;
    int64_t n;
    const mp_hessian *shared_h;
    const float *weight;
} calib_mlp_rows;

/* calib_teacher.c */
typedef struct {
    int64_t cols;
    double *cross; /* sum w^2 x_t x_s^T [cols, cols]: row = teacher channel */
    double *gram;  /* sum w^2 x_t x_t^T (w: the row's weight, as mp_hessian_add_weighted) */
} calib_teacher_sums;
int calib_teacher_sums_init(calib_teacher_sums *t, int64_t cols, mp_error *err);
void calib_teacher_sums_free(calib_teacher_sums *t);
/* weight NULL: every row weighs 1. */
int calib_teacher_sums_add(calib_teacher_sums *t, const float *xt, const float *xs, const float *weight, int64_t n,
                           mp_error *err);

enum { CALIB_MAX_CAPTURE = 16 };
/* The rows entering the teacher's attention linears in one batch, by name. */
typedef struct {
    char names[CALIB_MAX_CAPTURE][96];
    float *rows[CALIB_MAX_CAPTURE];
    size_t cap[CALIB_MAX_CAPTURE];
    int64_t n[CALIB_MAX_CAPTURE], cols[CALIB_MAX_CAPTURE];
    int same_as[CALIB_MAX_CAPTURE];
    int n_names;
    const float *last_x;
    mp_error err;
} calib_teacher_capture;
void calib_teacher_capture_reset(calib_teacher_capture *cap);
void calib_teacher_capture_free(calib_teacher_capture *cap);
/* An mp_engine_hooks.linear_input for the teacher's engine (user: the capture). */
void calib_teacher_capture_hook(void *user, const char *name, const float *x, int64_t n, int64_t cols);
/* The captured rows of name when there are n of cols values, else NULL. */
const float *calib_teacher_rows(const calib_teacher_capture *cap, const char *name, int64_t n, int64_t cols);

/* Fits the student's tensor name to the teacher's teacher_name (the file comment of
 * calib_teacher.c), commits it with H and adds the objective to fit_slots[slot]. */
int calib_distill_commit(calib_run *c, const char *name, const char *teacher_name, const mp_hessian *H,
                         const calib_teacher_sums *t, int slot, mp_error *err);
int calib_distill_mlp(calib_run *c, int li, const calib_mlp_rows *in, mp_error *err);
/* The router of layer li refit to the teacher's logits: hs, ht the student's and the
 * teacher's MLP inputs of every calibration token. */
int calib_distill_router(calib_run *c, int li, const float *hs, const float *ht, mp_error *err);
/* The teacher's id of student expert x of layer li. */
int calib_teacher_expert(const calib_run *c, int li, int expert);

/* AWQ's candidates: ratios k / 20 of AutoAWQ's plain and duo scalings. */
enum { CALIB_AWQ_RATIOS = 20, CALIB_AWQ_GRID = 2 * CALIB_AWQ_RATIOS };

/* calib_commit.c */
/* Quantizes (w4: by method, with H when given) or encodes one tensor whose f32 values
 * the engine holds, stages its bytes when stage is set or it is w4, and replaces the
 * engine's values by the decoded ones. H NULL: calibration-free (MSE search). */
int calib_commit(calib_run *c, const char *name, const mp_hessian *H, bool stage, mp_error *err);
/* AWQ: the scale s[cols] among the candidates of mean_abs minimising the summed
 * output error of the named linears (all reading the rows H describes). */
int calib_awq_losses(calib_run *c, const char *const *names, int n_names, const mp_hessian *H,
                     const float *mean_abs, const float *w_mean, double *losses, mp_error *err);
int calib_awq_pick(const double *losses, const float *mean_abs, const float *w_mean, int64_t cols, float *s);
/* Candidate k's scale; the loss of the named w4 linear under input scale s (0 when
 * it is not w4). */
void calib_awq_pick_one(int k, const float *mean_abs, const float *w_mean, int64_t cols, float *s);
double calib_awq_loss_of(calib_run *c, const char *name, const float *s, const mp_hessian *H);
/* The duo scaling's weight term over the w4 linears among names (cols values). */
int calib_awq_weight_mean(calib_run *c, const char *const *names, int n_names, int64_t cols, float *w_mean,
                          mp_error *err);
/* Folds s into an RMSNorm and the linears reading it: norm / s (rounded to its
 * encoding, then staged), each linear's columns * the exact ratio; s is updated to
 * that ratio. */
int calib_fold_norm(calib_run *c, const char *norm, const char *const *linears, int n_linears, float *s,
                    mp_error *err);

/* calib_nm.c */
/* A 2:4 tensor (enc->nm24): W pruned by o->nm_method (Wanda, or SparseGPT jointly with
 * the w4 grid; magnitude when H is NULL), quantized on the dense grid and stored 2:4 in
 * raw; its output error is added to the report. */
int calib_encode_nm24(calib_run *c, const mp_encoding *enc, float *W, int64_t rows, int64_t cols,
                      const mp_hessian *H, uint8_t *raw, mp_error *err);

/* calib_mlp.c */
int calib_mlp_stage(calib_run *c, int li, mp_error *err);
/* "layers.L.experts.X.part", or the shared expert's or dense MLP's (which < 0). */
void calib_mlp_name(char *buf, size_t cap, int li, int which, const char *part);
/* calib_attention.c */
int calib_attention_stage(calib_run *c, int li, mp_error *err);
/* The input Hessians of the named attention linears (H[k] of names[k], initialised
 * here) over every calibration batch, through the layer's current weights; the
 * stream does not move. */
int calib_attention_hessians(calib_run *c, int li, const char *const *names, int n, mp_hessian *H, mp_error *err);
/* The layer's (quantized) attention applied to the stream in place. */
int calib_attention_apply(calib_run *c, int li, mp_error *err);
/* AWQ: the scale of the norm feeding members (all reading the rows H describes)
 * searched on their summed output error, folded (calib_fold_norm), H rescaled. */
int calib_awq_norm(calib_run *c, const char *norm, const char *const *members, int n, mp_hessian *H, mp_error *err);
/* calib_mla.c */
/* MLA's attention in the order its data flows (the file comment). */
int calib_mla_stage(calib_run *c, int li, mp_error *err);

#endif
