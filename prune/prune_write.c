#include "prune_write.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/fileio.h"
#include "../core/progress.h"

/* The model layer of a routing tensor (router [experts, hidden], router.bias and
 * correction_bias [experts]), or -1 for any other tensor. */
static int routing_tensor_layer(const char *name, int n_layers)
{
    int layer = -1, used = 0;
    if (sscanf(name, "layers.%d.%n", &layer, &used) == 1 && used > 0) {
    } else if (sscanf(name, "mtp.%d.%n", &layer, &used) == 1 && used > 0) {
        layer += n_layers;
    } else {
        return -1;
    }
    const char *rest = name + used;
    bool routing = strcmp(rest, "router") == 0 || strcmp(rest, "router.bias") == 0 ||
                   strcmp(rest, "correction_bias") == 0;
    return routing ? layer : -1;
}

int mp_expert_tensor_name(const char *name, int new_id, char *buf, size_t cap)
{
    const char *at = strstr(name, ".experts.");
    if (!at)
        return -1;
    char *end;
    const char *digits = at + strlen(".experts.");
    (void)strtol(digits, &end, 10);
    if (end == digits)
        return -1;
    int n = snprintf(buf, cap, "%.*s.experts.%d%s", (int)(at - name), name, new_id, end);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

static bool same_encoding(const mp_encoding *a, const mp_encoding *b)
{
    char x[64], y[64];
    mp_encoding_format(a, x, sizeof x);
    mp_encoding_format(b, y, sizeof y);
    return strcmp(x, y) == 0;
}

/* The part's bytes: the input's, or the staged replacement of the same tensor. */
static int copy_part(const mp_pack *in, const mp_pack_part *part, const char *name, const uint8_t *raw,
                     const mp_stage *replace, mp_pack_writer *w, mp_error *err)
{
    const mp_pack_tensor *t = &in->tensors[part->tensor];
    const mp_staged *staged = mp_stage_find(replace, t->name);
    int64_t shape[2] = {t->rows, t->cols};
    if (staged && !same_encoding(&staged->enc, &t->enc))
        return mp_fail(err, MP_EXIT_INPUT, "%s: the replacement of %s is not in its encoding", in->dir, t->name);
    int rc = mp_pack_part_begin(w, name, t->source, t->ndim, t->ndim == 2 ? shape : shape + 1, &t->enc, err);
    if (rc == MP_OK && staged)
        rc = mp_stage_copy(replace, staged, w, err);
    else if (rc == MP_OK)
        rc = mp_pack_part_write(w, raw + part->offset, part->length, err);
    return rc == MP_OK ? mp_pack_part_end(w, err) : rc;
}

/* Bytes of one expert's slice of a routing tensor: a row of the router or an
 * element of a bias; 0 when the encoding cannot be cut there exactly. */
static uint64_t unit_bytes(const mp_pack_tensor *t)
{
    uint64_t element = t->enc.kind == MP_ENC_F32 ? 4 : t->enc.kind == MP_ENC_BF16 || t->enc.kind == MP_ENC_F16 ? 2 : 0;
    if (t->ndim == 1)
        return element;
    if (element)
        return element * (uint64_t)t->cols;
    if (t->enc.kind < MP_ENC_Q8_0) /* fp8 and w4 keep scales in sections of their own */
        return 0;
    mp_enc_layout L; /* a grid: rows of whole blocks, nothing else */
    mp_encoding_layout(&t->enc, t->rows, t->cols, &L);
    return L.total % (uint64_t)t->rows == 0 ? L.total / (uint64_t)t->rows : 0;
}

static int slice_part(const mp_pack *in, const mp_pack_part *part, const uint8_t *raw, const mp_prune_plan *plan,
                      const mp_prune_layer *L, mp_pack_writer *w, mp_error *err)
{
    const mp_pack_tensor *t = &in->tensors[part->tensor];
    int64_t units = t->ndim == 1 ? t->cols : t->rows;
    uint64_t unit = unit_bytes(t);
    if (units != plan->n_experts)
        return mp_fail(err, MP_EXIT_INPUT, "%s: %s has %lld experts, the config %d", in->dir, t->name,
                       (long long)units, plan->n_experts);
    if (!unit)
        return mp_fail(err, MP_EXIT_INPUT, "%s: %s is stored as %s, which cannot be sliced by expert exactly "
                       "(f32, bf16, f16 or a llama.cpp grid can)", in->dir, t->name, mp_encoding_kind_name(t->enc.kind));
    int64_t shape[2] = {plan->keep, t->cols};
    int rc = mp_pack_part_begin(w, t->name, t->source, t->ndim, shape, &t->enc, err);
    for (int e = 0; e < plan->n_experts && rc == MP_OK; e++)
        if (L->new_id[e] >= 0)
            rc = mp_pack_part_write(w, raw + part->offset + (uint64_t)e * unit, unit, err);
    return rc == MP_OK ? mp_pack_part_end(w, err) : rc;
}

/* One input record into the output: dropped, copied with renamed parts, or sliced. */
static int write_record(const mp_pack *in, int r, const uint8_t *raw, const mp_prune_plan *plan,
                        const mp_prune_write_options *o, mp_pack_writer *w, mp_prune_written *s, mp_error *err)
{
    const mp_pack_record *rec = &in->records[r];
    const mp_prune_layer *L = rec->expert >= 0 ? mp_prune_plan_find(plan, rec->layer) : NULL;
    int new_id = L ? L->new_id[rec->expert] : rec->expert;
    if (L && new_id < 0) {
        s->experts_dropped++;
        return MP_OK;
    }
    s->experts_kept += L != NULL;
    s->records++;
    int rc = mp_pack_record_begin(w, rec->tier, rec->layer, new_id, err);
    for (int k = 0; k < rec->n_parts && rc == MP_OK; k++) {
        const mp_pack_part *part = &rec->parts[k];
        const char *name = in->tensors[part->tensor].name;
        char renamed[256];
        int layer = rec->expert < 0 ? routing_tensor_layer(name, o->n_layers) : -1;
        const mp_prune_layer *RL = layer >= 0 ? mp_prune_plan_find(plan, layer) : NULL;
        if (L && mp_expert_tensor_name(name, new_id, renamed, sizeof renamed) != 0)
            return mp_fail(err, MP_EXIT_INPUT, "%s: tensor %s of an expert record is not named layers.L.experts.E.*",
                           in->dir, name);
        if (RL) {
            rc = slice_part(in, part, raw, plan, RL, w, err);
            s->sliced++;
        } else {
            rc = copy_part(in, part, L ? renamed : name, raw, o->replace, w, err);
        }
    }
    return rc == MP_OK ? mp_pack_record_end(w, err) : rc;
}

static int write_records(const mp_pack *in, const mp_prune_plan *plan, const mp_prune_write_options *o,
                         mp_pack_writer *w, mp_prune_written *s, mp_error *err)
{
    uint64_t raw_max = 0, total = 0;
    for (int r = 0; r < in->n_records; r++) {
        raw_max = in->records[r].raw_length > raw_max ? in->records[r].raw_length : raw_max;
        total += in->records[r].raw_length;
    }
    uint8_t *raw = malloc(raw_max + 1);
    if (!raw)
        return mp_fail(err, MP_EXIT_IO, "%s: out of memory for a %llu-byte record", in->dir,
                       (unsigned long long)raw_max);
    mp_progress progress;
    mp_progress_start(&progress, "write", total, true, o->quiet);
    int rc = MP_OK;
    for (int r = 0; r < in->n_records && rc == MP_OK; r++) {
        const mp_pack_record *rec = &in->records[r];
        const mp_prune_layer *L = rec->expert >= 0 ? mp_prune_plan_find(plan, rec->layer) : NULL;
        bool dropped = L && L->new_id[rec->expert] < 0;
        if (!dropped) /* a dropped expert is never read */
            rc = mp_pack_read_record(in, r, raw, err);
        if (rc == MP_OK)
            rc = write_record(in, r, raw, plan, o, w, s, err);
        mp_progress_add(&progress, rec->raw_length);
    }
    mp_progress_finish(&progress);
    free(raw);
    return rc;
}

/* ---- manifest and side files ---- */

static json_t *pruned_model(const mp_pack *in, int keep)
{
    json_t *model = json_deep_copy(json_object_get(in->manifest, "model"));
    json_t *routing = json_object_get(model, "routing");
    if (json_is_object(routing))
        json_object_set_new(routing, "experts", json_integer(keep));
    return model;
}

static json_t *sliced_array(json_t *a, const mp_prune_layer *L, int n_experts)
{
    if (!json_is_array(a) || (int)json_array_size(a) != n_experts)
        return json_incref(a);
    json_t *out = json_array();
    for (int e = 0; e < n_experts; e++)
        if (L->new_id[e] >= 0)
            json_array_append(out, json_array_get(a, (size_t)e));
    return out;
}

/* routing_stats with each layer's per-expert arrays cut to the kept experts. */
static json_t *pruned_routing_stats(const mp_pack *in, const mp_prune_plan *plan)
{
    json_t *stats = json_object_get(in->manifest, "routing_stats");
    if (!json_is_object(stats))
        return NULL;
    stats = json_deep_copy(stats);
    json_t *layers = json_object_get(stats, "layers"), *entry;
    size_t i;
    json_array_foreach(layers, i, entry) {
        const mp_prune_layer *L = mp_prune_plan_find(plan, (int)json_integer_value(json_object_get(entry, "layer")));
        const char *keys[] = {"counts", "frequency", "tier"};
        for (size_t k = 0; L && k < sizeof keys / sizeof keys[0]; k++)
            json_object_set_new(entry, keys[k], sliced_array(json_object_get(entry, keys[k]), L, plan->n_experts));
    }
    return stats;
}

static int write_file(const char *dir, const char *name, const char *bytes, size_t len, mp_error *err)
{
    char *path = mp_path_join(dir, name);
    int fd = path ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : -1;
    int rc = fd < 0 ? mp_fail_errno(err, "%s: create", path ? path : name) : mp_write_full(fd, bytes, len, path, err);
    if (fd >= 0 && close(fd) != 0 && rc == MP_OK)
        rc = mp_fail_errno(err, "%s: close", path);
    free(path);
    return rc;
}

/* config.json with the family's expert count (whichever key it uses) set to keep. */
static int write_config(const mp_pack *in, const char *dir, int keep, mp_error *err)
{
    static const char *const keys[] = {"num_local_experts", "num_experts", "n_routed_experts"};
    char *path = mp_path_join(in->dir, "config.json");
    json_error_t jerr;
    json_t *cfg = path ? json_load_file(path, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    int rc = cfg ? MP_OK : mp_fail(err, MP_EXIT_INPUT, "%s: %s", path ? path : in->dir, path ? jerr.text : "out of memory");
    bool set = false;
    for (size_t k = 0; rc == MP_OK && k < sizeof keys / sizeof keys[0]; k++)
        if (json_is_integer(json_object_get(cfg, keys[k]))) {
            json_object_set_new(cfg, keys[k], json_integer(keep));
            set = true;
        }
    if (rc == MP_OK && !set)
        rc = mp_fail(err, MP_EXIT_INPUT, "%s: no expert count (num_local_experts, num_experts or n_routed_experts)",
                     path);
    char *text = rc == MP_OK ? json_dumps(cfg, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    if (rc == MP_OK)
        rc = text ? write_file(dir, "config.json", text, strlen(text), err) : mp_fail(err, MP_EXIT_IO, "out of memory");
    free(text);
    json_decref(cfg);
    free(path);
    return rc;
}

/* The tokenizer and generation files travel unchanged; config.json gets the new count. */
static int write_side_files(const mp_pack *in, const char *dir, int keep, mp_error *err)
{
    static const char *const names[] = {"generation_config.json", "tokenizer.json", "tokenizer_config.json",
                                        "special_tokens_map.json", "tokenizer.model", "chat_template.jinja"};
    int rc = write_config(in, dir, keep, err);
    for (size_t i = 0; i < sizeof names / sizeof names[0] && rc == MP_OK; i++) {
        char *src = mp_path_join(in->dir, names[i]), *text = NULL;
        size_t len = 0;
        struct stat st;
        if (src && stat(src, &st) == 0 && S_ISREG(st.st_mode)) {
            rc = mp_read_small_file(src, 256u << 20, &text, &len, err);
            if (rc == MP_OK)
                rc = write_file(dir, names[i], text, len, err);
        }
        free(text);
        free(src);
    }
    return rc;
}

int mp_prune_write(const mp_pack *in, const mp_prune_plan *plan, mp_prune_write_options *o, mp_prune_written *s,
                   mp_error *err)
{
    memset(s, 0, sizeof *s);
    bool zstd[16] = {false};
    if (in->n_tiers > 16) {
        json_decref(o->provenance);
        return mp_fail(err, MP_EXIT_INPUT, "%s: %d tiers, at most 16 are supported", in->dir, in->n_tiers);
    }
    for (int t = 0; t < in->n_tiers; t++) {
        zstd[t] = in->tiers[t].zstd;
        s->bytes_in += in->tiers[t].bytes;
    }
    mp_pack_writer *w = mp_pack_writer_new(o->out, in->n_tiers, zstd, 3, err);
    if (!w) {
        json_decref(o->provenance);
        return err->code;
    }
    int rc = write_records(in, plan, o, w, s, err);
    if (rc == MP_OK)
        rc = write_side_files(in, mp_pack_writer_temp_dir(w), plan->keep, err);
    s->bytes_out = mp_pack_writer_bytes(w);
    if (rc == MP_OK)
        rc = mp_pack_writer_finish(w, pruned_model(in, plan->keep), o->provenance, pruned_routing_stats(in, plan), NULL,
                                   o->force, err);
    else {
        json_decref(o->provenance);
        mp_pack_writer_abort(w);
    }
    o->provenance = NULL;
    return rc;
}
