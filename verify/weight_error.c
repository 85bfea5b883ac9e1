#include "weight_error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/progress.h"

/* Sums of squared differences and squared reference values of one tensor. */
static int tensor_sums(mp_weight_source *ref, mp_weight_source *test, const char *name, double *diff, double *norm,
                       mp_error *err)
{
    int64_t rows, cols, r2, c2;
    if (mp_wsrc_shape(test, name, &rows, &cols) != 0 || mp_wsrc_shape(ref, name, &r2, &c2) != 0)
        return mp_fail(err, MP_EXIT_INPUT, "%s: tensor %s: not in the reference %s", test->path, name, ref->path);
    if (rows * cols != r2 * c2)
        return mp_fail(err, MP_EXIT_INPUT, "%s: tensor %s: shape [%lld, %lld], the reference has [%lld, %lld]",
                       test->path, name, (long long)rows, (long long)cols, (long long)r2, (long long)c2);
    float *a = malloc((size_t)(rows * cols) * sizeof *a), *b = malloc((size_t)(rows * cols) * sizeof *b);
    int rc = a && b ? MP_OK : mp_fail(err, MP_EXIT_IO, "out of memory reading %s", name);
    if (!rc) rc = mp_wsrc_read(ref, name, rows, cols, a, err);
    if (!rc) rc = mp_wsrc_read(test, name, rows, cols, b, err);
    double d = 0, n = 0;
    for (int64_t i = 0; !rc && i < rows * cols; i++) {
        d += ((double)b[i] - a[i]) * ((double)b[i] - a[i]);
        n += (double)a[i] * a[i];
    }
    *diff = d;
    *norm = n;
    free(a);
    free(b);
    return rc;
}

static double ratio(double diff, double norm)
{
    return norm > 0 ? sqrt(diff / norm) : (diff > 0 ? INFINITY : 0);
}

int mp_weight_errors_compute(mp_weight_errors *w, mp_weight_source *ref, mp_weight_source *test, bool quiet,
                             mp_error *err)
{
    const mp_config *c = mp_wsrc_config(test);
    memset(w, 0, sizeof *w);
    w->n_layers = c->n_layers;
    w->n_experts = c->routing.n_experts;
    int n = mp_wsrc_count(test), cells = w->n_layers * (w->n_experts > 0 ? w->n_experts : 1);
    w->tensors = calloc((size_t)n, sizeof *w->tensors);
    w->expert_rel = malloc((size_t)cells * sizeof *w->expert_rel);
    double *diff = calloc((size_t)cells, sizeof *diff), *norm = calloc((size_t)cells, sizeof *norm);
    int rc = w->tensors && w->expert_rel && diff && norm ? MP_OK : mp_fail(err, MP_EXIT_IO, "out of memory");
    mp_progress progress;
    mp_progress_start(&progress, "weight error", (uint64_t)n, false, quiet);
    for (int i = 0; !rc && i < n; i++, w->n++) {
        mp_tensor_error *t = &w->tensors[i];
        snprintf(t->name, sizeof t->name, "%s", mp_wsrc_name(test, i));
        mp_wsrc_encoding(test, t->name, t->encoding, sizeof t->encoding);
        double d = 0, s = 0;
        rc = tensor_sums(ref, test, t->name, &d, &s, err);
        t->rel = ratio(d, s);
        int layer, expert, used = 0;
        if (!rc && sscanf(t->name, "layers.%d.experts.%d.%*[a-z]%n", &layer, &expert, &used) == 2 && used > 0 &&
            layer < w->n_layers && expert < w->n_experts) {
            diff[layer * w->n_experts + expert] += d;
            norm[layer * w->n_experts + expert] += s;
        }
        mp_progress_add(&progress, 1);
    }
    mp_progress_finish(&progress);
    for (int i = 0; !rc && i < cells; i++)
        w->expert_rel[i] = norm[i] > 0 ? ratio(diff[i], norm[i]) : NAN;
    free(diff);
    free(norm);
    if (rc)
        mp_weight_errors_free(w);
    return rc;
}

void mp_weight_errors_free(mp_weight_errors *w)
{
    free(w->tensors);
    free(w->expert_rel);
    memset(w, 0, sizeof *w);
}
