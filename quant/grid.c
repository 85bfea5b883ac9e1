#include "grid.h"

#include <math.h>
#include <string.h>

#include "../core/dtype.h"
#include "../formats/ggml_blocks.h"

/* What distinguishes the grids: their levels, whether a sub-block has an offset, and
 * the range of a super-block grid's integer sub-block scales. */
typedef struct {
    int n_levels, lmin; /* levels lmin .. lmin + n_levels - 1 (table: indices) */
    bool affine;        /* value = mult * q - off (else off = 0) */
    bool min_le_0;      /* k-quants: off >= 0, the sub-block's range includes 0 */
    bool table;         /* levels from the iq4_nl table */
    bool super;         /* integer sub-block scales under an f16 super-scale */
    int sub, sc_min, sc_max;
} grid_shape;

static grid_shape shape_of(mp_enc_kind k)
{
    switch (k) {
    case MP_ENC_Q8_0:
        return (grid_shape){.n_levels = 256, .lmin = -128, .sub = 32};
    case MP_ENC_Q4_0:
        return (grid_shape){.n_levels = 16, .lmin = -8, .sub = 32};
    case MP_ENC_Q4_1:
        return (grid_shape){.n_levels = 16, .affine = true, .sub = 32};
    case MP_ENC_Q4_K:
    case MP_ENC_Q5_K:
        return (grid_shape){.n_levels = k == MP_ENC_Q4_K ? 16 : 32, .affine = true, .min_le_0 = true,
                            .super = true, .sub = 32, .sc_min = 0, .sc_max = 63};
    case MP_ENC_Q6_K:
        return (grid_shape){.n_levels = 64, .lmin = -32, .super = true, .sub = 16, .sc_min = -128, .sc_max = 127};
    case MP_ENC_IQ4_NL:
        return (grid_shape){.n_levels = 16, .table = true, .sub = 32};
    default: /* MP_ENC_IQ4_XS */
        return (grid_shape){.n_levels = 16, .table = true, .super = true, .sub = 32, .sc_min = -32, .sc_max = 31};
    }
}

static float level(const grid_shape *g, int q)
{
    return g->table ? (float)mp_iq4nl_values[q] : (float)(q + g->lmin);
}

/* The code whose level is nearest to t (levels ascending). */
static int nearest_level(const grid_shape *g, float t)
{
    if (g->table) {
        int q = 0;
        while (q < 15 && (float)mp_iq4nl_values[q + 1] <= t)
            q++;
        if (q < 15 && (float)mp_iq4nl_values[q + 1] - t < t - (float)mp_iq4nl_values[q])
            q++;
        return q;
    }
    float lo = (float)g->lmin, hi = (float)(g->lmin + g->n_levels - 1);
    float l = rintf(t);
    l = l < lo ? lo : l > hi ? hi : l;
    return (int)l - g->lmin;
}

static int code_of(const grid_shape *g, float mult, float off, float x)
{
    if (!isfinite(x) || mult == 0.0f || !isfinite(mult))
        return nearest_level(g, 0.0f);
    float t = (x + off) / mult;
    return nearest_level(g, isnan(t) ? 0.0f : t);
}

static float value_of(const grid_shape *g, float mult, float off, int q)
{
    return mult * level(g, q) - off;
}

/* E = sum w (value - x)^2 of n values under (mult, off); codes to q when not NULL. */
static float sub_error(const grid_shape *g, const float *x, const float *w, int n, float mult, float off)
{
    float e = 0.0f;
    for (int i = 0; i < n; i++) {
        float d = value_of(g, mult, off, code_of(g, mult, off, x[i])) - x[i];
        e += w[i] * d * d;
    }
    return e;
}

