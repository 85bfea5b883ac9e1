#include "sampler.h"

#include <math.h>
#include <stdlib.h>

int32_t mp_argmax(const float *logits, int vocab)
{
    int32_t best = 0;
    for (int32_t i = 1; i < vocab; i++)
        if (logits[i] > logits[best])
            best = i;
    return best;
}

int mp_sampler_init(mp_sampler *s, const mp_sampler_opts *o, int vocab, mp_error *err)
{
    *s = (mp_sampler){.o = *o, .state = o->seed, .vocab = vocab};
    s->order = malloc((size_t)vocab * sizeof *s->order);
    s->prob = malloc((size_t)vocab * sizeof *s->prob);
    if (!s->order || !s->prob) {
        mp_sampler_free(s);
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    }
    return MP_OK;
}

void mp_sampler_free(mp_sampler *s)
{
    free(s->order);
    free(s->prob);
    s->order = NULL;
    s->prob = NULL;
}

/* splitmix64: a small generator whose sequence depends only on the seed. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Higher probability first, ties by lower id: a total order, so qsort's result is
 * the same everywhere. */
static int by_prob(const void *a, const void *b, void *probabilities)
{
    const float *prob = probabilities;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (prob[x] != prob[y])
        return prob[x] > prob[y] ? -1 : 1;
    return (x > y) - (x < y);
}

/* prob = softmax(logits / temp); returns the number of candidates kept after
 * top-k, top-p and min-p, in order[0..n). */
static int candidates(mp_sampler *s, const float *logits)
{
    float max = logits[mp_argmax(logits, s->vocab)];
    double sum = 0;
    for (int i = 0; i < s->vocab; i++) {
        s->prob[i] = expf((logits[i] - max) / s->o.temp);
        sum += s->prob[i];
        s->order[i] = i;
    }
    for (int i = 0; i < s->vocab; i++)
        s->prob[i] = (float)(s->prob[i] / sum);
    qsort_r(s->order, (size_t)s->vocab, sizeof *s->order, by_prob, s->prob);
    int n = s->o.top_k > 0 && s->o.top_k < s->vocab ? s->o.top_k : s->vocab;
    double mass = 0;
    for (int i = 0; i < n; i++) {
        mass += s->prob[s->order[i]];
        if (mass >= s->o.top_p) {
            n = i + 1;
            break;
        }
    }
    float floor_p = s->o.min_p * s->prob[s->order[0]];
    while (n > 1 && s->prob[s->order[n - 1]] < floor_p)
        n--;
    return n;
}

int32_t mp_sampler_pick(mp_sampler *s, const float *logits)
{
    if (s->o.temp <= 0)
        return mp_argmax(logits, s->vocab);
    int n = candidates(s, logits);
    double total = 0;
    for (int i = 0; i < n; i++)
        total += s->prob[s->order[i]];
    double u = (double)(next_random(&s->state) >> 11) / 9007199254740992.0 * total;
    for (int i = 0; i < n; i++) {
        u -= s->prob[s->order[i]];
        if (u < 0)
            return s->order[i];
    }
    return s->order[n - 1];
}
