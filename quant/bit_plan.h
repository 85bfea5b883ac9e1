/* Mixed precision under a budget (convert --bits B): each quantized tensor gets one
 * of a few encodings (w4 g128 / g64 / g32, fp8, bf16) so that the estimated loss
 *     sum over tensors  frequency * sum_rows sum_cols importance_c (decoded - w)^2
 * is least while the bytes stay within the budget. importance_c is the mean square of
 * input channel c (an imatrix), frequency the share of tokens that reach the tensor
 * (a routed expert's routing frequency, 1 for attention and dense layers): the sum
 * estimates the squared output error the quantization adds per token.
 *
 * The choice is a multiple-choice knapsack, solved by Lagrangian relaxation: for a
 * price lambda per byte every tensor takes the option minimising loss + lambda * bytes;
 * a bisection finds the cheapest price that fits, then the remaining budget buys the
 * upgrades with the best loss saved per byte. Options whose loss is not below a
 * cheaper one's are never taken. */
#ifndef MP_QUANT_BIT_PLAN_H
#define MP_QUANT_BIT_PLAN_H

#include <stdint.h>

#include "../core/error.h"
#include "../formats/encoding.h"

enum { MP_BIT_OPTIONS_MAX = 16 };

typedef struct {
    int n_options;
    mp_encoding options[MP_BIT_OPTIONS_MAX];
    uint64_t bytes[MP_BIT_OPTIONS_MAX];
    double loss[MP_BIT_OPTIONS_MAX];
    int64_t params;
    int choice; /* set by mp_bit_allocate */
} mp_bit_item;

/* Adds to the bytes and loss of every option of an item those of weights W[rows, cols]
 * (importance per column, NULL = 1; loss scaled by frequency): an item is one tensor, or
 * several that must share one encoding (a layer's experts stacked for GGUF). Each
 * tensor's bytes are rounded up to `align`. Items start zeroed. */
int mp_bit_measure(mp_bit_item *it, const float *W, int64_t rows, int64_t cols, const float *importance,
                   double frequency, uint64_t align, mp_error *err);
/* Chooses an option per item with total bytes <= budget; fails when even the
 * smallest options exceed it (naming the least bits per weight possible). */
int mp_bit_allocate(mp_bit_item *items, int n, uint64_t budget, mp_error *err);

#endif