/* The weighted least-squares (mult, off) that map codes q to targets t. */
static void refit_codes(const grid_shape *g, const uint8_t *q, const float *t, const float *w, int n, float *mult,
                        float *off)
{
    double s = 0, sl = 0, sll = 0, sx = 0, slx = 0;
    for (int i = 0; i < n; i++) {
        double l = level(g, q[i]);
        s += w[i], sl += w[i] * l, sll += w[i] * l * l, sx += w[i] * t[i], slx += w[i] * l * t[i];
    }
    if (!g->affine) {
        if (sll > 0)
            *mult = (float)(slx / sll);
        return;
    }
    double det = s * sll - sl * sl;
    if (det <= 0 || s <= 0)
        return;
    double m = (s * slx - sx * sl) / det, o = (m * sl - sx) / s;
    if (g->min_le_0 && o < 0) { /* the k-quants cannot store a positive minimum */
        o = 0;
        m = sll > 0 ? slx / sll : m;
    }
    if (m > 0 || !g->min_le_0) {
        *mult = (float)m;
        *off = (float)o;
    }
}

/* The weighted least-squares (mult, off) for the codes (mult, off) give. */
static void refit(const grid_shape *g, const float *x, const float *w, int n, float *mult, float *off)
{
    uint8_t q[256];
    for (int i = 0; i < n; i++)
        q[i] = (uint8_t)code_of(g, *mult, *off, x[i]);
    refit_codes(g, q, x, w, n, mult, off);
}

/* The RTN fit of one sub-block (step 1 without search). */
static void rtn_fit(const grid_shape *g, const float *x, int n, float *mult, float *off)
{
    float lo = INFINITY, hi = -INFINITY, big = 0.0f;
    for (int i = 0; i < n; i++) {
        if (!isfinite(x[i]))
            continue;
        lo = fminf(lo, x[i]);
        hi = fmaxf(hi, x[i]);
        if (fabsf(x[i]) > fabsf(big))
            big = x[i];
    }
    *off = 0.0f;
    if (lo > hi) { /* no finite value */
        *mult = 0.0f;
        return;
    }
    if (!g->affine) {
        *mult = big / level(g, 0); /* the largest magnitude on the most negative level */
        return;
    }
    if (g->min_le_0)
        lo = fminf(lo, 0.0f);
    *mult = (hi - lo) / (float)(g->n_levels - 1);
    *off = -lo;
}

/* HQQ (quant/hqq.h) on one sub-block: from the RTN fit, alternate the lp shrink of the
 * residual (measured in steps of the RTN scale) and the least-squares refit of
 * (mult, off) for fixed codes, keeping the fit of least sum |x - value|^0.7. */
static double lp_error(const grid_shape *g, const float *x, int n, float mult, float off)
{
    double e = 0;
    for (int i = 0; i < n; i++)
        e += pow(fabs((double)x[i] - value_of(g, mult, off, code_of(g, mult, off, x[i]))), 0.7);
    return e;
}

static void hqq_sub(const grid_shape *g, const float *x, const float *w, int n, float *mult, float *off)
{
    rtn_fit(g, x, n, mult, off);
    double unit = fabs(*mult), beta = 10.0, best = lp_error(g, x, n, *mult, *off), prev = best;
    if (unit == 0.0 || !isfinite(best))
        return;
    float m = *mult, o = *off, t[256];
    uint8_t q[256];
    for (int it = 0; it < 20; it++, beta *= 1.01) {
        for (int i = 0; i < n; i++) {
            q[i] = (uint8_t)code_of(g, m, o, x[i]);
            double r = ((double)x[i] - value_of(g, m, o, q[i])) / unit, a = fabs(r);
            double kept = a - pow(a + 1e-8, 0.7 - 1.0) / beta;
            t[i] = (float)((double)x[i] - unit * (kept > 0 ? (r < 0 ? -kept : kept) : 0.0));
        }
        refit_codes(g, q, t, w, n, &m, &o);
        double e = lp_error(g, x, n, m, o);
        if (!(e <= prev))
            break;
        prev = e;
        if (e < best * (1 - 1e-9)) {
            best = e;
            *mult = m;
            *off = o;
        }
    }
}

static void try_candidate(const grid_shape *g, const float *x, const float *w, int n, float mult, float off,
                          float *best_mult, float *best_off, float *best_e)
{
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1)
            refit(g, x, w, n, &mult, &off);
        float e = sub_error(g, x, w, n, mult, off);
        if (e < *best_e) {
            *best_e = e;
            *best_mult = mult;
            *best_off = off;
        }
    }
}

