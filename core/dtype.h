/* Element types of checkpoints and packs, and the conversions between f32 and
 * the narrow floating-point formats.
 *
 * Rounding and special values (each is tested exhaustively in tests/unit/test_dtype.c):
 *   f16   IEEE binary16. Encode: round to nearest, ties to even; overflow -> +-inf;
 *         NaN -> quiet NaN (0x7e00, sign kept); subnormals kept.
 *   bf16  top half of binary32. Encode: round to nearest, ties to even; overflow -> +-inf;
 *         NaN -> quiet NaN (0x7fc0, sign kept).
 *   fp8 e4m3 ("e4m3fn", OCP/PyTorch float8_e4m3fn): bias 7, no infinities, max 448,
 *         NaN = 0x7f / 0xff. Encode: ties to even; |x| > 448 and +-inf saturate to +-448;
 *         NaN -> 0x7f (0xff when the sign bit is set).
 *   fp8 e5m2 (float8_e5m2): bias 15, IEEE-like, max 57344, inf 0x7c/0xfc.
 *         Encode: ties to even; overflow -> +-inf (as PyTorch's cast); NaN -> 0x7e/0xfe.
 *   e8m0  (OCP MX scale): value 2^(b-127), b = 0..254; 0xff = NaN.
 *         Encode: the smallest power of two >= |x| (2^ceil(log2|x|), as DeepSeek-V3.1's
 *         "ue8m0" scale format), clamped to [2^-127, 2^127]; zero and negative inputs
 *         give 0x00 (2^-127); NaN gives 0xff.
 *   fp4 e2m1 (OCP MXFP4 element, one nibble): bias 1, values 0 .5 1 1.5 2 3 4 6, sign bit 3.
 *         Encode: ties to even; saturates to +-6; NaN -> +6 with its sign (FP4 has no NaN). */
#ifndef MP_DTYPE_H
#define MP_DTYPE_H

#include <stddef.h>
#include <stdint.h>

/* The safetensors dtype set, in the order of the safetensors Dtype enum. */
typedef enum {
    MP_DT_BOOL,
    MP_DT_F4,
    MP_DT_F6_E2M3,
    MP_DT_F6_E3M2,
    MP_DT_U8,
    MP_DT_I8,
    MP_DT_F8_E5M2,
    MP_DT_F8_E4M3,
    MP_DT_F8_E8M0,
    MP_DT_F8_E4M3FNUZ,
    MP_DT_F8_E5M2FNUZ,
    MP_DT_I16,
    MP_DT_U16,
    MP_DT_F16,
    MP_DT_BF16,
    MP_DT_I32,
    MP_DT_U32,
    MP_DT_F32,
    MP_DT_C64,
    MP_DT_F64,
    MP_DT_I64,
    MP_DT_U64,
    MP_DT_COUNT
} mp_dtype;

/* The safetensors spelling, e.g. "BF16", "F8_E4M3". */
const char *mp_dtype_name(mp_dtype dt);
/* Returns 0 and sets *dt when name is a known safetensors dtype, -1 otherwise. */
int mp_dtype_from_name(const char *name, mp_dtype *dt);
/* Storage size of one element in bits (4 for F4, 6 for F6_*). */
int mp_dtype_bits(mp_dtype dt);

/* Scalar conversions. */
float mp_f16_to_f32(uint16_t h);
uint16_t mp_f32_to_f16(float f);
float mp_bf16_to_f32(uint16_t b);
uint16_t mp_f32_to_bf16(float f);
float mp_fp8_e4m3_to_f32(uint8_t v);
uint8_t mp_f32_to_fp8_e4m3(float f);
float mp_fp8_e5m2_to_f32(uint8_t v);
uint8_t mp_f32_to_fp8_e5m2(float f);
float mp_e8m0_to_f32(uint8_t v);
uint8_t mp_f32_to_e8m0(float f);
float mp_fp4_e2m1_to_f32(uint8_t nibble); /* low 4 bits used */
uint8_t mp_f32_to_fp4_e2m1(float f);      /* returns a nibble 0..15 */

/* Bulk conversions for the hot paths (vectorized where the CPU allows). */
void mp_bf16_to_f32_n(const uint16_t *src, float *dst, size_t n);
void mp_f16_to_f32_n(const uint16_t *src, float *dst, size_t n);
void mp_fp8_e4m3_to_f32_n(const uint8_t *src, float *dst, size_t n);
void mp_fp8_e5m2_to_f32_n(const uint8_t *src, float *dst, size_t n);
void mp_f32_to_bf16_n(const float *src, uint16_t *dst, size_t n);
void mp_f32_to_f16_n(const float *src, uint16_t *dst, size_t n);

/* Decodes n elements of a float dtype (F32, F16, BF16, F8_E4M3, F8_E5M2, F8_E8M0)
 * from little-endian bytes. Returns 0, or -1 for a dtype that is not one of these. */
int mp_decode_to_f32(mp_dtype dt, const void *src, float *dst, size_t n);

#endif
