/* The distill driver: the two models checked against each other, the expert map of
 * a pruned student, the layer-by-layer fit staged, and the student's pack copied
 * with the fitted tensors replaced. */
#include "distill.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/fileio.h"
#include "../core/version.h"
#include "../model/model.h"
#include "../model/pack_open.h"

static int read_config(const char *dir, mp_config *cfg, mp_error *err)
{
    char *path = mp_path_join(dir, "config.json");
    int rc = path ? mp_config_read(cfg, path, err) : mp_fail(err, MP_EXIT_IO, "out of memory");
    free(path);
    return rc;
}

/* Same family, hidden size, layer count and vocabulary, and no more experts in the student. */
static int same_model(const mp_distill_options *o, const mp_config *t, const mp_config *s, mp_error *err)
{
    if (strcmp(t->model_type, s->model_type) != 0)
        return mp_fail(err, MP_EXIT_INPUT, "teacher %s and student %s are different models: model_type %s vs %s",
                       o->teacher, o->student, t->model_type, s->model_type);
    const char *what = t->hidden != s->hidden ? "hidden size" : t->n_layers != s->n_layers ? "layer count"
                       : t->vocab != s->vocab ? "vocabulary" : NULL;
    if (what)
        return mp_fail(err, MP_EXIT_INPUT, "teacher %s and student %s are different models: %s %d vs %d", o->teacher,
                       o->student, what,
                       t->hidden != s->hidden ? t->hidden : t->n_layers != s->n_layers ? t->n_layers : t->vocab,
                       t->hidden != s->hidden ? s->hidden : t->n_layers != s->n_layers ? s->n_layers : s->vocab);
    if (s->routing.n_experts > t->routing.n_experts)
        return mp_fail(err, MP_EXIT_INPUT, "student %s has %d experts per layer, its teacher %s only %d", o->student,
                       s->routing.n_experts, o->teacher, t->routing.n_experts);
    return MP_OK;
}

/* expert_of[li * E + x] for a pruned student: its provenance.prune layers' kept ids
 * (kept experts are renumbered in their original order; a merged expert's target is
 * the teacher's own expert of that id). Layers without a record keep the ids. */
static int expert_map(const mp_distill_options *o, const mp_pack *p, const mp_config *t, const mp_config *s,
                      int **out, mp_error *err)
{
    *out = NULL;
    int E = s->routing.n_experts;
    if (E == t->routing.n_experts)
        return MP_OK;
    json_t *prune = json_object_get(json_object_get(p->manifest, "provenance"), "prune");
    json_t *layers = json_object_get(prune, "layers");
    if (!json_is_array(layers) || json_integer_value(json_object_get(prune, "experts_before")) != t->routing.n_experts)
        return mp_fail(err, MP_EXIT_INPUT, "student %s has %d experts, teacher %s %d, and no provenance.prune record "
                       "of pruning %d to %d", o->student, E, o->teacher, t->routing.n_experts, t->routing.n_experts, E);
    int *map = malloc((size_t)s->n_layers * (size_t)E * sizeof *map);
    if (!map)
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    for (int64_t i = 0; i < (int64_t)s->n_layers * E; i++)
        map[i] = (int)(i % E);
    size_t i;
    json_t *L;
    json_array_foreach(layers, i, L) {
        int li = (int)json_integer_value(json_object_get(L, "layer"));
        json_t *kept = json_object_get(L, "kept");
        if (li < 0 || li >= s->n_layers)
            continue; /* MTP layers: not run */
        if (!json_is_array(kept) || (int)json_array_size(kept) != E) {
            free(map);
            return mp_fail(err, MP_EXIT_INPUT, "%s: provenance.prune layer %d does not list %d kept experts",
                           o->student, li, E);
        }
        for (int x = 0; x < E; x++)
            map[(int64_t)li * E + x] = (int)json_integer_value(json_array_get(kept, (size_t)x));
    }
    *out = map;
    return MP_OK;
}

static int encoding_of(void *user, const char *name, int64_t rows, int64_t cols, mp_encoding *enc, mp_error *err)
{
    const mp_pack *p = user;
    int ti = mp_pack_find(p, name);
    if (ti < 0)
        return mp_fail(err, MP_EXIT_INPUT, "distill: tensor %s is not in %s", name, p->dir);
    if (p->tensors[ti].rows * p->tensors[ti].cols != rows * cols)
        return mp_fail(err, MP_EXIT_INPUT, "distill: tensor %s has %lld values, %s %lld", name,
                       (long long)(rows * cols), p->dir, (long long)(p->tensors[ti].rows * p->tensors[ti].cols));
    *enc = p->tensors[ti].enc;
    return MP_OK;
}

json_t *mp_distill_layers_json(const mp_calib_report *r)
{
    json_t *layers = json_array();
    for (int li = 0; li < r->n_fits; li++) {
        const mp_calib_fit *f = &r->fits[li];
        json_t *l = json_pack("{s:i, s:i, s:f, s:f}", "layer", li, "tensors", f->tensors, "output_error_before",
                              f->norm > 0 ? f->before / f->norm : 0.0, "output_error_after",
                              f->norm > 0 ? f->after / f->norm : 0.0);
        if (f->router_before > 0 || f->router_after > 0) {
            json_object_set_new(l, "router_residual_before", json_real(f->router_before));
            json_object_set_new(l, "router_residual_after", json_real(f->router_after));
        }
        json_array_append_new(layers, l);
    }
    return layers;
}

