/* Expert saliency from calibration text: the pack runs layer by layer over the
 * text (chunks of ctx tokens, as profile and reference cut it) and every routed
 * (token, slot) selection adds to its expert's statistics:
 *   freq  the number of selections;
 *   ean   the sum of ||f_e(x)||_2, the norm of the expert's output (REAP's baseline);
 *   reap  the mean over the expert's tokens of g_e(x) * ||f_e(x)||_2, with g the
 *         weight the MoE block applies (after the family's own renormalisation and
 *         scaling), as in REAP (arXiv 2510.13999).
 * All three are gathered in one pass; an expert never routed scores 0 in each.
 * For merging, the same pass can also run every expert on a sample of the tokens
 * (global token index t with t % stride == 0, stride = ceil(tokens / similarity_tokens))
 * and keep, per layer, the cosine similarity of the experts' mean outputs f_e(x)
 * (down bias included) over those tokens, HC-SMoE's output feature. Only one layer's
 * E x hidden sums are held; the result is E x E per layer. */
#ifndef MP_PRUNE_SALIENCY_H
#define MP_PRUNE_SALIENCY_H

#include <stdbool.h>
#include <stdint.h>

#include "../core/error.h"

typedef enum { MP_SALIENCY_FREQ, MP_SALIENCY_REAP, MP_SALIENCY_EAN } mp_saliency_method;

const char *mp_saliency_method_name(mp_saliency_method m);
/* "freq", "reap", "ean"; -1 when unknown. */
int mp_saliency_method_parse(const char *text, mp_saliency_method *m);

typedef struct {
    const char *text_path;   /* calibration text, tokenized with the pack's tokenizer, or */
    const char *tokens_path; /* its token ids (space-separated); exactly one is set */
    int ctx;               /* tokens per chunk */
    int64_t max_tokens;    /* at most this many tokens (whole chunks) */
    bool quiet;
    bool similarity;          /* also measure the experts' output similarity */
    int64_t similarity_tokens; /* sample at most this many tokens for it */
} mp_saliency_options;

/* Per decoder layer (MTP layers are not run) and expert, row-major [layer][expert]. */
typedef struct {
    int n_layers, n_experts;
    bool *moe;            /* [n_layers]: the layer has routed experts */
    int64_t *count;       /* selections */
    double *gate_norm;    /* sum of g * ||f|| over the selections */
    double *norm;         /* sum of ||f|| over the selections */
    double *similarity;   /* [n_layers][n_experts][n_experts] cosines of mean outputs, or NULL */
    int64_t similarity_tokens, similarity_stride; /* tokens sampled for it, and the stride */
    int64_t tokens, chunks;
    uint64_t text_bytes, text_xxh3;
    double seconds;
} mp_saliency;

int mp_saliency_compute(const char *pack_dir, const mp_saliency_options *o, mp_saliency *s, mp_error *err);
void mp_saliency_free(mp_saliency *s);
/* The score of (layer, expert) under method m. */
double mp_saliency_value(const mp_saliency *s, mp_saliency_method m, int layer, int expert);
/* The [n_experts][n_experts] similarity matrix of a layer, or NULL when not measured. */
const double *mp_saliency_similarity(const mp_saliency *s, int layer);

#endif
