/* moepack export --to gguf: a pack as a GGUF v3 file (or gguf-split files) that
 * llama.cpp loads. The plan (gguf_plan.c) says which GGUF tensors come from which pack
 * tensors and in which type; the metadata comes from the model config (gguf_arch.c)
 * and the tokenizer files (gguf_vocab.c); the writer (formats/gguf_writer.h) streams the
 * tensor bytes from gguf_data.c. See docs/export.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/fileio.h"
#include "../core/json.h"
#include "../formats/ggml_blocks.h"
#include "../model/pack_open.h"
#include "export.h"
#include "gguf_export.h"

typedef struct {
    mp_pack pack;
    bool pack_open;
    mp_config cfg;
    bool cfg_read;
    json_t *config, *vocab;
    gg_plan plan;
    mp_gguf *g;
    mp_gguf_files files;
} export_job;

/* general.name: the pack's directory name without ".mpk". */
static void model_name(const char *pack, char *out, size_t cap)
{
    size_t len = strlen(pack);
    while (len > 1 && pack[len - 1] == '/')
        len--;
    size_t start = len;
    while (start > 0 && pack[start - 1] != '/')
        start--;
    size_t n = len - start;
    if (n > 4 && strncmp(pack + len - 4, ".mpk", 4) == 0)
        n -= 4;
    snprintf(out, cap, "%.*s", (int)n, pack + start);
}

static int open_inputs(export_job *j, const char *dir, mp_error *err)
{
    if (!mp_is_pack(dir))
        return mp_fail(err, MP_EXIT_INPUT, "%s: not a pack (no manifest.json); export reads packs made by moepack "
                       "convert", dir);
    int rc = mp_model_pack_open(&j->pack, dir, false, err);
    if (rc)
        return rc;
    j->pack_open = true;
    char *path = mp_path_join(dir, "config.json");
    if (!path)
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    rc = mp_config_read(&j->cfg, path, err);
    j->cfg_read = rc == MP_OK;
    if (!rc)
        rc = mp_json_load_file_tolerant(path, 16u << 20, &j->config, err);
    free(path);
    return rc;
}

static int add_tensors(export_job *j, uint64_t *total, mp_error *err)
{
    *total = 0;
    for (int i = 0; i < j->plan.n; i++) {
        const gg_tensor *t = &j->plan.t[i];
        int rc = mp_gguf_add_tensor(j->g, t->name, t->n_dims, t->ne, mp_ggml_type(t->target.kind), err);
        if (rc)
            return rc;
        *total += mp_gguf_tensor_bytes(j->g, i);
    }
    return MP_OK;
}

static int build_metadata(export_job *j, const char *pack, mp_error *err)
{
    char name[256];
    model_name(pack, name, sizeof name);
    j->g = mp_gguf_new();
    if (!j->g)
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    int rc = gg_arch_metadata(j->g, &j->plan, j->config, name, err);
    if (!rc)
        rc = gg_vocab_metadata(j->g, &j->plan, j->config, &j->vocab, err);
    return rc;
}

static void report(const export_job *j, const mp_export_options *o)
{
    for (int i = 0; i < j->plan.n_warnings; i++)
        fprintf(stderr, "warning: %s\n", j->plan.warnings[i]);
    if (!o->json) {
        gg_report_print(&j->plan, &j->files, j->vocab, o->pack);
        return;
    }
    json_t *doc = gg_report_json(&j->plan, &j->files, j->vocab, o->pack);
    json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    fputc('\n', stdout);
    json_decref(doc);
}

static void close_job(export_job *j)
{
    mp_gguf_files_free(&j->files);
    mp_gguf_free(j->g);
    gg_plan_free(&j->plan);
    json_decref(j->vocab);
    json_decref(j->config);
    if (j->cfg_read)
        mp_config_free(&j->cfg);
    if (j->pack_open)
        mp_pack_close(&j->pack);
}

int mp_export_gguf(const mp_export_options *o, mp_error *err)
{
    export_job j;
    memset(&j, 0, sizeof j);
    uint64_t total = 0;
    int rc = open_inputs(&j, o->pack, err);
    if (!rc)
        rc = gg_plan_build(&j.plan, &j.pack, &j.cfg, err);
    if (!rc)
        rc = build_metadata(&j, o->pack, err);
    if (!rc)
        rc = add_tensors(&j, &total, err);
    if (!rc) {
        gg_data *d = gg_data_new(&j.plan, o->quiet, total);
        rc = d ? mp_gguf_write(j.g, o->out, o->split_max_size, o->force, gg_data_fill, d, &j.files, err)
               : mp_fail(err, MP_EXIT_IO, "out of memory");
        gg_data_free(d);
    }
    if (!rc)
        report(&j, o);
    close_job(&j);
    return rc;
}
