#include "metrics.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/chunks.h"
#include "../formats/reference.h"

/* Exact KL(P_ref || Q_test) over the whole vocabulary. */
static double kld_full(const float *ref, double ref_lse, const float *test, double test_lse, int vocab)
{
    double kl = 0;
    for (int i = 0; i < vocab; i++) {
        double lp = ref[i] - ref_lse, lq = test[i] - test_lse;
        kl += exp(lp) * (lp - lq);
    }
    return kl;
}

/* KL over the reference's top K plus one bucket for the rest of the vocabulary. */
static double kld_top_k(const int32_t *ids, const float *lp, int k, const float *test, double test_lse)
{
    double kl = 0, p_in = 0, q_in = 0;
    for (int i = 0; i < k; i++) {
        double lq = test[ids[i]] - test_lse, p = exp((double)lp[i]);
        kl += p * (lp[i] - lq);
        p_in += p;
        q_in += exp(lq);
    }
    double p_tail = 1 - p_in, q_tail = 1 - q_in;
    if (p_tail > 1e-12 && q_tail > 1e-300)
        kl += p_tail * (log(p_tail) - log(q_tail));
    return kl;
}

/* KL against 16-bit log-probs of the whole vocabulary (reference files). */
static double kld_quantized(float max_lp, const uint16_t *q, const float *test, double test_lse, int vocab, int *top)
{
    double kl = 0;
    *top = -1;
    for (int i = 0; i < vocab; i++) {
        double lp = max_lp - q[i] * MP_REF_LP_STEP, lq = test[i] - test_lse;
        kl += exp(lp) * (lp - lq);
        if (q[i] == 0 && *top < 0)
            *top = i;
    }
    return kl;
}

static int argmax(const float *row, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (row[i] > row[best])
            best = i;
    return best;
}

int mp_logit_metrics_add(mp_logit_metrics *m, const mp_ref_rows *ref, const float *test, int64_t n, int vocab,
                         const int32_t *targets)
{
    if (m->n + n > m->cap) {
        int64_t cap = m->cap ? m->cap : 4096;
        while (cap < m->n + n)
            cap *= 2;
        float *grown = realloc(m->kld, (size_t)cap * sizeof *grown);
        if (!grown)
            return -1;
        m->kld = grown;
        m->cap = cap;
    }
    double *nll = malloc((size_t)n * 2 * sizeof *nll);
    int *same = malloc((size_t)n * sizeof *same);
    if (!nll || !same) {
        free(nll);
        free(same);
        return -1;
    }
    #pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < n; j++) {
        const float *t = test + j * vocab;
        double t_lse = mp_logsumexp(t, vocab), r_lse;
        double kl;
        int ref_top;
        if (ref->logits) {
            const float *r = ref->logits + j * vocab;
            r_lse = mp_logsumexp(r, vocab);
            kl = kld_full(r, r_lse, t, t_lse, vocab);
            ref_top = argmax(r, vocab);
            nll[2 * j + 1] = r_lse - r[targets[j]];
        } else if (ref->q) {
            kl = kld_quantized(ref->max_lp[j], ref->q + j * vocab, t, t_lse, vocab, &ref_top);
            nll[2 * j + 1] = -(ref->max_lp[j] - ref->q[j * vocab + targets[j]] * MP_REF_LP_STEP);
        } else {
            r_lse = ref->lse[j];
            kl = kld_top_k(ref->ids + j * ref->k, ref->lp + j * ref->k, ref->k, t, t_lse);
            ref_top = ref->ids[j * ref->k];
            nll[2 * j + 1] = NAN; /* comes from the reference file's footer */
        }
        m->kld[m->n + j] = (float)kl;
        nll[2 * j] = t_lse - t[targets[j]];
        same[j] = argmax(t, vocab) == ref_top;
    }
    for (int64_t j = 0; j < n; j++) {
        m->nll_test += nll[2 * j];
        m->nll_ref += nll[2 * j + 1];
        m->same_top1 += same[j];
    }
    m->n += n;
    free(nll);
    free(same);
    return 0;
}

void mp_logit_metrics_free(mp_logit_metrics *m)
{
    free(m->kld);
    memset(m, 0, sizeof *m);
}

static int compare_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

