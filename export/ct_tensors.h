/* compressed-tensors export: the bytes of one output tensor, from the raw bytes of the
 * pack tensor it comes from. The pack's w4 data already is compressed-tensors'
 * weight_packed: two codes per byte, the first in the low nibble, read as little-endian
 * int32 words put code j of every 8 at bits 4j; a code q is the unsigned nibble
 * compressed-tensors stores for the signed value q - 8. Scales and fp8 codes are copied;
 * only the zero points are repacked (8 rows per int32 word along the output dimension). */
#ifndef MP_CT_TENSORS_H
#define MP_CT_TENSORS_H

#include <stdint.h>

#include "../formats/safetensors.h"
#include "ct_plan.h"

/* Appends output tensor o to w; part holds its pack tensor's raw bytes. */
int ct_write_tensor(const ct_plan *plan, const ct_out *o, const uint8_t *part, mp_st_writer *w, mp_error *err);

#endif
