#include "tensor_class.h"

#include <stdbool.h>
#include <string.h>

static const char *const class_names[MP_CLASS_COUNT] = {"embed", "head", "norm", "router", "attention",
                                                        "dense", "shared", "experts"};

const char *mp_class_name(mp_tensor_class c)
{
    return (unsigned)c < MP_CLASS_COUNT ? class_names[c] : "?";
}

/* Names inside a layer, after "layers.L." or "mtp.J."; mtp_only: the MTP layer's own. */
static const struct {
    const char *name;
    mp_tensor_class cls;
    bool mtp_only;
} layer_names[] = {
    {"input_norm", MP_CLASS_NORM, false},     {"post_attn_norm", MP_CLASS_NORM, false},
    {"correction_bias", MP_CLASS_NORM, false}, {"router", MP_CLASS_ROUTER, false},
    {"shared_gate", MP_CLASS_ROUTER, false},  {"attn.q", MP_CLASS_ATTN, false},
    {"attn.k", MP_CLASS_ATTN, false},         {"attn.v", MP_CLASS_ATTN, false},
    {"attn.o", MP_CLASS_ATTN, false},         {"attn.q_a", MP_CLASS_ATTN, false},
    {"attn.q_b", MP_CLASS_ATTN, false},       {"attn.kv_a", MP_CLASS_ATTN, false},
    {"attn.kv_b", MP_CLASS_ATTN, false},      {"attn.q_norm", MP_CLASS_NORM, false},
    {"attn.k_norm", MP_CLASS_NORM, false},    {"attn.q_a_norm", MP_CLASS_NORM, false},
    {"attn.kv_a_norm", MP_CLASS_NORM, false}, {"attn.sinks", MP_CLASS_NORM, false},
    {"mlp.gate", MP_CLASS_DENSE, false},      {"mlp.up", MP_CLASS_DENSE, false},
    {"mlp.down", MP_CLASS_DENSE, false},      {"shared.gate", MP_CLASS_SHARED, false},
    {"shared.up", MP_CLASS_SHARED, false},    {"shared.down", MP_CLASS_SHARED, false},
    {"embed", MP_CLASS_EMBED, true},          {"enorm", MP_CLASS_NORM, true},
    {"hnorm", MP_CLASS_NORM, true},           {"eh_proj", MP_CLASS_DENSE, true},
    {"head_norm", MP_CLASS_NORM, true},       {"head", MP_CLASS_HEAD, true},
};

/* "PREFIX.N." at the start of name: the rest, else NULL. */
static const char *after_index(const char *name, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncmp(name, prefix, n) != 0 || name[n] < '0' || name[n] > '9')
        return NULL;
    name += n;
    while (*name >= '0' && *name <= '9')
        name++;
    return *name == '.' ? name + 1 : NULL;
}

static int class_in_layer(const char *rest, bool mtp, mp_tensor_class *cls)
{
    const char *role = after_index(rest, "experts.");
    if (role) {
        *cls = MP_CLASS_EXPERT;
        return strcmp(role, "gate") == 0 || strcmp(role, "up") == 0 || strcmp(role, "down") == 0 ? 0 : -1;
    }
    for (size_t i = 0; i < sizeof layer_names / sizeof *layer_names; i++)
        if (strcmp(rest, layer_names[i].name) == 0 && (mtp || !layer_names[i].mtp_only)) {
            *cls = layer_names[i].cls;
            return 0;
        }
    return -1;
}

int mp_class_of_name(const char *name, mp_tensor_class *cls)
{
    size_t n = strlen(name);
    if (n > 5 && strcmp(name + n - 5, ".bias") == 0) { /* a linear's bias is a small vector */
        char base[160];
        if (n - 5 >= sizeof base)
            return -1;
        memcpy(base, name, n - 5);
        base[n - 5] = '\0';
        *cls = MP_CLASS_NORM;
        mp_tensor_class linear;
        return mp_class_of_name(base, &linear);
    }
    if (strcmp(name, "embed") == 0 || strcmp(name, "lm_head") == 0 || strcmp(name, "final_norm") == 0) {
        *cls = name[0] == 'e' ? MP_CLASS_EMBED : name[0] == 'l' ? MP_CLASS_HEAD : MP_CLASS_NORM;
        return 0;
    }
    const char *rest = after_index(name, "layers.");
    if (rest)
        return class_in_layer(rest, false, cls);
    rest = after_index(name, "mtp.");
    return rest ? class_in_layer(rest, true, cls) : -1;
}
