/* w4 quantizers; the rules and their reasons are in w4.h. */
#include "w4.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "../core/dtype.h"

/* LANES: partial results of the per-group reductions (min/max, error sums), which the
 * compiler maps to vector registers (a float sum is not reassociated without -ffast-math,
 * so a plain loop would stay scalar). Groups are multiples of it.
 * MINMAX_LANES: the running minima and maxima of a group, one AVX vector.
 * PACK_CHUNK: elements coded per inner loop; a constant trip count is what the -O2
 * vectorizer needs.
 * BATCH: grids computed together (the groups of a row, or the candidates of one group),
 * so that the f32 -> f16 -> f32 scale round trip and the zero points vectorize instead
 * of costing a chain of scalar calls per group. */
enum { LANES = 16, MINMAX_LANES = 8, PACK_CHUNK = 32, BATCH = 32, MAX_GROUP = 128 };

enum { F16_MAX_FINITE = 0x7bff, F16_MIN_SUBNORMAL = 0x0001, F16_SIGN = 0x8000, F16_MAGNITUDE = 0x7fff };

/* A group's quantization grid: the stored f16 scale, its f32 value and the zero point
 * (8 when symmetric), kept as a float because the codes are computed in float. */
typedef struct {
    uint16_t bits;
    float s;
    float z;
} w4_grid;

/* The MSE search: scale factors p = 1 - step * i for i = -expands .. shrinks (p = 1 is
 * the RTN range; expands + shrinks + 1 <= BATCH), whether the best asymmetric grid is
 * then tried with its zero point moved by +-1, and how many least-squares scale refits
 * may follow. */
typedef struct {
    int expands, shrinks;
    float step;
    bool shift_zero;
    int refits;
} w4_search;

/* p = 1.24, 1.22 .. 0.70, z +- 1, up to 4 refits. Measured on Gaussian, Student-t(3)
 * and outlier-laden groups: shrinking below 0.70 never won, a step of 0.01 gained < 0.1 %
 * over 0.02 at twice the time, and the expansions (p > 1) matter for g = 32, where the
 * range of 32 samples is often a worse span than a slightly larger one (2-3 % of the
 * error there). The result is within 0.15 % of an exhaustive search over every f16
 * scale in [0.3, 1.5] x RTN and every zero point (tests/unit/test_quant.c). */
static const w4_search default_search = {.expands = 12, .shrinks = 15, .step = 0.02f, .shift_zero = true, .refits = 4};

/* A candidate must beat the best error by this relative margin: the f32 sum of g <= 128
 * positive terms is within 30 * 2^-24 < 2e-6 of the exact sum (LANES partial sums of
 * g / LANES terms, then LANES terms), so a winner's exact error is always below the
 * loser's and MSE never ends worse than RTN. */
static const float improvement_margin = 1e-4f;

/* ---- grids ---- */

/* h = f16(s) under the scale rules: clamped to the finite f16 range, and a nonzero s
 * never becomes 0 (the sign is kept; the 2^-24 grid still contains 0). */
static inline uint16_t scale_rule(uint16_t h, float s)
{
    uint16_t sign = h & F16_SIGN, mag = h & F16_MAGNITUDE;
    uint16_t fixed = mag > F16_MAX_FINITE ? (uint16_t)(sign | F16_MAX_FINITE)
                     : mag == 0           ? (uint16_t)(sign | F16_MIN_SUBNORMAL)
                                          : h;
    return s == 0.0f || s != s ? 0 : fixed;
}

static uint16_t scale_bits(float s)
{
    return scale_rule(mp_f32_to_f16(s), s);
}

static w4_grid grid_of(uint16_t bits, float z)
{
    return (w4_grid){.bits = bits, .s = mp_f16_to_f32(bits), .z = z};
}

static inline float clamp_code(float v)
{
    v = v > 0.0f ? v : 0.0f; /* NaN -> 0 */
    return v < 15.0f ? v : 15.0f;
}

/* The code of x on grid (s, z) as a float in 0..15; a NaN x gets z (decodes to 0).
 * Every path (RTN, MSE search, final codes) goes through this one expression, so the
 * error the search measures is the error of the codes it writes. */
