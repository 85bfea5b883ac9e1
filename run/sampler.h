/* Choosing the next token from logits: greedy at temperature 0, else temperature,
 * then top-k, top-p and min-p filtering (each off at its neutral value), and a draw
 * from a seeded generator, so the same seed gives the same text. */
#ifndef MP_SAMPLER_H
#define MP_SAMPLER_H

#include <stdint.h>

#include "../core/error.h"

typedef struct {
    float temp;     /* 0: greedy */
    int top_k;      /* 0: all */
    float top_p;    /* 1: all */
    float min_p;    /* 0: all; else keep tokens with p >= min_p * p(most likely) */
    uint64_t seed;
} mp_sampler_opts;

typedef struct {
    mp_sampler_opts o;
    uint64_t state;
    int vocab;
    int32_t *order; /* candidate ids, most likely first */
    float *prob;
} mp_sampler;

int mp_sampler_init(mp_sampler *s, const mp_sampler_opts *o, int vocab, mp_error *err);
void mp_sampler_free(mp_sampler *s);
int32_t mp_sampler_pick(mp_sampler *s, const float *logits);
/* The most likely token (ties: the lowest id), as the engine's greedy decoding. */
int32_t mp_argmax(const float *logits, int vocab);

#endif
