/* What verify measures, accumulated batch by batch: per-token KL divergence of
 * the tested model from the reference, perplexities, same top-1 (as llama.cpp's
 * perplexity --kl-divergence reports them); per-layer hidden-state agreement and
 * router top-k overlap; routing counts per expert. */
#ifndef MP_METRICS_H
#define MP_METRICS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    double nll_test, nll_ref;
    int64_t n, cap, same_top1;
    float *kld; /* per scored token, for the median and p99 */
} mp_logit_metrics;

/* The reference side of n scored positions, one of three kinds: full logits
 * (exact KLD); 16-bit log-probs of the whole vocabulary (max_lp, q; a reference
 * file's default); or a top-K record (ids, lp: the tail beyond K is lumped into
 * one bucket, which bounds the KLD from below). */
typedef struct {
    const float *logits;  /* [n, vocab] or NULL */
    const float *lse;     /* [n] */
    const int32_t *ids;   /* [n, k] */
    const float *lp;      /* [n, k] */
    int k;
    const float *max_lp;  /* [n] */
    const uint16_t *q;    /* [n, vocab] */
} mp_ref_rows;

int mp_logit_metrics_add(mp_logit_metrics *m, const mp_ref_rows *ref, const float *test, int64_t n, int vocab,
                         const int32_t *targets);
void mp_logit_metrics_free(mp_logit_metrics *m);

typedef struct {
    double ppl_test, ppl_ref, kld_mean, kld_median, kld_p99, kld_max, same_top1;
} mp_logit_summary;

void mp_logit_metrics_summary(const mp_logit_metrics *m, mp_logit_summary *s);

/* Per layer: sum of cosines, of squared differences and of squared reference
 * norms over tokens; router overlap = shared experts / top_k, summed. */
typedef struct {
    int n_layers, n_experts, top_k;
    double *cos_sum, *diff_sq, *ref_sq, *overlap_sum;
    int64_t *tokens, *route_tokens;
    int64_t *expert_count; /* [layer * n_experts + e]: routings of the tested model */
} mp_layer_metrics;

int mp_layer_metrics_init(mp_layer_metrics *m, int n_layers, int n_experts, int top_k);
void mp_layer_metrics_free(mp_layer_metrics *m);
void mp_layer_metrics_hidden(mp_layer_metrics *m, int layer, const float *ref, const float *test, int64_t n,
                             int64_t d);
void mp_layer_metrics_routing(mp_layer_metrics *m, int layer, const int *ref, const int *test, int64_t n);
void mp_layer_metrics_count(mp_layer_metrics *m, int layer, const int *experts, int64_t n);

/* log(sum(exp(row))) in double. */
double mp_logsumexp(const float *row, int n);
/* The k largest values of row, largest first (ties: lower index first). */
void mp_top_k(const float *row, int n, int k, int32_t *ids, float *values);

#endif