/* Step 1: a real (mult, off) for one sub-block. */
static void fit_sub(const grid_shape *g, const float *x, const float *w, int n, mp_w4_method method, float *mult,
                    float *off)
{
    if (method == MP_W4_HQQ) {
        hqq_sub(g, x, w, n, mult, off);
        return;
    }
    rtn_fit(g, x, n, mult, off);
    if (method != MP_W4_MSE || *mult == 0.0f)
        return;
    float m0 = *mult, o0 = *off, best_e = sub_error(g, x, w, n, m0, o0);
    for (int i = 0; i <= 15; i++) {
        float p = 1.0f - 0.02f * (float)i;
        if (!g->affine) {
            try_candidate(g, x, w, n, p * m0, 0.0f, mult, off, &best_e);
            continue;
        }
        float lo = -o0, hi = lo + m0 * (float)(g->n_levels - 1);
        float ranges[3][2] = {{p * lo, p * hi}, {lo, p * hi}, {p * lo, hi}};
        for (int r = 0; r < 3; r++)
            try_candidate(g, x, w, n, (ranges[r][1] - ranges[r][0]) / (float)(g->n_levels - 1), -ranges[r][0],
                          mult, off, &best_e);
    }
}

static int clamp_int(float v, int lo, int hi)
{
    if (!(v >= (float)lo))
        return lo;
    return v > (float)hi ? hi : (int)v;
}

/* Sub-block s's stored integers for super-scales (d, dmin): nearest, or with search the
 * best of +-1 around them. Sets mult/off as the decoder computes them; returns E. */
static float quantize_sub(const grid_shape *g, mp_grid_block *b, int s, const float *x, const float *w, float d,
                          float dmin, float mult, float off, bool search)
{
    int sc0 = d != 0.0f ? clamp_int(rintf(mult / d), g->sc_min, g->sc_max) : 0;
    int m0 = g->affine && dmin != 0.0f ? clamp_int(rintf(off / dmin), 0, 63) : 0;
    int reach = search ? 1 : 0;
    float best_e = INFINITY;
    for (int ds = -reach; ds <= reach; ds++)
        for (int dm = g->affine ? -reach : 0; dm <= (g->affine ? reach : 0); dm++) {
            int sc = sc0 + ds, m = m0 + dm;
            if (sc < g->sc_min || sc > g->sc_max || m < 0 || m > 63)
                continue;
            float cm = d * (float)sc, co = g->affine ? dmin * (float)m : 0.0f;
            float e = sub_error(g, x, w, g->sub, cm, co);
            if (e < best_e) {
                best_e = e;
                b->sc[s] = sc;
                b->mn[s] = m;
                b->mult[s] = cm;
                b->off[s] = co;
            }
        }
    return best_e;
}

/* Steps 2 and 3 for the super-block grids. */
static void fit_super(const grid_shape *g, mp_grid_block *b, const float *x, const float *w, const float *mult,
                      const float *off, bool search)
{
    float big = 0.0f, big_off = 0.0f;
    for (int s = 0; s < b->n_sub; s++) {
        if (fabsf(mult[s]) > fabsf(big))
            big = mult[s];
        big_off = fmaxf(big_off, off[s]);
    }
    /* d so that the largest sub-block scale lands on the end of the integer range
     * (q6_k and iq4_xs: the most negative integer, like ggml) */
    float d0 = g->affine ? big / (float)g->sc_max : big / (float)g->sc_min;
    b->dmin = mp_f32_to_f16(big_off / 63.0f);
    float dmin = mp_f16_to_f32(b->dmin), best_total = INFINITY;
    mp_grid_block trial = *b;
    for (int t = 0; t <= (search ? 6 : 0); t++) {
        static const float factors[7] = {1.0f, 0.98f, 1.02f, 0.96f, 1.04f, 0.94f, 1.06f};
        uint16_t dbits = mp_f32_to_f16(d0 * factors[t]);
        float d = mp_f16_to_f32(dbits), total = 0.0f;
        for (int s = 0; s < b->n_sub; s++)
            total += quantize_sub(g, &trial, s, x + s * g->sub, w + s * g->sub, d, dmin, mult[s], off[s], search);
        if (total < best_total || t == 0) {
            best_total = total;
            trial.d = dbits;
            *b = trial;
        }
    }
}

