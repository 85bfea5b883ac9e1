#include "merge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../quant/encoder.h"
#include "align.h"
#include "prune_write.h"

/* The record of (layer, expert) in the input pack, or -1. */
static int expert_record(const mp_pack *in, int layer, int expert)
{
    for (int r = 0; r < in->n_records; r++)
        if (in->records[r].layer == layer && in->records[r].expert == expert)
            return r;
    return -1;
}

typedef struct {
    const mp_pack *in;
    const mp_pack_record *target; /* the kept expert's record */
    mp_expert_parts where;        /* the target's parts by role; where.inter 0: no alignment */
    float **acc;                  /* per part of target: the weighted sum [rows * cols] */
    float **kept, **member;       /* per part: the kept expert's and a member's decoded values */
    uint8_t *raw;                 /* one record's bytes */
} merge_job;

/* values[p] = decoded(member's tensor p), for every part of the target. */
static int decode_member(merge_job *j, int layer, int member, float **values, mp_error *err)
{
    const mp_pack *in = j->in;
    int r = expert_record(in, layer, member);
    if (r < 0)
        return mp_fail(err, MP_EXIT_INPUT, "%s: no record of layer %d expert %d", in->dir, layer, member);
    int rc = mp_pack_read_record(in, r, j->raw, err);
    for (int p = 0; p < j->target->n_parts && rc == MP_OK; p++) {
        const mp_pack_tensor *t = &in->tensors[j->target->parts[p].tensor];
        char name[256];
        int ti = mp_expert_tensor_name(t->name, member, name, sizeof name) == 0 ? mp_pack_find(in, name) : -1;
        const mp_pack_tensor *m = ti >= 0 ? &in->tensors[ti] : NULL;
        if (!m || m->record != r || m->rows != t->rows || m->cols != t->cols)
            return mp_fail(err, MP_EXIT_INPUT, "%s: merging into %s: expert %d has no tensor %s of shape [%lld, %lld]",
                           in->dir, t->name, member, name, (long long)t->rows, (long long)t->cols);
        mp_encoding_decode_rows(&m->enc, m->rows, m->cols, j->raw + in->records[r].parts[m->part].offset, 0, m->rows,
                                values[p]);
    }
    return rc;
}

/* The parts' roles by name suffix; alignment only when gate, up and down are all there
 * with consistent shapes and the assignment stays affordable. */
static void find_roles(merge_job *j)
{
    mp_expert_parts *w = &j->where;
    *w = (mp_expert_parts){-1, -1, -1, -1, -1, 0, 0};
    const char *suffix[5] = {".gate", ".up", ".down", ".gate.bias", ".up.bias"};
    int *slot[5] = {&w->gate, &w->up, &w->down, &w->gate_bias, &w->up_bias};
    for (int p = 0; p < j->target->n_parts; p++) {
        const char *name = j->in->tensors[j->target->parts[p].tensor].name;
        size_t len = strlen(name);
        for (int k = 0; k < 5; k++) {
            size_t sl = strlen(suffix[k]);
            if (len > sl && strcmp(name + len - sl, suffix[k]) == 0)
                *slot[k] = p;
        }
    }
    if (w->gate < 0 || w->up < 0 || w->down < 0)
        return;
    const mp_pack_tensor *g = &j->in->tensors[j->target->parts[w->gate].tensor];
    const mp_pack_tensor *u = &j->in->tensors[j->target->parts[w->up].tensor];
    const mp_pack_tensor *d = &j->in->tensors[j->target->parts[w->down].tensor];
    if (u->rows == g->rows && u->cols == g->cols && d->rows == g->cols && d->cols == g->rows &&
        g->rows <= MP_ALIGN_MAX_INTER) {
        w->inter = g->rows;
        w->hidden = g->cols;
    }
}

/* The averaged tensors of the target, encoded as the target's and staged by name. */
static int stage_parts(merge_job *j, mp_stage *stage, mp_merge_stats *st, mp_error *err)
{
    int rc = MP_OK;
    for (int p = 0; p < j->target->n_parts && rc == MP_OK; p++) {
        const mp_pack_tensor *t = &j->in->tensors[j->target->parts[p].tensor];
        mp_w4_options w4 = {.method = MP_W4_MSE};
        mp_encoder x;
        rc = mp_encoder_init(&x, &t->enc, t->rows, t->cols, &w4, err);
        if (rc != MP_OK)
            return rc;
        uint8_t *bytes = malloc(x.layout.total + 1);
        if (!bytes)
            rc = mp_fail(err, MP_EXIT_IO, "out of memory encoding %s", t->name);
        if (rc == MP_OK) {
            mp_encoder_whole(&x, j->acc[p], bytes);
            rc = mp_stage_put(stage, t->name, &t->enc, bytes, x.layout.total, NULL, 0, err);
            st->tensors++;
        }
        free(bytes);
        mp_encoder_free(&x);
    }
    return rc;
}

