#include "ct_names.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/fileio.h"
#include "../model/tensor_class.h"

/* The linears vLLM fuses, by their name inside a layer: the fused layer, the scope
 * that keeps a layer's dense MLP and shared expert apart, and whether it is the last part. */
static const struct {
    const char *part, *scope, *fused;
    bool last;
} fused_parts[] = {
    {"attn.q", "attn", "qkv_proj", false},           {"attn.k", "attn", "qkv_proj", false},
    {"attn.v", "attn", "qkv_proj", true},            {"attn.q_a", "attn", "fused_qkv_a_proj", false},
    {"attn.kv_a", "attn", "fused_qkv_a_proj", true}, {"mlp.gate", "mlp", "gate_up_proj", false},
    {"mlp.up", "mlp", "gate_up_proj", true},         {"shared.gate", "shared", "gate_up_proj", false},
    {"shared.up", "shared", "gate_up_proj", true},
};

/* "layers.3.attn.q" -> layer "layers.3", rest "attn.q"; NULL rest outside the layers. */
static const char *split_layer(const char *name, char *layer, size_t cap)
{
    layer[0] = '\0';
    if (strncmp(name, "layers.", 7) != 0 && strncmp(name, "mtp.", 4) != 0)
        return NULL;
    const char *dot = strchr(name, '.');
    const char *end = dot ? strchr(dot + 1, '.') : NULL;
    if (!end || (size_t)(end - name) >= cap)
        return NULL;
    memcpy(layer, name, (size_t)(end - name));
    layer[end - name] = '\0';
    return end + 1;
}

static void set_fused(ct_name_info *info, const char *rest)
{
    for (size_t i = 0; rest && i < sizeof fused_parts / sizeof *fused_parts; i++)
        if (strcmp(rest, fused_parts[i].part) == 0) {
            info->fused = fused_parts[i].fused;
            info->fused_last = fused_parts[i].last;
            snprintf(info->fused_key, sizeof info->fused_key, "%s.%s.%s", info->layer, fused_parts[i].scope,
                     fused_parts[i].fused);
        }
}

static ct_role role_of_class(mp_tensor_class cls, const char *rest, const char **what)
{
    switch (cls) {
    case MP_CLASS_ROUTER:
        *what = rest && strcmp(rest, "shared_gate") == 0 ? "shared-expert gates" : "routers";
        return CT_FIXED_LINEAR;
    case MP_CLASS_HEAD:
        *what = "output heads";
        return CT_FIXED_LINEAR;
    case MP_CLASS_ATTN:
    case MP_CLASS_DENSE:
    case MP_CLASS_SHARED:
        return CT_LINEAR;
    case MP_CLASS_EXPERT:
        return CT_EXPERT;
    default:
        *what = "embeddings, norms and biases";
        return CT_OTHER;
    }
}

int ct_classify(const char *name, ct_name_info *info)
{
    memset(info, 0, sizeof *info);
    mp_tensor_class cls;
    if (mp_class_of_name(name, &cls) != 0)
        return -1;
    const char *rest = split_layer(name, info->layer, sizeof info->layer);
    info->role = role_of_class(cls, rest, &info->what);
    if (info->role == CT_LINEAR)
        set_fused(info, rest);
    return 0;
}

char *ct_module_of(const char *source)
{
    size_t n = strlen(source);
    if (n <= 7 || strcmp(source + n - 7, ".weight") != 0)
        return NULL;
    char *module = mp_strdup(source);
    if (module)
        module[n - 7] = '\0';
    return module;
}
