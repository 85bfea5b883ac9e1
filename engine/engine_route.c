/* Router functions: which top_k experts a token goes to and with what weights.
 *   Mixtral/Qwen/OLMoE: softmax over all experts, top-k, optional renormalisation.
 *   DeepSeek-V2: softmax, top-k within the topk_group groups of highest max score;
 *     routed_scaling_factor only when not renormalising (DeepSeek's own gate; HF's
 *     port ignores norm_topk_prob, which the published V2 configs set false).
 *   DeepSeek-V3/GLM-4.5: sigmoid; the correction bias is added for choosing only;
 *     groups ranked by the sum of their two best biased scores; the weights are the
 *     unbiased scores, renormalised (+1e-20 as HF) and times routed_scaling_factor.
 *   GPT-OSS: top-k on the logits, softmax over those k.
 * Ties go to the lower index; NaN scores still pick an expert, so a broken router
 * never indexes out of bounds. */
#include <math.h>
#include <stdbool.h>

#include "engine_internal.h"
#include "linalg.h"

/* The largest allowed value (ties: lowest index), or the first allowed one when
 * every candidate is NaN. */
static int argmax_allowed(const float *v, const bool *allowed, int n)
{
    int best = -1;
    for (int x = 0; x < n; x++)
        if (allowed[x] && (best < 0 || v[x] > v[best]))
            best = x;
    return best;
}

/* chosen[0 .. k) = the k largest allowed values, best first; clears their flags. */
static void top_k(const float *v, bool *allowed, int n, int k, int *chosen)
{
    for (int j = 0; j < k; j++) {
        chosen[j] = argmax_allowed(v, allowed, n);
        allowed[chosen[j]] = false;
    }
}

/* A group's rank: its best score (V2 group_limited_greedy) or the sum of its
 * two best (V3 noaux_tc). */
static float group_score(const float *v, int size, mp_group_rule rule)
{
    float first = v[0], second = -INFINITY;
    for (int i = 1; i < size; i++) {
        if (v[i] > first) {
            second = first;
            first = v[i];
        } else if (v[i] > second) {
            second = v[i];
        }
    }
    return rule == MP_GROUPS_MAX || size < 2 ? first : first + second;
}

/* allowed[x] = expert x lies in one of the topk_group best groups (all experts
 * when routing is not group-limited). Masked experts are out of the choice
 * entirely, as DeepSeek's reference and current HF (-inf) do. group_scores and
 * pending hold n_group values each. */
static void allow_groups(const mp_routing *r, const float *choice, float *group_scores, bool *pending, bool *allowed)
{
    for (int x = 0; x < r->n_experts; x++)
        allowed[x] = true;
    if (r->group_rule == MP_GROUPS_NONE || r->n_group <= 1)
        return;
    int size = r->n_experts / r->n_group;
    for (int g = 0; g < r->n_group; g++) {
        group_scores[g] = group_score(choice + g * size, size, r->group_rule);
        pending[g] = true;
    }
    for (int j = 0; j < r->topk_group; j++) /* the kept groups leave the pending set */
        pending[argmax_allowed(group_scores, pending, r->n_group)] = false;
    for (int x = 0; x < r->n_experts; x++)
        allowed[x] = !pending[x / size];
}

/* GPT-OSS: the k largest logits, then a softmax over just those. */
static void route_topk_then_softmax(const mp_routing *r, const float *logits, bool *allowed, int *chosen,
                                    float *weights)
{
    for (int x = 0; x < r->n_experts; x++)
        allowed[x] = true;
    top_k(logits, allowed, r->n_experts, r->top_k, chosen);
    for (int j = 0; j < r->top_k; j++)
        weights[j] = logits[chosen[j]];
    mp_softmax(weights, r->top_k);
}

void eng_route_token(const mp_config *c, const float *bias, float *logits, float *scratch, bool *flags,
                     int *chosen, float *weights)
{
    const mp_routing *r = &c->routing;
    int n = r->n_experts;
    if (r->order == MP_ROUTE_TOPK_THEN_SOFTMAX) {
        route_topk_then_softmax(r, logits, flags, chosen, weights);
    } else {
        float *scores = logits, *choice = scratch;
        if (r->score == MP_SCORE_SIGMOID)
            for (int x = 0; x < n; x++)
                scores[x] = 1.0f / (1.0f + expf(-scores[x]));
        else
            mp_softmax(scores, n);
        for (int x = 0; x < n; x++)
            choice[x] = bias ? scores[x] + bias[x] : scores[x];
        allow_groups(r, choice, scratch + n, flags + n, flags);
        top_k(choice, flags, n, r->top_k, chosen);
        float sum = 0;
        for (int j = 0; j < r->top_k; j++) {
            weights[j] = scores[chosen[j]];
            sum += weights[j];
        }
        if (r->score == MP_SCORE_SIGMOID)
            sum += 1e-20f; /* HF's guard against an all-zero sigmoid selection */
        for (int j = 0; r->norm_topk && j < r->top_k; j++)
            weights[j] /= sum;
        /* DeepSeek-V2's gate either renormalises or scales, never both */
        if (r->norm_topk && c->family == MP_FAMILY_DEEPSEEK_V2)
            return;
    }
    for (int j = 0; j < r->top_k; j++)
        weights[j] *= (float)r->scaling;
}
