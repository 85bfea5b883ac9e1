/* moepack quant, one tensor: the stored bytes of a pack tensor into the pack being
 * written, copied when the encoding stays, else decoded to f32 and encoded again. */
#ifndef MP_QUANT_PART_H
#define MP_QUANT_PART_H

#include "../formats/pack.h"
#include "../quant/w4.h"

bool mp_encoding_same(const mp_encoding *a, const mp_encoding *b);
/* Writes tensor t, whose raw bytes (its part of the record) are in raw, as a part
 * in encoding enc: the bytes themselves when enc is the stored encoding. */
int mp_quant_part(const mp_pack_tensor *t, const uint8_t *raw, const mp_encoding *enc, const mp_w4_options *w4,
                  mp_pack_writer *w, mp_error *err);

#endif
