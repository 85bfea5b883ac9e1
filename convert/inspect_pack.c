/* moepack inspect PACK: tiers, encodings, bits per weight by class, provenance. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "../model/pack_open.h"
#include "../quant/policy.h"
#include "inspect_pack.h"

enum { CLASS_EMBED, CLASS_NORM, CLASS_ROUTER, CLASS_ATTN, CLASS_DENSE, CLASS_SHARED, CLASS_EXPERTS, N_CLASSES };
static const char *const class_names[N_CLASSES] = {"embed/head", "norms/biases", "routers", "attention",
                                                   "dense mlp", "shared", "experts"};

/* Inspect's coarser grouping of the policy's classes; a name that is not canonical
 * counts as a vector or as embed/head. */
static int class_of(const mp_pack_tensor *t)
{
    static const int grouped[MP_CLASS_COUNT] = {CLASS_EMBED, CLASS_EMBED, CLASS_NORM, CLASS_ROUTER,
                                                CLASS_ATTN, CLASS_DENSE, CLASS_SHARED, CLASS_EXPERTS};
    mp_tensor_class c;
    if (mp_class_of_name(t->name, &c) == 0)
        return grouped[c];
    return t->ndim == 1 ? CLASS_NORM : CLASS_EMBED;
}

typedef struct {
    char name[32];
    uint64_t tensors, weights, bytes;
} tally;

static void add_tally(tally *list, int *n, const char *name, uint64_t weights, uint64_t bytes)
{
    int i = 0;
    while (i < *n && strcmp(list[i].name, name) != 0)
        i++;
    if (i == *n) {
        snprintf(list[i].name, sizeof list[i].name, "%s", name);
        (*n)++;
    }
    list[i].tensors++;
    list[i].weights += weights;
    list[i].bytes += bytes;
}

static double bpw(const tally *t)
{
    return t->weights ? 8.0 * (double)t->bytes / (double)t->weights : 0;
}

static json_t *tallies_json(const tally *list, int n)
{
    json_t *o = json_object();
    for (int i = 0; i < n; i++)
        json_object_set_new(o, list[i].name,
                            json_pack("{s:I, s:I, s:I, s:f}", "tensors", (json_int_t)list[i].tensors, "weights",
                                      (json_int_t)list[i].weights, "bytes", (json_int_t)list[i].bytes,
                                      "bits_per_weight", bpw(&list[i])));
    return o;
}

static void print_tallies(const char *title, const tally *list, int n)
{
    printf("\n%-14s %8s %14s %14s %12s\n", title, "tensors", "weights", "bytes", "bits/weight");
    for (int i = 0; i < n; i++)
        printf("%-14s %8llu %14llu %14llu %12.3f\n", list[i].name, (unsigned long long)list[i].tensors,
               (unsigned long long)list[i].weights, (unsigned long long)list[i].bytes, bpw(&list[i]));
}

static void print_text(const mp_pack *p, const tally *enc, int n_enc, const tally *cls, int n_cls, const tally *all)
{
    json_t *model = json_object_get(p->manifest, "model"), *prov = json_object_get(p->manifest, "provenance");
    json_t *routing = json_object_get(model, "routing");
    printf("pack        %s (format version %d)\n", p->dir, MP_PACK_VERSION);
    printf("family      %s (%s)\n", json_string_value(json_object_get(model, "family")),
           json_string_value(json_object_get(model, "architecture")));
    printf("layers      %lld, hidden %lld, vocab %lld, %lld experts, top-%lld\n",
           json_integer_value(json_object_get(model, "layers")), json_integer_value(json_object_get(model, "hidden")),
           json_integer_value(json_object_get(model, "vocab")), json_integer_value(json_object_get(routing, "experts")),
           json_integer_value(json_object_get(routing, "top_k")));
    printf("made by     %s\n", json_string_value(json_object_get(prov, "command")));
    printf("            %s\n", json_string_value(json_object_get(prov, "tool")));
    printf("\ntier  file          bytes       records  codec\n");
    for (int t = 0; t < p->n_tiers; t++)
        printf("%4d  %-12s %12llu  %7d  %s\n", t, strrchr(p->tiers[t].path, '/') + 1,
               (unsigned long long)p->tiers[t].bytes, p->tiers[t].n_records, p->tiers[t].zstd ? "zstd" : "none");
    print_tallies("encoding", enc, n_enc);
    print_tallies("class", cls, n_cls);
    printf("\ntotal       %d tensors, %llu weights, %llu bytes, %.3f bits per weight\n", p->n_tensors,
           (unsigned long long)all->weights, (unsigned long long)all->bytes, bpw(all));
}

int mp_inspect_pack(const char *path, bool json, mp_error *err)
{
    mp_pack p;
    int rc = mp_model_pack_open(&p, path, false, err);
    if (rc != MP_OK)
        return rc;
    tally enc[16] = {0}, cls[N_CLASSES] = {0}, all = {.name = "all"};
    int n_enc = 0, n_cls = 0;
    for (int i = 0; i < p.n_tensors; i++) {
        const mp_pack_tensor *t = &p.tensors[i];
        char name[32];
        mp_encoding_format(&t->enc, name, sizeof name);
        uint64_t weights = (uint64_t)(t->rows * t->cols), bytes = p.records[t->record].parts[t->part].length;
        add_tally(enc, &n_enc, name, weights, bytes);
        add_tally(cls, &n_cls, class_names[class_of(t)], weights, bytes);
        all.tensors++;
        all.weights += weights;
        all.bytes += bytes;
    }
    if (json) {
        json_t *tiers = json_object_get(p.manifest, "tiers");
        json_t *o = json_pack("{s:s, s:i, s:O, s:O, s:O, s:o, s:o, s:I, s:I, s:f}", "pack", path, "version",
                              MP_PACK_VERSION, "model", json_object_get(p.manifest, "model"), "provenance",
                              json_object_get(p.manifest, "provenance"), "tiers", tiers, "encodings",
                              tallies_json(enc, n_enc), "classes", tallies_json(cls, n_cls), "weights",
                              (json_int_t)all.weights, "bytes", (json_int_t)all.bytes, "bits_per_weight", bpw(&all));
        json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("\n");
        json_decref(o);
    } else {
        print_text(&p, enc, n_enc, cls, n_cls, &all);
    }
    mp_pack_close(&p);
    return MP_OK;
}
