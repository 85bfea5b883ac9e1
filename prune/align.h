/* Neuron alignment before merging experts (M-SMoE, Li et al. 2023; "weight matching" of
 * Git Re-Basin): an expert's intermediate neurons can be permuted without changing its
 * function (the same permutation on gate and up rows, their biases, and down columns),
 * and two independently trained experts number theirs arbitrarily, so averaging them
 * position by position mixes unrelated neurons. The member's neurons are permuted to
 * maximise sum_a <gate_k[a], gate_m[p(a)]> + <up_k[a], up_m[p(a)]> + <down_k[:,a],
 * down_m[:,p(a)]> over the kept expert's neurons a, an exact linear assignment
 * (Hungarian method, O(I^3)). */
#ifndef MP_PRUNE_ALIGN_H
#define MP_PRUNE_ALIGN_H

#include <stdint.h>

#include "../core/error.h"

/* Where an expert's tensors are among its decoded parts (-1 when absent). */
typedef struct {
    int gate, up, down, gate_bias, up_bias;
    int64_t inter, hidden;
} mp_expert_parts;

/* Intermediate sizes above this are merged without alignment (the assignment's cubic
 * cost: about a minute at 4096 on one core). */
#define MP_ALIGN_MAX_INTER 4096

/* The minimum-cost perfect matching of an n x n cost matrix (row-major): row i gets
 * column match[i]. Deterministic; O(n^3) time, O(n) memory besides cost. */
int mp_assign_min_cost(int n, const double *cost, int *match, mp_error *err);

/* Permutes member's neurons (gate, up rows; their biases; down columns) in place to
 * match kept's. parts[] of both are decoded f32 tensors indexed as ep says. */
int mp_align_expert(const mp_expert_parts *ep, float *const *kept, float **member, mp_error *err);

#endif
