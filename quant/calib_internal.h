/* Shared by calib*.c only. */
#ifndef MP_QUANT_CALIB_INTERNAL_H
#define MP_QUANT_CALIB_INTERNAL_H

#include "../core/progress.h"
#include "calib.h"
#include "hessian.h"

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
} calib_run;

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
/* calib_attention.c */
int calib_attention_stage(calib_run *c, int li, mp_error *err);

#endif
