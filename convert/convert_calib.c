#include "convert_calib.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const mp_model *m;
    const mp_plan *plan;
    const mp_policy *policy;
} encoding_lookup;

static int encoding_of(void *user, const char *name, int64_t rows, int64_t cols, mp_encoding *enc, mp_error *err)
{
    const encoding_lookup *l = user;
    for (int p = 0; p < l->plan->n_parts; p++) {
        const mp_plan_part *part = &l->plan->parts[p];
        if (strcmp(part->name, name) != 0)
            continue;
        if (part->rows * part->cols != rows * cols)
            return mp_fail(err, MP_EXIT_INPUT, "calibration: tensor %s has %lld values, the plan %lld", name,
                           (long long)(rows * cols), (long long)(part->rows * part->cols));
        bool fell_back;
        return mp_policy_choose(l->policy, part->name, part->source, part->cls, mp_plan_source_dtype(l->m, part),
                                part->rows, part->cols, enc, &fell_back, err);
    }
    return mp_fail(err, MP_EXIT_INPUT, "calibration: tensor %s is not in the checkpoint's plan", name);
}

int mp_calibrate_staged(const char *model_path, mp_calib_options *o, mp_encoding_fn encoding, void *user,
                        const char *stage_path, mp_stage *stage, mp_calib_report *report, mp_error *err)
{
    o->encoding = encoding;
    o->encoding_user = user;
    int rc = mp_stage_open(stage, stage_path, err);
    if (rc == MP_OK)
        rc = mp_calibrate(model_path, o, stage, report, err);
    o->encoding = NULL;
    o->encoding_user = NULL;
    return rc;
}

int mp_convert_calibrate(const char *ckpt, const mp_model *m, const mp_plan *plan, const mp_policy *policy,
                         mp_calib_options *o, const char *stage_path, mp_stage *stage, mp_calib_report *report,
                         mp_error *err)
{
    encoding_lookup lookup = {m, plan, policy};
    return mp_calibrate_staged(ckpt, o, encoding_of, &lookup, stage_path, stage, report, err);
}

int mp_write_staged(const char *name, const char *source, int ndim, const int64_t *shape, const mp_stage *s,
                    const mp_staged *t, mp_pack_writer *w, mp_error *err)
{
    int rc = mp_pack_part_begin(w, name, source, ndim, shape, &t->enc, err);
    if (rc == MP_OK)
        rc = mp_stage_copy(s, t, w, err);
    return rc == MP_OK ? mp_pack_part_end(w, err) : rc;
}

int mp_convert_staged_part(const mp_plan_part *part, const mp_stage *s, const mp_staged *t, mp_pack_writer *w,
                           mp_error *err)
{
    int64_t shape[2] = {part->rows, part->cols};
    return mp_write_staged(part->name, part->source, part->ndim, part->ndim == 2 ? shape : shape + 1, s, t, w, err);
}

json_t *mp_calib_provenance(const mp_calib_options *o, const mp_calib_report *r)
{
    const char *base = strrchr(o->calib_path, '/');
    json_t *fallbacks = json_array();
    for (int i = 0; i < r->n_fallbacks; i++)
        json_array_append_new(fallbacks, json_pack("{s:i, s:i, s:i}", "layer", r->fallbacks[i].layer, "expert",
                                                   r->fallbacks[i].expert, "tokens", r->fallbacks[i].tokens));
    json_t *p = json_pack("{s:s, s:s, s:I, s:I, s:i, s:b, s:b, s:o, s:i}", "method", mp_method_name(o->method), "text",
                          base ? base + 1 : o->calib_path, "tokens", (json_int_t)r->tokens, "sequences",
                          (json_int_t)r->sequences, "ctx", o->calib_ctx, "all_experts", o->all_experts, "act_order",
                          o->act_order, "fallbacks", fallbacks, "gptq_rounded", r->gptq_rounded);
    if (o->method == MP_METHOD_GPTQ)
        json_object_set_new(p, "gptq_target", json_string(o->gptq_layer_target ? "layer" : "original"));
    return p;
}

json_t *mp_calib_summary_json(const mp_calib_options *o, const mp_calib_report *r)
{
    json_t *calib = mp_calib_provenance(o, r);
    json_object_set_new(calib, "seconds", json_real(r->seconds));
    if (r->nm_tensors) {
        json_object_set_new(calib, "nm_tensors", json_integer(r->nm_tensors));
        json_object_set_new(calib, "nm_output_error", json_real(r->nm_error));
    }
    return calib;
}

void mp_calib_print(const mp_calib_options *o, const mp_calib_report *r)
{
    printf("calibrated  %s: %lld tokens (%lld sequences of %d) from %s, %d tensors, %.1f s%s\n",
           mp_method_name(o->method), (long long)r->tokens, (long long)r->sequences, o->calib_ctx, o->calib_path,
           r->tensors, r->seconds, o->all_experts ? ", every expert on every token" : "");
    if (r->nm_tensors)
        printf("            2:4: %d tensors pruned with calibration, summed output error %.6g\n", r->nm_tensors,
               r->nm_error);
    if (r->gptq_rounded)
        printf("            %d tensor%s had a Hessian GPTQ could not invert even damped: rounded to nearest\n",
               r->gptq_rounded, r->gptq_rounded == 1 ? "" : "s");
    if (r->n_fallbacks == 0) {
        printf("            every expert saw enough tokens\n");
        return;
    }
    printf("            %d expert%s saw too few tokens and took calibration-free mse:", r->n_fallbacks,
           r->n_fallbacks == 1 ? "" : "s");
    for (int i = 0; i < r->n_fallbacks; i++)
        printf("%s layers.%d.experts.%d (%d)", i ? "," : "", r->fallbacks[i].layer, r->fallbacks[i].expert,
               r->fallbacks[i].tokens);
    printf("\n");
}
