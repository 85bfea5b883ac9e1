/* w4 quantizers; the rules and their reasons are in w4.h. */
#include "w4.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "../core/dtype.h"

/* Lane count of the hand-split reductions: min/max and error sums keep LANES partial
 * results that the compiler maps to vector registers (a float sum is not reassociated
 * without -ffast-math, so a plain loop would stay scalar). Groups are multiples of it. */
enum { LANES = 16, PACK_CHUNK = 32, MAX_GROUP = 128 };

enum { F16_MAX_FINITE = 0x7bff, F16_MIN_SUBNORMAL = 0x0001, F16_SIGN = 0x8000, F16_MAGNITUDE = 0x7fff };

/* A group's quantization grid: the stored f16 scale, its f32 value and the zero point
 * (8 when symmetric), kept as a float because the codes are computed in float. */
typedef struct {
    uint16_t bits;
    float s;
    float z;
} w4_grid;

/* The MSE search: scale factors p = 1 - step * i for i = -expands .. shrinks (i != 0;
 * p = 1 is the RTN grid), whether each asymmetric candidate is also tried with its zero
 * point moved by +-1, and how many least-squares scale refits may follow. */
typedef struct {
    int expands, shrinks;
    float step;
    bool shift_zero;
    int refits;
} w4_search;

/* p = 1.24, 1.22 .. 1.02, 0.98 .. 0.70, z +- 1, up to 4 refits. Measured on 2^18 Gaussian,
 * Student-t(3) and outlier-laden values (tests and w4.h give the numbers): shrinking below
 * 0.70 never won, a step of 0.01 gained < 0.1 % over 0.02 at twice the time, and the
 * expansions (p > 1) matter for g = 32 where the sample range of 32 values is often a
 * worse span than a slightly larger one (2-3 % of error there). The result is within
 * 0.3 % of an exhaustive search over every f16 scale in [0.3, 1.5] x RTN and every z. */
static const w4_search default_search = {.expands = 12, .shrinks = 15, .step = 0.02f, .shift_zero = true, .refits = 4};

/* A candidate must beat the best error by this relative margin: the f32 sum of g <= 128
 * positive terms is within (g + 3) * 2^-24 < 1e-5 of the exact sum, so a winner's exact
 * error is always below the loser's and MSE never ends worse than RTN. */
static const float improvement_margin = 1e-4f;

/* f16 bits of a scale chosen in f32: clamped to the finite f16 range, and a nonzero scale
 * never becomes 0 (its sign is kept; the 2^-24 grid still contains 0). */
