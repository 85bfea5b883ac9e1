/* Byte-plane grouping before zstd: floats' sign/exponent bytes (or nibbles, for
 * fp8) are gathered apart from their mantissas so the compressor sees the
 * low-entropy planes as runs. */
#include <stdlib.h>
#include <string.h>

#include "pack.h"

static void split_bytes(uint8_t *data, uint64_t n, bool inverse)
{
    uint8_t *tmp = malloc(2 * n);
    if (!tmp)
        return; /* callers size their buffers; a failed malloc here leaves data as is */
    for (uint64_t i = 0; i < n; i++) {
        if (inverse) {
            tmp[2 * i] = data[i];
            tmp[2 * i + 1] = data[n + i];
        } else {
            tmp[i] = data[2 * i];
            tmp[n + i] = data[2 * i + 1];
        }
    }
    memcpy(data, tmp, 2 * n);
    free(tmp);
}

/* Nibble planes: plane 0 holds the high nibbles, plane 1 the low ones, two per byte. */
static void split_nibbles(uint8_t *data, uint64_t n, bool inverse)
{
    uint64_t plane = (n + 1) / 2;
    uint8_t *tmp = calloc(n + 1, 1);
    if (!tmp)
        return;
    for (uint64_t i = 0; i < n; i++) {
        int shift = (i & 1) ? 4 : 0;
        if (inverse) {
            uint8_t hi = (data[i / 2] >> shift) & 15, lo = (data[plane + i / 2] >> shift) & 15;
            tmp[i] = (uint8_t)(hi << 4 | lo);
        } else {
            tmp[i / 2] |= (uint8_t)((data[i] >> 4) << shift);
            tmp[plane + i / 2] |= (uint8_t)((data[i] & 15) << shift);
        }
    }
    memcpy(data, tmp, inverse ? n : 2 * plane);
    if (inverse && (n & 1))
        data[n] = 0; /* the planes borrowed the first padding byte */
    free(tmp);
}

void mp_pack_planes(const mp_encoding *e, uint8_t *data, uint64_t n_elements, bool inverse)
{
    if (e->nm24) /* its data section is not one byte per element */
        return;
    if (e->kind == MP_ENC_BF16 || e->kind == MP_ENC_F16)
        split_bytes(data, n_elements, inverse);
    else if (e->kind == MP_ENC_FP8)
        split_nibbles(data, n_elements, inverse);
}
