/* What the GGUF export tells: per tensor class how many tensors were copied and how
 * many re-encoded to which type, the tokenizer chosen, the warnings; and with --json one
 * entry per GGUF tensor naming the pack tensors it came from, in order (stacked
 * experts: expert 0 first), and how. */
#include <stdio.h>
#include <string.h>

#include "../formats/ggml_blocks.h"
#include "gguf_export.h"

static const char *type_of(const gg_tensor *t)
{
    return mp_gguf_type_name(mp_ggml_type(t->target.kind));
}

static const char *transform_name(const gg_tensor *t)
{
    switch (t->transform) {
    case GG_ROPE:
        return "rope_permute";
    case GG_MLA_KB:
        return "mla_k_b";
    case GG_MLA_VB:
        return "mla_v_b";
    default:
        return t->n_src > 1 ? "stack" : "rows";
    }
}

static int file_of(const mp_gguf_files *f, int tensor)
{
    for (int i = 0; f && i < f->n_files; i++)
        if (tensor < f->first_tensor[i + 1])
            return i;
    return 0;
}

static json_t *tensor_json(const gg_plan *p, int i, const mp_gguf_files *files)
{
    const gg_tensor *t = &p->t[i];
    json_t *ne = json_array(), *src = json_array();
    for (int d = 0; d < t->n_dims; d++)
        json_array_append_new(ne, json_integer(t->ne[d]));
    for (int s = 0; s < t->n_src; s++)
        json_array_append_new(src, json_string(p->pack->tensors[t->src[s]].name));
    json_t *o = json_pack("{s:s, s:s, s:o, s:s, s:i, s:o, s:s, s:b, s:s}", "name", t->name, "type", type_of(t), "ne",
                          ne, "class", mp_class_name(t->cls), "file", file_of(files, i), "sources", src, "mode",
                          t->copied ? "copied" : "re-encoded", "lossless", t->lossless, "transform",
                          transform_name(t));
    if (t->transform != GG_ROWS)
        json_object_set_new(o, "heads", json_integer(t->heads));
    return o;
}

/* {class: {tensors, copied, re_encoded: {TYPE: n}}} */
static json_t *classes_json(const gg_plan *p)
{
    json_t *classes = json_object();
    for (int i = 0; i < p->n; i++) {
        const gg_tensor *t = &p->t[i];
        const char *name = mp_class_name(t->cls);
        json_t *c = json_object_get(classes, name);
        if (!c) {
            c = json_pack("{s:i, s:i, s:{}}", "tensors", 0, "copied", 0, "re_encoded");
            json_object_set_new(classes, name, c);
        }
        json_object_set_new(c, "tensors", json_integer(json_integer_value(json_object_get(c, "tensors")) + 1));
        if (t->copied) {
            json_object_set_new(c, "copied", json_integer(json_integer_value(json_object_get(c, "copied")) + 1));
        } else {
            char key[48];
            snprintf(key, sizeof key, "%s%s", type_of(t), t->lossless ? " (lossless)" : "");
            json_t *r = json_object_get(c, "re_encoded");
            json_object_set_new(r, key, json_integer(json_integer_value(json_object_get(r, key)) + 1));
        }
    }
    return classes;
}

json_t *gg_report_json(const gg_plan *p, const mp_gguf_files *files, json_t *vocab, const char *pack)
{
    json_t *tensors = json_array(), *out = json_array(), *warnings = json_array();
    for (int i = 0; i < p->n; i++)
        json_array_append_new(tensors, tensor_json(p, i, files));
    for (int i = 0; files && i < files->n_files; i++)
        json_array_append_new(out, json_pack("{s:s, s:I, s:i}", "path", files->paths[i], "bytes",
                                             (json_int_t)files->bytes[i], "tensors",
                                             files->first_tensor[i + 1] - files->first_tensor[i]));
    for (int i = 0; i < p->n_warnings; i++)
        json_array_append_new(warnings, json_string(p->warnings[i]));
    return json_pack("{s:s, s:s, s:s, s:o, s:i, s:i, s:o, s:O, s:o, s:o}", "pack", pack, "format", "gguf",
                     "architecture", p->arch, "files", out, "block_count", p->n_blocks, "dropped", p->n_dropped,
                     "classes", classes_json(p), "tokenizer", vocab, "warnings", warnings, "tensors", tensors);
}

static void print_class(const char *name, json_t *c)
{
    char re[256] = "";
    size_t n = 0;
    const char *type;
    json_t *count;
    json_object_foreach(json_object_get(c, "re_encoded"), type, count)
        n += (size_t)snprintf(re + n, sizeof re - n > 0 ? sizeof re - n : 0, "%s%lld %s", n ? ", " : "",
                              (long long)json_integer_value(count), type);
    printf("%-12s %8lld %8lld   %s\n", name, (long long)json_integer_value(json_object_get(c, "tensors")),
           (long long)json_integer_value(json_object_get(c, "copied")), n ? re : "-");
}

void gg_report_print(const gg_plan *p, const mp_gguf_files *files, const json_t *vocab, const char *pack)
{
    uint64_t bytes = 0;
    for (int i = 0; i < files->n_files; i++)
        bytes += files->bytes[i];
    printf("exported    %s -> %s%s (llama.cpp %s, %d tensors, %llu bytes", pack, files->paths[0],
           files->n_files > 1 ? " ..." : "", p->arch, p->n, (unsigned long long)bytes);
    if (files->n_files > 1)
        printf(", %d files", files->n_files);
    printf(")\n");
    if (p->n_dropped)
        printf("dropped     %d pack tensors llama.cpp does not load (MTP layers)\n", p->n_dropped);
    printf("tokenizer   %s, pre %s, from %s: %lld tokens\n\n", json_string_value(json_object_get(vocab, "model")),
           json_string_value(json_object_get(vocab, "pre")), json_string_value(json_object_get(vocab, "source")),
           (long long)json_integer_value(json_object_get(vocab, "tokens")));
    printf("%-12s %8s %8s   %s\n", "class", "tensors", "copied", "re-encoded");
    json_t *classes = classes_json(p);
    for (int c = 0; c < MP_CLASS_COUNT; c++) {
        json_t *entry = json_object_get(classes, mp_class_name((mp_tensor_class)c));
        if (entry)
            print_class(mp_class_name((mp_tensor_class)c), entry);
    }
    json_decref(classes);
}
