/* Sharded checkpoints: model.safetensors.index.json and its shards, with one
 * name -> tensor lookup over all of them. */
#include <dirent.h>
#include <stdbool.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../core/fileio.h"
#include "../core/json.h"
#include "safetensors.h"

#define INDEX_NAME "model.safetensors.index.json"
#define MAX_INDEX_BYTES (512ull << 20)

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int is_directory(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return mp_strdup(".");
    if (slash == path)
        return mp_strdup("/");
    char *d = mp_strdup(path);
    if (d)
        d[slash - path] = '\0';
    return d;
}

/* ---- name lookup ---- */

static int build_lookup(mp_st_set *s, mp_error *err)
{
    s->names = calloc((size_t)s->n_tensors + 1, sizeof *s->names);
    if (!s->names)
        return mp_fail(err, MP_EXIT_IO, "%s: out of memory", s->dir);
    for (int i = 0; i < s->n_tensors; i++)
        s->names[i] = s->tensors[i].info->name;
    if (mp_name_index_build(&s->index, s->names, s->n_tensors) != 0)
        return mp_fail(err, MP_EXIT_IO, "%s: out of memory", s->dir);
    return MP_OK;
}

int mp_st_set_find(const mp_st_set *s, const char *name)
{
    return mp_name_index_find(&s->index, s->names, name);
}

static int compare_entry_names(const void *a, const void *b)
{
    const mp_st_entry *x = a, *y = b;
    return strcmp(x->info->name, y->info->name);
}

/* Sorts all tensors by name and rejects a name that appears in two shards. */
static int collect_tensors(mp_st_set *s, mp_error *err)
{
    int total = 0;
    for (int f = 0; f < s->n_files; f++)
        total += s->files[f].n_tensors;
    s->tensors = calloc((size_t)total + 1, sizeof *s->tensors);
    if (!s->tensors)
        return mp_fail(err, MP_EXIT_IO, "%s: out of memory", s->dir);
    for (int f = 0; f < s->n_files; f++)
        for (int t = 0; t < s->files[f].n_tensors; t++)
            s->tensors[s->n_tensors++] = (mp_st_entry){f, &s->files[f].tensors[t]};
    qsort(s->tensors, (size_t)s->n_tensors, sizeof *s->tensors, compare_entry_names);
    for (int i = 1; i < s->n_tensors; i++)
        if (strcmp(s->tensors[i].info->name, s->tensors[i - 1].info->name) == 0)
            return mp_fail(err, MP_EXIT_INPUT, "%s: tensor '%s' is stored in both %s and %s", s->dir,
                           s->tensors[i].info->name, s->files[s->tensors[i - 1].file].path,
                           s->files[s->tensors[i].file].path);
    return build_lookup(s, err);
}

/* ---- index ---- */