static json_t *distill_json(const mp_distill_options *o, const mp_calib_report *r)
{
    json_t *kept = json_array();
    for (int i = 0; i < r->n_fallbacks; i++)
        json_array_append_new(kept, json_pack("{s:i, s:i, s:i}", "layer", r->fallbacks[i].layer, "expert",
                                              r->fallbacks[i].expert, "tokens", r->fallbacks[i].tokens));
    const char *text = o->calib ? o->calib : o->tokens, *base = strrchr(text, '/');
    return json_pack("{s:s, s:s, s:s, s:I, s:I, s:i, s:b, s:b, s:s, s:o, s:o}", "teacher", o->teacher, "text",
                     base ? base + 1 : text, "text_kind", o->calib ? "text" : "tokens", "tokens",
                     (json_int_t)r->tokens, "sequences", (json_int_t)r->sequences, "ctx", o->ctx, "act_order",
                     o->act_order, "router_refit", !o->keep_router, "objective",
                     "per linear min ||W_t x_t - Q x_s||^2 over Q on the student's grid: GPTQ of W* = W_t C H^-1 "
                     "(ridge towards W_t); output errors relative to sum ||W_t x_t||^2",
                     "experts_kept_unfitted", kept, "layers", mp_distill_layers_json(r));
}

static json_t *provenance_json(const mp_distill_options *o, const mp_pack *p, const mp_calib_report *r)
{
    json_t *input = json_object_get(p->manifest, "provenance");
    json_t *prov = json_is_object(input) ? json_deep_copy(input) : json_object();
    json_object_set_new(prov, "tool", json_string("moepack " MP_VERSION));
    if (o->command)
        json_object_set_new(prov, "command", json_string(o->command));
    json_object_set_new(prov, "source", json_string(o->student));
    json_object_set_new(prov, "input", json_is_object(input) ? json_deep_copy(input) : json_null());
    json_object_set_new(prov, "distill", distill_json(o, r));
    return prov;
}

static int fit_and_write(const mp_distill_options *o, const mp_pack *p, const mp_config *s, const int *map,
                         mp_distill_result *r, mp_error *err)
{
    char stage_path[4096];
    snprintf(stage_path, sizeof stage_path, "%s.distill-%d", o->out, (int)getpid());
    mp_stage stage = {.fd = -1};
    mp_calib_teacher teacher = {.path = o->teacher, .expert_of = map, .keep_router = o->keep_router};
    mp_calib_options co = {.method = MP_METHOD_GPTQ, .calib_path = o->calib, .tokens_path = o->tokens,
                           .calib_tokens = o->calib_tokens, .calib_ctx = o->ctx, .min_tokens = -1,
                           .act_order = o->act_order, .teacher = &teacher, .quiet = o->quiet,
                           .allow_nonfinite = o->allow_nonfinite,
                           .encoding = encoding_of, .encoding_user = (void *)p};
    int rc = mp_stage_open(&stage, stage_path, err);
    if (rc == MP_OK)
        rc = mp_calibrate(o->student, &co, &stage, &r->calib, err);
    /* every expert kept: the plan only carries the count */
    mp_prune_plan same = {.n_experts = s->routing.n_experts, .keep = s->routing.n_experts,
                          .n_group = s->routing.n_group > 0 ? s->routing.n_group : 1};
    mp_prune_write_options wo = {.out = o->out, .force = o->force, .quiet = o->quiet, .n_layers = s->n_layers,
                                 .replace = &stage};
    if (rc == MP_OK) {
        wo.provenance = provenance_json(o, p, &r->calib);
        rc = mp_prune_write(p, &same, &wo, &r->written, err);
    }
    if (stage.fd >= 0)
        mp_stage_close(&stage);
    return rc;
}

int mp_distill(const mp_distill_options *o, mp_distill_result *r, mp_error *err)
{
    memset(r, 0, sizeof *r);
    if (!mp_is_pack(o->student))
        return mp_fail(err, MP_EXIT_INPUT, "student %s: not a pack (no manifest.json); moepack convert makes one",
                       o->student);
    mp_config t = {0}, s = {0};
    int rc = read_config(o->teacher, &t, err);
    if (rc == MP_OK)
        rc = read_config(o->student, &s, err);
    if (rc == MP_OK)
        rc = same_model(o, &t, &s, err);
    mp_pack p;
    bool opened = rc == MP_OK && (rc = mp_model_pack_open(&p, o->student, false, err)) == MP_OK;
    int *map = NULL;
    if (rc == MP_OK)
        rc = expert_map(o, &p, &t, &s, &map, err);
    r->teacher_experts = t.routing.n_experts;
    r->student_experts = s.routing.n_experts;
    if (rc == MP_OK)
        rc = fit_and_write(o, &p, &s, map, r, err);
    free(map);
    if (opened)
        mp_pack_close(&p);
    mp_config_free(&t);
    mp_config_free(&s);
    return rc;
}

void mp_distill_result_free(mp_distill_result *r)
{
    mp_calib_report_free(&r->calib);
}