static void free_parts(float **parts, int n)
{
    for (int p = 0; parts && p < n; p++)
        free(parts[p]);
    free(parts);
}

static float **alloc_parts(merge_job *j, mp_error *err)
{
    float **parts = calloc((size_t)j->target->n_parts, sizeof *parts);
    for (int p = 0; parts && p < j->target->n_parts; p++) {
        const mp_pack_tensor *t = &j->in->tensors[j->target->parts[p].tensor];
        if (!(parts[p] = calloc((size_t)(t->rows * t->cols), sizeof **parts))) {
            free_parts(parts, j->target->n_parts);
            parts = NULL;
        }
    }
    if (!parts)
        mp_fail(err, MP_EXIT_IO, "out of memory merging layer %d expert %d", j->target->layer, j->target->expert);
    return parts;
}

/* acc += w * values, part by part. */
static void accumulate(merge_job *j, float *const *values, double w)
{
    for (int p = 0; p < j->target->n_parts; p++) {
        const mp_pack_tensor *t = &j->in->tensors[j->target->parts[p].tensor];
        for (int64_t i = 0; i < t->rows * t->cols; i++)
            j->acc[p][i] += (float)(w * (double)values[p][i]);
    }
}

/* Kept expert k of plan layer L with everything that folds into it: the kept expert's
 * weights, then each member's (aligned to the kept expert's neurons) in id order. */
static int merge_one(merge_job *j, const mp_prune_layer *L, const mp_saliency *s, int n_experts, int k,
                     mp_stage *stage, mp_merge_stats *st, mp_error *err)
{
    const int64_t *count = s->count + (int64_t)L->layer * s->n_experts;
    double total = (double)count[k];
    int others = 0;
    for (int e = 0; e < n_experts; e++)
        if (L->into[e] == k && count[e] > 0) {
            total += (double)count[e];
            others++;
        }
    if (others == 0)
        return MP_OK;
    int r = expert_record(j->in, L->layer, k);
    if (r < 0)
        return mp_fail(err, MP_EXIT_INPUT, "%s: no record of layer %d expert %d", j->in->dir, L->layer, k);
    j->target = &j->in->records[r];
    find_roles(j);
    int n = j->target->n_parts, rc = MP_EXIT_IO;
    if ((j->acc = alloc_parts(j, err)) && (j->kept = alloc_parts(j, err)) && (j->member = alloc_parts(j, err)))
        rc = decode_member(j, L->layer, k, j->kept, err);
    if (rc == MP_OK)
        accumulate(j, j->kept, (double)count[k] / total);
    for (int e = 0; e < n_experts && rc == MP_OK; e++) {
        if (L->into[e] != k || count[e] <= 0)
            continue;
        rc = decode_member(j, L->layer, e, j->member, err);
        if (rc == MP_OK && j->where.inter > 0) {
            rc = mp_align_expert(&j->where, j->kept, j->member, err);
            st->experts_aligned++;
        }
        if (rc == MP_OK)
            accumulate(j, j->member, (double)count[e] / total);
    }
    if (rc == MP_OK)
        rc = stage_parts(j, stage, st, err);
    free_parts(j->acc, n);
    free_parts(j->kept, n);
    free_parts(j->member, n);
    j->acc = j->kept = j->member = NULL;
    st->experts_changed++;
    st->experts_merged += others;
    return rc;
}

int mp_merge_experts(const mp_pack *in, const mp_prune_plan *plan, const mp_saliency *s, mp_stage *stage,
                     mp_merge_stats *st, mp_error *err)
{
    memset(st, 0, sizeof *st);
    uint64_t raw_max = 0;
    for (int r = 0; r < in->n_records; r++)
        raw_max = in->records[r].raw_length > raw_max ? in->records[r].raw_length : raw_max;
    merge_job j = {.in = in, .raw = malloc(raw_max + 1)};
    int rc = j.raw ? MP_OK : mp_fail(err, MP_EXIT_IO, "out of memory for a %llu-byte record", (unsigned long long)raw_max);
    for (int i = 0; i < plan->n_layers && rc == MP_OK; i++) {
        const mp_prune_layer *L = &plan->layers[i];
        for (int k = 0; L->scored && k < plan->n_experts && rc == MP_OK; k++)
            if (L->new_id[k] >= 0)
                rc = merge_one(&j, L, s, plan->n_experts, k, stage, st, err);
    }
    free(j.raw);
    return rc;
}