static inline float code_of(float x, float s, float z)
{
    float r = rintf(x / s) + z;
    return clamp_code(r == r ? r : z);
}

/* The decoded value of code q, as encoding.c computes it: one f32 multiplication. */
static inline float decoded(float q, w4_grid g)
{
    return (q - g.z) * g.s;
}

/* BATCH f32 scales to stored f16 bits and back (the bulk conversions vectorize). */
static void store_scales(const float *s32, uint16_t *bits, float *s)
{
    mp_f32_to_f16_n(s32, bits, BATCH);
    for (int k = 0; k < BATCH; k++)
        bits[k] = scale_rule(bits[k], s32[k]);
    mp_f16_to_f32_n(bits, s, BATCH);
}

/* Asymmetric grids covering [lo[k], hi[k]] (lo <= 0 <= hi): s = f16((hi - lo) / 15),
 * z = rint(-lo / s); when the scale had to be clamped the window is centred instead. */
static void asym_grids(const float *lo, const float *hi, w4_grid *out)
{
    float s32[BATCH], s[BATCH], z[BATCH];
    uint16_t bits[BATCH];
    for (int k = 0; k < BATCH; k++)
        s32[k] = (hi[k] - lo[k]) / 15.0f;
    store_scales(s32, bits, s);
    for (int k = 0; k < BATCH; k++) {
        float div = s[k] == 0.0f ? 1.0f : s[k];
        float centred = rintf(7.5f - (lo[k] + hi[k]) / (2.0f * div));
        float from_min = rintf(-lo[k] / div);
        z[k] = s[k] == 0.0f ? 0.0f : clamp_code(s32[k] > 65504.0f ? centred : from_min);
    }
    for (int k = 0; k < BATCH; k++)
        out[k] = (w4_grid){.bits = bits[k], .s = s[k], .z = z[k]};
}

/* Symmetric grids putting m[k] at code 0: s = f16(m / -8). */
static void sym_grids(const float *m, w4_grid *out)
{
    float s32[BATCH], s[BATCH];
    uint16_t bits[BATCH];
    for (int k = 0; k < BATCH; k++)
        s32[k] = m[k] / -8.0f;
    store_scales(s32, bits, s);
    for (int k = 0; k < BATCH; k++)
        out[k] = (w4_grid){.bits = bits[k], .s = s[k], .z = 8.0f};
}

/* ---- RTN ---- */

static inline float min_nan_ignored(float v, float lo)
{
    return v < lo ? v : lo;
}

static inline float max_nan_ignored(float v, float hi)
{
    return v > hi ? v : hi;
}

/* Min and max of a group, NaN ignored (+inf / -inf when every element is NaN). One
 * vector of running minima and maxima, folded with scalar steps at the end: folding in
 * halves through memory cost more (each half waits for the previous store). Min and max
 * are exact, so the lane order does not change the result (a zero extreme may come out
 * as -0 or +0; range_of and the constant-group test treat them alike). */
static void group_min_max(const float *x, int g, float *mn, float *mx)
{
    float lo[MINMAX_LANES], hi[MINMAX_LANES];
    for (int k = 0; k < MINMAX_LANES; k++) {
        lo[k] = INFINITY;
        hi[k] = -INFINITY;
    }
    for (int i = 0; i < g; i += MINMAX_LANES)
        for (int k = 0; k < MINMAX_LANES; k++) {
            lo[k] = min_nan_ignored(x[i + k], lo[k]);
            hi[k] = max_nan_ignored(x[i + k], hi[k]);
        }
    for (int k = 1; k < MINMAX_LANES; k++) {
        lo[0] = min_nan_ignored(lo[k], lo[0]);
        hi[0] = max_nan_ignored(hi[k], hi[0]);
    }
    *mn = lo[0];
    *mx = hi[0];
}

/* |decoded - v| of the single value v on grid g. */
static float value_error(float v, w4_grid g)
{
    if (g.s == 0.0f)
        return fabsf(v);
    return fabsf(decoded(code_of(v, g.s, g.z), g) - v);
}

/* A constant nonzero group v: s = f16(|v|) with q - z = +-1 decodes exactly whenever v
 * is an f16 value; keep it unless the (hi - lo) / 15 grid is strictly closer. */
