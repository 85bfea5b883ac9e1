/* moepack export --to compressed-tensors: a pack as a Hugging Face checkpoint directory
 * that vLLM loads with its compressed-tensors quantization (docs/export-compressed-tensors.md).
 * The manifest alone decides everything (ct_plan.c, ct_rules.c): a pack vLLM could not
 * load is refused before anything is written. Then the shards are written tensor by
 * tensor, one pack record in memory at a time, into OUT.tmp-PID, which is renamed to
 * OUT when complete. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/cleanup.h"
#include "../core/fileio.h"
#include "../core/outdir.h"
#include "../core/progress.h"
#include "../model/pack_open.h"
#include "ct_config.h"
#include "ct_plan.h"
#include "ct_tensors.h"
#include "export.h"

/* The last record read, so an expert's three projections cost one read. */
typedef struct {
    const mp_pack *pack;
    int record;
    uint8_t *raw;
    uint64_t cap;
} record_cache;

static int part_bytes(record_cache *c, int tensor, const uint8_t **part, mp_error *err)
{
    const mp_pack_tensor *t = &c->pack->tensors[tensor];
    const mp_pack_record *r = &c->pack->records[t->record];
    if (c->record != t->record) {
        if (r->raw_length > c->cap) {
            uint8_t *grown = realloc(c->raw, r->raw_length);
            if (!grown)
                return mp_fail(err, MP_EXIT_IO, "%s: out of memory for a %llu-byte record", c->pack->dir,
                               (unsigned long long)r->raw_length);
            c->raw = grown;
            c->cap = r->raw_length;
        }
        c->record = -1;
        int rc = mp_pack_read_record(c->pack, t->record, c->raw, err);
        if (rc != MP_OK)
            return rc;
        c->record = t->record;
    }
    *part = c->raw + r->parts[t->part].offset;
    return MP_OK;
}

static int write_shard(const ct_plan *plan, int shard, const char *dir, record_cache *cache, mp_progress *bar,
                       mp_error *err)
{
    char name[64];
    ct_shard_name(shard, plan->n_shards, name, sizeof name);
    char *path = mp_path_join(dir, name);
    mp_st_writer *w = path ? mp_st_writer_new(path) : NULL;
    free(path);
    if (!w)
        return mp_fail(err, MP_EXIT_IO, "%s/%s: out of memory", dir, name);
    int rc = mp_st_writer_metadata(w, "format", "pt", err); /* transformers refuses files without it */
    for (int i = 0; i < plan->n_out && rc == MP_OK; i++)
        if (plan->out[i].shard == shard)
            rc = mp_st_writer_add(w, plan->out[i].name, plan->out[i].dtype, plan->out[i].ndim, plan->out[i].shape,
                                  err);
    for (int i = 0; i < plan->n_out && rc == MP_OK; i++) {
        if (plan->out[i].shard != shard)
            continue;
        const uint8_t *part = NULL;
        rc = part_bytes(cache, plan->out[i].tensor, &part, err);
        if (rc == MP_OK)
            rc = ct_write_tensor(plan, &plan->out[i], part, w, err);
        mp_progress_add(bar, plan->out[i].bytes);
    }
    if (rc != MP_OK) {
        mp_st_writer_abort(w);
        return rc;
    }
    return mp_st_writer_finish(w, err);
}

static int write_checkpoint(const ct_plan *plan, const mp_export_options *o, const char *dir, mp_error *err)
{
    record_cache cache = {.pack = plan->pack, .record = -1};
    mp_progress bar;
    mp_progress_start(&bar, "export", plan->total_bytes, true, o->quiet);
    int rc = MP_OK;
    for (int s = 0; s < plan->n_shards && rc == MP_OK; s++)
        rc = write_shard(plan, s, dir, &cache, &bar, err);
    mp_progress_finish(&bar);
    free(cache.raw);
    json_t *qc = rc == MP_OK ? ct_quantization_config(plan, err) : NULL;
    if (rc == MP_OK && (qc || plan->n_schemes == 0))
        rc = ct_write_config(plan, qc, dir, err);
    else if (rc == MP_OK)
        rc = err->code;
    if (rc == MP_OK && plan->n_shards > 1)
        rc = ct_write_index(plan, dir, err);
    if (rc == MP_OK)
        rc = ct_copy_side_files(plan, dir, err);
    return rc;
}

