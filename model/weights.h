/* Reading the canonical model's weights from the checkpoint as f32, whatever the
 * storage: f32/bf16/f16, FP8 with block scales, MXFP4 blocks, stacked experts,
 * transposed or interleaved (GPT-OSS gate/up) rows. */
#ifndef MP_WEIGHTS_H
#define MP_WEIGHTS_H

#include "model.h"

/* Rows [r0, r1) of lin (logical [rows, cols]) into out[(r1 - r0) * cols]. */
int mp_ckpt_read_rows(const mp_model *m, const mp_linear *lin, int64_t r0, int64_t r1, float *out, mp_error *err);
/* The bias of lin (lin->rows values). */
int mp_ckpt_read_bias(const mp_model *m, const mp_linear *lin, float *out, mp_error *err);
/* A whole 2-D or 1-D tensor seen as a linear: [rows, cols] or [1, n]. */
mp_linear mp_linear_of_tensor(const mp_model *m, int tensor);
/* Bytes of the checkpoint behind lin's weight (and scales): what reading it costs. */
uint64_t mp_ckpt_linear_bytes(const mp_model *m, const mp_linear *lin);

#endif
