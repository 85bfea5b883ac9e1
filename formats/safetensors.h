/* safetensors: a strict reader and a streaming writer.
 *
 * Layout (REFERENCE.md section 1): u64 little-endian N | N bytes of UTF-8 JSON | data.
 * The reader enforces every rule of the reference implementation and more:
 * header <= 100 MB, a JSON object, no duplicate keys, known dtypes, byte span equal to
 * shape x dtype size, offsets starting at 0, contiguous and non-overlapping, data end
 * equal to file end. Tensor bytes are read with pread, or through a mapping of a
 * range that is released right after use: a shard is never loaded whole.
 * Every rejection is exit code 2 (MP_EXIT_INPUT) naming the file and the tensor. */
#ifndef MP_SAFETENSORS_H
#define MP_SAFETENSORS_H

#include <stdint.h>

#include "../core/dtype.h"
#include "../core/error.h"
#include "../core/name_index.h"

#define MP_ST_MAX_HEADER 100000000ull
#define MP_ST_MAX_DIMS 8

typedef struct {
    char *name;
    mp_dtype dtype;
    int ndim;
    int64_t shape[MP_ST_MAX_DIMS];
    uint64_t begin, end; /* byte span relative to the start of the data buffer */
} mp_st_tensor;

typedef struct {
    char *path;
    int fd;
    uint64_t file_size;
    uint64_t data_start; /* 8 + header length */
    int n_tensors;
    mp_st_tensor *tensors; /* sorted by begin offset (file order) */
    int n_metadata;
    char **metadata_keys, **metadata_values; /* the __metadata__ string map */
} mp_st_file;

int mp_st_open(mp_st_file *f, const char *path, mp_error *err);
void mp_st_close(mp_st_file *f);

uint64_t mp_st_nelem(const mp_st_tensor *t);
uint64_t mp_st_nbytes(const mp_st_tensor *t);

/* Reads len bytes starting at byte offset off inside tensor t. */
int mp_st_read(const mp_st_file *f, const mp_st_tensor *t, uint64_t off, uint64_t len, void *dst,
               mp_error *err);

/* A read-only mapping of part of a tensor: decoding straight from the page cache
 * saves the copy pread makes. Unmapping releases it (nothing stays resident). */
typedef struct {
    void *base;
    size_t length;
    const uint8_t *data;
} mp_st_map;

int mp_st_map_range(const mp_st_file *f, const mp_st_tensor *t, uint64_t off, uint64_t len, mp_st_map *map,
                    mp_error *err);
void mp_st_unmap(mp_st_map *map);

/* A sharded checkpoint: either one .safetensors file or the shards listed in a
 * model.safetensors.index.json. Index entries must name shards that exist inside
 * the checkpoint directory (no absolute paths, no "..", no links out of it) and
 * tensors present in them; every tensor of a listed shard must be in the index. */
typedef struct {
    int file;                 /* index into files */
    const mp_st_tensor *info; /* owned by files[file] */
} mp_st_entry;

typedef struct {
    char *dir;
    int n_files;
    mp_st_file *files;
    int n_tensors;
    mp_st_entry *tensors; /* in name order */
    const char **names;   /* names[i] = tensors[i].info->name */
    mp_name_index index;
} mp_st_set;

/* path: a .safetensors file, a model.safetensors.index.json, or a directory holding
 * one of model.safetensors.index.json / model.safetensors / a single *.safetensors. */
int mp_st_set_open(mp_st_set *s, const char *path, mp_error *err);
void mp_st_set_close(mp_st_set *s);
/* Index into s->tensors, or -1 when there is no tensor of that name. */
int mp_st_set_find(const mp_st_set *s, const char *name);
int mp_st_set_read(const mp_st_set *s, int tensor, uint64_t off, uint64_t len, void *dst,
                   mp_error *err);
int mp_st_set_map(const mp_st_set *s, int tensor, uint64_t off, uint64_t len, mp_st_map *map, mp_error *err);

/* Streaming writer. Declare every tensor, then write their bytes in declaration
 * order; the file appears under its final name only after mp_st_writer_finish. */
typedef struct mp_st_writer mp_st_writer;

mp_st_writer *mp_st_writer_new(const char *path);
int mp_st_writer_metadata(mp_st_writer *w, const char *key, const char *value, mp_error *err);
int mp_st_writer_add(mp_st_writer *w, const char *name, mp_dtype dt, int ndim,
                     const int64_t *shape, mp_error *err);
/* Appends bytes of the current tensor; a tensor may be written in several calls. */
int mp_st_writer_write(mp_st_writer *w, const void *data, uint64_t len, mp_error *err);
/* Checks that every declared byte was written, then renames into place and frees w. */
int mp_st_writer_finish(mp_st_writer *w, mp_error *err);
/* Removes the temporary file and frees w (safe on NULL). */
void mp_st_writer_abort(mp_st_writer *w);

#endif