static void scheme_text(const ct_plan *plan, int s, char *buf, size_t cap)
{
    mp_encoding_format(&plan->schemes[s].enc, buf, cap);
}

static void print_summary(const ct_plan *plan, const mp_export_options *o)
{
    int counts[CT_MAX_SCHEMES] = {0}, ignored = 0;
    for (int t = 0; t < plan->pack->n_tensors; t++) {
        const ct_item *it = &plan->items[t];
        if (it->scheme >= 0)
            counts[it->scheme]++;
        else if (it->module && it->info.role != CT_OTHER)
            ignored++;
    }
    if (o->json) {
        json_t *groups = json_array();
        for (int s = 0; s < plan->n_schemes; s++) {
            char enc[32], name[24];
            scheme_text(plan, s, enc, sizeof enc);
            snprintf(name, sizeof name, "group_%d", s);
            json_array_append_new(groups, json_pack("{s:s, s:s, s:i, s:b}", "group", name, "encoding", enc,
                                                    "tensors", counts[s], "experts", plan->schemes[s].experts));
        }
        json_t *j = json_pack("{s:s, s:s, s:s, s:o, s:i, s:i, s:i, s:I}", "pack", o->pack, "output", o->out,
                              "format", ct_format_name(plan), "groups", groups, "ignored", ignored, "tensors",
                              plan->n_out, "shards", plan->n_shards, "bytes", (json_int_t)plan->total_bytes);
        char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (text)
            printf("%s\n", text);
        free(text);
        json_decref(j);
        return;
    }
    printf("exported    %s -> %s (compressed-tensors, format %s)\n", o->pack, o->out, ct_format_name(plan));
    for (int s = 0; s < plan->n_schemes; s++) {
        char enc[32];
        scheme_text(plan, s, enc, sizeof enc);
        printf("group_%-5d %s, %d tensors%s\n", s, enc, counts[s], plan->schemes[s].experts ? ", routed experts" : "");
    }
    printf("ignore      %d unquantized linears\n", ignored);
    printf("tensors     %d in %d shard%s, %llu bytes\n", plan->n_out, plan->n_shards, plan->n_shards == 1 ? "" : "s",
           (unsigned long long)plan->total_bytes);
}

static int plan_export(ct_plan *plan, const mp_pack *pack, const mp_export_options *o, mp_error *err)
{
    int rc = ct_plan_items(plan, pack, err);
    if (rc == MP_OK)
        rc = ct_check(plan, err);
    if (rc == MP_OK)
        rc = ct_plan_outputs(plan, o->shard_size, err);
    return rc;
}

static int export_into(const ct_plan *plan, const mp_export_options *o, mp_error *err)
{
    char *tmp = mp_temp_name(o->out);
    if (!tmp)
        return mp_fail(err, MP_EXIT_IO, "%s: out of memory", o->out);
    if (mkdir(tmp, 0755) != 0) {
        int rc = mp_fail_errno(err, "%s: create directory", tmp);
        free(tmp);
        return rc;
    }
    mp_cleanup_arm_dir(tmp);
    int rc = write_checkpoint(plan, o, tmp, err);
    if (rc == MP_OK)
        rc = mp_outdir_commit(tmp, o->out, o->force, err);
    if (rc != MP_OK)
        mp_remove_tree(tmp);
    mp_cleanup_arm(NULL, NULL);
    free(tmp);
    return rc;
}

int mp_export_compressed_tensors(const mp_export_options *o, mp_error *err)
{
    struct stat st;
    if (!o->force && lstat(o->out, &st) == 0) /* before any work; checked again at the rename */
        return mp_fail(err, MP_EXIT_INPUT, "%s already exists (use --force to replace it)", o->out);
    mp_pack pack;
    int rc = mp_model_pack_open(&pack, o->pack, false, err);
    if (rc != MP_OK)
        return rc;
    ct_plan plan;
    rc = plan_export(&plan, &pack, o, err);
    if (rc == MP_OK) {
        ct_notes(&plan, stderr);
        rc = export_into(&plan, o, err);
    }
    if (rc == MP_OK)
        print_summary(&plan, o);
    ct_plan_free(&plan);
    mp_pack_close(&pack);
    return rc;
}
