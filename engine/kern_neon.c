/* arm64 NEON kernels: SIMD inner products for the portable tile loops, with the
 * int8 dot-product instruction (vdotq_s32) where the build targets it
 * (__ARM_FEATURE_DOTPROD, e.g. -march=armv8.2-a+dotprod) and widening multiplies
 * otherwise. Every arm64 CPU has NEON, so it is always chosen there. */
#if defined(__aarch64__)
#include <arm_neon.h>

#include "kern_internal.h"

static float dot_f32(const float *w, const float *x, int64_t k)
{
    float32x4_t a0 = vdupq_n_f32(0), a1 = vdupq_n_f32(0);
    int64_t i = 0;
    for (; i + 8 <= k; i += 8) {
        a0 = vfmaq_f32(a0, vld1q_f32(w + i), vld1q_f32(x + i));
        a1 = vfmaq_f32(a1, vld1q_f32(w + i + 4), vld1q_f32(x + i + 4));
    }
    float s = vaddvq_f32(vaddq_f32(a0, a1));
    for (; i < k; i++)
        s += w[i] * x[i];
    return s;
}

/* Σ q·x over 32 int8 pairs, as 4 int32 lanes. */
static int32x4_t dot32(const int8_t *q, const int8_t *x)
{
    int8x16_t q0 = vld1q_s8(q), q1 = vld1q_s8(q + 16), x0 = vld1q_s8(x), x1 = vld1q_s8(x + 16);
#if defined(__ARM_FEATURE_DOTPROD)
    return vdotq_s32(vdotq_s32(vdupq_n_s32(0), q0, x0), q1, x1);
#else
    int16x8_t p0 = vmull_s8(vget_low_s8(q0), vget_low_s8(x0));
    int16x8_t p1 = vmull_s8(vget_high_s8(q0), vget_high_s8(x0));
    int16x8_t p2 = vmull_s8(vget_low_s8(q1), vget_low_s8(x1));
    int16x8_t p3 = vmull_s8(vget_high_s8(q1), vget_high_s8(x1));
    return vaddq_s32(vaddq_s32(vpaddlq_s16(p0), vpaddlq_s16(p1)), vaddq_s32(vpaddlq_s16(p2), vpaddlq_s16(p3)));
#endif
}

static float dot_q8(const int8_t *q, const float *a, const float *b, const int8_t *xq, const float *xd,
                    const float *xs, int64_t nb)
{
    float32x4_t acc = vdupq_n_f32(0);
    float off = 0;
    for (int64_t j = 0; j < nb; j++) {
        int32x4_t p = dot32(q + 32 * j, xq + 32 * j);
        acc = vfmaq_n_f32(acc, vcvtq_f32_s32(p), a[j] * xd[j]);
        off += b[j] * xs[j];
    }
    return vaddvq_f32(acc) + off;
}

static const mp_kern_inner inner = {dot_f32, dot_q8};

static void exact(const mp_packed *w, const float *x, int64_t r0, int64_t r1, int64_t t0, int64_t t1, float *y)
{
    mp_kern_exact_tiles(&inner, w, x, r0, r1, t0, t1, y);
}

static void fast(const mp_packed *w, const mp_kern_xq *xq, int64_t r0, int64_t r1, int64_t t0, int64_t t1,
                 float *y)
{
    mp_kern_fast_tiles(&inner, w, xq, r0, r1, t0, t1, y);
}

const mp_kern_ops *mp_kern_neon(void)
{
    static const mp_kern_ops ops = {"neon", exact, fast};
    return &ops;
}

#else
#include "kern_internal.h"

const mp_kern_ops *mp_kern_neon(void)
{
    return NULL;
}
#endif