static w4_grid constant_group_grid(float v, w4_grid range_grid)
{
    w4_grid unit = grid_of(scale_bits(fabsf(v)), v < 0.0f ? 1.0f : 0.0f);
    return value_error(v, range_grid) < value_error(v, unit) ? range_grid : unit;
}

/* The range of a group as the grids use it: [min(0, min x), max(0, max x)], and for
 * symmetric grids the extreme m (max when max >= -min). */
typedef struct {
    float mn, mx; /* true min and max, NaN ignored */
    float lo, hi;
    float m;
} w4_range;

static w4_range range_of(const float *x, int g)
{
    w4_range r;
    group_min_max(x, g, &r.mn, &r.mx);
    r.lo = r.mn < 0.0f ? r.mn : 0.0f;
    r.hi = r.mx > 0.0f ? r.mx : 0.0f;
    r.m = r.hi >= -r.lo ? r.hi : r.lo;
    return r;
}

/* RTN grids of n <= BATCH consecutive groups. */
static void rtn_grids(int n, bool sym, const w4_range *ranges, w4_grid *out)
{
    float lo[BATCH] = {0}, hi[BATCH] = {0}, m[BATCH] = {0}; /* entries past n: unused zero grids */
    for (int k = 0; k < n; k++) {
        lo[k] = ranges[k].lo;
        hi[k] = ranges[k].hi;
        m[k] = ranges[k].m;
    }
    if (sym) {
        sym_grids(m, out);
        return;
    }
    asym_grids(lo, hi, out);
    for (int k = 0; k < n; k++)
        if (ranges[k].mn == ranges[k].mx && ranges[k].mn != 0.0f)
            out[k] = constant_group_grid(ranges[k].mn, out[k]);
}

/* ---- MSE search ---- */

typedef struct {
    const float *x; /* the group's g values */
    const float *w; /* their importance */
    int g;
} w4_group;

/* sum w * (decoded - x)^2 in f32, LANES partial sums added in a fixed order. */
static float group_error(const w4_group *grp, w4_grid g)
{
    float acc[LANES] = {0};
    float div = g.s == 0.0f ? 1.0f : g.s; /* s == 0 decodes every code to 0: any divisor will do */
    for (int i = 0; i < grp->g; i += LANES)
        for (int k = 0; k < LANES; k++) {
            float q = code_of(grp->x[i + k], div, g.z);
            float d = decoded(q, g) - grp->x[i + k];
            acc[k] += grp->w[i + k] * (d * d);
        }
    float e = 0.0f;
    for (int k = 0; k < LANES; k++)
        e += acc[k];
    return e;
}

typedef struct {
    w4_grid grid;
    float err;
} w4_best;

static void try_grid(const w4_group *grp, w4_grid cand, w4_best *best)
{
    if (cand.bits == best->grid.bits && cand.z == best->grid.z)
        return;
    float err = group_error(grp, cand);
    if (err < best->err * (1.0f - improvement_margin)) {
        best->grid = cand;
        best->err = err;
    }
}

/* Weighted least-squares scale for the codes of grid g with z fixed:
 * argmin_s sum w ((q - z) s - x)^2 = sum w (q - z) x / sum w (q - z)^2. */
static bool refit_scale(const w4_group *grp, w4_grid g, w4_grid *out)
{
    if (g.s == 0.0f)
        return false;
    float num[LANES] = {0}, den[LANES] = {0};
    for (int i = 0; i < grp->g; i += LANES)
        for (int k = 0; k < LANES; k++) {
            float x = grp->x[i + k];
            float n = code_of(x, g.s, g.z) - g.z;
            num[k] += grp->w[i + k] * n * x;
            den[k] += grp->w[i + k] * n * n;
        }
    float nsum = 0.0f, dsum = 0.0f;
    for (int k = 0; k < LANES; k++) {
        nsum += num[k];
        dsum += den[k];
    }
    float s = nsum / dsum;
    if (!(dsum > 0.0f) || !isfinite(s) || s == 0.0f)
        return false;
    *out = grid_of(scale_bits(s), g.z);
    return out->bits != g.bits;
}

