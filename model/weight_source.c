#include "weight_source.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/fileio.h"
#include "pack_open.h"
#include "weights.h"

static int open_pack(mp_weight_source *s, const char *path, mp_error *err)
{
    int rc = mp_model_pack_open(&s->pack, path, false, err);
    if (rc)
        return rc;
    char *cfg_path = mp_path_join(path, "config.json");
    if (!cfg_path)
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    rc = mp_config_read(&s->pack_cfg, cfg_path, err);
    free(cfg_path);
    return rc;
}

static int open_checkpoint(mp_weight_source *s, const char *path, mp_error *err)
{
    int rc = mp_checkpoint_open(&s->ckpt, path, err);
    if (rc)
        return rc;
    const mp_model *m = &s->ckpt.model;
    if (m->n_problems > 0)
        return mp_fail(err, MP_EXIT_INPUT, "%s: %s", path, m->problems[0]);
    rc = mp_plan_build(&s->plan, m, NULL, err);
    if (rc)
        return rc;
    s->names = malloc((size_t)s->plan.n_parts * sizeof *s->names);
    if (!s->names)
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    for (int i = 0; i < s->plan.n_parts; i++)
        s->names[i] = s->plan.parts[i].name;
    if (mp_name_index_build(&s->index, s->names, s->plan.n_parts) != 0)
        return mp_fail(err, MP_EXIT_IO, "out of memory");
    return MP_OK;
}

int mp_wsrc_open(mp_weight_source *s, const char *path, mp_error *err)
{
    memset(s, 0, sizeof *s);
    s->cached_record = -1;
    s->path = mp_strdup(path);
    s->is_pack = mp_is_pack(path);
    int rc = s->is_pack ? open_pack(s, path, err) : open_checkpoint(s, path, err);
    if (rc)
        mp_wsrc_close(s);
    return rc;
}

void mp_wsrc_close(mp_weight_source *s)
{
    if (s->is_pack) {
        mp_pack_close(&s->pack);
        mp_config_free(&s->pack_cfg);
    } else {
        mp_name_index_free(&s->index);
        free(s->names);
        mp_plan_free(&s->plan);
        mp_checkpoint_close(&s->ckpt);
    }
    free(s->raw);
    free(s->path);
    memset(s, 0, sizeof *s);
}

const mp_config *mp_wsrc_config(const mp_weight_source *s)
{
    return s->is_pack ? &s->pack_cfg : &s->ckpt.model.cfg;
}

bool mp_wsrc_pruned(const mp_weight_source *s)
{
    return s->is_pack && json_is_object(json_object_get(json_object_get(s->pack.manifest, "provenance"), "prune"));
}

static int find(const mp_weight_source *s, const char *name)
{
    if (s->is_pack)
        return mp_pack_find(&s->pack, name);
    return mp_name_index_find(&s->index, s->names, name);
}

bool mp_wsrc_has(const mp_weight_source *s, const char *name)
{
    return find(s, name) >= 0;
}

int mp_wsrc_shape(const mp_weight_source *s, const char *name, int64_t *rows, int64_t *cols)
{
    int i = find(s, name);
    if (i < 0)
        return -1;
    if (s->is_pack) {
        *rows = s->pack.tensors[i].rows;
        *cols = s->pack.tensors[i].cols;
    } else {
        *rows = s->plan.parts[i].rows;
        *cols = s->plan.parts[i].cols;
    }
    return 0;
}

static int read_pack_tensor(mp_weight_source *s, int i, float *out, mp_error *err)
{
    const mp_pack_tensor *t = &s->pack.tensors[i];
    const mp_pack_record *r = &s->pack.records[t->record];
    if (s->cached_record != t->record) {
        if (r->raw_length > s->raw_cap) {
            uint8_t *grown = realloc(s->raw, r->raw_length);
            if (!grown)
                return mp_fail(err, MP_EXIT_IO, "out of memory reading %s", t->name);
            s->raw = grown;
            s->raw_cap = r->raw_length;
        }
        s->cached_record = -1;
        int rc = mp_pack_read_record(&s->pack, t->record, s->raw, err);
        if (rc)
            return rc;
        s->cached_record = t->record;
    }
    const uint8_t *bytes = s->raw + r->parts[t->part].offset;
    mp_encoding_decode_rows(&t->enc, t->rows, t->cols, bytes, 0, t->rows, out);
    return MP_OK;
}

static int read_checkpoint_tensor(mp_weight_source *s, int i, float *out, mp_error *err)
{
    const mp_plan_part *part = &s->plan.parts[i];
    if (part->is_bias)
        return mp_ckpt_read_bias(&s->ckpt.model, &part->lin, out, err);
    return mp_ckpt_read_rows(&s->ckpt.model, &part->lin, 0, part->lin.rows, out, err);
}

int mp_wsrc_read(mp_weight_source *s, const char *name, int64_t rows, int64_t cols, float *out, mp_error *err)
{
    int64_t r, c;
    int i = find(s, name);
    if (i < 0 || mp_wsrc_shape(s, name, &r, &c) != 0)
        return mp_fail(err, MP_EXIT_INPUT, "%s: tensor %s: not found", s->path, name);
    if (r * c != rows * cols)
        return mp_fail(err, MP_EXIT_INPUT, "%s: tensor %s: shape [%lld, %lld], expected [%lld, %lld]", s->path, name,
                       (long long)r, (long long)c, (long long)rows, (long long)cols);
    return s->is_pack ? read_pack_tensor(s, i, out, err) : read_checkpoint_tensor(s, i, out, err);
}

void mp_wsrc_encoding(const mp_weight_source *s, const char *name, char *buf, size_t cap)
{
    int i = find(s, name);
    if (i < 0)
        snprintf(buf, cap, "absent");
    else if (s->is_pack)
        mp_encoding_format(&s->pack.tensors[i].enc, buf, cap);
    else
        snprintf(buf, cap, "%s", mp_dtype_name(mp_plan_source_dtype(&s->ckpt.model, &s->plan.parts[i])));
}

uint64_t mp_wsrc_total_values(const mp_weight_source *s)
{
    uint64_t n = 0;
    if (s->is_pack)
        for (int i = 0; i < s->pack.n_tensors; i++)
            n += (uint64_t)(s->pack.tensors[i].rows * s->pack.tensors[i].cols);
    else
        for (int i = 0; i < s->plan.n_parts; i++)
            n += (uint64_t)(s->plan.parts[i].rows * s->plan.parts[i].cols);
    return n;
}

int mp_wsrc_count(const mp_weight_source *s)
{
    return s->is_pack ? s->pack.n_tensors : s->plan.n_parts;
}

const char *mp_wsrc_name(const mp_weight_source *s, int i)
{
    return s->is_pack ? s->pack.tensors[i].name : s->plan.parts[i].name;
}