static bool has_parent_component(const char *path)
{
    for (const char *p = path; (p = strstr(p, "..")) != NULL; p += 2)
        if ((p == path || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
            return true;
    return false;
}

/* A shard named by the index must be a plain relative path that stays inside dir. */
static int check_shard_path(const char *index_path, const char *dir, const char *tensor,
                            const char *shard, mp_error *err)
{
    if (shard[0] == '\0' || shard[0] == '/' || has_parent_component(shard) || strchr(shard, '\\'))
        return mp_fail(err, MP_EXIT_INPUT,
                       "%s: tensor '%s': shard \"%s\" must be a file name inside the checkpoint directory",
                       index_path, tensor, shard);
    char *full = mp_path_join(dir, shard);
    char real_dir[PATH_MAX], real_shard[PATH_MAX];
    int rc = MP_OK;
    if (!is_file(full))
        rc = mp_fail(err, MP_EXIT_INPUT, "%s: tensor '%s': shard %s does not exist", index_path,
                     tensor, full);
    else if (!realpath(dir, real_dir) || !realpath(full, real_shard) ||
             strncmp(real_shard, real_dir, strlen(real_dir)) != 0 ||
             real_shard[strlen(real_dir)] != '/')
        rc = mp_fail(err, MP_EXIT_INPUT, "%s: tensor '%s': shard \"%s\" resolves outside the checkpoint directory",
                     index_path, tensor, shard);
    free(full);
    return rc;
}

/* Returns the position of shard in names[], appending it when new. */
static int shard_slot(const char **names, int *n_names, const char *shard)
{
    for (int i = *n_names - 1; i >= 0; i--) /* keys come grouped by shard: search from the end */
        if (strcmp(names[i], shard) == 0)
            return i;
    names[*n_names] = shard;
    return (*n_names)++;
}

static int open_shards(mp_st_set *s, const char **names, int n, mp_error *err)
{
    s->files = calloc((size_t)n + 1, sizeof *s->files);
    if (!s->files)
        return mp_fail(err, MP_EXIT_IO, "%s: out of memory", s->dir);
    mp_error *errs = calloc((size_t)n + 1, sizeof *errs);
    if (!errs)
        return mp_fail(err, MP_EXIT_IO, "%s: out of memory", s->dir);
    json_object_seed(0); /* jansson's one global, set before threads parse headers */
    #pragma omp parallel for schedule(dynamic)
    for (int i = 0; i < n; i++) {
        char *full = mp_path_join(s->dir, names[i]);
        if (full)
            mp_st_open(&s->files[i], full, &errs[i]);
        else
            mp_fail(&errs[i], MP_EXIT_IO, "%s: out of memory", s->dir);
        free(full);
    }
    s->n_files = n; /* a failed open leaves its slot empty and safe to close */
    int rc = MP_OK;
    for (int i = 0; i < n && rc == MP_OK; i++) /* report the first failing shard, whatever the timing */
        if (errs[i].code != MP_OK)
            rc = mp_fail(err, errs[i].code, "%s", errs[i].msg);
    free(errs);
    return rc;
}

/* Every index entry must name a tensor of its shard, and every tensor of a shard
 * must be in the index (pointing to that shard). */
static int cross_check_index(mp_st_set *s, const char *index_path, json_t *map, const char **names,
                             mp_error *err)
{
    const char *tensor;
    json_t *value;
    json_object_foreach(map, tensor, value) {
        int i = mp_st_set_find(s, tensor);
        const char *shard = json_string_value(value);
        if (i < 0)
            return mp_fail(err, MP_EXIT_INPUT, "%s: tensor '%s' is listed in shard %s but not stored there",
                           index_path, tensor, shard);
        if (strcmp(names[s->tensors[i].file], shard) != 0)
            return mp_fail(err, MP_EXIT_INPUT, "%s: tensor '%s' is listed in %s but stored in %s",
                           index_path, tensor, shard, names[s->tensors[i].file]);
    }
    if ((size_t)s->n_tensors != json_object_size(map)) {
        for (int i = 0; i < s->n_tensors; i++)
            if (!json_object_get(map, s->tensors[i].info->name))
                return mp_fail(err, MP_EXIT_INPUT, "%s: tensor '%s' in shard %s is missing from the index",
                               index_path, s->tensors[i].info->name, names[s->tensors[i].file]);
    }
    return MP_OK;
}

static int open_index(mp_st_set *s, const char *index_path, mp_error *err)
{
    json_t *root;
    int rc = mp_json_load_file(index_path, MAX_INDEX_BYTES, &root, err);
    if (rc != MP_OK)
        return rc;
    json_t *map = json_object_get(root, "weight_map");
    const char **names = NULL;
    int n_names = 0;
    if (!json_is_object(root) || !json_is_object(map) || json_object_size(map) == 0)
        rc = mp_fail(err, MP_EXIT_INPUT, "%s: expected an object with a non-empty \"weight_map\" object",
                     index_path);
    else if (!(names = calloc(json_object_size(map), sizeof *names)))
        rc = mp_fail(err, MP_EXIT_IO, "%s: out of memory", index_path);
    const char *tensor;
    json_t *value;
    if (rc == MP_OK)
        json_object_foreach(map, tensor, value) {
            if (!json_is_string(value)) {
                rc = mp_fail(err, MP_EXIT_INPUT, "%s: weight_map entry '%s': expected a shard file name",
                             index_path, tensor);
                break;
            }
            int before = n_names;
            shard_slot(names, &n_names, json_string_value(value));
            if (n_names != before &&
                (rc = check_shard_path(index_path, s->dir, tensor, json_string_value(value), err)) != MP_OK)
                break;
        }
    if (rc == MP_OK)
        rc = open_shards(s, names, n_names, err);
    if (rc == MP_OK)
        rc = collect_tensors(s, err);
    if (rc == MP_OK)
        rc = cross_check_index(s, index_path, map, names, err);
    free(names);
    json_decref(root);
    return rc;
}

/* ---- entry points ---- */

static int open_single(mp_st_set *s, const char *file, mp_error *err)
{
    s->files = calloc(1, sizeof *s->files);
    if (!s->files)
        return mp_fail(err, MP_EXIT_IO, "%s: out of memory", file);
    int rc = mp_st_open(&s->files[0], file, err);
    if (rc != MP_OK)
        return rc;
    s->n_files = 1;
    return collect_tensors(s, err);
}

/* In a directory without an index, exactly one *.safetensors file is the checkpoint. */
static int find_single_file(const char *dir, char **found, mp_error *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return mp_fail_errno(err, "%s: cannot list directory", dir);
    struct dirent *e;
    int count = 0;
    *found = NULL;
    while ((e = readdir(d)) != NULL) {
        if (!ends_with(e->d_name, ".safetensors"))
            continue;
        count++;
        if (!*found)
            *found = mp_path_join(dir, e->d_name);
    }
    closedir(d);
    if (count == 1)
        return MP_OK;
    free(*found);
    *found = NULL;
    if (count == 0)
        return mp_fail(err, MP_EXIT_INPUT, "%s: no *.safetensors file and no %s", dir, INDEX_NAME);
    return mp_fail(err, MP_EXIT_INPUT, "%s: %d *.safetensors files but no %s to say which to use",
                   dir, count, INDEX_NAME);
}

static int open_directory(mp_st_set *s, const char *dir, mp_error *err)
{
    char *index = mp_path_join(dir, INDEX_NAME);
    int rc;
    if (is_file(index))
        rc = open_index(s, index, err);
    else {
        char *single = NULL;
        rc = find_single_file(dir, &single, err);
        if (rc == MP_OK)
            rc = open_single(s, single, err);
        free(single);
    }
    free(index);
    return rc;
}

int mp_st_set_open(mp_st_set *s, const char *path, mp_error *err)
{
    memset(s, 0, sizeof *s);
    int rc;
    if (is_directory(path)) {
        s->dir = mp_strdup(path);
        rc = open_directory(s, path, err);
    } else if (!is_file(path)) {
        struct stat st;
        return mp_fail(err, MP_EXIT_INPUT, "%s: %s", path,
                       stat(path, &st) == 0 ? "not a regular file or directory" : "no such file or directory");
    } else {
        s->dir = dir_of(path);
        rc = ends_with(path, ".json") ? open_index(s, path, err) : open_single(s, path, err);
    }
    if (rc != MP_OK)
        mp_st_set_close(s);
    return rc;
}

void mp_st_set_close(mp_st_set *s)
{
    for (int i = 0; i < s->n_files; i++)
        mp_st_close(&s->files[i]);
    free(s->files);
    free(s->tensors);
    free(s->names);
    mp_name_index_free(&s->index);
    free(s->dir);
    memset(s, 0, sizeof *s);
}

int mp_st_set_read(const mp_st_set *s, int tensor, uint64_t off, uint64_t len, void *dst, mp_error *err)
{
    const mp_st_entry *e = &s->tensors[tensor];
    return mp_st_read(&s->files[e->file], e->info, off, len, dst, err);
}

int mp_st_set_map(const mp_st_set *s, int tensor, uint64_t off, uint64_t len, mp_st_map *map, mp_error *err)
{
    const mp_st_entry *e = &s->tensors[tensor];
    return mp_st_map_range(&s->files[e->file], e->info, off, len, map, err);
}