/* Steps 1 and 2 (and 3 for the super-block grids) of one block. */
static void fit_block(const grid_shape *g, mp_enc_kind k, const float *x, const float *w, int n,
                      mp_w4_method method, mp_grid_block *b)
{
    float mult[MP_GRID_MAX_SUB], off[MP_GRID_MAX_SUB];
    memset(b, 0, sizeof *b);
    b->kind = k;
    b->sub = g->sub;
    b->n_sub = n / g->sub;
    for (int s = 0; s < b->n_sub; s++)
        fit_sub(g, x + s * g->sub, w + s * g->sub, g->sub, method, &mult[s], &off[s]);
    if (g->super) {
        fit_super(g, b, x, w, mult, off, method == MP_W4_MSE);
        return;
    }
    b->d = mp_f32_to_f16(mult[0]);
    b->mult[0] = mp_f16_to_f32(b->d);
    if (g->affine) { /* q4_1 stores the minimum m = -off */
        b->dmin = mp_f32_to_f16(-off[0]);
        b->off[0] = -mp_f16_to_f32(b->dmin);
    }
}

static float block_error(const grid_shape *g, const mp_grid_block *b, const float *x, const float *w)
{
    float e = 0.0f;
    for (int s = 0; s < b->n_sub; s++)
        e += sub_error(g, x + s * g->sub, w + s * g->sub, g->sub, b->mult[s], b->off[s]);
    return e;
}

static double block_lp_error(const grid_shape *g, const mp_grid_block *b, const float *x)
{
    double e = 0;
    for (int s = 0; s < b->n_sub; s++)
        e += lp_error(g, x + s * g->sub, g->sub, b->mult[s], b->off[s]);
    return e;
}

void mp_grid_fit(mp_enc_kind k, const float *x_in, const float *importance, mp_w4_method method, mp_grid_block *b)
{
    grid_shape g = shape_of(k);
    int n = mp_ggml_block_values(k);
    float x[256], w[256];
    for (int i = 0; i < n; i++) { /* non-finite values weigh nothing */
        bool ok = isfinite(x_in[i]);
        x[i] = ok ? x_in[i] : 0.0f;
        w[i] = ok ? (importance ? importance[i] : 1.0f) : 0.0f;
    }
    fit_block(&g, k, x, w, n, MP_W4_RTN, b);
    if (method == MP_W4_RTN)
        return;
    /* the search works on unrounded scales: it keeps the rounding fit when that, once
     * stored, is as good (for HQQ: in its own lp objective) */
    mp_grid_block searched;
    fit_block(&g, k, x, w, n, method, &searched);
    if (method == MP_W4_HQQ) {
        if (block_lp_error(&g, &searched, x) < block_lp_error(&g, b, x))
            *b = searched;
        return;
    }
    if (block_error(&g, &searched, x, w) < block_error(&g, b, x, w))
        *b = searched;
}

uint8_t mp_grid_code(const mp_grid_block *b, int i, float x)
{
    grid_shape g = shape_of(b->kind);
    int s = i / b->sub;
    return (uint8_t)code_of(&g, b->mult[s], b->off[s], x);
}

float mp_grid_value(const mp_grid_block *b, int i, uint8_t q)
{
    grid_shape g = shape_of(b->kind);
    int s = i / b->sub;
    return value_of(&g, b->mult[s], b->off[s], q);
}

static void put_half(uint8_t *p, uint16_t h)
{
    p[0] = (uint8_t)(h & 0xFF);
    p[1] = (uint8_t)(h >> 8);
}

/* 32 codes as 16 bytes: code j in the low nibble of byte j, code j + 16 in its high. */
static void pack_nibbles32(const uint8_t *q, uint8_t *out)
{
    for (int j = 0; j < 16; j++)
        out[j] = (uint8_t)((q[j] & 15) | (q[j + 16] & 15) << 4);
}

