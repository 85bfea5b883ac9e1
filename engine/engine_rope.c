/* Rotary position embeddings: the frequency tables (default and YaRN, as HF's
 * modeling_rope_utils computes them) and their application in the two layouts
 * HF uses, "rotate_half" (pairs x[i], x[i + d/2]) and interleaved (pairs x[2i],
 * x[2i + 1], DeepSeek's rope_interleave). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"

/* Width of the rotated part of a head: MLA rotates its qk_rope slice; GQA the
 * first head_dim * partial_rotary_factor values (GLM-4.5: half), int() as HF. */
int eng_rope_dim(const mp_config *c)
{
    if (c->family == MP_FAMILY_DEEPSEEK_V2 || c->family == MP_FAMILY_DEEPSEEK_V3)
        return c->qk_rope_dim;
    double f = c->partial_rotary > 0 ? c->partial_rotary : 1.0;
    return (int)(c->head_dim * f);
}

bool eng_rope_is_yarn(const mp_config *c)
{
    return strcmp(c->rope_type, "yarn") == 0;
}

/* YaRN's magnitude correction 0.1 * mscale * ln(factor) + 1, 1 when not scaling up. */
double eng_yarn_mscale(double factor, double mscale)
{
    return factor <= 1 ? 1.0 : 0.1 * mscale * log(factor) + 1.0;
}

/* The factor HF multiplies cos and sin by: get_mscale(factor, mscale) /
 * get_mscale(factor, mscale_all_dim) when both are set (DeepSeek), else
 * get_mscale(factor) (GPT-OSS: 1.3466 at factor 32). mp_config cannot tell an
 * absent mscale from 1.0, so "both set" means mscale_all_dim != 0. */
static double yarn_attention_factor(const mp_config *c)
{
    if (c->rope_mscale != 0 && c->rope_mscale_all_dim != 0)
        return eng_yarn_mscale(c->rope_factor, c->rope_mscale) / eng_yarn_mscale(c->rope_factor, c->rope_mscale_all_dim);
    return eng_yarn_mscale(c->rope_factor, 1.0);
}

/* The dimension index at which a frequency completes num_rotations turns over
 * the original context (YaRN's find_correction_dim). */
static double correction_dim(double num_rotations, int dim, double base, int max_pos)
{
    return (dim * log(max_pos / (num_rotations * 2 * M_PI))) / (2 * log(base));
}

/* inv_freq[half]: frequencies below beta_slow turns are interpolated (divided by
 * factor), above beta_fast kept, with a linear ramp between, all in f32 as HF. */
static void yarn_inv_freq(const mp_config *c, int dim, float *inv_freq)
{
    double base = c->rope_theta, factor = c->rope_factor;
    double low = correction_dim(c->rope_beta_fast, dim, base, c->rope_original_max_pos);
    double high = correction_dim(c->rope_beta_slow, dim, base, c->rope_original_max_pos);
    if (c->rope_truncate) { /* rope_scaling.truncate, true unless set (GPT-OSS sets false) */
        low = floor(low);
        high = ceil(high);
    }
    low = low > 0 ? low : 0;
    high = high < dim - 1 ? high : dim - 1;
    if (low == high)
        high += 0.001; /* HF: avoids dividing by zero */
    for (int i = 0; i < dim / 2; i++) {
        float pos_freq = powf((float)base, (float)(2 * i) / (float)dim);
        float extrapolation = 1.0f / pos_freq, interpolation = 1.0f / ((float)factor * pos_freq);
        float ramp = ((float)i - (float)low) / (float)(high - low);
        ramp = ramp < 0 ? 0 : (ramp > 1 ? 1 : ramp);
        float keep = 1.0f - ramp; /* share of the unscaled frequency */
        inv_freq[i] = interpolation * (1.0f - keep) + extrapolation * keep;
    }
}

/* cos/sin tables computed the way HF does in f32: inv_freq = 1 / theta^(2i/d)
 * (or YaRN's), angle = position * inv_freq, both scaled by the attention factor. */
int eng_rope_init(eng_rope *r, const mp_config *cfg, int positions, mp_error *err)
{
    if (positions <= r->positions)
        return MP_OK;
    int dim = eng_rope_dim(cfg), half = dim / 2;
    float *c = realloc(r->cos, (size_t)positions * (size_t)half * sizeof *c);
    if (c)
        r->cos = c;
    float *s = realloc(r->sin, (size_t)positions * (size_t)half * sizeof *s);
    if (s)
        r->sin = s;
    float *inv_freq = malloc((size_t)half * sizeof *inv_freq);
    if (!c || !s || !inv_freq) {
        free(inv_freq);
        return mp_fail(err, MP_EXIT_IO, "out of memory for rope tables");
    }
    float scale = 1.0f;
    if (eng_rope_is_yarn(cfg)) {
        yarn_inv_freq(cfg, dim, inv_freq);
        scale = (float)yarn_attention_factor(cfg);
    } else {
        for (int i = 0; i < half; i++)
            inv_freq[i] = 1.0f / powf((float)cfg->rope_theta, (float)(2 * i) / (float)dim);
    }
    for (int i = 0; i < half; i++)
        for (int p = 0; p < positions; p++) {
            float angle = (float)p * inv_freq[i];
            r->cos[p * half + i] = cosf(angle) * scale;
            r->sin[p * half + i] = sinf(angle) * scale;
        }
    free(inv_freq);
    r->positions = positions;
    return MP_OK;
}

void eng_rope_free(eng_rope *r)
{
    free(r->cos);
    free(r->sin);
    *r = (eng_rope){0};
}

/* Interleaved pairs are rotated in place rather than first de-interleaved as HF
 * does: q and k get the same permutation, so every q.k product is unchanged.
 * x is [n, heads, stride], the slice starts at offset within a head. */
void eng_rope_rotate(const eng_rope *r, const mp_config *cfg, float *x, int64_t n, int pos0, int heads, int stride,
                     int offset, bool interleaved)
{
    int half = eng_rope_dim(cfg) / 2;
    for (int64_t t = 0; t < n; t++) {
        const float *c = r->cos + (pos0 + t) * half, *s = r->sin + (pos0 + t) * half;
        for (int h = 0; h < heads; h++) {
            float *v = x + (t * heads + h) * stride + offset;
            for (int i = 0; i < half; i++) {
                float *pa = interleaved ? &v[2 * i] : &v[i], *pb = interleaved ? &v[2 * i + 1] : &v[i + half];
                float a = *pa, b = *pb;
                *pa = a * c[i] - b * s[i];
                *pb = b * c[i] + a * s[i];
            }
        }
    }
}

void eng_rope_apply(const mp_engine *e, float *x, int64_t n, int n_ctx, int heads, int stride, int offset,
                    bool interleaved)
{
    for (int64_t t0 = 0; t0 < n; t0 += n_ctx)
        eng_rope_rotate(&e->rope, e->cfg, x + t0 * heads * stride, n - t0 < n_ctx ? n - t0 : n_ctx, 0, heads, stride,
                        offset, interleaved);
}
