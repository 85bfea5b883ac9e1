/* GGUF v3 files, as ggml's gguf.cpp reads them (docs/export.md, "GGUF"): the header
 * "GGUF", version 3, tensor and key counts; the key-value metadata; the tensor infos
 * (name, dims with ne[0] innermost, ggml type, offset in the data section); zero padding
 * to general.alignment; then each tensor's bytes, each padded to the alignment.
 *
 * Metadata and tensor infos are gathered in memory first; the data is then streamed
 * tensor by tensor through a callback, so no tensor data is ever held here. The files
 * are written into a temporary directory beside the output and renamed into place when
 * all are complete; on failure they are removed.
 *
 * Splitting follows llama.cpp's gguf-split: files PREFIX-00001-of-0000N.gguf, each
 * with split.no (u16, from 0), split.count (u16) and split.tensors.count (i32, all
 * files' tensors); the first file holds all the metadata, the others only the split
 * keys and general.alignment; a tensor never straddles two files. */
#ifndef MP_GGUF_WRITER_H
#define MP_GGUF_WRITER_H

#include <stdbool.h>
#include <stdint.h>

#include "../core/error.h"

#define MP_GGUF_VERSION 3
#define MP_GGUF_ALIGNMENT 32
#define MP_GGUF_MAX_NAME 64 /* ggml's GGML_MAX_NAME: names are shorter */
#define MP_GGUF_MAX_DIMS 4

/* Value types of the metadata (gguf.h enum gguf_type). */
typedef enum {
    MP_GGUF_U8 = 0,
    MP_GGUF_I8 = 1,
    MP_GGUF_U16 = 2,
    MP_GGUF_I16 = 3,
    MP_GGUF_U32 = 4,
    MP_GGUF_I32 = 5,
    MP_GGUF_F32 = 6,
    MP_GGUF_BOOL = 7,
    MP_GGUF_STRING = 8,
    MP_GGUF_ARRAY = 9,
    MP_GGUF_U64 = 10,
    MP_GGUF_I64 = 11,
    MP_GGUF_F64 = 12
} mp_gguf_type;

typedef struct mp_gguf mp_gguf;

mp_gguf *mp_gguf_new(void);
void mp_gguf_free(mp_gguf *g);

/* Metadata. Setting a key again replaces its value (keys are unique in a file). Each
 * returns 0, or -1 when out of memory. */
int mp_gguf_set_u16(mp_gguf *g, const char *key, uint16_t v);
int mp_gguf_set_u32(mp_gguf *g, const char *key, uint32_t v);
int mp_gguf_set_i32(mp_gguf *g, const char *key, int32_t v);
int mp_gguf_set_f32(mp_gguf *g, const char *key, float v);
int mp_gguf_set_bool(mp_gguf *g, const char *key, bool v);
int mp_gguf_set_str(mp_gguf *g, const char *key, const char *v);
/* An array of n numbers of type elem (U8 ... F64 but not STRING or ARRAY), copied. */
int mp_gguf_set_arr(mp_gguf *g, const char *key, mp_gguf_type elem, const void *values, uint64_t n);
/* An array of n strings, copied. */
int mp_gguf_set_arr_str(mp_gguf *g, const char *key, const char *const *values, uint64_t n);
bool mp_gguf_has(const mp_gguf *g, const char *key);

/* Bytes per block and values per block of a ggml type, 0 for a type this writer does
 * not know (it knows F32, F16, BF16, Q4_0, Q4_1, Q8_0, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS). */
int mp_gguf_type_block_bytes(int ggml_type);
int mp_gguf_type_block_values(int ggml_type);
const char *mp_gguf_type_name(int ggml_type);

/* A tensor, in file order; ne[0] is the innermost dimension (a matrix [rows, cols]
 * is ne = {cols, rows}). Refuses (exit 2) a name of 64 bytes or more, a duplicate name,
 * an unknown type and ne[0] not a multiple of the type's block. */
int mp_gguf_add_tensor(mp_gguf *g, const char *name, int n_dims, const int64_t *ne, int ggml_type, mp_error *err);
int mp_gguf_tensor_count(const mp_gguf *g);
uint64_t mp_gguf_tensor_bytes(const mp_gguf *g, int tensor);

/* Where the data goes: the fill callback writes exactly mp_gguf_tensor_bytes(tensor)
 * bytes through mp_gguf_sink_write, in order, then returns 0 (or an exit code). */
typedef struct mp_gguf_sink mp_gguf_sink;
int mp_gguf_sink_write(mp_gguf_sink *s, const void *bytes, uint64_t len, mp_error *err);
typedef int (*mp_gguf_fill_fn)(void *ctx, int tensor, mp_gguf_sink *sink, mp_error *err);

/* The files written: paths as renamed into place, and per file its tensors
 * [first_tensor[i], first_tensor[i + 1]) and its size. */
typedef struct {
    int n_files;
    char **paths;
    int *first_tensor; /* n_files + 1 entries */
    uint64_t *bytes;
} mp_gguf_files;

/* Plans the files (one, or with split_max > 0 as many as the size asks: each file,
 * header included, at most split_max bytes unless a single tensor needs more), checks
 * that none exists unless force (exit 2 naming it), writes and renames them. */
int mp_gguf_write(const mp_gguf *g, const char *out, uint64_t split_max, bool force, mp_gguf_fill_fn fill, void *ctx,
                  mp_gguf_files *files, mp_error *err);
void mp_gguf_files_free(mp_gguf_files *f);

#endif