static void pack_k4(const mp_grid_block *b, const uint8_t *q, uint8_t *out)
{
    uint8_t sc[8], m[8];
    for (int s = 0; s < 8; s++) {
        sc[s] = (uint8_t)b->sc[s];
        m[s] = (uint8_t)b->mn[s];
    }
    put_half(out, b->d);
    put_half(out + 2, b->dmin);
    mp_ggml_k4_pack_scales(sc, m, out + 4);
    bool five = b->kind == MP_ENC_Q5_K;
    uint8_t *qh = out + 16, *ql = out + (five ? 48 : 16);
    if (five)
        memset(qh, 0, 32);
    for (int k = 0; k < 4; k++)
        for (int l = 0; l < 32; l++) {
            uint8_t lo = q[64 * k + l], hi = q[64 * k + 32 + l];
            ql[32 * k + l] = (uint8_t)((lo & 15) | (hi & 15) << 4);
            if (five)
                qh[l] |= (uint8_t)((lo >> 4) << (2 * k) | (hi >> 4) << (2 * k + 1));
        }
}

static void pack_q6_k(const mp_grid_block *b, const uint8_t *q, uint8_t *out)
{
    uint8_t *ql = out, *qh = out + 128;
    for (int n = 0; n < 2; n++, q += 128, ql += 64, qh += 32)
        for (int l = 0; l < 32; l++) {
            ql[l] = (uint8_t)((q[l] & 15) | (q[l + 64] & 15) << 4);
            ql[l + 32] = (uint8_t)((q[l + 32] & 15) | (q[l + 96] & 15) << 4);
            qh[l] = (uint8_t)((q[l] >> 4) | (q[l + 32] >> 4) << 2 | (q[l + 64] >> 4) << 4 | (q[l + 96] >> 4) << 6);
        }
    for (int s = 0; s < 16; s++)
        out[192 + s] = (uint8_t)(int8_t)b->sc[s];
    put_half(out + 208, b->d);
}

static void pack_iq4_xs(const mp_grid_block *b, const uint8_t *q, uint8_t *out)
{
    unsigned high = 0;
    put_half(out, b->d);
    memset(out + 4, 0, 4);
    for (int ib = 0; ib < 8; ib++) {
        unsigned ls = (unsigned)(b->sc[ib] + 32);
        out[4 + ib / 2] |= (uint8_t)((ls & 15) << 4 * (ib % 2));
        high |= (ls >> 4) << 2 * ib;
        pack_nibbles32(q + 32 * ib, out + 8 + 16 * ib);
    }
    out[2] = (uint8_t)(high & 0xFF);
    out[3] = (uint8_t)(high >> 8);
}

void mp_grid_pack(const mp_grid_block *b, const uint8_t *q, uint8_t *out)
{
    switch (b->kind) {
    case MP_ENC_Q8_0:
        put_half(out, b->d);
        for (int j = 0; j < 32; j++)
            out[2 + j] = (uint8_t)(q[j] ^ 0x80); /* code q is level q - 128, stored as int8 */
        break;
    case MP_ENC_Q4_0:
    case MP_ENC_IQ4_NL:
        put_half(out, b->d);
        pack_nibbles32(q, out + 2);
        break;
    case MP_ENC_Q4_1:
        put_half(out, b->d);
        put_half(out + 2, b->dmin);
        pack_nibbles32(q, out + 4);
        break;
    case MP_ENC_Q4_K:
    case MP_ENC_Q5_K:
        pack_k4(b, q, out);
        break;
    case MP_ENC_Q6_K:
        pack_q6_k(b, q, out);
        break;
    default:
        pack_iq4_xs(b, q, out);
        break;
    }
}

void mp_grid_quantize_rows(mp_enc_kind k, int64_t n_rows, int64_t cols, const float *band, const float *importance,
                           mp_w4_method method, uint8_t *out)
{
    int n = mp_ggml_block_values(k), bytes = mp_ggml_block_bytes(k);
    int64_t blocks = cols / n;
#pragma omp parallel for schedule(dynamic, 16)
    for (int64_t r = 0; r < n_rows; r++) {
        uint8_t codes[256];
        for (int64_t j = 0; j < blocks; j++) {
            const float *x = band + r * cols + j * n;
            mp_grid_block b;
            mp_grid_fit(k, x, importance ? importance + j * n : NULL, method, &b);
            for (int i = 0; i < n; i++)
                codes[i] = mp_grid_code(&b, i, x[i]);
            mp_grid_pack(&b, codes, out + (r * blocks + j) * bytes);
        }
    }
}
