#include "ct_tensors.h"

#include <stdlib.h>
#include <string.h>

/* The zero points z[r][j] (FORMAT.md: one flat row-major nibble sequence, low nibble
 * first) as compressed-tensors' pack_to_int32(zp + 8, packed_dim=0): word [i][j] holds
 * rows 8i..8i+7 of group j at bits 4(r - 8i); rows past the end are 0. Our zero point z
 * is the unsigned nibble of compressed-tensors' signed zp = z - 8, so (q - 8) - (z - 8)
 * = q - z: the same dequantized value. */
static int write_zero_points(const mp_pack_tensor *x, const mp_enc_layout *L, const uint8_t *part,
                             mp_st_writer *w, mp_error *err)
{
    int64_t rows = x->rows, groups = L->groups_per_row, words_down = (rows + 7) / 8;
    uint32_t *words = calloc((size_t)(words_down * groups) + 1, sizeof *words);
    if (!words)
        return mp_fail(err, MP_EXIT_IO, "%s: out of memory for zero points", x->name);
    const uint8_t *zeros = part + L->zeros_offset;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < groups; j++) {
            uint64_t k = (uint64_t)(r * groups + j);
            uint32_t z = (k & 1) ? zeros[k / 2] >> 4 : zeros[k / 2] & 15;
            words[(r / 8) * groups + j] |= z << (4 * (r % 8));
        }
    uint8_t *bytes = (uint8_t *)words; /* little-endian int32, as safetensors stores it */
    for (int64_t i = 0; i < words_down * groups; i++) {
        uint32_t v = words[i];
        bytes[4 * i] = (uint8_t)v, bytes[4 * i + 1] = (uint8_t)(v >> 8);
        bytes[4 * i + 2] = (uint8_t)(v >> 16), bytes[4 * i + 3] = (uint8_t)(v >> 24);
    }
    int rc = mp_st_writer_write(w, bytes, (uint64_t)(words_down * groups) * 4, err);
    free(words);
    return rc;
}

static int write_shape(const mp_pack_tensor *x, mp_st_writer *w, mp_error *err)
{
    uint8_t bytes[16];
    uint64_t dims[2] = {(uint64_t)x->rows, (uint64_t)x->cols};
    for (int d = 0; d < 2; d++)
        for (int b = 0; b < 8; b++)
            bytes[8 * d + b] = (uint8_t)(dims[d] >> (8 * b));
    return mp_st_writer_write(w, bytes, sizeof bytes, err);
}

/* Where a copied section lies in the raw part. */
static void section_span(ct_section s, const mp_enc_layout *L, uint64_t *off, uint64_t *len)
{
    *off = 0;
    *len = L->data_bytes;
    if (s == CT_SEC_FP8_SCALE || s == CT_SEC_W4_SCALE) {
        *off = L->scales_offset;
        *len = L->n_scales * L->scale_bytes;
    }
}

int ct_write_tensor(const ct_plan *plan, const ct_out *o, const uint8_t *part, mp_st_writer *w, mp_error *err)
{
    const mp_pack_tensor *x = &plan->pack->tensors[o->tensor];
    mp_enc_layout L;
    mp_encoding_layout(&x->enc, x->rows, x->cols, &L);
    if (o->section == CT_SEC_W4_ZERO)
        return write_zero_points(x, &L, part, w, err);
    if (o->section == CT_SEC_W4_SHAPE)
        return write_shape(x, w, err);
    uint64_t off, len;
    section_span(o->section, &L, &off, &len);
    if (len != o->bytes) /* the plan and the layout disagree: a bug, not bad input */
        return mp_fail(err, MP_EXIT_INPUT, "%s: %llu bytes planned for %s, the pack holds %llu", x->name,
                       (unsigned long long)o->bytes, o->name, (unsigned long long)len);
    return mp_st_writer_write(w, part + off, len, err);
}