static uint16_t scale_bits(float s)
{
    if (isnan(s) || s == 0.0f)
        return 0;
    uint16_t h = mp_f32_to_f16(s);
    uint16_t sign = h & F16_SIGN, mag = h & F16_MAGNITUDE;
    if (mag > F16_MAX_FINITE)
        return sign | F16_MAX_FINITE;
    if (mag == 0)
        return sign | F16_MIN_SUBNORMAL;
    return h;
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

/* ---- RTN grids ---- */

/* Min and max of a group, NaN ignored (+inf / -inf when every element is NaN). */
static void group_min_max(const float *x, int g, float *mn, float *mx)
{
    float lo[LANES], hi[LANES];
    for (int k = 0; k < LANES; k++) {
        lo[k] = INFINITY;
        hi[k] = -INFINITY;
    }
    for (int i = 0; i < g; i += LANES)
        for (int k = 0; k < LANES; k++) {
            float v = x[i + k];
            lo[k] = v < lo[k] ? v : lo[k];
            hi[k] = v > hi[k] ? v : hi[k];
        }
    float a = lo[0], b = hi[0];
    for (int k = 1; k < LANES; k++) {
        a = lo[k] < a ? lo[k] : a;
        b = hi[k] > b ? hi[k] : b;
    }
    *mn = a;
    *mx = b;
}

/* Asymmetric grid covering [lo, hi] (lo <= 0 <= hi): s = f16((hi - lo) / 15),
 * z = rint(-lo / s); when the scale had to be clamped the window is centred instead. */
static w4_grid asym_grid(float lo, float hi)
{
    float s32 = (hi - lo) / 15.0f;
    uint16_t bits = scale_bits(s32);
    if (bits == 0)
        return grid_of(0, 0.0f);
    float s = mp_f16_to_f32(bits);
    float z = s32 > 65504.0f ? rintf(7.5f - (lo + hi) / (2.0f * s)) : rintf(-lo / s);
    return grid_of(bits, clamp_code(z));
}

/* Symmetric grid putting m at code 8 + m / s: s = f16(m / step). */
static w4_grid sym_grid(float m, float step)
{
    return grid_of(scale_bits(m / step), 8.0f);
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

static w4_grid rtn_grid(const float *x, int g, bool sym)
{
    float mn, mx;
    group_min_max(x, g, &mn, &mx);
    float lo = mn < 0.0f ? mn : 0.0f, hi = mx > 0.0f ? mx : 0.0f;
    if (sym)
        return sym_grid(hi >= -lo ? hi : lo, -8.0f);
    w4_grid grid = asym_grid(lo, hi);
    if (mn == mx && mn != 0.0f)
        grid = constant_group_grid(mn, grid);
    return grid;
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

static void search_asym(const w4_group *grp, const w4_search *plan, float lo, float hi, w4_best *best)
{
    for (int i = -plan->expands; i <= plan->shrinks; i++) {
        if (i == 0)
            continue; /* the RTN grid, already the incumbent */
        float p = 1.0f - plan->step * (float)i;
        w4_grid cand = asym_grid(p * lo, p * hi);
        try_grid(grp, cand, best);
        if (plan->shift_zero && cand.s != 0.0f) {
            if (cand.z > 0.0f)
                try_grid(grp, grid_of(cand.bits, cand.z - 1.0f), best);
            if (cand.z < 15.0f)
                try_grid(grp, grid_of(cand.bits, cand.z + 1.0f), best);
        }
    }
}

/* The extreme m at code 0 (s = p m / -8, the RTN orientation) or at code 15
 * (s = p m / 7, which gives the other sign one more level). */
static void search_sym(const w4_group *grp, const w4_search *plan, float m, w4_best *best)
{
    try_grid(grp, sym_grid(m, 7.0f), best);
    for (int i = -plan->expands; i <= plan->shrinks; i++) {
        if (i == 0)
            continue;
        float pm = (1.0f - plan->step * (float)i) * m;
        try_grid(grp, sym_grid(pm, -8.0f), best);
        try_grid(grp, sym_grid(pm, 7.0f), best);
    }
}

static w4_grid mse_grid(const w4_group *grp, const w4_search *plan, bool sym)
{
    float mn, mx;
    group_min_max(grp->x, grp->g, &mn, &mx);
    float lo = mn < 0.0f ? mn : 0.0f, hi = mx > 0.0f ? mx : 0.0f;
    w4_grid rtn = rtn_grid(grp->x, grp->g, sym);
    w4_best best = {.grid = rtn, .err = group_error(grp, rtn)};
    if (!(best.err > 0.0f)) /* exact already, or NaN in the group: keep RTN */
        return rtn;
    if (sym)
        search_sym(grp, plan, hi >= -lo ? hi : lo, &best);
    else
        search_asym(grp, plan, lo, hi, &best);
    refine_by_refit(grp, plan, &best);
    return best.grid;
}

/* ---- writing a row ---- */

/* Codes of one group, packed two per byte (element 2k low nibble, 2k + 1 high). Done in
 * fixed chunks of 32 so that both loops have a constant trip count, which is what the
 * -O2 vectorizer needs. */
static void pack_group(const float *x, int g, w4_grid grid, uint8_t *out)
{
    if (grid.s == 0.0f) {
        uint8_t z = (uint8_t)grid.z;
        memset(out, z | z << 4, (size_t)g / 2);
        return;
    }
    for (int i = 0; i < g; i += PACK_CHUNK) {
        uint8_t q[PACK_CHUNK];
        for (int k = 0; k < PACK_CHUNK; k++)
            q[k] = (uint8_t)code_of(x[i + k], grid.s, grid.z);
        for (int k = 0; k < PACK_CHUNK / 2; k++)
            out[i / 2 + k] = (uint8_t)(q[2 * k] | q[2 * k + 1] << 4);
    }
}

typedef struct {
    int g;
    bool sym;
    mp_w4_method method;
    const float *importance; /* MSE: per column, NULL = uniform */
    const w4_search *plan;
} w4_job;

static void quantize_row(const w4_job *job, const float *x, int64_t cols, uint8_t *data, uint16_t *scales,
                         uint8_t *zeros)
{
    int g = job->g;
    float ones[MAX_GROUP];
    for (int i = 0; i < g; i++)
        ones[i] = 1.0f;
    for (int64_t j = 0; j < cols / g; j++) {
        const float *xg = x + j * g;
        w4_grid grid;
        if (job->method == MP_W4_MSE) {
            w4_group grp = {.x = xg, .w = job->importance ? job->importance + j * g : ones, .g = g};
            grid = mse_grid(&grp, job->plan, job->sym);
        } else {
            grid = rtn_grid(xg, g, job->sym);
        }
        pack_group(xg, g, grid, data + j * g / 2);
        scales[j] = grid.bits;
        if (!job->sym)
            zeros[j] = (uint8_t)grid.z;
    }
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
