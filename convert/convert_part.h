/* Streams one planned tensor from the checkpoint into the pack in its encoding. */
#ifndef MP_CONVERT_PART_H
#define MP_CONVERT_PART_H

#include "../core/progress.h"
#include "../formats/pack.h"
#include "../model/plan.h"
#include "../quant/encoder.h"
#include "../quant/w4.h"

int mp_convert_part(const mp_model *m, const mp_plan_part *part, const mp_encoding *enc, const mp_w4_options *w4,
                    mp_pack_writer *w, mp_progress *progress, mp_error *err);
/* Writes the encoder's tail (scales, zero points) after a tensor's data bands. */
int mp_part_write_tail(mp_encoder *x, mp_pack_writer *w, mp_error *err);
/* Bytes of the checkpoint read for a part. */
uint64_t mp_convert_part_source_bytes(const mp_model *m, const mp_plan_part *part);

#endif
