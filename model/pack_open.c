#include "pack_open.h"

#include <string.h>

#include "tensor_class.h"

/* What of the manifest's model decides which names are its tensors. */
typedef struct {
    int n_layers, n_mtp, n_experts;
    json_t *moe_layers; /* n_layers booleans */
} model_shape;

static int int_field(json_t *obj, const char *key, int max, int *out)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max)
        return -1;
    *out = (int)json_integer_value(v);
    return 0;
}

static int read_model_shape(const mp_pack *p, model_shape *m, mp_error *err)
{
    json_t *model = json_object_get(p->manifest, "model");
    m->moe_layers = json_object_get(model, "moe_layers");
    if (int_field(model, "layers", 1 << 20, &m->n_layers) != 0 || int_field(model, "mtp_layers", 1 << 20, &m->n_mtp) != 0 ||
        int_field(json_object_get(model, "routing"), "experts", 1 << 24, &m->n_experts) != 0 ||
        !json_is_array(m->moe_layers) || json_array_size(m->moe_layers) != (size_t)m->n_layers)
        return mp_fail(err, MP_EXIT_INPUT,
                       "%s/manifest.json: model: expected layers, mtp_layers, routing.experts and one moe_layers flag per layer",
                       p->dir);
    return MP_OK;
}

/* Classes that exist only in MoE layers, and the dense MLP only outside them. */
static bool fits_layer_kind(mp_tensor_class cls, bool moe)
{
    if (cls == MP_CLASS_EXPERT || cls == MP_CLASS_ROUTER || cls == MP_CLASS_SHARED)
        return moe;
    return cls != MP_CLASS_DENSE || !moe;
}

/* The record's layer and expert agree with the name (the pack reader checked), so
 * the indices in the name are the record's: they must be inside the model. */
static const char *misfit(const mp_pack *p, const model_shape *m, const mp_pack_tensor *t)
{
    const mp_pack_record *r = &p->records[t->record];
    mp_tensor_class cls;
    if (mp_class_of_name(t->name, &cls) != 0)
        return "is not a canonical tensor name";
    bool in_layers = strncmp(t->name, "layers.", 7) == 0;
    if (in_layers && r->layer >= m->n_layers)
        return "names a layer past the model's layers";
    if (!in_layers && r->layer >= m->n_layers + m->n_mtp)
        return "names an MTP layer past the model's mtp_layers";
    if (r->expert >= m->n_experts)
        return "names a routed expert past the model's routing.experts";
    bool bias = strlen(t->name) > 5 && strcmp(t->name + strlen(t->name) - 5, ".bias") == 0;
    if (in_layers && !bias && !fits_layer_kind(cls, json_is_true(json_array_get(m->moe_layers, (size_t)r->layer))))
        return json_is_true(json_array_get(m->moe_layers, (size_t)r->layer)) ? "is a dense MLP tensor in an MoE layer"
                                                                             : "is an MoE tensor in a dense layer";
    return NULL;
}

static int check_names(const mp_pack *p, mp_error *err)
{
    model_shape m;
    int rc = read_model_shape(p, &m, err);
    for (int i = 0; i < p->n_tensors && rc == MP_OK; i++) {
        const char *why = misfit(p, &m, &p->tensors[i]);
        if (why)
            rc = mp_fail(err, MP_EXIT_INPUT, "%s/manifest.json: tensor '%s' %s", p->dir, p->tensors[i].name, why);
    }
    return rc;
}

int mp_model_pack_open(mp_pack *p, const char *dir, bool deferred, mp_error *err)
{
    int rc = deferred ? mp_pack_open_deferred(p, dir, err) : mp_pack_open(p, dir, err);
    if (rc == MP_OK && (rc = check_names(p, err)) != MP_OK)
        mp_pack_close(p);
    return rc;
}