static void refine_by_refit(const w4_group *grp, const w4_search *plan, w4_best *best)
{
    for (int it = 0; it < plan->refits; it++) {
        w4_grid cand;
        float before = best->err;
        if (!refit_scale(grp, best->grid, &cand))
            return;
        try_grid(grp, cand, best);
        if (best->err == before)
            return;
    }
}

/* The factors p of the plan, p = 1 included; returns how many (<= BATCH). The unused
 * tail repeats p = 1, whose grids try_grid skips as duplicates. */
static int scale_factors(const w4_search *plan, float *p)
{
    int n = 0;
    for (int i = -plan->expands; i <= plan->shrinks && n < BATCH; i++)
        p[n++] = 1.0f - plan->step * (float)i;
    for (int k = n; k < BATCH; k++)
        p[k] = 1.0f;
    return n;
}

/* The RTN rule on [p lo, p hi] for every factor p, then the winner with its zero point
 * moved by +-1 (trying the shifts on every candidate instead cost twice the time for
 * 0.1-0.2 % of error). */
static void search_asym(const w4_group *grp, const w4_search *plan, const w4_range *r, w4_best *best)
{
    float p[BATCH], lo[BATCH], hi[BATCH];
    w4_grid cand[BATCH];
    int n = scale_factors(plan, p);
    for (int k = 0; k < BATCH; k++) {
        lo[k] = p[k] * r->lo;
        hi[k] = p[k] * r->hi;
    }
    asym_grids(lo, hi, cand);
    for (int k = 0; k < n; k++)
        try_grid(grp, cand[k], best);
    w4_grid won = best->grid;
    if (!plan->shift_zero || won.s == 0.0f)
        return;
    if (won.z > 0.0f)
        try_grid(grp, grid_of(won.bits, won.z - 1.0f), best);
    if (won.z < 15.0f)
        try_grid(grp, grid_of(won.bits, won.z + 1.0f), best);
}

/* s = p m / -8. Also mapping p m to code 15 (s = p m / 7) was tried: the expansions
 * already reach that level set (p = 8/7 gives the same useful levels), and it gained
 * 0.05 % of error for twice the time. */
static void search_sym(const w4_group *grp, const w4_search *plan, const w4_range *r, w4_best *best)
{
    float p[BATCH], pm[BATCH];
    w4_grid cand[BATCH];
    int n = scale_factors(plan, p);
    for (int k = 0; k < BATCH; k++)
        pm[k] = p[k] * r->m;
    sym_grids(pm, cand);
    for (int k = 0; k < n; k++)
        try_grid(grp, cand[k], best);
}

static w4_grid mse_grid(const w4_group *grp, const w4_search *plan, bool sym, const w4_range *r, w4_grid rtn)
{
    w4_best best = {.grid = rtn, .err = group_error(grp, rtn)};
    if (!(best.err > 0.0f)) /* exact already, or NaN in the group: keep RTN */
        return rtn;
    if (sym)
        search_sym(grp, plan, r, &best);
    else
        search_asym(grp, plan, r, &best);
    refine_by_refit(grp, plan, &best);
    return best.grid;
}

/* ---- writing a row ---- */

/* Codes of one group, packed two per byte (element 2k low nibble, 2k + 1 high). */
static void pack_group(const float *x, int g, w4_grid grid, uint8_t *out)
{
    if (grid.s == 0.0f) {
        uint8_t z = (uint8_t)grid.z;
        memset(out, z | z << 4, (size_t)g / 2);
        return;
    }
    for (int i = 0; i < g; i += PACK_CHUNK) {
        float q[PACK_CHUNK]; /* in float, the pairs combine without narrowing first */
        for (int k = 0; k < PACK_CHUNK; k++)
            q[k] = code_of(x[i + k], grid.s, grid.z);
        for (int k = 0; k < PACK_CHUNK / 2; k++) /* q[2k] + 16 q[2k+1] <= 255: exact */
            out[i / 2 + k] = (uint8_t)(int32_t)(q[2 * k] + 16.0f * q[2 * k + 1]);
    }
}