void mp_logit_metrics_summary(const mp_logit_metrics *m, mp_logit_summary *s)
{
    memset(s, 0, sizeof *s);
    if (m->n == 0)
        return;
    float *sorted = malloc((size_t)m->n * sizeof *sorted);
    double sum = 0;
    for (int64_t i = 0; i < m->n; i++)
        sum += m->kld[i];
    s->ppl_test = exp(m->nll_test / (double)m->n);
    s->ppl_ref = exp(m->nll_ref / (double)m->n);
    s->kld_mean = sum / (double)m->n;
    s->same_top1 = 100.0 * (double)m->same_top1 / (double)m->n;
    if (!sorted)
        return;
    memcpy(sorted, m->kld, (size_t)m->n * sizeof *sorted);
    qsort(sorted, (size_t)m->n, sizeof *sorted, compare_float);
    s->kld_median = sorted[m->n / 2];
    s->kld_p99 = sorted[(int64_t)((double)(m->n - 1) * 0.99)];
    s->kld_max = sorted[m->n - 1];
    free(sorted);
}

int mp_layer_metrics_init(mp_layer_metrics *m, int n_layers, int n_experts, int top_k)
{
    memset(m, 0, sizeof *m);
    m->n_layers = n_layers;
    m->n_experts = n_experts;
    m->top_k = top_k;
    size_t L = (size_t)n_layers;
    m->cos_sum = calloc(L, sizeof *m->cos_sum);
    m->diff_sq = calloc(L, sizeof *m->diff_sq);
    m->ref_sq = calloc(L, sizeof *m->ref_sq);
    m->overlap_sum = calloc(L, sizeof *m->overlap_sum);
    m->tokens = calloc(L, sizeof *m->tokens);
    m->route_tokens = calloc(L, sizeof *m->route_tokens);
    m->expert_count = calloc(L * (size_t)(n_experts > 0 ? n_experts : 1), sizeof *m->expert_count);
    bool ok = m->cos_sum && m->diff_sq && m->ref_sq && m->overlap_sum && m->tokens && m->route_tokens &&
              m->expert_count;
    if (!ok)
        mp_layer_metrics_free(m);
    return ok ? 0 : -1;
}

void mp_layer_metrics_free(mp_layer_metrics *m)
{
    free(m->cos_sum);
    free(m->diff_sq);
    free(m->ref_sq);
    free(m->overlap_sum);
    free(m->tokens);
    free(m->route_tokens);
    free(m->expert_count);
    memset(m, 0, sizeof *m);
}

void mp_layer_metrics_hidden(mp_layer_metrics *m, int layer, const float *ref, const float *test, int64_t n,
                             int64_t d)
{
    for (int64_t t = 0; t < n; t++) {
        const float *a = ref + t * d, *b = test + t * d;
        double ab = 0, aa = 0, bb = 0, dd = 0;
        for (int64_t i = 0; i < d; i++) {
            ab += (double)a[i] * b[i];
            aa += (double)a[i] * a[i];
            bb += (double)b[i] * b[i];
            dd += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        }
        m->cos_sum[layer] += aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 1.0;
        m->diff_sq[layer] += dd;
        m->ref_sq[layer] += aa;
    }
    m->tokens[layer] += n;
}

void mp_layer_metrics_routing(mp_layer_metrics *m, int layer, const int *ref, const int *test, int64_t n)
{
    int k = m->top_k;
    for (int64_t t = 0; t < n; t++) {
        int shared = 0;
        for (int i = 0; i < k; i++)
            for (int j = 0; j < k; j++)
                shared += test[t * k + i] == ref[t * k + j];
        m->overlap_sum[layer] += (double)shared / k;
    }
    m->route_tokens[layer] += n;
}

void mp_layer_metrics_count(mp_layer_metrics *m, int layer, const int *experts, int64_t n)
{
    for (int64_t i = 0; i < n * m->top_k; i++)
        m->expert_count[(int64_t)layer * m->n_experts + experts[i]]++;
}

double mp_logsumexp(const float *row, int n)
{
    float max = row[0];
    for (int i = 1; i < n; i++)
        if (row[i] > max)
            max = row[i];
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += exp((double)row[i] - max);
    return max + log(sum);
}

void mp_top_k(const float *row, int n, int k, int32_t *ids, float *values)
{
    int have = 0;
    for (int i = 0; i < n; i++) {
        if (have == k && row[i] <= values[k - 1])
            continue;
        int at = have < k ? have++ : k - 1;
        while (at > 0 && values[at - 1] < row[i]) {
            values[at] = values[at - 1];
            ids[at] = ids[at - 1];
            at--;
        }
        values[at] = row[i];
        ids[at] = i;
    }
}
