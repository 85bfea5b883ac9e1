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
/* Stored bytes of tensor as they are (len bytes from byte offset), for the paths that
 * copy them without decoding: exit 2 naming the tensor and the flat index of its first
 * NaN or infinity, unless m->allow_nonfinite. Every read above checks its values so. */
int mp_ckpt_check_stored(const mp_model *m, int tensor, const void *bytes, uint64_t offset, uint64_t len,
                         mp_error *err);
/* Bytes of the checkpoint behind lin's weight (and scales): what reading it costs. */
uint64_t mp_ckpt_linear_bytes(const mp_model *m, const mp_linear *lin);

#endif
