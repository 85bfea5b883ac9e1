/* HQQ on w4 grids; the method and its adaptation are in hqq.h. */
#include "hqq.h"

#include <math.h>
#include <stdbool.h>

#include "../core/dtype.h"
#include "w4.h"

enum { MAX_GROUP = 128 };
enum { F16_MAX_FINITE = 0x7bff, F16_MIN_SUBNORMAL = 0x0001, F16_SIGN = 0x8000, F16_MAGNITUDE = 0x7fff };

static const mp_hqq_options defaults = {.p = 0.7f, .beta = 10.0f, .kappa = 1.01f, .iters = 20};

/* A grid replaces the best one only when its lp error is lower by this relative margin:
 * the double sum of <= 128 positive terms is within ~1e-14 of exact, so a winner is
 * really better, and any recomputation in another order agrees that HQQ <= RTN. */
static const double improvement_margin = 1e-9;

/* HQQ's guard against 0^(p - 1) in the shrink. */
static const double shrink_eps = 1e-8;

typedef struct {
    uint16_t bits;
    uint8_t zero;
} hqq_grid;

typedef struct {
    const float *x;
    int g;
    bool sym;
    double p;
} hqq_group;

static mp_hqq_options resolve(const mp_hqq_options *opt)
{
    mp_hqq_options o = opt ? *opt : defaults;
    o.p = o.p > 0.0f ? o.p : defaults.p;
    o.beta = o.beta > 0.0f ? o.beta : defaults.beta;
    o.kappa = o.kappa > 0.0f ? o.kappa : defaults.kappa;
    o.iters = o.iters > 0 ? o.iters : defaults.iters;
    return o;
}

/* f16 bits of a scale under w4.h's rules: clamped to the finite range, a nonzero scale
 * never 0; 0 for a zero or NaN scale (which the caller rejects). */
static uint16_t scale_bits(float s)
{
    if (s == 0.0f || s != s)
        return 0;
    uint16_t h = mp_f32_to_f16(s), sign = h & F16_SIGN, mag = h & F16_MAGNITUDE;
    if (mag > F16_MAX_FINITE)
        return (uint16_t)(sign | F16_MAX_FINITE);
    return mag == 0 ? (uint16_t)(sign | F16_MIN_SUBNORMAL) : h;
}

/* decoded - x of one element, exact in double. */
static double residual(float x, hqq_grid grid, uint8_t *code)
{
    *code = mp_w4_code(x, grid.bits, grid.zero);
    return (double)mp_w4_decode(*code, grid.bits, grid.zero) - (double)x;
}

/* sum |decoded - x|^p over the group, in element order. */
static double lp_error(const hqq_group *grp, hqq_grid grid)
{
    double e = 0.0;
    uint8_t q;
    for (int i = 0; i < grp->g; i++)
        e += pow(fabs(residual(grp->x[i], grid, &q)), grp->p);
    return e;
}

/* The generalised soft threshold of HQQ: the proximal step of |r|^p / beta. */
static double shrink_lp(double r, double beta, double p)
{
    double a = fabs(r);
    double t = a - pow(a + shrink_eps, p - 1.0) / beta;
    return t > 0.0 ? copysign(t, r) : 0.0;
}

/* Least-squares scale for codes q and target t with the zero point z fixed. */
static bool fit_scale(const uint8_t *q, const double *t, int g, int z, hqq_grid *out)
{
    double num = 0.0, den = 0.0;
    for (int i = 0; i < g; i++) {
        double n = (double)q[i] - z;
        num += n * t[i];
        den += n * n;
    }
    if (!(den > 0.0))
        return false;
    double s = num / den; /* beyond the f16 range the rule clamps anyway; keeps the float cast defined */
    uint16_t bits = scale_bits((float)(fabs(s) > 65504.0 ? copysign(65504.0, s) : s));
    if (bits == 0)
        return false;
    *out = (hqq_grid){.bits = bits, .zero = (uint8_t)z};
    return true;
}

/* The integer zero point of the least-squares affine fit t ~ s q + b: z = -b / s =
 * mean q - mean t / s, rounded and clamped to 0..15. */
