#include "align.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/linalg.h"

/* The shortest-augmenting-path Hungarian method with row and column potentials
 * (Kuhn-Munkres as Jonker and Volgenant formulate it): rows are added one at a time,
 * each by a Dijkstra-like search over reduced costs. Index 0 is a virtual column. */
int mp_assign_min_cost(int n, const double *cost, int *match, mp_error *err)
{
    double *u = calloc((size_t)n + 1, sizeof *u), *v = calloc((size_t)n + 1, sizeof *v);
    double *minv = malloc(((size_t)n + 1) * sizeof *minv);
    int *p = calloc((size_t)n + 1, sizeof *p), *way = calloc((size_t)n + 1, sizeof *way);
    char *used = malloc((size_t)n + 1);
    int rc = u && v && minv && p && way && used ? MP_OK
                                                : mp_fail(err, MP_EXIT_IO, "out of memory matching %d neurons", n);
    for (int i = 1; i <= n && rc == MP_OK; i++) {
        p[0] = i;
        int j0 = 0;
        for (int j = 0; j <= n; j++)
            minv[j] = DBL_MAX;
        memset(used, 0, (size_t)n + 1);
        do {
            used[j0] = 1;
            int i0 = p[j0], j1 = 0;
            double delta = DBL_MAX;
            for (int j = 1; j <= n; j++) {
                if (used[j])
                    continue;
                double cur = cost[(int64_t)(i0 - 1) * n + (j - 1)] - u[i0] - v[j];
                if (cur < minv[j]) {
                    minv[j] = cur;
                    way[j] = j0;
                }
                if (minv[j] < delta) {
                    delta = minv[j];
                    j1 = j;
                }
            }
            for (int j = 0; j <= n; j++) {
                if (used[j]) {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
        } while (p[j0] != 0);
        do {
            int j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
        } while (j0);
    }
    for (int j = 1; j <= n && rc == MP_OK; j++)
        match[p[j] - 1] = j - 1;
    free(u);
    free(v);
    free(minv);
    free(p);
    free(way);
    free(used);
    return rc;
}

/* t[c, r] = m[r, c] for an [rows, cols] matrix. */
static void transpose(const float *m, int64_t rows, int64_t cols, float *t)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            t[c * rows + r] = m[r * cols + c];
}

/* sim[a, b] = <kept neuron a, member neuron b> over gate, up and down. */
static int similarity(const mp_expert_parts *ep, float *const *kept, float **member, double *sim, mp_error *err)
{
    int64_t I = ep->inter, H = ep->hidden;
    float *prod = malloc((size_t)(I * I) * sizeof *prod);
    float *kd = malloc((size_t)(I * H) * sizeof *kd), *md = malloc((size_t)(I * H) * sizeof *md);
    if (!prod || !kd || !md) {
        free(prod);
        free(kd);
        free(md);
        return mp_fail(err, MP_EXIT_IO, "out of memory aligning %lld neurons", (long long)I);
    }
    memset(sim, 0, (size_t)(I * I) * sizeof *sim);
    const float *k_rows[3] = {kept[ep->gate], kept[ep->up], kd}, *m_rows[3] = {member[ep->gate], member[ep->up], md};
    transpose(kept[ep->down], H, I, kd);
    transpose(member[ep->down], H, I, md);
    for (int t = 0; t < 3; t++) {
        mp_matmul_nt(k_rows[t], I, H, m_rows[t], I, prod);
        for (int64_t i = 0; i < I * I; i++)
            sim[i] += prod[i];
    }
    free(prod);
    free(kd);
    free(md);
    return MP_OK;
}

/* rows[a] <- rows[match[a]] for an [n, width] matrix. */
static int permute_rows(float *m, int64_t n, int64_t width, const int *match)
{
    float *copy = malloc((size_t)(n * width) * sizeof *copy);
    if (!copy)
        return -1;
    memcpy(copy, m, (size_t)(n * width) * sizeof *copy);
    for (int64_t a = 0; a < n; a++)
        memcpy(m + a * width, copy + (int64_t)match[a] * width, (size_t)width * sizeof *m);
    free(copy);
    return 0;
}

static int permute_cols(float *m, int64_t rows, int64_t n, const int *match)
{
    float *row = malloc((size_t)n * sizeof *row);
    if (!row)
        return -1;
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t a = 0; a < n; a++)
            row[a] = m[r * n + match[a]];
        memcpy(m + r * n, row, (size_t)n * sizeof *row);
    }
    free(row);
    return 0;
}

int mp_align_expert(const mp_expert_parts *ep, float *const *kept, float **member, mp_error *err)
{
    int64_t I = ep->inter;
    double *sim = malloc((size_t)(I * I) * sizeof *sim);
    int *match = malloc((size_t)I * sizeof *match);
    int rc = sim && match ? MP_OK : mp_fail(err, MP_EXIT_IO, "out of memory aligning %lld neurons", (long long)I);
    if (rc == MP_OK)
        rc = similarity(ep, kept, member, sim, err);
    for (int64_t i = 0; i < I * I && rc == MP_OK; i++)
        sim[i] = -sim[i]; /* the best match is the least cost */
    if (rc == MP_OK)
        rc = mp_assign_min_cost((int)I, sim, match, err);
    int bad = 0;
    if (rc == MP_OK) {
        bad |= permute_rows(member[ep->gate], I, ep->hidden, match);
        bad |= permute_rows(member[ep->up], I, ep->hidden, match);
        bad |= permute_cols(member[ep->down], ep->hidden, I, match);
        if (ep->gate_bias >= 0)
            bad |= permute_rows(member[ep->gate_bias], I, 1, match);
        if (ep->up_bias >= 0)
            bad |= permute_rows(member[ep->up_bias], I, 1, match);
        if (bad)
            rc = mp_fail(err, MP_EXIT_IO, "out of memory aligning %lld neurons", (long long)I);
    }
    free(sim);
    free(match);
    return rc;
}