typedef struct {
    int g;
    bool sym;
    mp_w4_method method;
    const float *importance; /* MSE: per column, NULL = uniform */
    const w4_search *plan;
} w4_job;

/* Groups [j0, j0 + n) of a row: their grids (RTN, then the MSE search), codes, scales
 * and zero points. */
static void quantize_groups(const w4_job *job, const float *x, int64_t j0, int n, uint8_t *data,
                            uint16_t *scales, uint8_t *zeros)
{
    int g = job->g;
    const float *xs = x + j0 * g;
    w4_range ranges[BATCH] = {0};
    w4_grid grids[BATCH];
    for (int k = 0; k < n; k++)
        ranges[k] = range_of(xs + k * g, g);
    rtn_grids(n, job->sym, ranges, grids);
    float ones[MAX_GROUP];
    for (int i = 0; job->method == MP_W4_MSE && i < g; i++)
        ones[i] = 1.0f;
    for (int k = 0; k < n; k++) {
        int64_t j = j0 + k;
        if (job->method == MP_W4_MSE) {
            w4_group grp = {.x = xs + k * g, .w = job->importance ? job->importance + j * g : ones, .g = g};
            grids[k] = mse_grid(&grp, job->plan, job->sym, &ranges[k], grids[k]);
        }
        pack_group(xs + k * g, g, grids[k], data + j * g / 2);
        scales[j] = grids[k].bits;
        if (!job->sym)
            zeros[j] = (uint8_t)grids[k].z;
    }
}

static void quantize_row(const w4_job *job, const float *x, int64_t cols, uint8_t *data, uint16_t *scales,
                         uint8_t *zeros)
{
    int64_t G = cols / job->g;
    for (int64_t j0 = 0; j0 < G; j0 += BATCH)
        quantize_groups(job, x, j0, G - j0 < BATCH ? (int)(G - j0) : BATCH, data, scales, zeros);
}

/* Bands smaller than this many elements are done on one thread: starting the team
 * would cost more than it saves. */
static const int64_t parallel_min_elements = 1 << 15;

void mp_w4_quantize_rows(const mp_encoding *e, int64_t rows, int64_t cols, const float *band, int64_t r0, int64_t r1,
                         const mp_w4_options *opt, uint8_t *data, uint16_t *scales, uint8_t *zeros)
{
    (void)rows; /* the band and the output offsets are all that is needed */
    w4_job job = {
        .g = e->group,
        .sym = e->sym,
        .method = opt ? opt->method : MP_W4_RTN,
        .importance = opt ? opt->importance : NULL,
        .plan = &default_search,
    };
    int64_t G = cols / job.g;
#pragma omp parallel for schedule(static) if ((r1 - r0) * cols >= parallel_min_elements)
    for (int64_t r = r0; r < r1; r++)
        quantize_row(&job, band + (r - r0) * cols, cols, data + r * (cols / 2), scales + r * G,
                     job.sym ? NULL : zeros + r * G);
}

/* ---- one group at a time, for the calibrated quantizers ---- */

void mp_w4_group_grid(const float *x, int g, bool sym, const mp_w4_options *opt, uint16_t *scale_bits_out,
                      uint8_t *zero)
{
    w4_range range = range_of(x, g);
    w4_grid grids[BATCH];
    rtn_grids(1, sym, &range, grids);
    w4_grid grid = grids[0];
    if (opt && opt->method == MP_W4_MSE) {
        float ones[MAX_GROUP];
        for (int i = 0; i < g; i++)
            ones[i] = 1.0f;
        w4_group grp = {.x = x, .w = opt->importance ? opt->importance : ones, .g = g};
        grid = mse_grid(&grp, &default_search, sym, &range, grid);
    }
    *scale_bits_out = grid.bits;
    *zero = (uint8_t)grid.z;
}

uint8_t mp_w4_code(float x, uint16_t scale_bits, int zero)
{
    w4_grid grid = grid_of(scale_bits, (float)zero);
    return (uint8_t)(grid.s == 0.0f ? zero : (int)code_of(x, grid.s, grid.z));
}

float mp_w4_decode(uint8_t code, uint16_t scale_bits, int zero)
{
    return decoded((float)code, grid_of(scale_bits, (float)zero));
}