static bool fit_zero(const uint8_t *q, const double *t, int g, int *z)
{
    double qm = 0.0, tm = 0.0;
    for (int i = 0; i < g; i++) {
        qm += q[i];
        tm += t[i];
    }
    qm /= g;
    tm /= g;
    double sqq = 0.0, sqt = 0.0;
    for (int i = 0; i < g; i++) {
        sqq += (q[i] - qm) * (q[i] - qm);
        sqt += (q[i] - qm) * (t[i] - tm);
    }
    if (!(sqq > 0.0) || sqt == 0.0)
        return false;
    double zf = rint(qm - tm * sqq / sqt); /* s = sqt / sqq */
    if (!isfinite(zf))
        return false;
    *z = zf < 0.0 ? 0 : zf > 15.0 ? 15 : (int)zf;
    return true;
}

/* One half-quadratic step from grid cur: codes, W_e = u shrink((x - decoded) / u),
 * target t = x - W_e, and the refitted grid. */
static bool hqq_step(const hqq_group *grp, hqq_grid cur, double unit, double beta, hqq_grid *next)
{
    uint8_t q[MAX_GROUP];
    double t[MAX_GROUP];
    for (int i = 0; i < grp->g; i++) {
        double r = -residual(grp->x[i], cur, &q[i]); /* x - decoded */
        t[i] = (double)grp->x[i] - unit * shrink_lp(r / unit, beta, grp->p);
    }
    int z = 8;
    if (!grp->sym && !fit_zero(q, t, grp->g, &z))
        return false;
    return fit_scale(q, t, grp->g, z, next);
}

static hqq_grid hqq_group_grid(const hqq_group *grp, const mp_hqq_options *o)
{
    hqq_grid rtn;
    mp_w4_group_grid(grp->x, grp->g, grp->sym, NULL, &rtn.bits, &rtn.zero);
    double unit = fabs((double)mp_f16_to_f32(rtn.bits));
    double best_err = lp_error(grp, rtn);
    if (!(best_err > 0.0) || !isfinite(best_err) || unit == 0.0)
        return rtn;
    hqq_grid best = rtn, cur = rtn;
    double cur_err = best_err, beta = o->beta;
    for (int it = 0; it < o->iters; it++) {
        hqq_grid next;
        if (!hqq_step(grp, cur, unit, beta, &next))
            break;
        beta *= o->kappa;
        double err = lp_error(grp, next);
        if (err < best_err * (1.0 - improvement_margin)) {
            best = next;
            best_err = err;
        }
        if (err > cur_err) /* HQQ's early stop: the error rose */
            break;
        cur = next;
        cur_err = err;
    }
    return best;
}

static void quantize_row(const mp_encoding *e, int64_t cols, const float *x, const mp_hqq_options *o, uint8_t *data,
                         uint16_t *scales, uint8_t *zeros)
{
    int g = e->group;
    for (int64_t j = 0; j < cols / g; j++) {
        const float *xs = x + j * g;
        hqq_group grp = {.x = xs, .g = g, .sym = e->sym, .p = o->p};
        hqq_grid grid = hqq_group_grid(&grp, o);
        scales[j] = grid.bits;
        if (!e->sym)
            zeros[j] = grid.zero;
        for (int i = 0; i < g; i += 2)
            data[(j * g + i) / 2] = (uint8_t)(mp_w4_code(xs[i], grid.bits, grid.zero) |
                                              mp_w4_code(xs[i + 1], grid.bits, grid.zero) << 4);
    }
}

void mp_hqq_quantize_rows(const mp_encoding *e, int64_t rows, int64_t cols, const float *W, const mp_hqq_options *opt,
                          uint8_t *data, uint16_t *scales, uint8_t *zeros)
{
    mp_hqq_options o = resolve(opt);
    int64_t G = cols / e->group;
#pragma omp parallel for schedule(static) if (rows > 1)
    for (int64_t r = 0; r < rows; r++)
        quantize_row(e, cols, W + r * cols, &o, data + r * (cols / 2), scales + r * G, e->sym ? NULL : zeros + r * G);
}
